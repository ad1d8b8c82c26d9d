"""The demo (as a subprocess), its embedded-server helpers and the seed data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pitrdiff import codec
from pitrdiff.demo import TABLE, run_demo, seed_items
from pitrdiff.embedded import demo_credentials, fast_scan_responses
from pitrdiff.errors import EXIT_OK, RefusedError
from pitrdiff.recovery.apply import apply_plan
from sample_data import seed
from tests.helpers import Server

ROOT = Path(__file__).resolve().parent.parent


def test_seed_file_is_what_the_script_writes() -> None:
    assert seed.encode(seed.generate()) == seed.SEED_FILE.read_bytes()
    assert seed.SEED_FILE.stat().st_size < 1_000_000


def test_seed_items_hold_every_type_and_several_tenants() -> None:
    items = seed_items()
    assert items == seed.load_items()
    assert len(items) == len(seed.TENANTS) * seed.ORDERS_PER_TENANT
    assert {i["pk"]["S"] for i in items} == {f"TENANT#{t}" for t in seed.TENANTS}
    tags: set[str] = set()

    def walk(typed: dict[str, Any]) -> None:
        ((tag, value),) = typed.items()
        tags.add(tag)
        if tag == "M":
            for inner in value.values():
                walk(inner)
        elif tag == "L":
            for inner in value:
                walk(inner)

    for item in items:
        for typed in item.values():
            walk(typed)
        assert item["updated_at"]["S"].endswith("Z")
    assert tags == set(codec.TYPE_TAGS)
    assert any("." in i["total"]["N"] for i in items)  # decimal prices


def test_demo_credentials_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "outer")
    with demo_credentials():
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == "pitrdiff-demo"
    assert os.environ["AWS_PROFILE"] == "someone-real"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "outer"


def test_fast_scan_responses_match_moto_serialisation(moto_server: Server, table_name: str) -> None:
    items = [i for i in seed_items() if "attachments" in i][:15] + seed_items()[:15]
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, items)
    client = moto_server.client()

    def scan_all() -> list[dict[str, Any]]:
        pages, request = [], {"TableName": table_name, "Limit": 7}
        while True:
            page = client.scan(**request)
            page.pop("ResponseMetadata")
            pages.append(page)
            if "LastEvaluatedKey" not in page:
                return pages
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    slow = scan_all()
    with fast_scan_responses() as patched:
        assert patched
        fast = scan_all()
    assert fast == slow
    assert sum(len(p["Items"]) for p in fast) == 30
    assert scan_all() == slow  # the patch is gone again


def test_demo_refuses_a_keep_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(RefusedError, match="not empty"):
        run_demo(keep=tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``pitrdiff demo --keep DIR --json`` run once as a subprocess: (the process, DIR)."""
    work = tmp_path_factory.mktemp("demo")
    keep = work / "kept"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(
        [sys.executable, "-m", "pitrdiff", "demo", "--keep", str(keep), "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    return completed, keep


@pytest.mark.slow
def test_demo_runs_as_a_subprocess(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, keep = demo_run
    assert completed.returncode == EXIT_OK, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert result["ok"] is True
    assert result["verdict"].startswith("RECOVERED")
    assert result["top_signature"] == "total"
    assert all(check["ok"] for check in result["checks"])
    counts = result["counts"]
    assert counts["diff_deleted"] == counts["deleted_by_cleanup"] == 500
    assert counts["conflicts"] == 0
    for name in ("live/manifest.json", "restored/manifest.json", "diff/manifest.json"):
        assert (keep / name).exists()
    with open(keep / "plan.jsonl", "rb") as plan:
        assert sum(1 for _ in plan) == counts["plan_operations"] + 2  # header + trailer


@pytest.mark.slow
def test_a_kept_demo_plan_is_refused_elsewhere(
    demo_run: tuple[subprocess.CompletedProcess[str], Path], dynalite_server: Server
) -> None:
    """``demo --keep`` leaves its plan and journal; the journal is bound to the demo's
    embedded endpoint, so applying the kept plan to an empty ``Orders`` table on
    another server is refused (dry run too), in one line naming both places, and
    nothing is written or skipped (issue 11, case 4)."""
    completed, keep = demo_run
    assert completed.returncode == EXIT_OK, completed.stderr[-3000:]
    keys = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    dynalite_server.create_table(TABLE, keys, {"pk": "S", "sk": "S"})
    try:
        for dry_run in (True, False):
            with pytest.raises(RefusedError) as refused:
                apply_plan(keep / "plan.jsonl", aws=dynalite_server.aws, dry_run=dry_run)
            message = str(refused.value)
            assert "\n" not in message
            assert message.count(":table/Orders at http://127.0.0.1:") == 2
            arn = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders"
            assert f"this apply is to {arn} at {dynalite_server.endpoint}:" in message
        assert dynalite_server.client().scan(TableName=TABLE)["Count"] == 0
    finally:
        dynalite_server.client().delete_table(TableName=TABLE)
