"""pitrdiff drill against moto's server: restore, every check, reports, cleanup.

moto restores the table as it is at the moment of the call (its PITR window is
frozen at the instant PITR was enabled: T). The tests play "traffic after T"
from the ``on_stage`` hook just before the live export, so the diff holds:

- changed: TENANT#b/ORDER#3 (status PAID -> SHIPPED, updated_at = now)
- added:   TENANT#c/ORDER#9 (updated_at = now)
- unchanged: the other 5 orders (updated_at in 2026-01, before T)

The failing case changes ORDER#4 without touching ``updated_at``: a write the
attribute does not explain.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pitrdiff import pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.drill import load_expectations, parse_duration, run_drill
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    Interrupted,
    TableNotFoundError,
)
from tests.helpers import InterruptAfter, Server

OLD = "2026-01-15T10:00:00Z"


def order(tenant: str, number: int, status: str = "PAID", updated: str = OLD) -> dict[str, Any]:
    return {
        "pk": {"S": f"TENANT#{tenant}"},
        "sk": {"S": f"ORDER#{number}"},
        "status": {"S": status},
        "updated_at": {"S": updated},
    }


BEFORE = [order("a", 1), order("a", 2), order("b", 3), order("b", 4), order("c", 5), order("c", 6)]


@pytest.fixture
def live(moto_server: Server, table_name: str) -> str:
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, BEFORE)
    pitr.enable_pitr(table_name, aws=moto_server.aws)
    return table_name


def traffic(server: Server, table: str, *, honest: bool = True) -> Any:
    """An on_stage hook writing after T just before the live export."""

    def hook(stage: str) -> None:
        if stage != "export-live":
            return
        now = pitr.format_time(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
        assert now is not None
        writes = [order("b", 3, "SHIPPED", now), order("c", 9, "PAID", now)]
        if not honest:
            writes.append(order("b", 4, "REFUNDED"))  # updated_at left at OLD
        server.put_items(table, writes)

    return hook


EXPECT = {
    "max_rto_seconds": 600,
    "restored_items": {"min": 6, "max": 6},
    "live_items": {"min": 7},
    "max_deleted": 0,
    "max_changed": 1,
    "max_added": 1,
    "settings_must_match": ["table_class", "encryption", "local_secondary_indexes"],
    "keys_must_exist": [{"pk": "TENANT#a", "sk": "ORDER#1"}, {"pk": "TENANT#c", "sk": "ORDER#6"}],
}


def gone(server: Server, table: str | None) -> bool:
    assert table is not None
    try:
        pitr.describe_table(table, aws=server.aws)
    except TableNotFoundError:
        return True
    return False


def test_drill_passes_writes_reports_and_cleans_up(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    stages: list[str] = []

    def hook(stage: str) -> None:
        stages.append(stage)
        traffic(moto_server, live)(stage)

    result = run_drill(
        live,
        latest=True,
        workdir=tmp_path / "w",
        updated_attr="updated_at",
        expect=EXPECT,
        aws=moto_server.aws,
        on_stage=hook,
        poll_seconds=0.05,
    )
    assert stages == [
        "window", "restore", "export-restored", "export-live", "diff", "settings", "checks",
    ]  # fmt: skip
    assert [s.name for s in result.stages] == stages
    assert [(c.name, c.passed) for c in result.checks] == [
        ("pitr-window", True),
        ("restore", True),
        ("updated-attr", True),
        ("max-rto", True),
        ("restored-items", True),
        ("live-items", True),
        ("max-deleted", True),
        ("max-changed", True),
        ("max-added", True),
        ("settings-match", True),
        ("keys-exist", True),
    ], [c.message for c in result.checks if not c.passed]
    assert result.passed and result.cleaned_up == "deleted"
    assert gone(moto_server, result.restored_table)
    assert result.rto_s is not None and result.rto_s >= 0
    figures = result.checks[2].figures
    assert (figures["checked"], figures["newer_than_t"], figures["unexplained"]) == (2, 2, 0)
    assert dict(result.counts) | {} == {
        "restored_items": 6, "live_items": 7, "deleted": 0, "changed": 1, "added": 1,
        "expired": 0, "unchanged": 5,
    }  # fmt: skip
    # what the restore did not carry: PITR itself (on for the live table, off on the restore)
    assert result.settings is not None
    assert "point_in_time_recovery" in [d["setting"] for d in result.settings["differences"]]
    # JUnit: one test case per check, figures in system-out, no failure
    suite = ET.parse(tmp_path / "w" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.name for c in result.checks]
    assert suite.get("failures") == "0" and suite.get("tests") == "11"
    out = cases[0].find("system-out")
    assert out is not None and out.text is not None and '"min_window_s": 0.0' in out.text
    document = json.loads((tmp_path / "w" / "drill.json").read_text())
    assert document["passed"] is True and document["cleaned_up"] == "deleted"
    page = (tmp_path / "w" / "diff" / "report.html").read_text()
    assert "<h2>Drill checks</h2>" in page and "<h2>Settings a restore does not carry</h2>" in page
    assert "updated-attr" in page
    # a drill's own JUnit XML may be replaced by the next drill's (any other file is refused)
    from pitrdiff.drill.preflight import check_junit

    assert (
        check_junit(tmp_path / "w" / "junit.xml", tmp_path / "w2") == tmp_path / "w" / "junit.xml"
    )


def test_a_failing_check_exits_1_and_still_cleans_up(
    moto_server: Server, live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pitrdiff.drill as drill_module

    original = drill_module._export

    def export_with_traffic(name_of: Any, directory: str) -> Any:
        body = original(name_of, directory)

        def stage(d: Any) -> None:
            if directory == "live":
                traffic(moto_server, live, honest=False)("export-live")
            body(d)

        return stage

    stages = [(n, export_with_traffic(lambda d: d.table, "live") if n == "export-live" else s)
              for n, s in drill_module.STAGES]  # fmt: skip
    monkeypatch.setattr(drill_module, "STAGES", tuple(stages))
    runner = CliRunner()
    args = ["drill", live, "--latest", "--workdir", str(tmp_path / "w"), "--updated-attr",
            "updated_at", "--junit", str(tmp_path / "ci" / "drill.xml"), "--endpoint-url",
            moto_server.endpoint]  # fmt: skip
    result = runner.invoke(load_commands(), args)
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "FAIL" in result.stdout and "updated-attr" in result.stdout
    junit = tmp_path / "ci" / "drill.xml"  # its directory made by the drill
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["updated-attr"]
    document = json.loads((tmp_path / "w" / "drill.json").read_text())
    check = next(c for c in document["checks"] if c["name"] == "updated-attr")
    assert check["figures"]["unexplained"] == 1
    assert check["figures"]["sample_keys"] == ['{"pk":{"S":"TENANT#b"},"sk":{"S":"ORDER#4"}}']
    assert document["cleaned_up"] == "deleted" and gone(moto_server, document["restored_table"])


def test_ctrl_c_cleans_up_and_exits_130(moto_server: Server, live: str, tmp_path: Path) -> None:
    names: list[str] = []
    with pytest.raises(Interrupted) as caught:
        run_drill(
            live,
            latest=True,
            workdir=tmp_path / "w",
            aws=moto_server.aws,
            progress=InterruptAfter(1),  # Ctrl-C at the first page of the first export
            on_stage=names.append,
            poll_seconds=0.05,
        )
    assert caught.value.exit_code == EXIT_INTERRUPTED
    assert str(caught.value).startswith("drill interrupted; restored table ")
    assert str(caught.value).endswith(": deleted")
    assert names[-1] == "export-restored"
    restored = [
        t
        for t in moto_server.client().list_tables()["TableNames"]
        if t.startswith(f"{live}-drill-")
    ]
    assert restored == []


def test_pitr_off_is_a_failed_check_and_nothing_is_restored(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name)
    result = run_drill(table_name, latest=True, workdir=tmp_path / "w", aws=moto_server.aws)
    assert [(c.name, c.passed) for c in result.checks] == [("pitr-window", False)]
    assert result.restored_table is None and result.cleaned_up == "none"
    assert (tmp_path / "w" / "junit.xml").exists()


def test_min_window_too_short_fails_the_window_check(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    missing = {"pk": "TENANT#zz", "sk": "ORDER#1"}
    result = run_drill(
        live, latest=True, workdir=tmp_path / "w", min_window="7d", aws=moto_server.aws,
        expect={"keys_must_exist": [{"pk": "TENANT#a", "sk": "ORDER#2"}, missing]},
        poll_seconds=0.05,
    )  # fmt: skip
    assert [c.name for c in result.failed] == ["pitr-window", "keys-exist"]
    assert result.failed[1].message == "1 of 2 keys in the restored table"
    assert result.failed[1].figures["missing"] == ['{"pk":{"S":"TENANT#zz"},"sk":{"S":"ORDER#1"}}']
    assert result.cleaned_up == "deleted" and gone(moto_server, result.restored_table)


def test_expectations_files(tmp_path: Path) -> None:
    good = tmp_path / "drill.yaml"
    good.write_text("max_rto_seconds: 3600\nrestored_items: {min: 1}\nmax_deleted: 0\n")
    assert load_expectations(good) == {
        "max_rto_seconds": 3600,
        "restored_items": {"min": 1},
        "max_deleted": 0,
    }
    as_json = tmp_path / "drill.json"
    as_json.write_text(json.dumps({"keys_must_exist": [{"pk": "a"}]}))
    assert load_expectations(as_json) == {"keys_must_exist": [{"pk": "a"}]}
    for text, message in (
        ("max_rto: 5\n", "unknown expectation max_rto"),
        ("max_deleted: -1\n", "max_deleted must be a whole number >= 0"),
        ("max_deleted: 1.5\n", "max_deleted must be a whole number >= 0"),
        ("max_rto_seconds: .nan\n", "max_rto_seconds must be a number >= 0"),
        ("max_rto_seconds: .inf\n", "max_rto_seconds must be a number >= 0"),
        ("restored_items: 5\n", "restored_items must be a mapping"),
        ("restored_items: {min: 100, max: 3}\n", "min 100 is above max 3"),
        ("live_items: {min: .nan}\n", "min and max must be whole numbers"),
        ("- a\n", "expected a mapping"),
        ("max_deleted: [\n", "not valid YAML"),
        ("settings_must_match: [ttl, colour]\n", "unknown setting colour"),
        ("max_added: true\n", "max_added must be a whole number"),
        (
            "max_deleted: 99999999999999999999999\n",
            "max_deleted must be at most 9,223,372,036,854,775,807, not 99,999,999,",
        ),
        (
            "max_rto_seconds: 99999999999999999999999999\n",
            "max_rto_seconds must be at most 31,536,000",
        ),
        (
            "restored_items: {max: 99999999999999999999999}\n",
            "restored_items min and max must be at most 9,223,372,036,854,775,807",
        ),
        (
            'keys_must_exist: [{pk: "\\uD800", sk: 3}]\n',
            "keys_must_exist[0].pk is not valid UTF-8 text (a lone surrogate)",
        ),
        ("max_rto_seconds: 10\nmax_rto_seconds: 20\n", "'max_rto_seconds' is given twice"),
        ("keys_must_exist: [{pk: a, pk: b}]\n", "'pk' is given twice"),
        ("", "holds no expectations"),
        ("null\n", "holds no expectations"),
        ("# all commented out\n", "holds no expectations"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(InputError, match=re.escape(message)):
            load_expectations(bad)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00m")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        load_expectations(binary)
    with pytest.raises(InputError, match="no such file"):  # bad input (2), not an I/O failure
        load_expectations(tmp_path / "missing.yaml")
    as_json.write_text('{"max_rto_seconds": 10, "max_rto_seconds": 20}')
    with pytest.raises(InputError, match="'max_rto_seconds' is given twice"):
        load_expectations(as_json)
    as_json.write_text('{"keys_must_exist": [{"pk": "\\ud800", "sk": 3}]}')
    with pytest.raises(InputError, match=re.escape("keys_must_exist[0].pk is not valid UTF-8")):
        load_expectations(as_json)
    with pytest.raises(InputError, match="is a directory; name a YAML or JSON file"):
        load_expectations(tmp_path)
    with pytest.raises(InputError, match="/dev/null is not a regular file"):
        load_expectations("/dev/null")
    assert parse_duration("7d") == dt.timedelta(days=7)
    assert parse_duration("90") == dt.timedelta(seconds=90)
    with pytest.raises(InputError, match="not a duration"):
        parse_duration("soon")


def test_drill_refuses_bad_input_before_any_restore(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    for args, words in (
        (["--latest", "--workdir", str(tmp_path / "busy")], "not an empty directory"),
        (["--workdir", str(tmp_path / "w")], "exactly one of"),
        (["--latest", "--workdir", str(tmp_path / "w2"), "--min-window", "soon"], "duration"),
    ):
        result = runner.invoke(
            load_commands(), ["drill", live, *args, "--endpoint-url", moto_server.endpoint]
        )
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        assert words in result.stderr
    tables = moto_server.client().list_tables()["TableNames"]
    assert [t for t in tables if t.startswith(f"{live}-drill-")] == []
    ok = runner.invoke(
        load_commands(),
        ["drill", live, "--latest", "--workdir", str(tmp_path / "ok"), "--json",
         "--endpoint-url", moto_server.endpoint],
    )  # fmt: skip
    assert ok.exit_code == EXIT_OK, ok.output
    assert json.loads(ok.stdout)["passed"] is True


def test_the_drill_iam_policy_names_only_real_actions() -> None:
    """Every action of iam/drill-policy.json is an operation of botocore's service model."""
    import botocore.session

    policy = json.loads((Path(__file__).parent.parent / "iam" / "drill-policy.json").read_text())
    session = botocore.session.get_session()
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    for action in actions:
        service, operation = action.split(":")
        assert operation in session.get_service_model(service).operation_names, action
    # what the drill calls, and nothing that writes to the live table
    live = set(policy["Statement"][0]["Action"])
    assert "dynamodb:RestoreTableToPointInTime" in live and "dynamodb:Scan" in live
    assert not {a for a in live if a.split(":")[1].startswith(("Put", "Update", "Delete", "Batch"))}
    assert policy["Statement"][1]["Resource"].endswith(":table/TABLE-drill-*")
    assert "dynamodb:DeleteTable" in policy["Statement"][1]["Action"]
    assert len(actions) == 24


