"""Concurrency harness: apply under live traffic loses no acknowledged write.

Four writer threads work on hot keys (every key of the plan) through the strict
layer with 5 ms of latency, while an apply of deleted, changed and added
operations runs, strict and ``--merge``, on moto and dynalite, 5 seeds each.
Each key belongs to one writer thread, so the writes to a key have one order;
the oracle records every write the server acknowledged, in that order.

The oracle then explains each key's final state: replaying the acknowledged
writes in order, with the apply's write inserted at some point ``k`` where its
condition held (the intended, atomic rule of the outcome the report gives:
put while absent; update while the observed attributes are as observed; delete
while the item is exactly as observed), must give the final state exactly; an
operation the report says was not written (conflict, already done) must leave
exactly the replay of the writes. A lost write, an overwritten value or an
outcome that does not match what happened fails the test. Every item whose
final state is not its restored version is explained by a reported conflict or
merge, or by writes that came after the apply's.

Residual (README, "What the conditions guarantee"): DynamoDB has no condition
"and no other attribute", so a delete of an *added* item cannot see an
attribute written between pitrdiff's read and its delete; that attribute is
deleted with the item and reported (conflict, the deleted version in the
conflicts file); the item is never put back, since a put-back could undo a
delete acknowledged to someone else. Writers here therefore do not add
attributes to added items; ``test_apply.py`` shows that window deterministically.

Writer operations: ``ADD h :1`` (a counter), ``SET`` of a new attribute and of
an existing one, ``REMOVE``, ``PutItem`` (replacing the item) and
``DeleteItem``; updates carry ``attribute_exists(pk)`` so they never create an
item (a refused one is not acknowledged, so not recorded).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from pitrdiff import codec
from pitrdiff.aws import dynamodb_client
from pitrdiff.diff.core import diff_exports
from pitrdiff.export.dataset import write_export
from pitrdiff.recovery.apply import apply_plan
from pitrdiff.recovery.plan import write_plan
from tests.helpers import Server
from tests.strictproxy import StrictProxy

HASH = [{"AttributeName": "pk", "KeyType": "HASH"}]
DEFINITIONS = [{"AttributeName": "pk", "AttributeType": "S"}]
WRITERS = 4
DELETED = range(0, 6)
CHANGED = range(6, 14)
UNCHANGED = range(14, 18)
ADDED = range(18, 22)
Item = dict[str, Any]


def pk(n: int) -> str:
    return f"h{n:02d}"


def restored_item(n: int) -> Item:
    return {
        "pk": {"S": pk(n)},
        "v": {"N": "1"},
        "s": {"S": "orig"},
        "l": {"L": [{"N": "1"}, {"M": {"a": {"S": "b"}}}]},
        "c": {"N": "0"},
    }


def live_item(n: int) -> Item | None:
    if n in DELETED:
        return None
    if n in CHANGED:
        item = {**restored_item(n), "v": {"N": "100"}}
        if n % 2:  # a bug also dropped 'l' and wrote 'bug'
            del item["l"]
            item["bug"] = {"S": "x"}
        return item
    if n in ADDED:
        return {"pk": {"S": pk(n)}, "v": {"N": "5"}, "note": {"S": "added after T"}}
    return restored_item(n)


def canon(item: Mapping[str, Any] | None) -> str | None:
    return None if item is None else codec.canonical_json(item)


@pytest.fixture(scope="module")
def hot_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plan (deleted, changed, added) for every run: a plan names no server."""
    work = tmp_path_factory.mktemp("hot")
    keys = [*DELETED, *CHANGED, *UNCHANGED, *ADDED]
    live = [i for i in (live_item(n) for n in keys) if i is not None]
    restored = [restored_item(n) for n in keys if n not in ADDED]
    write_export(
        live, work / "live", table_name="Hot", key_schema=HASH, attribute_definitions=DEFINITIONS
    )
    write_export(
        restored,
        work / "restored",
        table_name="Hot",
        key_schema=HASH,
        attribute_definitions=DEFINITIONS,
    )
    diff_exports(work / "live", work / "restored", work / "diff")
    summary = write_plan(work / "diff", work / "plan.jsonl", include="deleted,changed,added")
    assert (summary.counts["deleted"], summary.counts["changed"], summary.counts["added"]) == (
        6,
        8,
        4,
    )
    return work / "plan.jsonl"


