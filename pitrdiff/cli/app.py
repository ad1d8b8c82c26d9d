"""The ``pitrdiff`` typer app: common options, help pages, lazy commands, one error handler.

Commands live beside this module, one module per area (``export.py``,
``diff.py`` …); each registers itself with :func:`command` when imported.
:data:`COMMANDS` names every command, its module, its section of the root help
page and its one-line summary, so ``pitrdiff --help`` is built without
importing any command module, and ``pitrdiff diff`` imports ``cli/diff.py``
only (each command module imports the heavy libraries inside its body).

Exit codes (asserted by name in the tests; see :mod:`pitrdiff.errors`):

- ``0`` done, no differences;
- ``1`` differences found (``diff``) or conflicts left (``apply``);
- ``2`` bad input or a refused operation, usage errors included;
- ``3`` an AWS or I/O failure;
- ``130`` interrupted (Ctrl-C); ``143`` terminated (SIGTERM).

Every command accepts the common options after its name, as the AWS CLI does:
``--endpoint-url``, ``--region``, ``--profile``, ``--json``, ``--quiet``, ``--debug``.
Errors are caught in exactly two places, both here: :func:`run` around a
command's body (our :class:`~pitrdiff.errors.PitrdiffError` tree, interrupts)
and :meth:`PitrdiffGroup.main` around parsing (usage errors); both print one
line, ``error: …``, on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import typer.core
import typer.main

# typer 0.29 vendors click as typer._click; the exceptions its parser raises.
from typer._click import exceptions as click_exceptions

from pitrdiff import __version__
from pitrdiff.cli.helppage import (
    argument_name,
    format_command_help,
    format_root_help,
    option_metavar,
)
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Interrupted,
    PitrdiffError,
)

if TYPE_CHECKING:
    from pitrdiff.aws import AwsConfig
    from pitrdiff.output import Renderer

F = TypeVar("F", bound=Callable[..., Any])

SUMMARY = "Diff a DynamoDB table against its point-in-time restore and put back only what was lost."
EXIT_CODES = (
    "0 done / no differences; 1 differences found or conflicts left; 2 bad input or "
    "refused; 3 AWS or I/O failure; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."
)


@dataclass(frozen=True)
class CommandEntry:
    """One command as the root help page lists it, and where it is defined."""

    name: str
    module: str
    section: str
    summary: str


_RESTORE = "Point-in-time restore"
_DIFF = "Export and diff"
_RECOVER = "Recovery"
_TRY = "Try it"

# Every command, in the order of the root help page (the pipeline's order).
COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry("window", "pitr", _RESTORE, "Show PITR status and the restorable window."),
    CommandEntry(
        "restore", "pitr", _RESTORE, "Restore a table as it was at a time, as a new table."
    ),
    CommandEntry("cleanup", "pitr", _RESTORE, "Delete a restored table (never a live one)."),
    CommandEntry("export", "export", _DIFF, "Export a table or a native S3 export to Parquet."),
    CommandEntry("diff", "diff", _DIFF, "Diff two exports into deleted / changed / added items."),
    CommandEntry("report", "report", _DIFF, "Render a diff's report.html again (--open)."),
    CommandEntry("plan", "plan", _RECOVER, "Write a selective re-put plan from a diff."),
    CommandEntry("apply", "apply", _RECOVER, "Apply a plan with writes that cannot clobber."),
    CommandEntry(
        "recover", "pitr", _RECOVER, "Restore, export both, diff and plan; never applies."
    ),
    CommandEntry(
        "settings", "settings", _RECOVER, "Compare the settings a restore does not carry."
    ),
    CommandEntry("drill", "drill", _RECOVER, "Restore drill: RTO, diff, checks, JUnit; cleans up."),
    CommandEntry("demo", "demo", _TRY, "Run the whole story on an embedded local server."),
)
COMMANDS_BY_NAME = {entry.name: entry for entry in COMMANDS}

# The modules that define commands, in the order of :data:`COMMANDS`.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(entry.module for entry in COMMANDS))

ROOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("See how far back the table can be restored", "pitrdiff window orders"),
    (
        "Restore, export both tables, diff and plan in one go (nothing is written to orders)",
        "pitrdiff recover orders --at 2026-10-27T14:00:00Z --workdir incident",
    ),
    ("Put back what the plan holds", "pitrdiff apply incident/plan.jsonl"),
    ("Try it all on a local server", "pitrdiff demo"),
)


class PitrdiffCommand(typer.core.TyperCommand):
    """A command whose help page is :func:`pitrdiff.cli.helppage.format_command_help`'s.

    :func:`command` makes one subclass per command carrying its examples and
    the options its body requires (shown ``[required]`` although the parser
    cannot require them: ``diff`` needs ``--out`` unless it only reports an error).
    """

    examples: tuple[tuple[str, str], ...] = ()
    required_options: tuple[str, ...] = ()

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Write the help page."""
        format_command_help(self, ctx, formatter)


