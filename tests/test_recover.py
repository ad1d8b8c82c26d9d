"""recover end to end against moto's server, and its re-run skipping complete stages.

moto restores the table as it is *now*, so the tests restore first and then
play the "incident" on the live table, and hand the restore to recover with
``restored=``. The data (6 items) and what the incident does to it:

- deleted: TENANT#a/ORDER#1, TENANT#a/ORDER#2 (a bad cleanup)
- changed: TENANT#b/ORDER#3 (status PAID -> LOST)
- added:   TENANT#c/ORDER#9 (a new order)
- unchanged: TENANT#b/ORDER#4, TENANT#c/ORDER#5, TENANT#c/ORDER#6
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pitrdiff import pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.errors import EXIT_OK, RefusedError, TableNotFoundError
from pitrdiff.recovery.apply import apply_plan
from pitrdiff.recovery.recover import STAGES, STATE_NAME, recover
from tests.helpers import Server


def order(tenant: str, number: int, status: str = "PAID") -> dict[str, Any]:
    return {
        "pk": {"S": f"TENANT#{tenant}"},
        "sk": {"S": f"ORDER#{number}"},
        "status": {"S": status},
        "total": {"N": f"{number}.50"},
        "tags": {"SS": ["x", "y"]},
    }


BEFORE = [order("a", 1), order("a", 2), order("b", 3), order("b", 4), order("c", 5), order("c", 6)]


@pytest.fixture
def incident(moto_server: Server, table_name: str) -> tuple[str, str, str]:
    """(live table, restored table, restore time) after the incident."""
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, BEFORE)
    window = pitr.enable_pitr(table_name, aws=moto_server.aws)
    at = pitr.format_time(window.latest)
    assert at is not None
    restored = pitr.restore(table_name, latest=True, aws=moto_server.aws).target
    client = moto_server.client()
    for number in (1, 2):
        client.delete_item(
            TableName=table_name, Key={"pk": {"S": "TENANT#a"}, "sk": {"S": f"ORDER#{number}"}}
        )
    moto_server.put_items(table_name, [order("b", 3, "LOST"), order("c", 9)])
    return table_name, restored, at


def test_recover_end_to_end_then_apply(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    table, restored, at = incident
    workdir = tmp_path / "incident-42"
    result = recover(table, at=at, workdir=workdir, restored=restored, aws=moto_server.aws)
    assert [s.name for s in result.stages] == list(STAGES)
    assert result.skipped == ()
    assert result.restored_table == restored
    assert dict(result.counts) == {
        "deleted": 2, "changed": 1, "added": 1, "expired": 0, "unchanged": 3,
    }  # fmt: skip
    assert result.top_signatures == (("status", 1),)
    assert result.plan_operations == 2  # deleted only, by default
    assert not result.nothing_to_apply and result.plan_excluded is None
    # the settings stage: PITR (on for the live table) is what this restore did not carry;
    # moto also drops the billing mode (BillingModeSummary {}) and reports a restore's warm
    # throughput as 0 (AWS restores the billing mode: the developer guide lists it)
    differing = [d["setting"] for d in result.settings_differences]
    assert differing == ["point_in_time_recovery", "billing_mode", "warm_throughput"]
    assert result.settings["restored_table"] == restored
    page = (workdir / "diff" / "report.html").read_text()
    assert "<h2>Settings a restore does not carry</h2>" in page and "point_in_time_recovery" in page
    # --restored given: recover did not create it, but says how to clean it up
    assert not result.restore_created
    assert result.cleanup_command == f"pitrdiff cleanup {restored}"
    assert result.apply_command == f"pitrdiff apply {workdir / 'plan.jsonl'}"
    # both export times recorded; the live export started after the restored one finished
    assert result.restored_export_finished_at is not None
    assert result.live_export_started_at is not None
    assert result.restored_export_finished_at <= result.live_export_started_at
    state = orjson.loads((workdir / STATE_NAME).read_bytes())
    assert all(state["stages"][name]["complete"] for name in STAGES)
    # never applied: the live table still lacks the deleted orders
    live = moto_server.scan_canonical(table)
    assert len(live) == 5
    report = apply_plan(result.plan_path, aws=moto_server.aws)
    assert report.applied == 2 and report.clean
    live = moto_server.scan_canonical(table)
    restored_items = moto_server.scan_canonical(restored)
    for key, item in restored_items.items():
        if '"TENANT#a"' in key:
            assert live[key] == item  # the lost orders are back
    assert len(live) == 7  # the new order is kept, the changed one left as it is


def test_recover_rerun_skips_complete_stages(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    table, restored, at = incident
    workdir = tmp_path / "w"
    first = recover(table, at=at, workdir=workdir, restored=restored, aws=moto_server.aws)
    manifest = (workdir / "live" / "manifest.json").read_bytes()
    second = recover(table, at=at, workdir=workdir, restored=restored, aws=moto_server.aws)
    assert second.skipped == STAGES
    assert (workdir / "live" / "manifest.json").read_bytes() == manifest  # not re-exported
    assert second.counts == first.counts and second.plan_operations == first.plan_operations
    # a different selection re-plans only
    third = recover(
        table,
        at=at,
        workdir=workdir,
        include=("deleted", "changed"),
        where="class = 'deleted' OR signature = 'status'",
        aws=moto_server.aws,
    )
    assert third.skipped == ("restore", "export-restored", "export-live", "diff", "settings")
    assert third.plan_operations == 3
    # a stage left incomplete (interrupted) runs again, and so does every later one
    state_path = workdir / STATE_NAME
    state = orjson.loads(state_path.read_bytes())
    state["stages"]["diff"]["complete"] = False
    state_path.write_bytes(orjson.dumps(state))
    fourth = recover(
        table,
        at=at,
        workdir=workdir,
        include=("deleted", "changed"),
        where="class = 'deleted' OR signature = 'status'",
        aws=moto_server.aws,
    )
    assert fourth.skipped == ("restore", "export-restored", "export-live")
    assert fourth.plan_operations == 3
    # the workdir belongs to this recovery only
    with pytest.raises(RefusedError, match="holds a recovery of"):
        recover(f"{table}-other", at=at, workdir=workdir, aws=moto_server.aws)
    with pytest.raises(RefusedError, match="was started with restored table"):
        recover(table, at=at, workdir=workdir, restored=f"{restored}-x", aws=moto_server.aws)


def test_recover_refuses_a_workdir_that_is_not_its_own(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    table, restored, at = incident
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RefusedError, match="not empty"):
        recover(table, at=at, workdir=tmp_path / "busy", restored=restored, aws=moto_server.aws)
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


def test_recover_refuses_a_restored_table_of_another_source(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    table, _, at = incident
    with pytest.raises(RefusedError, match="is not a restore of"):
        recover(table, at=at, workdir=tmp_path / "w", restored=table, aws=moto_server.aws)


def test_recover_restores_by_itself(moto_server: Server, table_name: str, tmp_path: Path) -> None:
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, BEFORE)
    window = pitr.enable_pitr(table_name, aws=moto_server.aws)
    at = pitr.format_time(window.latest)
    assert at is not None and window.latest is not None
    result = recover(table_name, at=at, workdir=tmp_path / "w", aws=moto_server.aws)
    assert result.restored_table == pitr.default_target(table_name, window.latest)
    assert pitr.describe_table(result.restored_table, aws=moto_server.aws).is_restore
    assert dict(result.counts) == {
        "deleted": 0, "changed": 0, "added": 0, "expired": 0, "unchanged": 6,
    }  # fmt: skip
    assert result.plan_operations == 0 and result.nothing_to_apply
    assert result.restore_created  # recover restored it: the result says to clean it up
    assert result.cleanup_command == f"pitrdiff cleanup {result.restored_table}"
    assert result.to_dict()["nothing_to_apply"] is True
    again = recover(table_name, at=at, workdir=tmp_path / "w", aws=moto_server.aws)
    assert again.skipped == STAGES


def test_recover_command(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    table, restored, at = incident
    runner = CliRunner()
    args = ["recover", table, "--at", at, "--workdir", str(tmp_path / "w"), "--restored", restored]
    result = runner.invoke(load_commands(), [*args, "--endpoint-url", moto_server.endpoint])
    assert result.exit_code == EXIT_OK, result.output
    assert "pitrdiff apply" in result.stderr and "Nothing was written" in result.stderr
    as_json = runner.invoke(
        load_commands(), [*args, "--json", "--endpoint-url", moto_server.endpoint]
    )
    assert as_json.exit_code == EXIT_OK, as_json.output
    document = json.loads(as_json.stdout)
    assert document["applied"] is False
    assert [s["skipped"] for s in document["stages"]] == [True] * 6
    assert document["counts"]["deleted"] == 2


def test_recover_resumes_a_restore_started_by_an_interrupted_run(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    """The first run started the restore and was stopped while waiting for it."""
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, BEFORE)
    window = pitr.enable_pitr(table_name, aws=moto_server.aws)
    at = pitr.format_time(window.latest)
    assert at is not None and window.latest is not None
    started = pitr.restore(
        table_name, latest=True, target=f"{table_name}-started", wait=False, aws=moto_server.aws
    )
    workdir = tmp_path / "w"
    workdir.mkdir()
    state = {
        "format": "pitrdiff-recover-state",
        "format_version": 1,
        "table": table_name,
        "at": at,
        "restored_table": started.target,
        "stages": {"restore": {"complete": False, "target": started.target}},
    }
    (workdir / STATE_NAME).write_bytes(orjson.dumps(state))
    result = recover(table_name, at=at, workdir=workdir, aws=moto_server.aws)
    assert result.restored_table == started.target
    assert result.skipped == ()
    with pytest.raises(TableNotFoundError):  # no second restore was started
        pitr.describe_table(pitr.default_target(table_name, window.latest), aws=moto_server.aws)


def test_recover_passes_the_deny_list_to_the_plan(
    moto_server: Server, incident: tuple[str, str, str], tmp_path: Path
) -> None:
    """exclude_keys removes TENANT#a/ORDER#1 from the plan; a different deny list re-plans."""
    table, restored, at = incident
    deny = tmp_path / "erased.csv"
    deny.write_text("pk,sk\nTENANT#a,ORDER#1\n")
    workdir = tmp_path / "w"
    result = recover(
        table, at=at, workdir=workdir, restored=restored, exclude_keys=deny, aws=moto_server.aws
    )
    assert result.plan_operations == 1 and result.plan_excluded == 1
    plan_stage = result.stages[-1]
    assert plan_stage.name == "plan" and "1 removed by the deny list" in plan_stage.describe()
    header = orjson.loads((workdir / "plan.jsonl").read_bytes().splitlines()[0])
    assert "exclude_keys" in json.dumps(header)
    deny.write_text("pk,sk\nTENANT#a,ORDER#1\nTENANT#a,ORDER#2\n")
    again = recover(
        table, at=at, workdir=workdir, restored=restored, exclude_keys=deny, aws=moto_server.aws
    )
    assert again.skipped == ("restore", "export-restored", "export-live", "diff", "settings")
    assert again.plan_operations == 0 and again.plan_excluded == 2 and again.nothing_to_apply