# --------------------------------------------------------------------------- the model


IMPOSSIBLE: Item = {"<impossible>": {"NULL": True}}


def replay(state: Item | None, write: tuple[Any, ...]) -> Item | None:
    """One acknowledged write, as DynamoDB applies it (``IMPOSSIBLE``: cannot have happened)."""
    kind = write[0]
    if state is IMPOSSIBLE:
        return IMPOSSIBLE
    if kind == "put":
        return dict(write[1])
    if kind == "delete":
        return None
    if state is None:  # updates carry attribute_exists(pk): acknowledged, so the item existed
        return IMPOSSIBLE
    after = dict(state)
    if kind == "add":
        old = Decimal(after[write[1]]["N"]) if write[1] in after else Decimal(0)
        after[write[1]] = {"N": codec.normalize_number(str(old + 1))}
    elif kind == "set":
        after[write[1]] = write[2]
    elif kind == "remove":
        after.pop(write[1], None)
    return after


def differs(a: Mapping[str, Any], b: Mapping[str, Any], name: str) -> bool:
    x, y = a.get(name), b.get(name)
    return (x is None) != (y is None) or (x is not None and canon({"v": x}) != canon({"v": y}))


class Intent:
    """What the apply means to do to one key: its condition and its effect."""

    def __init__(self, n: int, merge: bool) -> None:
        self.n, self.merge = n, merge
        self.live, self.restored = live_item(n), (None if n in ADDED else restored_item(n))

    def target(self) -> Item | None:
        return self.restored

    def holds(self, state: Item | None) -> bool:
        if state is IMPOSSIBLE:
            return False
        if self.n in DELETED:
            return state is None
        if self.n in ADDED:
            return canon(state) == canon(self.live)
        assert self.live is not None and self.restored is not None
        if state is None:
            return False
        names = self.changed() if self.merge else (set(self.live) | set(self.restored)) - {"pk"}
        return not any(differs(state, self.live, name) for name in names)

    def changed(self) -> set[str]:
        assert self.live is not None and self.restored is not None
        names = (set(self.live) | set(self.restored)) - {"pk"}
        return {name for name in names if differs(self.live, self.restored, name)}

    def effect(self, state: Item | None) -> Item | None:
        if self.n in DELETED:
            return self.restored
        if self.n in ADDED:
            return None
        assert state is not None and self.restored is not None
        after = dict(state)
        for name in self.changed():
            if name in self.restored:
                after[name] = self.restored[name]
            else:
                after.pop(name, None)
        return after


def explain(
    intent: Intent, writes: list[tuple[Any, ...]], final: str | None, outcome: str
) -> str | None:
    """``None`` when the outcome and the writes explain the final state, else why not."""
    states = [live_item(intent.n)]
    for write in writes:
        states.append(replay(states[-1], write))
    untouched = canon(states[-1])
    if outcome in ("conflict", "already_done"):
        if untouched != final:
            return f"{outcome}, but the final state is not the writes alone: a write was lost"
        wanted = (
            (lambda s: canon(s) == canon(intent.target()))
            if outcome == "already_done"
            else (lambda s: not intent.holds(s))
        )
        return None if any(wanted(s) for s in states) else f"{outcome} never fits the states"
    if outcome not in ("applied", "merged"):
        return f"unexpected outcome {outcome}"
    for k, state in enumerate(states):
        if not intent.holds(state):
            continue
        written = intent.effect(state)
        if (canon(written) == canon(intent.target())) != (outcome == "applied"):
            continue
        after = written
        for write in writes[k:]:
            after = replay(after, write)
        if canon(after) == final:
            return None
    return f"{outcome}: no point where the write's condition held explains the final state"


# --------------------------------------------------------------------------- writers