class PitrdiffGroup(typer.core.TyperGroup):
    """The root command: lazy command modules, our help page, one-line usage errors."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command: the registry's, then any registered outside it."""
        names = [entry.name for entry in COMMANDS]
        return names + [name for name in self.commands if name not in COMMANDS_BY_NAME]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, importing its module on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS_BY_NAME:
            importlib.import_module(f"pitrdiff.cli.{COMMANDS_BY_NAME[cmd_name].module}")
            for info in app.registered_commands:
                if info.name == cmd_name:
                    self.commands[cmd_name] = typer.main.get_command_from_info(
                        info,
                        pretty_exceptions_short=app.pretty_exceptions_short,
                        rich_markup_mode=None,
                    )
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Write the root help page from :data:`COMMANDS` (no command module imported)."""
        format_root_help(
            self,
            ctx,
            formatter,
            COMMANDS,
            examples=ROOT_EXAMPLES,
            exit_codes=EXIT_CODES,
            options=[("--version", "Show the version."), ("-h, --help", "Show this message.")],
        )

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Parse and run; usage errors and interrupts end as one ``error:`` line.

        Returns the exit code (or exits with it in ``standalone_mode``).
        """
        _state.reported = False
        argv = list(sys.argv[1:] if args is None else args)
        if argv[:1] in (["--version"], ["-h"], ["--help"]):
            # Answered here: typed root options would load typer's value
            # conversion (pydantic, a third of a help page's start-up) for every command.
            if argv[0] == "--version":  # and which codec walk runs: C, or Python without it
                from pitrdiff.codec import COMPILED

                sys.stdout.write(
                    f"pitrdiff {__version__} (codec: {'C' if COMPILED else 'Python'})\n"
                )
            else:
                with typer.Context(self, info_name=prog_name or "pitrdiff") as ctx:
                    sys.stdout.write(self.get_help(ctx) + "\n")
            if standalone_mode:
                sys.exit(EXIT_OK)
            return EXIT_OK
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except click_exceptions.NoArgsIsHelpError as exc:
            sys.stderr.write(exc.format_message() + "\n")
            code = EXIT_BAD_INPUT
        except click_exceptions.ClickException as exc:
            _write_error(usage_error_line(exc))
            code = exc.exit_code
        except typer.Abort:  # a prompt left unanswered (end of input)
            _write_error("no answer to the question; nothing was done")
            code = EXIT_BAD_INPUT
        except KeyboardInterrupt as exc:
            code = _report_interrupt(exc, None)
        if code == EXIT_INTERRUPTED and not _state.reported:
            # typer turns a Ctrl-C during parsing into a silent exit 130
            code = _report_interrupt(None, None)
        if standalone_mode:
            sys.exit(code)
        return code


