r"""Rendering only: messages, rich tables and progress on the terminal, JSON for ``--json``.

Data goes to stdout (a table, or exactly one JSON document with ``--json``);
messages, warnings and progress go to stderr. Nothing here decides anything.

The rules the :class:`Renderer` enforces, whoever calls it:

- ``--quiet`` means errors only: its consoles print nothing else (tables,
  messages, warnings, progress), while ``--json`` still prints its document;
- an error or a warning is one line;
- a count is written one way, ``2,325`` (:func:`count`);
- output that is not a terminal is never wrapped (:data:`UNWRAPPED_WIDTH`);
- text from the data (keys, attribute names, signatures, table names, paths)
  never reaches the terminal with a raw control character: ESC, NUL, CR, BEL,
  tab and newline are shown as escapes (``\x1b``, ``\x00``, ``\r``,
  ``\x07``, ``\t``, ``\n``; :func:`visible`), so data cannot move the cursor,
  recolour the terminal or forge a line. ``--json`` output is exact JSON.

rich is imported on first use: building a help page never needs it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pitrdiff.progress import SILENT, Progress
from pitrdiff.units import count, human_bytes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Output that is not a terminal (a file, a pipe, a CI log) is never wrapped:
# a suggested command stays on one line, whole, ready to copy.
UNWRAPPED_WIDTH = 1000


_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# C0, DEL and C1 controls; the bidirectional overrides, embeddings and isolates
# (they reorder what follows on the line); the Unicode line and paragraph separators.
_CONTROL = {
    c: _NAMED.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")
    for c in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A),
              0x2028, 0x2029)
}  # fmt: skip
_CONTROL_BUT_NEWLINE = {c: e for c, e in _CONTROL.items() if c != 0x0A}


def visible(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every control character written as an escape, safe on a terminal.

    ``"a\x1b[31mb\tc\n"`` becomes ``a\x1b[31mb\tc\n`` (the backslashes
    literal): C0 and C1 controls and DEL (``\t``, ``\n``, ``\r`` by name,
    the rest ``\xNN``), the bidirectional overrides and isolates (U+202A–U+202E,
    U+2066–U+2069) and U+2028/U+2029 (``\uNNNN``). Every other character,
    backslashes included, is unchanged, so the result is for reading, not for
    parsing back (``--json`` is).

    Parameters
    ----------
    text
        Any text.
    keep_newlines
        Leave ``\n`` as a line break (a message the CLI wrote on several lines).
    """
    return text.translate(_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL)


def plain(text: Any) -> str:
    """``text`` as a rich markup string shown exactly: control characters and markup escaped."""
    from rich.markup import escape

    return escape(visible(str(text)))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def to_json(document: Any) -> str:
    """Serialise a result document (dataclasses with ``to_dict``, Decimals, sets) as JSON."""
    return orjson.dumps(
        document,
        default=_json_default,
        # Pass dataclasses to _json_default so a result's to_dict() decides its JSON.
        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS,
    ).decode("utf-8")


def _columns() -> list[Any]:
    """The progress bar's columns; counts as ``2,325/10,000``, throughput as ``1,234 items/s``."""
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class CountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = count(int(task.completed))
            return Text(done if task.total is None else f"{done}/{count(int(task.total))}")

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("")
            return Text(f"{speed:,.0f} {task.fields.get('unit', 'items')}/s")

    return [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        CountColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]