def test_an_error_mid_drill_writes_the_reports_cleans_up_and_exits_3(
    moto_server: Server, live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings stage fails as an AWS failure would (exit 3): junit records an <error>."""
    import pitrdiff.drill as drill_module
    from pitrdiff.errors import EXIT_FAILURE, AwsError

    def failing(d: Any) -> None:
        raise AwsError("InternalServerError while describing the table: boom")

    stages = [(n, failing if n == "settings" else s) for n, s in drill_module.STAGES]
    monkeypatch.setattr(drill_module, "STAGES", tuple(stages))
    runner = CliRunner()
    result = runner.invoke(
        load_commands(),
        ["drill", live, "--latest", "--workdir", str(tmp_path / "w"), "--endpoint-url",
         moto_server.endpoint],
    )  # fmt: skip
    assert result.exit_code == EXIT_FAILURE, result.output
    assert "boom" in result.stderr and "Traceback" not in result.output
    suite = ET.parse(tmp_path / "w" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase[@name='drill']/error")
    assert error is not None and "boom" in str(error.get("message"))
    document = json.loads((tmp_path / "w" / "drill.json").read_text())
    assert document["error"].endswith("boom") and document["cleaned_up"] == "deleted"
    assert document["passed"] is False  # stopped by an error: not a pass, whatever ran before
    assert gone(moto_server, document["restored_table"])


def test_a_bug_mid_drill_still_deletes_the_restored_table(
    moto_server: Server, live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception (here a ValueError in the settings stage) deletes the restored table."""
    import pitrdiff.drill as drill_module
    from pitrdiff.drill import run_drill

    def failing(d: Any) -> None:
        raise ValueError("year 17868 is out of range")

    stages = [(n, failing if n == "settings" else s) for n, s in drill_module.STAGES]
    monkeypatch.setattr(drill_module, "STAGES", tuple(stages))
    with pytest.raises(ValueError, match="17868"):
        run_drill(live, latest=True, workdir=tmp_path / "w", aws=moto_server.aws)
    document = json.loads((tmp_path / "w" / "drill.json").read_text())
    assert document["passed"] is False and document["cleaned_up"] == "deleted"
    assert "internal error: ValueError" in document["error"]
    assert gone(moto_server, document["restored_table"])


def incremental_traffic(server: Server, table: str, root: Path, *, complete: bool = True) -> Any:
    """Write the incremental export of the traffic after T, and play that traffic.

    The export is written now (the drill reads its manifests before the
    restore); the hook plays the writes it records just before the live export.
    ``complete=False`` leaves ORDER#9's record out of the export: the two
    mechanisms then disagree on one key.
    """
    from tests.data.s3exports.build import write_incremental_export

    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    stamp = pitr.format_time(now)
    assert stamp is not None
    shipped, new = order("b", 3, "SHIPPED", stamp), order("c", 9, "PAID", stamp)
    micros = {"N": str(int(now.timestamp() * 1_000_000))}
    meta = {"WriteTimestampMicros": micros}
    records = [
        {"Metadata": meta, "Keys": {k: shipped[k] for k in ("pk", "sk")},
         "OldImage": order("b", 3), "NewImage": shipped},
        {"Metadata": meta, "Keys": {k: new[k] for k in ("pk", "sk")}, "NewImage": new},
    ]  # fmt: skip
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    write_incremental_export(
        root, [records if complete else records[:1]], export_id=EXPORT_ID, table_arn=arn
    )

    def hook(stage: str) -> None:
        if stage == "export-live":
            server.put_items(table, [shipped, new])

    return hook


EXPORT_ID = "01761577200000-d1d1d1d1"


@pytest.mark.parametrize("complete", [True, False])
def test_incremental_export_and_live_export_agree(
    moto_server: Server, live: str, tmp_path: Path, complete: bool
) -> None:
    exports = tmp_path / "s3"
    result = run_drill(
        live,
        latest=True,
        workdir=tmp_path / "w",
        incremental=exports / "exports" / "AWSDynamoDB" / EXPORT_ID,
        aws=moto_server.aws,
        on_stage=incremental_traffic(moto_server, live, exports, complete=complete),
        poll_seconds=0.05,
    )
    assert "incremental" in [s.name for s in result.stages]
    check = next(c for c in result.checks if c.name == "incremental-agrees")
    assert check.passed is complete
    assert check.figures["keys_compared"] == 2
    if complete:
        assert check.figures["disagree"] == 0 and result.passed
    else:
        assert check.figures["disagree"] == 1 and check.figures["only_in_full_diff"] == 1
        assert check.figures["sample_keys"] == ['{"pk":{"S":"TENANT#c"},"sk":{"S":"ORDER#9"}}']
        assert not result.passed
    assert result.cleaned_up == "deleted"


def test_ctrl_c_while_the_restore_request_returns_still_deletes_the_table(
    moto_server: Server, live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal lands after DynamoDB accepted the restore, before pitrdiff saw the answer."""
    import pitrdiff.drill as drill_module

    real_restore = drill_module.pitr.restore

    def restore_then_interrupted(*args: Any, **kwargs: Any) -> Any:
        real_restore(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(drill_module.pitr, "restore", restore_then_interrupted)
    target = f"{live}-drill-signal"
    with pytest.raises(Interrupted, match=f"restored table {target}: deleted"):
        drill_module.run_drill(
            live, latest=True, target=target, workdir=tmp_path / "w", aws=moto_server.aws
        )
    assert gone(moto_server, target)


def drill_tables(server: Server, live: str) -> list[str]:
    """Every table of the server named after the live table, but the live table."""
    return [
        t for t in server.client().list_tables()["TableNames"] if t.startswith(live) and t != live
    ]


def bad_inputs(tmp_path: Path, live: str, other: str) -> list[tuple[list[str], str]]:
    """(drill arguments, words of the one-line refusal): each must be refused before a restore."""
    from tests.data.s3exports.build import order as export_order
    from tests.data.s3exports.build import write_full_export

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "dir").mkdir()
    full = write_full_export(tmp_path / "s3full", [[export_order("TENANT#a", 1)]])
    other_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{other}"
    from tests.data.s3exports.build import write_incremental_export

    foreign = write_incremental_export(tmp_path / "s3other", [[]], table_arn=other_arn)
    live_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{live}"
    new_image = write_incremental_export(
        tmp_path / "s3new", [[]], table_arn=live_arn, view="NEW_IMAGE"
    )
    inverted = write_incremental_export(tmp_path / "s3inv", [[]], table_arn=live_arn)
    summary = json.loads((inverted / "manifest-summary.json").read_text())
    summary["exportToTime"] = "2026-10-27T13:00:00.000Z"  # before exportFromTime (14:00)
    (inverted / "manifest-summary.json").write_text(json.dumps(summary))
    (inverted / "manifest-summary.checksum").unlink()
    no_data = write_incremental_export(tmp_path / "s3nodata", [[]], table_arn=live_arn)
    for data in (tmp_path / "s3nodata").rglob("*.json.gz"):
        data.unlink()

    def expect(keys: list[dict[str, Any]]) -> str:
        path = tmp_path / f"expect-{len(list(tmp_path.glob('expect-*')))}.json"
        path.write_text(json.dumps({"keys_must_exist": keys}))
        return str(path)

    sysfs = Path("/sys")  # a directory nobody, root included, can write in
    dataset = tmp_path / "ds"  # a diff dataset (what pitrdiff's manifest marks)
    (dataset / "data").mkdir(parents=True)
    (dataset / "manifest.json").write_text('{"format": "pitrdiff-diff"}')
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('{"keys_must_exist": [{"pk": "\\ud800", "sk": "x"}]}')
    (tmp_path / "huge.yaml").write_text("max_deleted: 99999999999999999999999\n")
    (tmp_path / "empty.yaml").write_text("")
    return [
        (["--expect", str(surrogate)], "keys_must_exist[0].pk is not valid UTF-8 text"),
        (["--expect", str(tmp_path / "huge.yaml")], "max_deleted must be at most 9,223,372,"),
        (["--expect", str(tmp_path / "empty.yaml")], "holds no expectations"),
        (["--expect", str(tmp_path)], "is a directory; name a YAML or JSON file"),
        (["--target", ""], "--target names the restored table; it cannot be empty"),
        (["--junit", str(tmp_path / "w")], f"--junit {tmp_path / 'w'} is the --workdir"),
        (["--junit", f"{tmp_path / 'cases'}/"], f"--junit {tmp_path / 'cases'} is a directory"),
        (["--junit", str(dataset / "manifest.json")], f"is inside the diff dataset {dataset}"),
        (["--junit", str(dataset / "data" / "x.xml")], f"is inside the diff dataset {dataset}"),
        (["--junit", str(tmp_path / "a-file")], "exists and is not a drill's JUnit XML"),
        (["--incremental-from-s3", "/nonexistent"], "/nonexistent is not a DynamoDB export"),
        (["--incremental-from-s3", str(full)], "is a FULL_EXPORT, not an incremental export"),
        (["--incremental-from-s3", str(foreign)], f"is an export of table {other}, not of {live}"),
        (["--incremental-from-s3", str(new_image)], "has view type NEW_IMAGE: the drill needs"),
        (
            ["--incremental-from-s3", str(inverted)],
            "its window ends (2026-10-27T13:00:00Z) before it starts (2026-10-27T14:00:00Z)",
        ),
        (["--incremental-from-s3", str(no_data)], ".json.gz is missing"),
        (
            ["--expect", expect([{"pk": "TENANT#a"}])],
            '{"pk": "TENANT#a"} lacks sk (the key is pk, sk)',
        ),
        (
            ["--expect", expect([{"pk": "TENANT#a", "sk": 1}])],
            "sk is a key of type S (a non-empty string; quote numbers), not 1",
        ),
        (
            ["--expect", expect([{"pk": "TENANT#a", "sk": "ORDER#1", "status": "PAID"}])],
            "names status, not a key attribute",
        ),
        (["--expect", expect([{"pk": ["TENANT#a"], "sk": "ORDER#1"}])], "pk is a key of type S"),
        (["--junit", str(tmp_path / "dir")], f"--junit {tmp_path / 'dir'} is a directory"),
        (["--junit", str(tmp_path / "a-file" / "ci.xml")], f"{tmp_path / 'a-file'} is not a dir"),
        (["--junit", "/dev/null"], "--junit /dev/null is not a regular file"),
        (["--junit", str(tmp_path / "w" / "drill.json")], "where the drill writes its own files"),
        (["--junit", str(tmp_path / "w" / "diff" / "x.xml")], "where the drill writes its own"),
        *([(["--junit", str(sysfs / "ci.xml")], "cannot write in /sys")] if sysfs.is_dir() else []),
        (["--segments", "0"], "--segments must be between 1 and 1000000, not 0"),
        (["--updated-attr", ""], "--updated-attr names an attribute; it cannot be empty"),
        (["--target", other], f"table {other} already exists; the drill restores into a new table"),
        (["--target", live], "--target must be a new table, not the live table"),
    ]


def test_every_bad_input_is_refused_before_the_restore(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    """Exit 2, one line on stderr, no table restored, no work directory made."""
    other = f"{live}-other"
    moto_server.create_table(other)
    runner = CliRunner()
    cases = bad_inputs(tmp_path, live, other)
    workdir = tmp_path / "w"
    for args, words in cases:
        result = runner.invoke(
            load_commands(),
            ["drill", live, "--latest", "--workdir", str(workdir), *args,
             "--endpoint-url", moto_server.endpoint],
        )  # fmt: skip
        assert result.exit_code == EXIT_BAD_INPUT, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert words in lines[0], (args, lines[0])
        assert "--reuse" not in lines[0] and "Traceback" not in result.output
        assert not workdir.exists(), args
    for directory, words in (
        (tmp_path / "a-file" / "w", f"--workdir {tmp_path / 'a-file' / 'w'}: {tmp_path / 'a-file'}"
                                    " is not a directory"),
        (tmp_path / "ds" / "sub", f"--workdir {tmp_path / 'ds' / 'sub'} is inside the diff "
                                  f"dataset {tmp_path / 'ds'}"),
        *([(Path("/sys/w"), "--workdir /sys/w: cannot write in /sys")]
          if Path("/sys").is_dir() else []),
    ):  # fmt: skip
        result = runner.invoke(
            load_commands(),
            ["drill", live, "--latest", "--workdir", str(directory), "--endpoint-url",
             moto_server.endpoint],
        )  # fmt: skip
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {words}"), result.stderr
        assert not directory.exists()
    assert drill_tables(moto_server, live) == [other]  # nothing restored, the other table kept


def test_keys_must_exist_is_typed_by_the_key_schema() -> None:
    """S keys are non-empty strings, N keys numbers (exact), B keys base64 text."""
    from pitrdiff.drill.checks import key_json
    from pitrdiff.export.keys import KeySchema

    schema = KeySchema.from_boto(
        [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        [
            {"AttributeName": "id", "AttributeType": "N"},
            {"AttributeName": "at", "AttributeType": "B"},
        ],
    )
    assert key_json({"id": 5, "at": "AAE="}, schema) == '{"at":{"B":"AAE="},"id":{"N":"5"}}'
    assert key_json({"id": "1.50", "at": "AAE="}, schema) == '{"at":{"B":"AAE="},"id":{"N":"1.5"}}'
    for key, words in (
        ({"id": "abc", "at": "AAE="}, "id is a key of type N (a number), not 'abc'"),
        ({"id": True, "at": "AAE="}, "id is a key of type N (a number), not True"),
        ({"id": float("nan"), "at": "AAE="}, "id is a key of type N (a number), not nan"),
        ({"id": "1e400", "at": "AAE="}, "id is a key of type N (a number), not '1e400'"),
        ({"id": 1, "at": "not base64!"}, "at is a key of type B (base64 text), not 'not base64!'"),
        ({"id": 1, "at": ""}, "at is a key of type B (base64 text), not ''"),
        ({"at": "AAE="}, 'keys_must_exist: {"at": "AAE="} lacks id (the key is id, at)'),
    ):
        with pytest.raises(InputError, match=re.escape(words)):
            key_json(key, schema)


def test_an_existing_target_is_refused_without_naming_an_option_drill_lacks(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    """A --target made between the checks and the restore: refused, and never deleted."""
    import pitrdiff.drill as drill_module
    from pitrdiff.errors import RefusedError

    target = f"{live}-taken"
    made: list[str] = []

    def hook(stage: str) -> None:
        if stage == "restore":  # someone else's table appears after the checks
            moto_server.create_table(target)
            made.append(target)

    with pytest.raises(RefusedError) as caught:
        drill_module.run_drill(
            live, latest=True, target=target, workdir=tmp_path / "w", aws=moto_server.aws,
            on_stage=hook,
        )  # fmt: skip
    assert str(caught.value) == (
        f"table {target} already exists; the drill restores into a new table: "
        "choose another --target (or leave it out)"
    )
    assert made == [target] and not gone(moto_server, target)  # not the drill's to delete
    # refused before any restore: no reports, so a re-run may use the same (empty) workdir
    assert list((tmp_path / "w").iterdir()) == []


def test_pitr_off_says_no_table_was_restored(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name)
    runner = CliRunner()
    result = runner.invoke(
        load_commands(),
        ["drill", table_name, "--latest", "--workdir", str(tmp_path / "w"), "--endpoint-url",
         moto_server.endpoint],
    )  # fmt: skip
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "None" not in result.output
    assert "no table was restored" in result.stderr.splitlines()
    assert drill_tables(moto_server, table_name) == []


@pytest.mark.parametrize("how", ["weakref.finalize", "__del__"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_landing_inside_a_finalizer_still_stops_the_drill(how: str, signum: int) -> None:
    """Its handler runs inside a finalizer (as when urllib3 closes a dropped client's pool).

    Python drops an exception raised in a finalizer ("Exception ignored"):
    without the drill's deferral the signal is lost and the work runs on.
    """
    import time
    import weakref

    from pitrdiff import cli
    from pitrdiff.errors import Terminated

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    class Pool:
        def __del__(self) -> None:
            if how == "__del__":
                signal.raise_signal(signum)
                sum(range(100))  # the handler runs here, inside __del__

    caught: list[BaseException] = []
    try:
        cli.install_signal_handlers()
        pool = Pool()
        if how == "weakref.finalize":
            weakref.finalize(pool, lambda: signal.raise_signal(signum))
        try:
            del pool
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except KeyboardInterrupt as exc:
            caught.append(exc)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        cli._received.clear()
    assert [type(e) for e in caught] == [
        Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    ]


def test_every_command_defers_signals_inside_finalizers() -> None:
    from pitrdiff import cli

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cli.install_signal_handlers()  # what main() does before any command
        assert [getattr(signal.getsignal(s), "__qualname__", None) for s in saved] == [
            "_deferring.<locals>.deferring",
            "_deferring.<locals>.deferring",
        ]
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("where", ["checks", "cleanup", "reports"])
def test_a_signal_in_the_last_phase_still_deletes_the_table_and_writes_the_reports(
    moto_server: Server, live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """SIGINT in the checks stage, while the table is being deleted, or while report.html renders.

    The cleanup ran after the stages, outside their try: a signal landing in
    it (building the boto3 client takes tenths of a second) left the table,
    one landing in the reports left no drill.json.
    """
    import pitrdiff.diff.html as html_module
    import pitrdiff.drill as drill_module

    def interrupt(*args: Any, **kwargs: Any) -> None:
        signal.raise_signal(signal.SIGINT)  # as the terminal's Ctrl-C would

    if where == "checks":
        stages = [(n, interrupt if n == "checks" else s) for n, s in drill_module.STAGES]
        monkeypatch.setattr(drill_module, "STAGES", tuple(stages))
    elif where == "cleanup":
        real_cleanup = drill_module.pitr.cleanup

        def signalled_cleanup(*args: Any, **kwargs: Any) -> Any:
            interrupt()  # held while the table is deleted, delivered after
            return real_cleanup(*args, **kwargs)

        monkeypatch.setattr(drill_module.pitr, "cleanup", signalled_cleanup)
    else:
        monkeypatch.setattr(html_module, "write_html_report", interrupt)
    target = f"{live}-drill-{where}"
    with pytest.raises(Interrupted) as caught:
        run_drill(live, latest=True, target=target, workdir=tmp_path / "w", aws=moto_server.aws,
                  poll_seconds=0.05)  # fmt: skip
    assert str(caught.value) == f"drill interrupted; restored table {target}: deleted"
    assert gone(moto_server, target)
    document = json.loads((tmp_path / "w" / "drill.json").read_text())
    assert (document["passed"], document["error"], document["cleaned_up"]) == (
        False, "interrupted", "deleted",
    )  # fmt: skip
    suite = ET.parse(tmp_path / "w" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


def test_default_target_names_are_unique_and_valid() -> None:
    from pitrdiff.drill import default_target

    now = dt.datetime(2026, 11, 30, 20, 41, 12, tzinfo=dt.timezone.utc)
    names = {default_target("orders", now) for _ in range(50)}
    assert len(names) == 50  # same second, different names
    assert all(re.fullmatch(r"orders-drill-20261130T204112Z-[0-9a-f]{6}", n) for n in names)
    long = default_target("t" * 255, now)
    assert len(long) == 255 and pitr.check_table_name(long) == long


def test_a_restore_time_outside_the_window_writes_nothing(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    """Refused before any restore: the (empty) workdir can be used again by the fixed run."""
    from pitrdiff.errors import PitrError

    with pytest.raises(PitrError, match="outside the restorable window"):
        run_drill(live, at="2020-01-01T00:00:00Z", workdir=tmp_path / "w", aws=moto_server.aws)
    assert list((tmp_path / "w").iterdir()) == []
    assert drill_tables(moto_server, live) == []


def test_an_incremental_export_must_start_at_the_restore_time(
    moto_server: Server, live: str, tmp_path: Path
) -> None:
    """Its ExportFromTime is T, within the second AWS counts it in (checked before the restore)."""
    from pitrdiff.errors import PitrError
    from tests.data.s3exports.build import write_incremental_export

    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{live}"
    export = write_incremental_export(tmp_path / "s3", [[]], table_arn=arn)  # from 14:00:00.000
    with pytest.raises(InputError, match=re.escape(
        "starts at 2026-10-27T14:00:00Z, not at the drill's restore time 2026-10-27T14:30:00Z"
    )):  # fmt: skip
        run_drill(live, at="2026-10-27T14:30:00Z", workdir=tmp_path / "w", incremental=export,
                  aws=moto_server.aws)  # fmt: skip
    assert not (tmp_path / "w").exists()
    # T within the second: accepted by the export check (then refused by the window: old T)
    with pytest.raises(PitrError, match="outside the restorable window"):
        run_drill(live, at="2026-10-27T14:00:00.4Z", workdir=tmp_path / "w", incremental=export,
                  aws=moto_server.aws)  # fmt: skip