def usage_error_line(exc: Any) -> str:
    """A click usage error as one line: ``missing argument 'DIFF_DIR' (see 'pitrdiff plan -h')``."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exceptions.MissingParameter) and param is not None:
        if getattr(param, "param_type_name", "") == "argument":
            message = f"missing {argument_name(param)}"
        else:
            message = f"missing {'/'.join(param.opts)} {option_metavar(param)}".rstrip()
    else:
        message = " ".join(str(exc.format_message()).split()).rstrip(".")
        message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


app = typer.Typer(
    name="pitrdiff",
    cls=PitrdiffGroup,
    help=SUMMARY,
    no_args_is_help=True,
    add_help_option=False,  # answered in PitrdiffGroup.main (subcommands keep -h/--help)
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@dataclass(frozen=True)
class Common:
    """The options every command accepts."""

    endpoint_url: str | None
    region: str | None
    profile: str | None
    json: bool
    quiet: bool
    debug: bool

    @property
    def aws(self) -> AwsConfig:
        """Where to talk to AWS."""
        from pitrdiff.aws import AwsConfig

        return AwsConfig(profile=self.profile, region=self.region, endpoint_url=self.endpoint_url)

    @property
    def renderer(self) -> Renderer:
        """The renderer these options ask for."""
        from pitrdiff.output import Renderer

        return Renderer(json_mode=self.json, quiet=self.quiet)


_COMMON = "Common options"


def _common(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_COMMON_PARAMETERS = [
    _common(
        "endpoint_url",
        None,
        Annotated[
            str | None,
            typer.Option(
                "--endpoint-url",
                metavar="URL",
                help="DynamoDB endpoint URL (a local server, a VPC endpoint). "
                "AWS_ENDPOINT_URL_DYNAMODB works too.",
                rich_help_panel=_COMMON,
            ),
        ],
    ),
    _common(
        "region",
        None,
        Annotated[
            str | None,
            typer.Option("--region", metavar="REGION", help="AWS region.", rich_help_panel=_COMMON),
        ],
    ),
    _common(
        "profile",
        None,
        Annotated[
            str | None,
            typer.Option(
                "--profile", metavar="NAME", help="Named AWS profile.", rich_help_panel=_COMMON
            ),
        ],
    ),
    _common(
        "json_output",
        False,
        Annotated[
            bool,
            typer.Option(
                "--json", help="Print one JSON document on stdout.", rich_help_panel=_COMMON
            ),
        ],
    ),
    _common(
        "quiet",
        False,
        Annotated[
            bool,
            typer.Option(
                "--quiet",
                "-q",
                help="Errors only: nothing else on stdout or stderr (the exit code and --json "
                "still carry the result).",
                rich_help_panel=_COMMON,
            ),
        ],
    ),
    _common(
        "debug",
        False,
        Annotated[
            bool,
            typer.Option(
                "--debug", help="Show tracebacks and debug logging.", rich_help_panel=_COMMON
            ),
        ],
    ),
]
COMMON_OPTION_NAMES = tuple(p.name for p in _COMMON_PARAMETERS)

Example = str | tuple[str, str]


def command(
    name: str | None = None,
    *,
    examples: Sequence[Example] = (),
    required_options: Sequence[str] = (),
    **typer_kwargs: Any,
) -> Callable[[F], F]:
    """Register a command that takes a :class:`Common` as its first argument.

    The decorated function is written as ``def cmd(common: Common, ...)``; this
    decorator adds the common options to its signature, builds the
    :class:`Common`, and is the one place errors become exit codes.

    Parameters
    ----------
    name
        The command's name (default: the function's name).
    examples
        Shown under "Examples" on the help page: each a command line, or a
        ``(what it does, command line)`` pair. Never wrapped.
    required_options
        Options (``"--out"``) the body requires although the parser does not,
        so the body can name what is missing first; shown ``[required]``.
    typer_kwargs
        Passed to ``typer.Typer.command`` (``help``, ``rich_help_panel`` …).
    """
    pairs = tuple(("", e) if isinstance(e, str) else (e[0], e[1]) for e in examples)

    def decorator(func: F) -> F:
        signature = inspect.signature(func)
        # Resolve string annotations (``from __future__ import annotations``) for typer.
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.name != "common"
        ]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            common = Common(
                endpoint_url=kwargs.pop("endpoint_url"),
                region=kwargs.pop("region"),
                profile=kwargs.pop("profile"),
                json=kwargs.pop("json_output"),
                quiet=kwargs.pop("quiet"),
                debug=kwargs.pop("debug"),
            )
            return run(common, lambda: func(common, *args, **kwargs))

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=own + _COMMON_PARAMETERS
        )
        cls = type(
            f"{func.__name__}_class",
            (PitrdiffCommand,),
            {"examples": pairs, "required_options": tuple(required_options)},
        )
        app.command(name, cls=cls, **typer_kwargs)(wrapper)
        return func

    return decorator


class _State:
    reported = False


_state = _State()


def _write_error(message: str, renderer: Renderer | None = None) -> None:
    _state.reported = True
    if renderer is not None:
        renderer.error(message)
    else:
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()


def _interrupt_cause(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, an interrupt (ours, or DuckDB's own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (KeyboardInterrupt, Interrupted)):
            return True
        kind = type(current)
        # duckdb.InterruptException, or "Query interrupted" from older DuckDB
        if kind.__module__.lstrip("_").startswith("duckdb") and "Interrupt" in kind.__name__:
            return True
        if isinstance(current, RuntimeError) and "Query interrupted" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _report_interrupt(exc: BaseException | None, renderer: Renderer | None) -> int:
    """Print the one ``error: interrupted`` line (with the library's hint) and return the code."""
    from pitrdiff.cli import interrupted_exit_code

    code = interrupted_exit_code(exc)
    word = "interrupted" if code == EXIT_INTERRUPTED else "terminated"
    hint = str(exc) if isinstance(exc, Interrupted) else ""
    for lead in ("interrupted; ", "interrupted: ", "interrupted, "):
        if hint.startswith(lead):
            hint = hint[len(lead) :]
    _write_error(f"{word}: {hint}" if hint else word, renderer)
    return code


def run(common: Common, body: Callable[[], Any]) -> Any:
    """Run a command body; map errors to one-line messages and exit codes."""
    from pitrdiff.cli import received_signal

    renderer: Renderer | None = None
    try:
        renderer = common.renderer
        with renderer.log_handler(logging.DEBUG if common.debug else logging.WARNING):
            return body()
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        if common.debug:
            raise
        raise typer.Exit(_report_interrupt(exc, renderer)) from None
    except PitrdiffError as exc:
        if common.debug:
            raise
        if received_signal() is not None or _interrupt_cause(exc):
            raise typer.Exit(_report_interrupt(exc, renderer)) from None
        _write_error(str(exc), renderer)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if common.debug or not (received_signal() is not None or _interrupt_cause(exc)):
            raise
        raise typer.Exit(_report_interrupt(exc, renderer)) from None


@app.callback()
def _root() -> None:
    """Diff a DynamoDB table against its point-in-time restore.

    The root has no options of its own: ``--version`` and ``--help`` are
    answered by :meth:`PitrdiffGroup.main` before parsing.
    """


def load_commands() -> typer.Typer:
    """Import every command module (registering its commands) and return the app.

    ``pitrdiff`` itself imports a command's module only when that command runs;
    tests and tools that want every command at once call this.
    """
    for module in COMMAND_MODULES:
        importlib.import_module(f"pitrdiff.cli.{module}")
    return app


def run_app(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    code: int = app(args=argv, prog_name="pitrdiff", standalone_mode=False)
    return code
