"""The command line as a whole: every command documented, explained, and thin.

- every command appears in the README as ``pitrdiff <command>``;
- every option of every command has help text;
- every option reaches a real parameter of the library function the command
  calls (the CLI stays a thin front end), except the few that only steer the
  CLI itself, each listed with its reason;
- the common options are accepted after every command name.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from pitrdiff import demo, pitr
from pitrdiff.cli.app import COMMON_OPTION_NAMES, load_commands
from pitrdiff.diff import core as diff
from pitrdiff.diff import incremental
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_OK
from pitrdiff.export import native as s3export
from pitrdiff.export import scan
from pitrdiff.recovery import apply, plan, recover

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

# command -> the library functions it calls
LIBRARY: dict[str, list[Callable[..., Any]]] = {
    "export": [scan.export_table, s3export.export_native, s3export.ingest_export],
    "diff": [diff.diff_exports, incremental.diff_incremental],
    "plan": [plan.write_plan],
    "apply": [apply.apply_plan],
    "window": [pitr.window, pitr.enable_pitr],
    "restore": [pitr.restore, pitr.wait_for_table],
    "cleanup": [pitr.cleanup],
    "recover": [recover.recover],
    "demo": [demo.run_demo],
}

# (command, CLI option) -> the library parameter it becomes
RENAMED = {
    ("export", "from_s3"): "source",
    ("export", "key"): "key_schema",
    ("diff", "incremental"): "source",
    ("diff", "key"): "key_schema",
    ("plan", "diff_dir"): "diff",
    ("restore", "no_wait"): "wait",
    ("restore", "wait_for"): "target",
    ("cleanup", "yes"): "confirm",
}

# (command, CLI option) -> why it has no library parameter
CLI_ONLY = {
    ("export", "native"): "chooses export_native over export_table",
    ("apply", "yes"): "skips the CLI's confirmation prompt",
    ("window", "enable"): "chooses enable_pitr over window",
    ("window", "yes"): "skips the CLI's confirmation prompt",
}


def commands() -> dict[str, Any]:
    # typer vendors click, so these are typer's own click-like classes
    group: Any = typer.main.get_command(load_commands())
    return dict(group.commands)


def is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def own_options(command: Any) -> list[str]:
    return [p.name for p in command.params if p.name and p.name not in COMMON_OPTION_NAMES]


def test_every_command_has_a_library_mapping() -> None:
    assert sorted(commands()) == sorted(LIBRARY)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_command_is_documented_in_the_readme(name: str) -> None:
    assert re.search(rf"(^|`)pitrdiff {name}\b", README, re.MULTILINE), (
        f"the README shows no `pitrdiff {name}` command line"
    )


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_option_has_help(name: str) -> None:
    command = commands()[name]
    assert command.help, f"`pitrdiff {name}` has no help text"
    for param in command.params:
        if is_option(param):
            assert param.help, f"`pitrdiff {name}` option {param.opts} has no help"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_option_reaches_a_library_parameter(name: str) -> None:
    parameters = {p for function in LIBRARY[name] for p in inspect.signature(function).parameters}
    for option in own_options(commands()[name]):
        if (name, option) in CLI_ONLY:
            continue
        target = RENAMED.get((name, option), option)
        assert target in parameters, (
            f"`pitrdiff {name}` option {option!r} reaches no parameter of "
            f"{[f.__qualname__ for f in LIBRARY[name]]}"
        )


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_common_options_are_accepted_after_the_command(name: str) -> None:
    options = {opt for p in commands()[name].params for opt in getattr(p, "opts", [])}
    for flag in ("--endpoint-url", "--region", "--profile", "--json", "--quiet", "--debug"):
        assert flag in options, f"`pitrdiff {name}` does not accept {flag}"


def test_help_and_version_exit_zero() -> None:
    runner = CliRunner()
    app = load_commands()
    assert runner.invoke(app, ["--help"]).exit_code == EXIT_OK
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == EXIT_OK
    assert result.output.startswith("pitrdiff ")
    for name in LIBRARY:
        assert runner.invoke(app, [name, "--help"]).exit_code == EXIT_OK, name


def test_unknown_option_is_bad_input() -> None:
    result = CliRunner().invoke(load_commands(), ["diff", "--no-such-option"])
    assert result.exit_code == EXIT_BAD_INPUT
