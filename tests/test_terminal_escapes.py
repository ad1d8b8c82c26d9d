"""Data never reaches the terminal with a raw control character (no ANSI injection).

Keys, attribute names, signatures and table names may hold any character
DynamoDB allows: ESC ``[31m``, NUL, CR, newline, tab, BEL. ``pitrdiff diff``'s
tables and lines, the renderer's messages and tables show them as escapes
(``\\x1b``, ``\\x00``, ``\\r``, ``\\n``, ``\\t``, ``\\x07``); ``--json`` keeps
the exact values.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitrdiff.cli.app import load_commands
from pitrdiff.errors import EXIT_DIFFERENCES, EXIT_OK
from pitrdiff.export.dataset import write_export
from pitrdiff.output import Renderer, visible

ESC, NUL, CR, NL, TAB, BEL = "\x1b[31m", "\x00", "\r", "\n", "\t", "\x07"
RAW = ("\x1b", "\x00", "\r", "\t", "\x07")  # never in the output (newlines are line breaks)
ESCAPED = (r"\x1b[31m", r"\x00", r"\r", r"\n", r"\t", r"\x07")
PARTITIONS = [f"esc{ESC}red", f"nul{NUL}byte", f"cr{CR}ret", f"new{NL}line", f"tab{TAB}key",
              f"bel{BEL}ring"]  # fmt: skip
NAME = f"n{ESC}{NUL}{CR}{NL}{TAB}{BEL}x"  # an attribute name with every one of them
TABLE = f"T{ESC}"


def _raw_in(text: str) -> list[str]:
    return sorted({c for c in text if c in RAW})


def _exports(tmp_path: Path) -> tuple[Path, Path]:
    """Every partition of PARTITIONS: one item deleted, one changed (NAME), one added."""
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"},
             {"AttributeName": "sk", "AttributeType": "S"}]  # fmt: skip
    restored, live = [], []
    for pk in PARTITIONS:
        restored.append({"pk": {"S": pk}, "sk": {"S": f"gone{TAB}1"}})
        restored.append({"pk": {"S": pk}, "sk": {"S": "c"}, NAME: {"N": "1"}})
        live.append({"pk": {"S": pk}, "sk": {"S": "c"}, NAME: {"N": "2"}})
        live.append({"pk": {"S": pk}, "sk": {"S": f"new{NL}1"}})
    for name, items in (("live", live), ("restored", restored)):
        write_export(items, tmp_path / name, table_name=TABLE, key_schema=key,
                     attribute_definitions=types)  # fmt: skip
    return tmp_path / "live", tmp_path / "restored"


def test_diff_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    live, restored = _exports(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        load_commands(), ["diff", str(live), str(restored), "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert _raw_in(result.stdout) == [] and _raw_in(result.stderr) == []
    for escaped in ESCAPED:
        assert escaped in result.stdout, escaped
    lines = result.stdout.splitlines()
    # each partition is one row of the "Most affected pk values" table, whole
    for pk in PARTITIONS:
        row = [line for line in lines if line.split("│")[0].strip() == visible(pk)]
        assert len(row) == 1, (pk, row)
        cells = [cell.strip() for cell in row[0].split("│")]
        assert cells == [visible(pk), "3", "1", "1", "1"], row  # items, deleted, changed, added
    assert not any(line.lstrip("│ ").startswith(("line", "1")) for line in lines), lines
    # the signature sentence, the signatures and the attributes: such a name is JSON-quoted
    assert result.stdout.count(json.dumps(NAME)) == 3
    assert f"Diff of {visible(TABLE)}" in result.stdout
    assert "6 deleted, 6 changed, 6 added, 0 unchanged" in result.stdout


def test_diff_json_keeps_the_exact_values(tmp_path: Path) -> None:
    live, restored = _exports(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        load_commands(),
        ["diff", str(live), str(restored), "--out", str(tmp_path / "d"), "--json"],
    )
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    document = json.loads(result.stdout)
    summary = document["summary"]
    assert sorted(p["value"] for p in summary["top_partitions"]) == sorted(PARTITIONS)
    assert summary["top_signatures"] == [{"signature": json.dumps(NAME), "items": 6}]
    assert [a["path"] for a in summary["top_attributes"]] == [json.dumps(NAME)]
    assert summary["table_name"] == TABLE
    keys = [json.loads(k) for k in summary["samples"]["deleted"]]
    assert {k["pk"]["S"] for k in keys} <= set(PARTITIONS) and keys
    assert all(k["sk"]["S"] == f"gone{TAB}1" for k in keys)


def test_report_path_with_control_characters_is_escaped(tmp_path: Path) -> None:
    from pitrdiff.diff.core import diff_exports

    live, restored = _exports(tmp_path)
    out = tmp_path / f"d{ESC}{TAB}"
    diff_exports(live, restored, out)
    runner = CliRunner()
    missing = f"no{ESC}{NL}such{BEL}"
    shown = runner.invoke(load_commands(), ["report", str(out), "--time-attr", missing])
    assert shown.exit_code == EXIT_OK, shown.output
    assert shown.stdout == visible(str(out / "report.html")) + "\n"
    # the warning names the attribute, escaped, on one line
    assert shown.stderr.splitlines() == [
        r"warning: --time-attr no\x1b[31m such\x07: no affected item has this attribute; "
        "no timeline"
    ]
    as_json = runner.invoke(load_commands(), ["report", str(out), "--json", "--time-attr", ""])
    assert json.loads(as_json.stdout) == {"path": str(out / "report.html")}


def test_renderer_messages_and_tables_show_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    renderer = Renderer()
    renderer.error(f"bad key {NAME}")
    renderer.warn(f"odd key {NAME}")
    renderer.info(f"key {NAME}")
    renderer.markup(f"[bold]key[/] {ESC}{BEL}")
    renderer.print(renderer.key_value_table(f"title{ESC}", [(f"label{TAB}", f"v{CR}{NUL}")]))
    renderer.print(renderer.records_table(f"t{BEL}", [f"col{ESC}"], [[NAME]]))
    own = Table(title=f"own{ESC}")  # a table a command built itself: the safeguard
    own.add_column(f"c{NUL}")
    own.add_row(f"x{ESC}y{BEL}")  # rich drops BEL, CR, BS, VT, FF itself
    renderer.print(own)
    renderer.print(Text(f"text{ESC}{NUL}"))
    renderer.print(f"line{ESC}{TAB}")
    renderer.err.print(f"[bold]direct[/] {ESC}{NUL}", soft_wrap=True)  # a command's own print
    captured = capsys.readouterr()
    assert _raw_in(captured.out) == [] and _raw_in(captured.err) == []
    err = captured.err.splitlines()
    assert err[0] == r"error: bad key n\x1b[31m\x00\r \t\x07x"  # one line
    assert err[1] == r"warning: odd key n\x1b[31m\x00\r \t\x07x"
    assert err[2] == r"key n\x1b[31m\x00\r\n\t\x07x"
    assert err[3] == r"key \x1b[31m\x07"
    assert err[4] == r"direct \x1b[31m\x00"
    out = captured.out
    for shown in (r"title\x1b[31m", r"label\t", r"v\r\x00", r"t\x07", r"col\x1b[31m",
                  r"n\x1b[31m\x00\r\n\t\x07x", r"own\x1b[31m", r"c\x00", r"x\x1b[31my │",
                  r"text\x1b[31m\x00", r"line\x1b[31m\t"):  # fmt: skip
        assert shown in out, shown


def test_json_output_round_trips_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    document = {NAME: PARTITIONS, "t": TABLE}
    Renderer(json_mode=True).json(document)
    out = capsys.readouterr().out
    assert json.loads(out) == document
    assert _raw_in(out) == []  # JSON escapes them (\u001b, \u0000, \r, \t, \u0007)


def test_visible_names_each_control_character() -> None:
    assert visible("a\x1b[31mb\x00c\rd\ne\tf\x07g\x7fh\x9bi\u202ej\u2028k") == (
        r"a\x1b[31mb\x00c\rd\ne\tf\x07g\x7fh\x9bi\u202ej\u2028k"
    )
    assert visible("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    assert visible("é ⏰ עברית \\x") == "é ⏰ עברית \\x"


def test_progress_task_and_status_show_escapes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITRDIFF_PROGRESS", "1")  # drawn although stderr is not a terminal
    renderer = Renderer()
    with renderer.progress() as progress:
        progress.start(f"scan {TABLE}", total=2)
        progress.advance(2)
        progress.status(f"at key {NAME}")
    err = capsys.readouterr().err
    assert _raw_in(err) == []
    assert r"scan T\x1b[31m" in err and r"at key n\x1b[31m\x00\r\n\t\x07x" in err


def test_other_libraries_root_log_records_stay_off_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """py4j logs a cancelled Spark call with logging.exception on the root logger, which
    would set up a stderr handler and print a traceback under the one error line."""
    import logging

    from pitrdiff.output import Renderer

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        with Renderer().log_handler():
            try:
                raise RuntimeError("inside py4j")
            except RuntimeError:
                logging.exception("KeyboardInterrupt while sending command.")
            logging.getLogger("pitrdiff.x").warning("a warning of ours")
        assert root.handlers == []  # nothing left behind
    finally:
        root.handlers = saved
    err = capsys.readouterr().err
    assert "inside py4j" not in err and "sending command" not in err
    assert "a warning of ours" in err
