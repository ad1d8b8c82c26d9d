"""Help pages, usage errors and start-up cost of the command line.

What is checked, and why it proves the point:

- one help style on every command (``pitrdiff COMMAND --help``): value names
  are UPPERCASE (``--out DIR``), no ``<bool>``/``<str>``/``<path>`` anywhere,
  ``--out`` reads ``[required]`` on export, diff and plan alike, and every
  command has an "Examples" section whose lines start ``pitrdiff COMMAND``;
- the root help page lists every command the modules register (and only
  those), with no command module imported;
- usage errors are one ``error: …`` line and exit 2 (no box, no usage block);
  ``pitrdiff diff`` with no arguments names the missing exports;
- start-up: ``pitrdiff --help`` and ``pitrdiff COMMAND --help`` import none of
  boto3, botocore, pyarrow, duckdb, pandas, numpy — checked by inspecting
  ``sys.modules`` of a fresh interpreter, not by timing (bench/bench_startup.py
  measures the time).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from pitrdiff.cli.app import COMMANDS, load_commands
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_OK

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "pyarrow", "duckdb", "pandas", "numpy")
NAMES = [entry.name for entry in COMMANDS]
runner = CliRunner()


def help_page(*args: str) -> str:
    result = runner.invoke(load_commands(), [*args, "--help"])
    assert result.exit_code == EXIT_OK, result.output
    return result.stdout


def run_fresh(*args: str) -> tuple[int, str, str, list[str]]:
    """Run ``pitrdiff ARGS`` in a fresh interpreter; return code, stdout, stderr, heavy modules."""
    probe = (
        "import sys\n"
        "from pitrdiff.cli.app import run_app\n"
        f"code = run_app({list(args)!r})\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    marker = re.search(r"HEAVY=(.*)\n", done.stderr)
    assert marker is not None, done.stderr
    heavy = [m for m in marker.group(1).split(",") if m]
    return done.returncode, done.stdout, done.stderr.replace(marker.group(0), ""), heavy


# --------------------------------------------------------------------------- start-up


def test_root_help_imports_no_heavy_library_and_no_command_module() -> None:
    code, out, _, heavy = run_fresh("--help")
    assert code == EXIT_OK
    assert heavy == []
    for name in NAMES:
        assert re.search(rf"^  {name} +\S", out, re.MULTILINE), name


# Command modules that still import their library at the top (their owners' fix: move
# the ``from pitrdiff.recovery… import …`` lines into the command bodies). Strict:
# the test fails as soon as one is fixed, so the entry is removed then.
IMPORTS_AT_THE_TOP: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(reason=IMPORTS_AT_THE_TOP[name], strict=True),
        )
        if name in IMPORTS_AT_THE_TOP
        else name
        for name in NAMES
    ],
)
def test_command_help_imports_no_heavy_library(name: str) -> None:
    code, out, _, heavy = run_fresh(name, "--help")
    assert code == EXIT_OK
    assert out.startswith(f"Usage: pitrdiff {name}")
    assert heavy == []


# --------------------------------------------------------------------------- one style


def test_registry_names_exactly_the_registered_commands() -> None:
    group = typer.main.get_command(load_commands())
    registered = set(group.commands)  # type: ignore[attr-defined]
    assert registered == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help_page_style(name: str) -> None:
    page = help_page(name)
    usage = page.splitlines()[0]
    assert usage.startswith(f"Usage: pitrdiff {name} ")
    assert usage.endswith("[OPTIONS]")
    # no typer-style type tags, no lower-case value names
    assert not re.search(r"<(bool|str|path|int|float)>", page)
    for match in re.finditer(r"^  (-\w, )?(--[\w-]+) ([^ \n]+)  ", page, re.MULTILINE):
        value = match.group(3)
        assert value == value.upper(), f"{match.group(2)} {value}"
    # at least one example, each a pitrdiff command line
    examples = page.split("\nExamples:\n", 1)
    assert len(examples) == 2, page
    lines = [x.strip() for x in examples[1].splitlines() if x.strip().startswith("pitrdiff ")]
    assert lines and all(x.startswith(f"pitrdiff {name}") for x in lines)


@pytest.mark.parametrize("name", ["export", "diff", "plan"])
def test_out_is_required_the_same_way(name: str) -> None:
    page = help_page(name)
    # the option's entry: its row and the wrapped lines below it
    entry = re.search(r"^  (-o, )?--out (\S+) .*?(?=^  \S|^\S|\Z)", page, re.MULTILINE | re.DOTALL)
    assert entry is not None, page
    assert entry.group(2) in ("DIR", "PLAN", "FILE", "PATH"), entry.group(0)
    assert " ".join(entry.group(0).split()).endswith("[required]"), entry.group(0)
    assert f" --out {entry.group(2)} " in page.splitlines()[0]


def test_flags_show_no_value_and_common_options_are_listed() -> None:
    page = help_page("diff")
    assert re.search(r"^  --overwrite +Replace", page, re.MULTILINE)
    assert re.search(r"^  -q, --quiet +Errors only", page, re.MULTILINE)
    assert re.search(r"^  --endpoint-url URL +DynamoDB endpoint", page, re.MULTILINE)
    assert "Common options:" in page


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["diff", "--bogus"], "error: no such option: --bogus"),
        (["plan"], "error: missing DIFF_DIR (see 'pitrdiff plan --help')"),
        (["nosuch"], "error: no such command 'nosuch' (see 'pitrdiff --help')"),
        (
            ["export", "t", "--segments", "0"],
            "error: invalid value for '--segments': Input should be greater than or equal to 1 "
            "(see 'pitrdiff export --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], line: str) -> None:
    code, out, err, _ = run_fresh(*args)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(line), err
    assert "╭" not in err and "Usage:" not in err


def test_diff_without_arguments_names_the_missing_exports() -> None:
    code, out, err, heavy = run_fresh("diff")
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.startswith("error: missing LIVE_EXPORT and RESTORED_EXPORT: ")
    assert len(err.splitlines()) == 1
    assert heavy == []  # refused before any library is loaded


def test_diff_with_exports_but_no_out_names_out(tmp_path: Path) -> None:
    code, _, err, _ = run_fresh("diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == EXIT_BAD_INPUT
    assert err == "error: missing --out DIR: the directory to write the diff dataset to\n"


def test_no_arguments_show_the_help_on_stderr_exit_2() -> None:
    code, out, err, _ = run_fresh()
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.startswith("Usage: pitrdiff COMMAND")


def test_version() -> None:
    from pitrdiff import __version__
    from pitrdiff.codec import COMPILED

    code, out, _, heavy = run_fresh("--version")
    codec = "C" if COMPILED else "Python"
    assert (code, out, heavy) == (EXIT_OK, f"pitrdiff {__version__} (codec: {codec})\n", [])
    no_c = subprocess.run(
        [sys.executable, "-m", "pitrdiff", "--version"],
        env={**os.environ, "PITRDIFF_NO_COMPILED": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert no_c.stdout == f"pitrdiff {__version__} (codec: Python)\n"


# --------------------------------------------------------------------------- README table

# README "Interrupts, signals and the command line" case -> (exit, words, the tests)
README_CASES: dict[str, tuple[int, str, list[str]]] = {
    "Ctrl-C (SIGINT) during export, diff, plan or apply": (
        130,
        "error: interrupted",
        [
            "test_signals.py::test_export_stopped_mid_scan",
            "test_signals.py::test_diff_stopped_at_any_moment",
        ],
    ),
    "SIGTERM (`kill`, CI time-outs, container stops)": (
        143,
        "error: terminated",
        [
            "test_signals.py::test_apply_stopped_mid_write",
            "test_signals.py::test_plan_stopped_at_any_moment",
        ],
    ),
    "Ctrl-C inside a DuckDB query": (
        130, "error: interrupted", ["test_signals.py::test_duckdb_interrupt_maps_to_exit_130"]
    ),
    "`kill -9`, then the same write again": (
        0,
        "pitrdiff-",
        [
            "test_signals.py::test_temps_a_killed_run_left_are_swept_by_the_next_write",
            "test_signals.py::test_private_temp_dir_is_removed_and_sweeps_killed_runs",
        ],
    ),
    "`--quiet` on any command": (
        1, "--json", ["test_cli.py::test_quiet_is_errors_only_on_every_command"]
    ),
    "unknown option, missing argument, unknown command": (
        2, "error: no such option: --bogus", ["test_help.py::test_usage_errors_are_one_line_exit_2"]
    ),
    "`pitrdiff diff` without arguments": (
        2,
        "error: missing LIVE_EXPORT and RESTORED_EXPORT: ",
        ["test_help.py::test_diff_without_arguments_names_the_missing_exports"],
    ),
    "endpoint unreachable: retries": (
        3,
        "retrying (attempt",
        ["test_faults.py::test_unreachable_endpoint_shows_each_retry_and_says_how_long"],
    ),
    "a server answers 500 with an HTML page": (
        3,
        "Internal Server Error (after 2 attempts)",
        ["test_faults.py::test_a_500_html_page_is_one_short_line"],
    ),
    "restore time a fraction of a second outside the window": (
        2,
        ":00.123400Z is outside the restorable window of orders",
        ["test_cli.py::test_a_refused_restore_time_shows_the_precision_that_differs"],
    ),
    "`recover` finds nothing to put back": (
        0,
        "Nothing to put back: the plan holds no operations",
        ["test_cli.py::test_recover_suggests_apply_only_with_operations_and_always_cleanup"],
    ),
}  # fmt: skip


def readme_cases() -> dict[str, tuple[int, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n### Interrupts, signals and the command line\n", 1)[1]
    section = section.split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0] not in ("case", "---"):
            rows[cells[0]] = (int(cells[2]), cells[1])
    return rows


def test_readme_command_line_table_and_tests_are_the_same_list() -> None:
    documented = readme_cases()
    assert sorted(documented) == sorted(README_CASES)
    for case, (code, words, tests) in README_CASES.items():
        assert documented[case][0] == code, case
        assert words in documented[case][1], case
        for test in tests:
            module, _, name = test.partition("::")
            source = (ROOT / "tests" / module).read_text(encoding="utf-8")
            assert f"def {name}(" in source, test
            assert words.strip() in source, f"{test} never checks {words!r}"


# typer's names for a value's type; every option names its value instead (NAME, SPEC, URL, N)
BARE_TYPE_NAMES = ("TEXT", "INTEGER", "FLOAT", "PATH", "FILENAME", "DIRECTORY", "BOOLEAN")


# Owners' fix: a metavar on the option (strict: remove the entry once fixed).
BARE_VALUE_NAMES: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=BARE_VALUE_NAMES[n], strict=True))
        if n in BARE_VALUE_NAMES
        else n
        for n in NAMES
    ],
)
def test_every_option_names_its_value(name: str) -> None:
    page = help_page(name)
    bare = re.findall(rf"(--[a-z0-9-]+)\s+(?:{'|'.join(BARE_TYPE_NAMES)})\b", page)
    assert bare == []
