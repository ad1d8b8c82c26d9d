"""PITR control plane against moto's server: window, enable, restore, wait, cleanup.

moto's PITR window is frozen at the instant PITR was enabled (earliest ==
latest), and its restores copy the table as it is now; AWS's window moves.
The tests therefore restore at exactly the window's edge or with --latest.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from pitrdiff import pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    InputError,
    Interrupted,
    PitrError,
    RefusedError,
    TableNotFoundError,
)
from tests.conftest import ensure_dynalite, free_port, wait_for_port
from tests.helpers import Server

ITEMS = [
    {"pk": {"S": "TENANT#a"}, "sk": {"S": "ORDER#1"}, "g": {"S": "x"}, "n": {"N": "1.50"}},
    {"pk": {"S": "TENANT#a"}, "sk": {"S": "ORDER#2"}, "g": {"S": "y"}, "b": {"B": "AAE="}},
    {"pk": {"S": "TENANT#b"}, "sk": {"S": "ORDER#3"}, "g": {"S": "x"}, "ss": {"SS": ["p", "q"]}},
]
GSI = [
    {
        "IndexName": "by-g",
        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
]
runner = CliRunner()


def cli(server: Server, *args: str) -> Any:
    return runner.invoke(load_commands(), [*args, "--endpoint-url", server.endpoint])


class Recorder:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def start(self, task: str, total: float | None = None, unit: str = "items") -> None:
        self.events.append(("start", task))

    def advance(self, amount: float = 1, **fields: float) -> None:
        self.events.append(("advance", amount))

    def status(self, message: str) -> None:
        self.events.append(("status", message))

    def finish(self) -> None:
        self.events.append(("finish", None))


@pytest.fixture
def table(moto_server: Server, table_name: str) -> str:
    moto_server.create_table(table_name, GlobalSecondaryIndexes=GSI)
    moto_server.put_items(table_name, ITEMS)
    return table_name


@pytest.fixture
def pitr_table(moto_server: Server, table: str) -> str:
    pitr.enable_pitr(table, aws=moto_server.aws)
    return table


def table_names(server: Server) -> set[str]:
    names: set[str] = set()
    for page in server.client().get_paginator("list_tables").paginate():
        names.update(page["TableNames"])
    return names


# --------------------------------------------------------------------------- times


def test_parse_time_requires_a_zone() -> None:
    assert pitr.parse_time("2026-10-27T14:00:00Z") == dt.datetime(
        2026, 10, 27, 14, tzinfo=dt.timezone.utc
    )
    assert pitr.parse_time("2026-10-27T16:00:00+02:00") == dt.datetime(
        2026, 10, 27, 14, tzinfo=dt.timezone.utc
    )
    with pytest.raises(InputError, match="no zone"):
        pitr.parse_time("2026-10-27T14:00:00")
    with pytest.raises(InputError, match="not an ISO 8601"):
        pitr.parse_time("yesterday")


def test_default_target_is_a_valid_name_within_255_characters() -> None:
    at = dt.datetime(2026, 10, 27, 14, 0, 5, 123000, tzinfo=dt.timezone.utc)
    assert pitr.default_target("Orders", at) == "Orders-pitr-20261027T140005Z"
    long_name = pitr.default_target("x" * 255, at)
    assert len(long_name) == 255
    assert pitr.check_table_name(long_name) == long_name
    with pytest.raises(InputError):
        pitr.check_table_name("no spaces allowed")


# --------------------------------------------------------------------------- window


def test_window_with_pitr_off(moto_server: Server, table: str) -> None:
    window = pitr.window(table, aws=moto_server.aws)
    assert window.status == "DISABLED"
    assert not window.enabled
    assert window.length is None
    result = cli(moto_server, "window", table)
    assert result.exit_code == EXIT_OK
    assert "OFF" in result.stdout
    assert f"pitrdiff window {table} --enable" in result.stderr


def test_window_with_pitr_on(moto_server: Server, pitr_table: str) -> None:
    window = pitr.window(pitr_table, aws=moto_server.aws)
    assert window.enabled
    assert window.earliest is not None and window.latest is not None
    assert window.earliest <= window.latest <= window.checked_at
    assert window.length == window.latest - window.earliest
    result = cli(moto_server, "window", pitr_table)
    assert result.exit_code == EXIT_OK
    assert "earliest restorable" in result.stdout and "ago" in result.stdout
    assert "trails now by a few minutes" in result.stderr
    document = json.loads(cli(moto_server, "window", pitr_table, "--json").stdout)
    assert document["enabled"] is True
    assert document["latest_restorable_time"] == pitr.format_time(window.latest)


def test_window_of_a_missing_table(moto_server: Server, table_name: str) -> None:
    with pytest.raises(TableNotFoundError):
        pitr.window(table_name, aws=moto_server.aws)
    assert cli(moto_server, "window", table_name).exit_code == EXIT_BAD_INPUT


def test_enable_asks_first_then_turns_pitr_on(moto_server: Server, table: str) -> None:
    refused = cli(moto_server, "window", table, "--enable")  # no terminal, no --yes
    assert refused.exit_code == EXIT_BAD_INPUT
    assert "--yes" in refused.stderr
    assert not pitr.window(table, aws=moto_server.aws).enabled
    result = cli(moto_server, "window", table, "--enable", "--yes")
    assert result.exit_code == EXIT_OK, result.output
    assert "now on" in result.stderr
    assert pitr.window(table, aws=moto_server.aws).enabled


# --------------------------------------------------------------------------- restore


def test_restore_latest_into_the_default_target(moto_server: Server, pitr_table: str) -> None:
    result = pitr.restore(pitr_table, latest=True, aws=moto_server.aws)
    assert re.fullmatch(rf"{pitr_table}-pitr-\d{{8}}T\d{{6}}Z", result.target)
    assert result.ready and result.status == "ACTIVE" and not result.reused
    assert result.indexes == ("by-g",) and result.dropped_indexes == ()
    assert moto_server.scan_canonical(result.target) == moto_server.scan_canonical(pitr_table)
    info = pitr.describe_table(result.target, aws=moto_server.aws)
    assert info.is_restore
    assert info.restore_source_arn == pitr.describe_table(pitr_table, aws=moto_server.aws).arn


def test_restore_at_a_time_inside_the_window(moto_server: Server, pitr_table: str) -> None:
    window = pitr.window(pitr_table, aws=moto_server.aws)
    at = pitr.format_time(window.earliest)
    assert at is not None
    result = cli(moto_server, "restore", pitr_table, "--at", at, "--target", f"{pitr_table}-r")
    assert result.exit_code == EXIT_OK, result.output
    assert f"{pitr_table}-r" in table_names(moto_server)
    assert f"pitrdiff cleanup {pitr_table}-r" in result.stderr
    assert f"pitrdiff recover {pitr_table} --at {at}" in result.stderr


def test_restore_refuses_a_naive_time(moto_server: Server, pitr_table: str) -> None:
    before = table_names(moto_server)
    with pytest.raises(InputError, match="no zone"):
        pitr.restore(pitr_table, at="2026-10-27T14:00:00", aws=moto_server.aws)
    result = cli(moto_server, "restore", pitr_table, "--at", "2026-10-27T14:00:00")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "no zone" in result.stderr
    assert table_names(moto_server) == before


def test_restore_refuses_a_time_outside_the_window(moto_server: Server, pitr_table: str) -> None:
    window = pitr.window(pitr_table, aws=moto_server.aws)
    assert window.earliest is not None
    before = table_names(moto_server)
    too_early = window.earliest - dt.timedelta(hours=1)
    with pytest.raises(PitrError, match="outside the restorable window") as caught:
        pitr.restore(pitr_table, at=too_early, aws=moto_server.aws)
    assert window.describe() in str(caught.value)  # the message shows the window
    assert table_names(moto_server) == before


def test_restore_refuses_a_time_in_the_future(moto_server: Server, pitr_table: str) -> None:
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    result = cli(moto_server, "restore", pitr_table, "--at", pitr.format_time(future) or "")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "in the future" in result.stderr


def test_restore_refuses_when_pitr_is_off(moto_server: Server, table: str) -> None:
    with pytest.raises(PitrError, match="off"):
        pitr.restore(table, latest=True, aws=moto_server.aws)


def test_restore_needs_exactly_one_of_at_and_latest(moto_server: Server, pitr_table: str) -> None:
    assert cli(moto_server, "restore", pitr_table).exit_code == EXIT_BAD_INPUT
    both = cli(moto_server, "restore", pitr_table, "--latest", "--at", "2026-10-27T14:00:00Z")
    assert both.exit_code == EXIT_BAD_INPUT


def test_restore_refuses_an_existing_target(moto_server: Server, pitr_table: str) -> None:
    target = f"{pitr_table}-r"
    pitr.restore(pitr_table, latest=True, target=target, aws=moto_server.aws)
    with pytest.raises(RefusedError, match="already exists"):
        pitr.restore(pitr_table, latest=True, target=target, aws=moto_server.aws)
    result = cli(moto_server, "restore", pitr_table, "--latest", "--target", target)
    assert result.exit_code == EXIT_BAD_INPUT
    # --reuse accepts it, because it is a restore of the same source
    reused = pitr.restore(pitr_table, latest=True, target=target, reuse=True, aws=moto_server.aws)
    assert reused.reused and reused.ready
    # never the live table itself, never a table that is not a restore of this source
    with pytest.raises(RefusedError):
        pitr.restore(pitr_table, latest=True, target=pitr_table, reuse=True, aws=moto_server.aws)


def test_reuse_refuses_a_restore_of_another_table(moto_server: Server, pitr_table: str) -> None:
    other = f"{pitr_table}-other"
    moto_server.create_table(other)
    pitr.enable_pitr(other, aws=moto_server.aws)
    pitr.restore(other, latest=True, target=f"{other}-r", aws=moto_server.aws)
    with pytest.raises(RefusedError, match="is a restore of"):
        pitr.restore(pitr_table, latest=True, target=f"{other}-r", reuse=True, aws=moto_server.aws)
    with pytest.raises(RefusedError, match="not a restored table"):
        pitr.restore(pitr_table, latest=True, target=other, reuse=True, aws=moto_server.aws)


def test_restore_without_indexes(moto_server: Server, pitr_table: str) -> None:
    request = pitr.restore_request(pitr_table, "t-x", at=None, no_indexes=True)
    assert request["GlobalSecondaryIndexOverride"] == []
    assert request["LocalSecondaryIndexOverride"] == []
    assert "GlobalSecondaryIndexOverride" not in pitr.restore_request(
        pitr_table, "t-x", at=None, no_indexes=False
    )
    result = cli(moto_server, "restore", pitr_table, "--latest", "--no-indexes", "--json")
    assert result.exit_code == EXIT_OK, result.output
    document = json.loads(result.stdout)
    assert document["dropped_indexes"] == ["by-g"]
    assert document["indexes"] == []
    # moto ignores the index overrides (it copies the indexes); AWS honours them.
    assert moto_server.scan_canonical(document["target"]) == moto_server.scan_canonical(pitr_table)


def test_restore_no_wait_then_wait(moto_server: Server, pitr_table: str) -> None:
    target = f"{pitr_table}-nw"
    started = cli(moto_server, "restore", pitr_table, "--latest", "--target", target, "--no-wait")
    assert started.exit_code == EXIT_OK, started.output
    result = cli(moto_server, "restore", "--wait", target, "--json")
    assert result.exit_code == EXIT_OK, result.output
    document = json.loads(result.stdout)
    assert document["table"]["status"] == "ACTIVE"
    assert document["table"]["is_restore"] is True
    missing = cli(moto_server, "restore", "--wait", f"{pitr_table}-missing")
    assert missing.exit_code == EXIT_BAD_INPUT


@pytest.fixture(scope="module")
def slow_dynalite() -> Iterator[Server]:
    """dynalite whose tables stay CREATING for a moment, to watch a wait."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(ensure_dynalite()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            "1500",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield Server("dynalite-slow", f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_wait_polls_until_active_and_reports_status(slow_dynalite: Server, table_name: str) -> None:
    client = slow_dynalite.client()
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    recorder = Recorder()
    info, _ = pitr.wait_for_table(
        table_name, aws=slow_dynalite.aws, progress=recorder, poll_seconds=0.1
    )
    assert info.status == "ACTIVE"
    statuses = [value for kind, value in recorder.events if kind == "status"]
    assert statuses[0] == "CREATING" and statuses[-1] == "ACTIVE"
    assert recorder.events[0] == ("start", f"waiting for {table_name}")
    assert recorder.events[-1] == ("finish", None)