class RichProgress:
    """A :class:`~pitrdiff.progress.Progress` drawn as a rich progress bar on stderr."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress as RichProgressBar

        self._bar = RichProgressBar(
            *_columns(), console=console, transient=False, refresh_per_second=8
        )
        self._task: Any = None
        self._unit = "items"
        self._fields: dict[str, float] = {}

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
        self._bar.stop()

    def start(self, task: str, total: float | None = None, unit: str = "items") -> None:
        """Begin a task."""
        self.finish()
        self._unit = unit
        self._fields = {}
        self._task = self._bar.add_task(plain(task), total=total, extra="", unit=unit)

    def advance(self, amount: float = 1, **fields: float) -> None:
        """Advance the current task and update its counters."""
        if self._task is None:
            return
        for name, value in fields.items():
            self._fields[name] = self._fields.get(name, 0) + value
        self._bar.update(self._task, advance=amount, extra=self._describe_fields())

    def status(self, message: str) -> None:
        """Show a status message beside the task."""
        from rich.markup import escape

        if self._task is not None:
            self._bar.update(self._task, extra=escape(visible(message)))

    def finish(self) -> None:
        """Stop the current task's clock."""
        if self._task is not None:
            self._bar.stop_task(self._task)
            self._task = None

    def _describe_fields(self) -> str:
        parts = []
        for name, value in self._fields.items():
            if name == "bytes":
                parts.append(human_bytes(value))
            elif value:
                parts.append(f"{count(int(value))} {name}")
        return "  ".join(parts)


class _StderrLogHandler(logging.Handler):
    def __init__(self, renderer: Renderer) -> None:
        super().__init__()
        self._renderer = renderer

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self._renderer.warn(message)
        else:
            self._renderer.info(message)


@functools.cache
def _safe_console() -> type[Console]:
    from rich.console import Console

    class SafeConsole(Console):
        """A rich console that writes no raw control character from text (:class:`_Visible`).

        A string is rich markup with its control characters but line breaks
        shown as escapes; any other renderable is drawn through :class:`_Visible`.
        """

        def print(self, *objects: Any, **kwargs: Any) -> None:
            super().print(*(_safe(o) for o in objects), **kwargs)

    return SafeConsole


def _safe(renderable: Any) -> Any:
    if isinstance(renderable, str):
        return visible(renderable, keep_newlines=True)
    if hasattr(renderable, "__rich_console__") or hasattr(renderable, "__rich__"):
        return _Visible(renderable)
    return renderable  # a number, or an object rich shows by its repr (escaped already)


def _console(file: Any, *, quiet: bool = False, soft_wrap: bool = False) -> Console:
    terminal = file.isatty() if hasattr(file, "isatty") else False
    wide = not terminal and not os.environ.get("COLUMNS")
    return _safe_console()(
        file=file,
        highlight=False,
        soft_wrap=soft_wrap or not terminal,
        quiet=quiet,
        width=UNWRAPPED_WIDTH if wide else None,
    )


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return count(value)
    return plain(value)


class _Visible:
    """A renderable drawn with no raw control character: the renderer's last safeguard.

    Text a command put in its own rich objects is laid out as given, then
    every segment's control characters but the line breaks are written as
    escapes (:func:`visible`); rich's own styles and cursor moves are not text
    and pass. Text passed through :func:`plain` (every table cell of
    :class:`Renderer`) is escaped before the layout, newlines included.
    """

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        for segment in console.render(self.renderable, options):
            if segment.control or not segment.text:
                yield segment
            else:
                text = visible(segment.text, keep_newlines=True)
                yield segment if text == segment.text else Segment(text, segment.style)


