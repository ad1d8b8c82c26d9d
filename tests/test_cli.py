"""The command line as a whole: every command documented, explained, and thin.

- every command appears in the README as ``pitrdiff <command>``;
- every option of every command has help text;
- every option reaches a real parameter of the library function the command
  calls (the CLI stays a thin front end), except the few that only steer the
  CLI itself, each listed with its reason;
- the common options are accepted after every command name;
- ``--quiet`` is errors only on every command: a whole recovery run with it
  (window, restore, export ×2, diff, plan, apply, cleanup, recover) prints
  nothing at all, while the exit codes and ``--json`` still carry the results;
- what the commands suggest to run next is whole on one line when the output
  is not a terminal, and ``recover`` suggests ``apply`` only when there is
  something to apply, and ``cleanup`` of the restored table always;
- counts read ``2,325`` in every table; errors are one line; a refused
  restore time is shown at the precision that tells it from the window.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from pitrdiff import demo, drill, pitr, settings
from pitrdiff.cli.app import COMMON_OPTION_NAMES, load_commands
from pitrdiff.diff import core as diff
from pitrdiff.diff import html, incremental
from pitrdiff.diff import remote as diff_remote
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_OK
from pitrdiff.export import native as s3export
from pitrdiff.export import scan
from pitrdiff.recovery import apply, plan, recover
from pitrdiff.spark import choose

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

# command -> the library functions it calls
LIBRARY: dict[str, list[Callable[..., Any]]] = {
    "export": [
        scan.export_table,
        s3export.export_native,
        s3export.ingest_export,
        choose.prepare_engine,
    ],
    "diff": [diff.diff_exports, incremental.diff_incremental, choose.prepare_engine],
    "plan": [plan.write_plan],
    "apply": [apply.apply_plan],
    "window": [pitr.window, pitr.enable_pitr],
    "restore": [pitr.restore, pitr.wait_for_table],
    "cleanup": [pitr.cleanup],
    "recover": [recover.recover],
    "demo": [demo.run_demo],
    "settings": [settings.compare_settings, settings.write_script],
    "report": [html.write_html_report, diff_remote.write_html_report_s3],
    "drill": [drill.run_drill],
}

# (command, CLI option) -> the library parameter it becomes
RENAMED = {
    ("export", "from_s3"): "source",
    ("export", "key"): "key_schema",
    ("diff", "incremental"): "source",
    ("diff", "key"): "key_schema",
    ("diff", "spark_master"): "master",
    ("export", "spark_master"): "master",
    ("plan", "diff_dir"): "diff",
    ("restore", "no_wait"): "wait",
    ("restore", "wait_for"): "target",
    ("cleanup", "yes"): "confirm",
    ("settings", "script"): "path",
}

# (command, CLI option) -> why it has no library parameter
CLI_ONLY = {
    ("export", "native"): "chooses export_native over export_table",
    ("apply", "yes"): "skips the CLI's confirmation prompt",
    ("window", "enable"): "chooses enable_pitr over window",
    ("window", "yes"): "skips the CLI's confirmation prompt",
    ("report", "open_browser"): "opens the written report in a browser",
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


# --------------------------------------------------------------------------- quiet, suggestions


def run_cli(server: Any, *args: str) -> Any:
    return CliRunner().invoke(load_commands(), [*args, "--endpoint-url", server.endpoint])


ITEMS = [
    {"pk": {"S": f"k{n}"}, "sk": {"S": "a"}, "v": {"N": str(n)}, "blob": {"B": "AAEC"}}
    for n in range(30)
]


@pytest.fixture
def pitr_table(moto_server: Any, table_name: str) -> str:
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, ITEMS)
    pitr.enable_pitr(table_name, aws=moto_server.aws)
    return table_name


def test_quiet_is_errors_only_on_every_command(
    moto_server: Any, pitr_table: str, tmp_path: Path
) -> None:
    table = pitr_table
    target = f"{table}-r"
    steps: list[tuple[list[str], int]] = [
        (["window", table], EXIT_OK),
        (["restore", table, "--latest", "--target", target], EXIT_OK),
    ]
    ran: set[str] = set()
    for args, code in steps:
        result = run_cli(moto_server, *args, "--quiet")
        assert (result.exit_code, result.stdout, result.stderr) == (code, "", ""), args
        ran.add(args[0])
    client = moto_server.client()
    client.delete_item(TableName=table, Key={"pk": {"S": "k3"}, "sk": {"S": "a"}})
    refused = tmp_path / "refused-recover"
    steps = [
        (["export", table, "--out", str(tmp_path / "live")], EXIT_OK),
        (["export", target, "--out", str(tmp_path / "restored")], EXIT_OK),
        (["diff", *(str(tmp_path / x) for x in ("live", "restored", "diff"))], EXIT_DIFFERENCES),
        (["plan", str(tmp_path / "diff"), "--out", str(tmp_path / "plan.jsonl")], EXIT_OK),
        (["apply", str(tmp_path / "plan.jsonl"), "--yes"], EXIT_OK),
        (
            ["recover", table, "--at", "2020-01-01T00:00:00Z", "--workdir", str(refused)],
            EXIT_BAD_INPUT,
        ),
        (["cleanup", target, "--yes"], EXIT_OK),
    ]
    for args, code in steps:
        if args[0] == "diff":
            args = ["diff", args[1], args[2], "--out", args[3]]
        result = run_cli(moto_server, *args, "--quiet")
        expected_err = result.stderr if code == EXIT_BAD_INPUT else ""
        assert (result.exit_code, result.stdout, result.stderr) == (code, "", expected_err), args
        if code == EXIT_BAD_INPUT:  # errors still show, on one line
            assert expected_err.startswith("error: ") and expected_err.count("\n") == 1
        ran.add(args[0])
    assert not refused.exists()  # a refused recover leaves no workdir behind
    # every command but the demo (its own test), settings, report and drill (theirs)
    assert ran == set(LIBRARY) - {"demo", "settings", "report", "drill"}
    assert client.get_item(TableName=table, Key={"pk": {"S": "k3"}, "sk": {"S": "a"}})["Item"]
    # the same diff without --quiet shows its summary; with --json --quiet, the document
    args = ["diff", str(tmp_path / "live"), str(tmp_path / "restored")]
    shown = run_cli(moto_server, *args, "--out", str(tmp_path / "d2"))
    assert "1 deleted, 0 changed, 0 added, 29 unchanged" in shown.stdout
    as_json = run_cli(moto_server, *args, "--out", str(tmp_path / "d3"), "--json", "--quiet")
    assert as_json.exit_code == EXIT_DIFFERENCES and as_json.stderr == ""
    assert json.loads(as_json.stdout)["summary"]["counts"]["deleted"] == 1


def suggestion_lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if "pitrdiff " in x]


@pytest.mark.parametrize("change", [False, True])
def test_recover_suggests_apply_only_with_operations_and_always_cleanup(
    moto_server: Any, pitr_table: str, tmp_path: Path, change: bool
) -> None:
    table = pitr_table
    window = pitr.window(table, aws=moto_server.aws)
    at = pitr.format_time(window.latest)
    assert at is not None and window.latest is not None
    extra: list[str] = []
    if change:  # a restore made beforehand, then an item lost since
        restored = pitr.restore(table, latest=True, aws=moto_server.aws).target
        extra = ["--restored", restored]
        moto_server.client().delete_item(TableName=table, Key={"pk": {"S": "k7"}, "sk": {"S": "a"}})
    else:  # recover restores by itself (moto copies the table as it is now: no change)
        restored = pitr.default_target(table, window.latest)
    workdir = tmp_path / ("with-a-long-work-directory-name-" * 3)
    result = run_cli(moto_server, "recover", table, "--at", at, "--workdir", str(workdir), *extra)
    assert result.exit_code == EXIT_OK, result.output
    lines = suggestion_lines(result.stderr)
    endpoint = f"--endpoint-url {moto_server.endpoint}"
    # never wrapped: each suggested command is whole on its line
    cleanup = f"pitrdiff cleanup {restored} {endpoint}"
    assert any(line.endswith(cleanup) for line in lines), result.stderr
    assert ("the restored table recover created" in result.stderr) is not change
    applies = [x for x in lines if x.startswith("pitrdiff apply ")]
    if change:
        plan_file = str(workdir / "plan.jsonl")
        assert applies == [
            f"pitrdiff apply {plan_file} {endpoint} --dry-run",
            f"pitrdiff apply {plan_file} {endpoint}",
        ] or all(plan_file in x and endpoint in x for x in applies), applies
        assert len(applies) == 2
        assert "The plan holds 1 operations" in result.stderr
    else:
        assert applies == []
        assert "Nothing to put back: the plan holds no operations" in result.stderr


def test_restore_suggestions_are_whole_lines(moto_server: Any, pitr_table: str) -> None:
    target = f"{pitr_table}-restored-with-a-rather-long-name-to-wrap-at-eighty-columns"
    result = run_cli(moto_server, "restore", pitr_table, "--latest", "--target", target)
    assert result.exit_code == EXIT_OK, result.output
    endpoint = f"--endpoint-url {moto_server.endpoint}"
    lines = suggestion_lines(result.stderr)
    assert f"pitrdiff export {target} --out incident/restored {endpoint}" in lines
    assert any(x.endswith(f"pitrdiff cleanup {target} {endpoint}") for x in lines)
    run_cli(moto_server, "cleanup", target, "--yes")


# --------------------------------------------------------------------------- rendering


def test_counts_read_one_way_in_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    from pitrdiff.output import Renderer
    from pitrdiff.units import count

    assert (count(2325), count(1_000_000), count(7)) == ("2,325", "1,000,000", "7")
    renderer = Renderer()
    renderer.print(renderer.key_value_table("t", [("items", 2325), ("flag", True)]))
    renderer.print(renderer.records_table("r", ["a", "b"], [(1234567, "x")]))
    out = capsys.readouterr().out
    assert "2,325" in out and "1,234,567" in out and "True" in out
    assert "2325" not in out and "1234567" not in out


def test_errors_and_warnings_are_one_line_even_when_quiet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pitrdiff.output import Renderer

    quiet = Renderer(quiet=True)
    quiet.error("boom\n<html>\n  <body>500</body>\n</html>")
    quiet.warn("not shown")
    quiet.info("not shown")
    quiet.print("not shown")
    quiet.json({"shown": True})
    captured = capsys.readouterr()
    assert captured.err == "error: boom <html> <body>500</body> </html>\n"
    assert captured.out == '{\n  "shown": true\n}\n'
    Renderer().warn("two\nlines")
    assert capsys.readouterr().err == "warning: two lines\n"


def test_a_refused_restore_time_shows_the_precision_that_differs() -> None:
    import datetime as dt

    utc = dt.timezone.utc
    latest = dt.datetime(2026, 10, 27, 13, 55, 0, 123000, tzinfo=utc)
    window = pitr.PitrWindow(
        table="orders",
        status="ENABLED",
        earliest=dt.datetime(2026, 10, 20, 14, 0, 0, tzinfo=utc),
        latest=latest,
        recovery_period_days=None,
        checked_at=latest + dt.timedelta(minutes=5),
    )
    with pytest.raises(pitr.PitrError) as refused:
        pitr.validate_restore_time(
            latest + dt.timedelta(microseconds=400), window, now=window.checked_at
        )
    assert str(refused.value).startswith(
        "restore time 2026-10-27T13:55:00.123400Z is outside the restorable window of orders: "
        "2026-10-20T14:00:00.000000Z … 2026-10-27T13:55:00.123000Z"
    )
    # a time a whole second out keeps the short form
    with pytest.raises(pitr.PitrError, match=r"13:55:01\.123Z is outside .*T13:55:00\.123Z"):
        pitr.validate_restore_time(latest + dt.timedelta(seconds=1), window, now=window.checked_at)


def test_the_notebooks_extra_brings_nbconvert() -> None:
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^notebooks = \[(.*)\]$", text, re.MULTILINE)  # no tomllib on 3.10
    assert extra is not None
    assert re.search(r'"nbconvert[>=<]', extra.group(1)), extra.group(1)


# --------------------------------------------------------------------------- TTL, T, settings


def ttl_exports(tmp_path: Path) -> tuple[Path, Path, str]:
    """The Sessions case (issue 13): a session TTL removed, an order lost, a cart past TTL."""
    import time

    from pitrdiff.export.dataset import load_export, write_export

    now = int(time.time())
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    restored_items = [
        {"pk": {"S": "session#1"}, "expires": {"N": str(now - 3 * 86400)}},
        {"pk": {"S": "order#1"}, "total": {"N": "10"}},
        {"pk": {"S": "cart#1"}, "v": {"N": "1"}, "expires": {"N": str(now + 7 * 86400)}},
    ]
    live_items = [{"pk": {"S": "cart#1"}, "v": {"N": "2"}, "expires": {"N": str(now - 3600)}}]
    live, restored = tmp_path / "live", tmp_path / "restored"
    ttl = {"attribute": "expires", "status": "ENABLED"}
    write_export(live_items, live, table_name="Sessions", key_schema=schema, ttl=ttl)
    write_export(
        restored_items,
        restored,
        table_name="Sessions-restored",
        key_schema=schema,
        table={
            "restore": {
                "source_table_name": "Sessions",
                "restore_date_time": "2026-11-27T10:00:00Z",
            }
        },
    )
    return live, restored, str(load_export(live).manifest.source["started_at"])


def test_diff_summary_shows_t_the_expired_class_and_ttl(tmp_path: Path) -> None:
    live, restored, as_of = ttl_exports(tmp_path)
    args = ["diff", str(live), str(restored), "--out", str(tmp_path / "diff")]
    result = CliRunner().invoke(load_commands(), args, terminal_width=200)
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    out = result.stdout
    assert "T (the restored table's restore time): 2026-11-27T10:00:00Z\n" in out
    rows = [
        [c.strip() for c in re.split("[│┃]", line)]
        for line in out.splitlines()
        if "│" in line or "┃" in line
    ]
    assert ["class", "items", "bytes", "meaning"] in rows
    meaning = "in restored, not in live, its TTL had passed (removed by TTL: not lost)"
    assert [["deleted", "1"], ["expired", "1", meaning], ["changed", "1"]] == [
        r[:2] if r[0] != "expired" else [r[0], r[1], r[3]]
        for r in rows
        if r[0] in ("deleted", "expired", "changed") and len(r) == 4
    ]
    assert (
        f"1 of the 2 deleted items had expired by TTL (`expires` before {as_of}): not lost.\n"
        in out
    )
    assert (
        "1 changed item is past its TTL in live and not yet deleted: TTL will remove it.\n" in out
    )
    assert ["pk", "items", "deleted", "expired", "changed", "added"] in rows
    assert ["session#1", "1", "0", "1", "0", "0"] in rows
    assert ["order#1", "1", "1", "0", "0", "0"] in rows
    assert "1 deleted, 1 changed, 0 added, 0 unchanged, 1 expired" in out


def test_recover_shows_settings_honours_exclude_keys_and_warns_of_ttl(
    moto_server: Any, pitr_table: str, tmp_path: Path
) -> None:
    import time

    table = pitr_table
    client = moto_server.client()
    soon = str(int(time.time()) + 3600)  # TTL would delete it again within a day
    key7 = {"pk": {"S": "k7"}, "sk": {"S": "a"}}
    client.put_item(TableName=table, Item={**key7, "expires": {"N": soon}})
    window = pitr.window(table, aws=moto_server.aws)
    restored = pitr.restore(table, latest=True, aws=moto_server.aws).target
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    for n in (7, 8):
        client.delete_item(TableName=table, Key={"pk": {"S": f"k{n}"}, "sk": {"S": "a"}})
    deny = tmp_path / "erased.csv"
    deny.write_text("pk,sk\nk8,a\n", encoding="utf-8")
    at = pitr.format_time(window.latest)
    assert at is not None
    args = ["recover", table, "--at", at, "--workdir", str(tmp_path / "w"), "--restored", restored]
    result = CliRunner().invoke(
        load_commands(),
        [*args, "--exclude-keys", str(deny), "--endpoint-url", moto_server.endpoint],
        terminal_width=250,
    )
    assert result.exit_code == EXIT_OK, result.output
    out = result.stdout
    rows = [
        [c.strip() for c in re.split("[│┃]", x.strip().strip("│┃"))]
        for x in out.splitlines()
        if re.search("[│┃]", x)
    ]
    assert ["setting", "live", "restored", "a promotion would need"] in rows
    need = "turn TTL on for `expires` (until then expired items stay)"
    assert ["ttl", "on (expires)", "off", need] in rows
    # the settings table stands between the diff summary and the plan
    assert out.index("2 deleted, 0 changed") < out.index("Settings: ") < out.index("Plan (nothing")
    assert re.search(r"^operations +1 *$", out, re.M), out
    assert re.search(r"^deny list \(--exclude-keys\) +removed 1 operations *$", out, re.M)
    warnings = [x for x in result.stderr.splitlines() if "TTL will delete them again" in x]
    assert warnings == [
        "warning: items put back whose TTL (expires) is past or less than a day away (TTL will "
        'delete them again): 1, e.g. {"pk":{"S":"k7"},"sk":{"S":"a"}}'
    ]
    plan_lines = (tmp_path / "w" / "plan.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(plan_lines) == 3 and '"k7"' in plan_lines[1] and "k8" not in plan_lines[1]


S3EXPORTS = Path(__file__).parent / "data" / "s3exports" / "exports" / "AWSDynamoDB"


def test_ttl_attribute_reaches_export_from_s3_and_diff_incremental(tmp_path: Path) -> None:
    from pitrdiff.diff.core import load_diff
    from pitrdiff.export.dataset import load_export

    exports = sorted(p for p in S3EXPORTS.iterdir() if p.is_dir())
    full = next(p for p in exports if (p / "manifest-summary.json").read_text().count('"FULL'))
    runner, app = CliRunner(), load_commands()
    args = ["export", "--from-s3", str(full), "--key", "pk:S,sk:N", "--out", str(tmp_path / "e")]
    result = runner.invoke(app, [*args, "--ttl-attribute", "expires", "--engine", "duckdb"])
    assert result.exit_code == EXIT_OK, result.output
    assert (load_export(tmp_path / "e").manifest.ttl or {}).get("attribute") == "expires"
    incremental = next(
        p for p in exports if (p / "manifest-summary.json").read_text().count('"INCREMENTAL')
    )
    args = ["diff", "--incremental", str(incremental), "--key", "pk:S,sk:N"]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "d"), "--ttl-attribute", "expires", "--json"]
    )
    assert result.exit_code in (EXIT_OK, EXIT_DIFFERENCES), result.output
    ttl = load_diff(tmp_path / "d").manifest.live["ttl"]
    assert ttl == {"attribute": "expires", "status": "ENABLED", "source": "--ttl-attribute"}
    # a scan export reads the table's TTL itself: the option is refused there, one line
    scan_args = ["export", "Orders", "--out", str(tmp_path / "s"), "--ttl-attribute", "x"]
    refused = runner.invoke(app, scan_args)
    assert refused.exit_code == EXIT_BAD_INPUT
    assert refused.stderr.startswith("error: --ttl-attribute, --engine and --spark-master go ")
    assert refused.stderr.count("\n") == 1