def test_wait_times_out_with_the_resume_command(slow_dynalite: Server, table_name: str) -> None:
    slow_dynalite.client().create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(PitrError, match=f"pitrdiff restore --wait {table_name}"):
        pitr.wait_for_table(table_name, aws=slow_dynalite.aws, poll_seconds=0.01, timeout_s=0.0)


# --------------------------------------------------------------------------- cleanup


def test_cleanup_refuses_a_table_that_is_not_a_restore(moto_server: Server, table: str) -> None:
    with pytest.raises(RefusedError, match="not a restored table"):
        pitr.cleanup(table, aws=moto_server.aws)
    result = cli(moto_server, "cleanup", table, "--yes")
    assert result.exit_code == EXIT_BAD_INPUT
    assert table in table_names(moto_server)


def test_cleanup_deletes_a_restore_after_confirmation(moto_server: Server, pitr_table: str) -> None:
    target = f"{pitr_table}-r"
    pitr.restore(pitr_table, latest=True, target=target, aws=moto_server.aws)
    unconfirmed = cli(moto_server, "cleanup", target)  # no terminal, no --yes
    assert unconfirmed.exit_code == EXIT_BAD_INPUT
    assert target in table_names(moto_server)
    kept = pitr.cleanup(target, aws=moto_server.aws, confirm=lambda info: False)
    assert not kept.deleted and target in table_names(moto_server)
    result = cli(moto_server, "cleanup", target, "--yes")
    assert result.exit_code == EXIT_OK, result.output
    assert target not in table_names(moto_server)
    assert pitr_table in table_names(moto_server)