class Renderer:
    """Everything the CLI shows, in one place.

    Parameters
    ----------
    json_mode
        Print exactly one JSON document on stdout instead of tables; no messages.
    quiet
        Errors only: :attr:`out` and :attr:`err` print nothing (tables,
        messages, warnings, progress); :meth:`error` and :meth:`json` still do.
    """

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.out = _console(sys.stdout, quiet=quiet, soft_wrap=True)
        self.err = _console(sys.stderr, quiet=quiet)
        self._errors = self.err if not quiet else _console(sys.stderr)

    # messages -----------------------------------------------------------------
    def error(self, message: str) -> None:
        """One-line error on stderr (never wrapped: scripts grep it); shown even when quiet."""
        line = " ".join(visible(message, keep_newlines=True).split())
        self._errors.print(f"[bold red]error:[/] {plain(line)}", soft_wrap=True)

    def warn(self, message: str) -> None:
        """A warning on stderr (one line, never wrapped); silenced by ``--quiet``."""
        line = " ".join(visible(message, keep_newlines=True).split())
        self.err.print(f"[yellow]warning:[/] {plain(line)}", soft_wrap=True)

    def info(self, message: str) -> None:
        r"""An informational line on stderr (silenced by ``--quiet`` and ``--json``).

        One line: a newline in it is shown as ``\n``, as any control character.
        """
        if not self.quiet and not self.json_mode:
            from rich.markup import escape

            self.err.print(escape(visible(message)), soft_wrap=True)

    def markup(self, message: str) -> None:
        """An informational line with rich markup on stderr (silenced like :meth:`info`)."""
        if not self.quiet and not self.json_mode:
            self.err.print(visible(message), soft_wrap=True)

    # data ---------------------------------------------------------------------
    def json(self, document: Any) -> None:
        """Print one JSON document on stdout (also with ``--quiet``: it is the result)."""
        sys.stdout.write(to_json(document) + "\n")
        sys.stdout.flush()

    def print(self, renderable: Any) -> None:
        """Print a rich renderable (table, text) on stdout (nothing with ``--quiet``).

        A string is rich markup (its control characters but line breaks shown as
        escapes); in any renderable, control characters other than line breaks
        reach the terminal as escapes (:class:`_Visible`): :attr:`out` and
        :attr:`err` do it for whatever is printed on them. Put data in tables
        through :meth:`key_value_table`, :meth:`records_table` or :func:`plain`
        (newlines escaped too, before the layout).
        """
        self.out.print(renderable)

    def key_value_table(self, title: str, rows: Sequence[tuple[str, Any]]) -> Table:
        """A two-column table of labels and values (counts written ``2,325``)."""
        from rich.table import Table

        table = Table(
            title=plain(title), show_header=False, title_justify="left", box=None, pad_edge=False
        )
        table.add_column(style="bold")
        table.add_column()
        for label, value in rows:
            table.add_row(plain(label), _cell(value))
        return table

    def records_table(
        self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Table:
        """A table with a header row (counts written ``2,325``)."""
        from rich.table import Table

        table = Table(title=plain(title), title_justify="left")
        for column in columns:
            table.add_column(plain(column))
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        return table

    # progress -----------------------------------------------------------------
    @contextmanager
    def progress(self) -> Iterator[Progress]:
        """A progress display on stderr, or a silent one with ``--quiet``."""
        if self.quiet or (not self.err.is_terminal and not _force_progress()):
            yield SILENT
            return
        with RichProgress(self.err) as bar:
            yield bar

    # logging ------------------------------------------------------------------
    @contextmanager
    def log_handler(self, level: int = logging.WARNING) -> Iterator[None]:
        """Show the library's log records (warnings by default) on stderr while open.

        The logger's previous handlers, level and propagation come back on exit,
        so a command run in-process (tests, notebooks) leaves no handler behind.
        """
        logger = logging.getLogger("pitrdiff")
        saved = (logger.handlers, logger.level, logger.propagate)
        logger.handlers = [_StderrLogHandler(self)]
        logger.setLevel(level)
        logger.propagate = False
        # Other libraries' records go nowhere unless --debug: py4j logs a cancelled
        # Spark call with logging.exception on the root logger, which would set up
        # a stderr handler (basicConfig) and print its traceback under the one line.
        root = logging.getLogger()
        quiet = None if root.handlers or level <= logging.DEBUG else logging.NullHandler()
        if quiet is not None:
            root.addHandler(quiet)
        try:
            yield
        finally:
            logger.handlers, logger.level, logger.propagate = saved
            if quiet is not None:
                root.removeHandler(quiet)


def _force_progress() -> bool:
    return os.environ.get("PITRDIFF_PROGRESS") == "1"


def mapping_rows(document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Rows for :meth:`Renderer.key_value_table` from a flat mapping."""
    return [(key.replace("_", " "), value) for key, value in document.items()]