class Writers:
    """Four threads writing to their own hot keys; they record what was acknowledged."""

    def __init__(self, client: Any, table: str, seed: int) -> None:
        self.client, self.table = client, table
        self.log: dict[int, list[tuple[Any, ...]]] = {n: [] for n in range(22)}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(seed * 10 + t, t), daemon=True)
            for t in range(WRITERS)
        ]
        self.errors: list[BaseException] = []

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def run(self, seed: int, thread: int) -> None:
        rng = random.Random(seed)
        mine = [n for n in range(22) if n % WRITERS == thread]
        count = 0
        try:
            while not self.stop.is_set():
                n = rng.choice(mine)
                write = self.choose(rng, n, f"t{thread}-{count}")
                if self.send(n, write):
                    self.log[n].append(write)
                count += 1
                time.sleep(rng.uniform(0, 0.03))
        except BaseException as exc:
            self.errors.append(exc)

    def choose(self, rng: random.Random, n: int, token: str) -> tuple[Any, ...]:
        if n in ADDED:  # no attribute additions here: the documented residual
            kinds = ["set_existing", "remove_existing", "put", "delete"]
        else:
            kinds = ["add", "add", "set_new", "set_new", "set_existing", "remove_existing"]
            kinds += ["remove_new", "put", "delete"]
        kind = rng.choice(kinds)
        if kind == "add":
            return ("add", "h")
        if kind == "set_new":
            return ("set", "w", {"S": token})
        if kind == "set_existing":
            return ("set", "v", {"N": str(1000 + rng.randint(0, 10**6))})
        if kind == "remove_existing":
            return ("remove", "s" if n not in ADDED else "note")
        if kind == "remove_new":
            return ("remove", "w")
        if kind == "put":
            return ("put", {"pk": {"S": pk(n)}, "v": {"N": "7"}, "p": {"S": token}})
        return ("delete",)

    def send(self, n: int, write: tuple[Any, ...]) -> bool:
        key = {"pk": {"S": pk(n)}}
        kind = write[0]
        if kind == "put":
            self.client.put_item(TableName=self.table, Item=write[1])
            return True
        if kind == "delete":
            self.client.delete_item(TableName=self.table, Key=key)
            return True
        names = {"#k": "pk", "#a": write[1]}
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "ExpressionAttributeNames": names,
        }
        if kind == "add":
            request.update(
                UpdateExpression="ADD #a :one", ExpressionAttributeValues={":one": {"N": "1"}}
            )
        elif kind == "set":
            request.update(
                UpdateExpression="SET #a = :v", ExpressionAttributeValues={":v": write[2]}
            )
        else:
            request.update(UpdateExpression="REMOVE #a")
        try:
            self.client.update_item(**request, ConditionExpression="attribute_exists(#k)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


# --------------------------------------------------------------------------- the harness


@pytest.fixture
def strict_ddb(ddb: Server) -> Iterator[tuple[Server, StrictProxy]]:
    """The server behind the strict layer with 5 ms of latency; ``proxy.upstream`` is direct."""
    with StrictProxy(ddb.endpoint, delay_s=0.005) as proxy:
        yield Server(ddb.name, proxy.url), proxy


def seed_directly(proxy: StrictProxy, table: str, items: list[Item]) -> None:
    """Set-up writes straight to the server (they are not what is tested)."""
    direct = dynamodb_client(Server("direct", proxy.upstream).aws)
    for start in range(0, len(items), 25):
        pending: Any = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while pending:
            pending = direct.batch_write_item(RequestItems=pending).get("UnprocessedItems")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("policy", ["strict", "merge"])
def test_no_acknowledged_write_is_lost(
    strict_ddb: tuple[Server, StrictProxy],
    table_name: str,
    hot_plan: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    seed: int,
) -> None:
    server, proxy = strict_ddb
    server.create_table(table_name, HASH, {"pk": "S"})
    client = dynamodb_client(server.aws, max_pool_connections=WRITERS + 2)
    seed_directly(proxy, table_name, [i for i in (live_item(n) for n in range(22)) if i])
    plan = tmp_path / "plan.jsonl"
    plan.write_bytes(hot_plan.read_bytes())
    monkeypatch.setenv("PITRDIFF_APPLY_DELAY_S", "0.02")  # stretch the apply over the traffic
    with Writers(client, table_name, seed) as writers:
        time.sleep(0.15)
        report = apply_plan(
            plan, table=table_name, merge=policy == "merge", workers=2, aws=server.aws
        )
        time.sleep(0.15)
    assert writers.errors == []
    final = {
        i["pk"]["S"]: codec.canonical_json(i)
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True)
        for i in page["Items"]
    }
    listed: dict[str, str] = {}
    if report.conflicts_file:
        for line in Path(report.conflicts_file).read_bytes().splitlines():
            doc = orjson.loads(line)
            listed[doc["key"]["pk"]["S"]] = doc["outcome"]
    planned = [*DELETED, *CHANGED, *ADDED]
    problems = {}
    for n in planned:
        intent = Intent(n, policy == "merge")
        outcome = listed.get(pk(n))
        candidates = [outcome] if outcome else ["applied", "already_done"]
        reasons = [explain(intent, writers.log[n], final.get(pk(n)), o) for o in candidates]
        if all(r is not None for r in reasons):
            problems[pk(n)] = (reasons, writers.log[n])
    for n in UNCHANGED:  # not in the plan: exactly the writes
        state = live_item(n)
        for write in writers.log[n]:
            state = replay(state, write)
        if canon(state) != final.get(pk(n)):
            problems[pk(n)] = (["not in the plan, yet not the writes alone"], writers.log[n])
    acknowledged = sum(len(v) for v in writers.log.values())
    assert problems == {}, problems
    assert report.failed == 0 and proxy.refusals == []
    assert report.applied + report.already_done + report.merged + report.conflicts == len(planned)
    assert sum(1 for o in listed.values() if o == "merged") == report.merged
    assert acknowledged >= 40  # the traffic really overlapped the apply