def test_validate_restore_time_follows_aws_semantics() -> None:
    """AWS's window moves and its latest time trails now; moto's does neither."""
    now = dt.datetime(2026, 10, 27, 14, 0, tzinfo=dt.timezone.utc)
    window = pitr.PitrWindow(
        table="Orders",
        status="ENABLED",
        earliest=now - dt.timedelta(days=35),
        latest=now - dt.timedelta(minutes=5),
        recovery_period_days=35,
        checked_at=now,
    )
    pitr.validate_restore_time(now - dt.timedelta(hours=1), window, now=now)  # inside: fine
    with pytest.raises(PitrError, match="trails now by a few minutes"):
        pitr.validate_restore_time(now - dt.timedelta(minutes=2), window, now=now)
    with pytest.raises(PitrError, match="in the future"):
        pitr.validate_restore_time(now + dt.timedelta(seconds=1), window, now=now)
    with pytest.raises(PitrError, match="outside the restorable window"):
        pitr.validate_restore_time(now - dt.timedelta(days=36), window, now=now)
    assert window.latest_lag == dt.timedelta(minutes=5)
    just_enabled = pitr.PitrWindow("Orders", "ENABLED", None, None, None, now)
    with pytest.raises(PitrError, match="no window yet"):
        pitr.validate_restore_time(now, just_enabled, now=now)


def test_ctrl_c_while_waiting_says_how_to_resume(slow_dynalite: Server, table_name: str) -> None:
    slow_dynalite.client().create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=f"pitrdiff restore --wait {table_name}") as caught:
        pitr.wait_for_table(table_name, aws=slow_dynalite.aws, sleep=interrupt)
    assert caught.value.exit_code == EXIT_INTERRUPTED