@pytest.mark.parametrize("policy", ["strict", "merge"])
def test_case1_counters_and_new_attributes_survive_the_apply(
    strict_ddb: tuple[Server, StrictProxy],
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    """Issue 11, case 1 (scaled down): a changed ``v`` is repaired on 60 items while
    4 threads do ``ADD h :one SET hv = :unique`` on 12 of them. Every increment the
    server acknowledged is in the final item, so is the last ``hv``; ``v`` is
    repaired everywhere; items whose counters were written first are ``merged``."""
    server, proxy = strict_ddb
    restored = [
        {"pk": {"S": f"c{i:02d}"}, "v": {"N": "1"}, "s": {"S": "orig"},
         "l": {"L": [{"N": "1"}, {"M": {"a": {"S": "b"}}}]}}
        for i in range(60)
    ]  # fmt: skip
    live = [{**item, "v": {"N": "100"}} for item in restored]
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items, tmp_path / name, table_name=table_name, key_schema=HASH,
            attribute_definitions=DEFINITIONS,
        )  # fmt: skip
    diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    plan = tmp_path / "plan.jsonl"
    write_plan(tmp_path / "diff", plan, include="changed")
    server.create_table(table_name, HASH, {"pk": "S"})
    client = dynamodb_client(server.aws, max_pool_connections=8)
    seed_directly(proxy, table_name, live)
    hot = [f"c{i:02d}" for i in random.Random(11).sample(range(60), 12)]
    acknowledged: dict[str, list[str]] = {k: [] for k in hot}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        count = 0
        while not stop.is_set():
            key, token = rng.choice(hot), f"w{seed}-{count}"
            count += 1
            with lock:  # one write at a time per key keeps the order known
                client.update_item(
                    TableName=table_name,
                    Key={"pk": {"S": key}},
                    UpdateExpression="ADD #h :one SET #hv = :u",
                    ExpressionAttributeNames={"#h": "h", "#hv": "hv"},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":u": {"S": token}},
                )
                acknowledged[key].append(token)

    monkeypatch.setenv("PITRDIFF_APPLY_DELAY_S", "0.005")
    threads = [threading.Thread(target=writer, args=(s,), daemon=True) for s in range(4)]
    for thread in threads:
        thread.start()
    try:
        report = apply_plan(plan, merge=policy == "merge", workers=4, aws=server.aws)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    final = {
        i["pk"]["S"]: i
        for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True)
        for i in page["Items"]
    }
    assert all(item["v"] == {"N": "1"} for item in final.values())
    for key, tokens in acknowledged.items():
        if tokens:
            assert final[key]["h"] == {"N": str(len(tokens))}, key
            assert final[key]["hv"] == {"S": tokens[-1]}, key
    assert (report.conflicts, report.failed) == (0, 0)
    assert report.applied + report.merged == 60
    assert 1 <= report.merged <= 12
    assert sum(len(t) for t in acknowledged.values()) >= 12
    assert proxy.refusals == []
