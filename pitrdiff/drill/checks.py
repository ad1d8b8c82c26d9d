"""The drill's checks: expectations files, writes explained by a time attribute, keys, settings."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.diff.schema import literal
from pitrdiff.drill.model import (
    DIFF_DIR,
    EXPECT_KEYS,
    INCREMENTAL_DIR,
    RESTORED_DIR,
    DrillCheck,
    DrillState,
)
from pitrdiff.errors import (
    InputError,
    StorageError,
)
from pitrdiff.export.keys import KeySchema

# --------------------------------------------------------------------------- expectations

# The largest values an expectation may hold: counts as DynamoDB's and JSON's
# 64-bit integers (drill.json holds them), an RTO of at most a year (restores
# take minutes to hours; AWS documents no restore longer than a day or so).
MAX_COUNT = 2**63 - 1
MAX_RTO_SECONDS = 365 * 86400


def load_expectations(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an ``--expect`` file (YAML or JSON) and check its keys and types.

    Raises
    ------
    InputError
        When the file is not a mapping of known expectations with valid values.
    StorageError
        When it cannot be read.
    """
    import yaml  # type: ignore[import-untyped]

    file = Path(path)
    if file.is_dir():
        raise InputError(f"--expect {file} is a directory; name a YAML or JSON file")
    if file.exists() and not file.is_file():
        raise InputError(f"--expect {file} is not a regular file; name a YAML or JSON file")
    if not file.is_file():
        raise InputError(f"--expect {file}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--expect {file} is not UTF-8 text (YAML or JSON)") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    is_json = file.suffix == ".json"
    try:
        document = (
            json.loads(text, object_pairs_hook=_unique_pairs)
            if is_json
            else yaml.load(text, Loader=_unique_key_loader())
        )
    except _DuplicateKey as exc:
        raise InputError(f"--expect {file}: {exc} (each expectation once)") from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{file} is not valid {'JSON' if is_json else 'YAML'}: "
                         f"{str(exc).splitlines()[0]}") from exc  # fmt: skip
    if document is None or document == {}:
        # a truncated file must not silently turn every expectation off
        raise InputError(f"--expect {file} holds no expectations; leave --expect out for none")
    return validate_expectations(document, str(file))


class _DuplicateKey(ValueError):
    """A key given twice in one mapping of an expectations file."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"{key!r} is given twice")
        seen[key] = value
    return seen


def _unique_key_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            for index, key in enumerate(keys):
                if isinstance(key, (str, int, float, bool)) and key in keys[:index]:
                    raise _DuplicateKey(f"{key!r} is given twice")
            return super().construct_mapping(node, deep=deep)

    return Loader


def validate_expectations(document: Any, source: str = "expectations") -> dict[str, Any]:
    """Check the keys, types and setting names of expectations (a file's, or a mapping).

    Raises
    ------
    InputError
        When ``document`` is not a mapping of known expectations with valid values.
    """
    from pitrdiff.settings import SETTINGS

    if not isinstance(document, Mapping):
        raise InputError(f"{source}: expected a mapping of expectations")
    bad_text = _lone_surrogate(document)
    if bad_text is not None:
        raise InputError(f"{source}: {bad_text} is not valid UTF-8 text (a lone surrogate)")
    unknown = sorted(set(document) - EXPECT_KEYS)
    if unknown:
        raise InputError(
            f"{source}: unknown expectation {', '.join(unknown)} "
            f"(known: {', '.join(sorted(EXPECT_KEYS))})"
        )
    for name, value in document.items():
        if name.startswith("max_") and not _finite_number(value, whole=name != "max_rto_seconds"):
            raise InputError(
                f"{source}: {name} must be a "
                f"{'number' if name == 'max_rto_seconds' else 'whole number'} >= 0, not {value!r}"
            )
        limit = MAX_RTO_SECONDS if name == "max_rto_seconds" else MAX_COUNT
        if name.startswith("max_") and value > limit:
            raise InputError(f"{source}: {name} must be at most {limit:,}, not {value:,}")
        if name.endswith("_items") and (not isinstance(value, dict) or set(value) - {"min", "max"}):
            raise InputError(f"{source}: {name} must be a mapping with min and/or max")
        if name.endswith("_items"):
            if not all(_finite_number(v, whole=True) for v in value.values()):
                raise InputError(f"{source}: {name} min and max must be whole numbers >= 0")
            if any(v > MAX_COUNT for v in value.values()):
                raise InputError(f"{source}: {name} min and max must be at most {MAX_COUNT:,}")
            if value.get("min", 0) > value.get("max", value.get("min", 0)):
                raise InputError(f"{source}: {name} min {value['min']} is above max {value['max']}")
        if name == "settings_must_match" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InputError(f"{source}: settings_must_match must be a list of setting names")
        if name == "settings_must_match" and (bad := [v for v in value if v not in SETTINGS]):
            raise InputError(
                f"{source}: unknown setting {', '.join(bad)} (known: {', '.join(SETTINGS)})"
            )
        if name == "keys_must_exist" and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise InputError(f"{source}: keys_must_exist must be a list of key mappings")
    return dict(document)


def _lone_surrogate(value: Any, where: str = "") -> str | None:
    r"""Where a string (a key or a value) in ``value`` holds a lone surrogate, else ``None``.

    Such text cannot be written as UTF-8 (a JSON ``"\ud800"`` or YAML ``"\uD800"``
    decodes to one): the place is named with ASCII escapes.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or ascii(value)
        return None
    children: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = ascii(key)[1:-1] if isinstance(key, str) else str(key)
            if isinstance(key, str) and _lone_surrogate(key) is not None:
                return f"the name {key!a}"
            children.append((f"{where}.{name}" if where else name, item))
    elif isinstance(value, list):
        children = [(f"{where}[{number}]", item) for number, item in enumerate(value)]
    for place, item in children:
        found = _lone_surrogate(item, place)
        if found is not None:
            return found
    return None


def _finite_number(value: Any, *, whole: bool) -> bool:
    """A count or a duration: a number >= 0, not NaN or infinite (nor a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if whole and not (isinstance(value, int) or float(value).is_integer()):
        return False
    return math.isfinite(value) and value >= 0


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``6h``, ``7d`` (or plain seconds) → a timedelta.

    Raises
    ------
    InputError
        When the text is not such a duration.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number)
    except ValueError as exc:
        raise InputError(f"not a duration: {text!r} (e.g. 90s, 15m, 6h, 7d)") from exc
    if value < 0:
        raise InputError(f"not a duration: {text!r} (negative)")
    return dt.timedelta(seconds=value * units[unit])


# --------------------------------------------------------------------------- checks


def check_updated_attr(d: DrillState) -> DrillCheck:
    """Every changed and added item's live version has ``updated_attr`` later than T."""
    import duckdb

    from pitrdiff.diff.html import epoch_seconds_sql

    assert d.t is not None and d.updated_attr is not None
    files = [d.workdir / DIFF_DIR / f"{n}.parquet" for n in ("changed", "added")]
    union = " UNION ALL ".join(
        f"SELECT _key, {epoch_seconds_sql('live_item', d.updated_attr)} AS t "
        f"FROM read_parquet({literal(str(f))})"
        for f in files
        if f.is_file()
    )
    threshold = d.t.timestamp()
    union = union or "SELECT NULL AS _key, NULL::DOUBLE AS t WHERE false"
    con = duckdb.connect()
    try:
        checked, late, missing = con.execute(
            f"SELECT count(*), count(*) FILTER (t > {threshold!r}), count(*) FILTER (t IS NULL) "
            f"FROM ({union})"
        ).fetchone() or (0, 0, 0)
        samples = [
            r[0]
            for r in con.execute(
                f"SELECT _key FROM ({union}) WHERE t IS NULL OR t <= {threshold!r} "
                "ORDER BY _key LIMIT 5"
            ).fetchall()
        ]
    finally:
        con.close()
    unexplained = int(checked) - int(late)
    figures = {
        "attribute": d.updated_attr,
        "t": pitr.format_time(d.t),
        "checked": int(checked),
        "newer_than_t": int(late),
        "without_attribute": int(missing),
        "unexplained": unexplained,
        "sample_keys": samples,
        "deleted_not_checkable": d.counts.get("deleted", 0),
    }
    message = (
        f"{int(checked):,} changed/added items: {int(late):,} have {d.updated_attr} after T, "
        f"{unexplained:,} do not ({int(missing):,} without it)"
    )
    return DrillCheck("updated-attr", unexplained == 0, message, figures)


def _bound_check(name: str, what: str, value: int, bounds: Mapping[str, Any]) -> DrillCheck:
    low, high = bounds.get("min"), bounds.get("max")
    ok = (low is None or value >= low) and (high is None or value <= high)
    message = f"{what}: {value:,} (expected {low if low is not None else '-'} … " + (
        f"{high if high is not None else '-'})"
    )
    return DrillCheck(name, ok, message, {"value": value, "min": low, "max": high})


def check_expectations(d: DrillState) -> list[DrillCheck]:
    """One check per expectation of the ``--expect`` file (see :mod:`pitrdiff.drill`)."""
    e = d.expect
    checks: list[DrillCheck] = []
    if "max_rto_seconds" in e and d.rto_s is not None:
        limit = e["max_rto_seconds"]
        checks.append(
            DrillCheck("max-rto", d.rto_s <= limit, f"RTO {d.rto_s:.1f}s (at most {limit}s)",
                       {"rto_s": d.rto_s, "max_rto_seconds": limit})
        )  # fmt: skip
    for side in ("restored", "live"):
        if f"{side}_items" in e:
            count = d.counts.get(f"{side}_items", 0)
            checks.append(_bound_check(f"{side}-items", f"{side} items", count, e[f"{side}_items"]))
    for cls in ("deleted", "changed", "added", "expired"):
        if f"max_{cls}" in e:
            count, limit = d.counts.get(cls, 0), e[f"max_{cls}"]
            checks.append(
                DrillCheck(f"max-{cls}", count <= limit, f"{count:,} {cls} (at most {limit:,})",
                           {"items": count, "max": limit})
            )  # fmt: skip
    if "settings_must_match" in e and d.settings is not None:
        checks.append(_check_settings(d, list(e["settings_must_match"])))
    if "keys_must_exist" in e:
        checks.append(_check_keys(d, list(e["keys_must_exist"])))
    return checks


def _check_settings(d: DrillState, names: Sequence[str]) -> DrillCheck:
    differing = [n for n in names if d.settings.difference(n) is not None]
    unanswered = [n for n in names if n in d.settings.unknown]
    ok = not differing and not unanswered
    message = (
        f"{len(names)} settings must match: "
        + (f"differ: {', '.join(differing)}" if differing else "none differs")
        + (f"; not answered: {', '.join(unanswered)}" if unanswered else "")
    )
    return DrillCheck(
        "settings-match", ok, message, {"settings": list(names), "differ": differing,
                                        "not_answered": unanswered}
    )  # fmt: skip


def _check_keys(d: DrillState, keys: Sequence[Mapping[str, Any]]) -> DrillCheck:
    """Each key (plain values; typed by the export's key schema) is in the restored export."""
    import duckdb

    from pitrdiff.export.dataset import KEY_COLUMN, load_export

    export = load_export(d.workdir / RESTORED_DIR)
    wanted = [key_json(key, export.key_schema) for key in keys]
    con = duckdb.connect()
    try:
        files = ", ".join(literal(f) for f in export.parquet_files)
        present = {
            r[0]
            for r in con.execute(
                f"SELECT {KEY_COLUMN} FROM read_parquet([{files}]) "
                f"WHERE {KEY_COLUMN} IN (SELECT unnest(?))",
                [wanted],
            ).fetchall()
        } if files else set()  # fmt: skip
    finally:
        con.close()
    missing = [k for k in wanted if k not in present]
    return DrillCheck(
        "keys-exist",
        not missing,
        f"{len(wanted) - len(missing)} of {len(wanted)} keys in the restored table",
        {"wanted": wanted, "missing": missing},
    )


def key_json(key: Mapping[str, Any], schema: KeySchema, source: str = "keys_must_exist") -> str:
    """The canonical key JSON of one ``keys_must_exist`` entry, typed by ``schema``.

    An entry names each key attribute once, with a plain value: a string for
    ``S``, a number (or its text) for ``N``, base64 text for ``B``. The types
    come from ``DescribeTable`` (``AttributeDefinitions``), as DynamoDB keys
    them; a key attribute of unknown type is read as ``S``.

    Raises
    ------
    InputError
        When the entry lacks a key attribute, names another attribute, or a
        value is not of its attribute's type (a number for an ``S`` key is
        refused: YAML reads ``001`` as 1, so quote it).
    """
    from pitrdiff import codec
    from pitrdiff.errors import CodecError

    shown = json.dumps(dict(key), default=str, ensure_ascii=False)
    missing = [name for name in schema.names if name not in key]
    if missing:
        raise InputError(
            f"{source}: {shown} lacks {', '.join(missing)} (the key is {', '.join(schema.names)})"
        )
    other = [str(name) for name in key if name not in schema.names]
    if other:
        raise InputError(
            f"{source}: {shown} names {', '.join(other)}, not a key attribute "
            f"(the key is {', '.join(schema.names)})"
        )
    typed: dict[str, Any] = {}
    for attribute in schema.attributes:
        kind = attribute.attribute_type or "S"
        value = key[attribute.name]
        text = _key_text(kind, value)
        if text is None:
            raise InputError(
                f"{source}: {shown}: {attribute.name} is a key of type {kind} "
                f"({_KIND_WORDS[kind]}), not {value!r}"
            )
        typed[attribute.name] = {kind: text}
    try:
        return codec.canonical_key(typed, schema.names)
    except CodecError as exc:
        raise InputError(f"{source}: {shown}: {exc}") from exc


_KIND_WORDS = {
    "S": "a non-empty string; quote numbers",
    "N": "a number",
    "B": "base64 text",
}


def _key_text(kind: str, value: Any) -> str | None:
    """A key value as DynamoDB JSON text of ``kind``, or ``None`` when it is not of that type."""
    import base64
    import binascii

    from pitrdiff import codec
    from pitrdiff.errors import CodecError

    if kind == "S":
        return value if isinstance(value, str) and value else None
    if kind == "N":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        try:
            return codec.normalize_number(str(value))
        except CodecError:
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return value


def _states_sql(root: Path) -> str:
    """SQL: ``(_key, h)`` of every differing key of a diff: its live hash, NULL when gone."""
    parts = []
    for name, column in (("changed", "live_hash"), ("added", "live_hash"),
                         ("deleted", "NULL"), ("expired", "NULL")):  # fmt: skip
        path = root / f"{name}.parquet"
        if path.is_file():
            parts.append(
                f"SELECT _key, {column}::UBIGINT AS h FROM read_parquet({literal(str(path))})"
            )
    return " UNION ALL ".join(parts) or "SELECT NULL::VARCHAR AS _key, NULL::UBIGINT AS h LIMIT 0"


def check_incremental(d: DrillState) -> DrillCheck:
    """The restored table plus the incremental export's changes equals the live table.

    Two independent AWS mechanisms agree: for every key either diff lists, the
    full diff (restored vs live export) and the incremental diff (restored +
    the change log from T) give the same live state — the same content hash,
    or both gone.
    """
    import duckdb

    full = _states_sql(d.workdir / DIFF_DIR)
    incremental = _states_sql(d.workdir / INCREMENTAL_DIR)
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT coalesce(f._key, i._key) AS k, f._key IS NOT NULL, i._key IS NOT NULL "
            f"FROM ({full}) f FULL OUTER JOIN ({incremental}) i ON f._key = i._key "
            "WHERE f._key IS NULL OR i._key IS NULL OR f.h IS DISTINCT FROM i.h ORDER BY k"
        ).fetchall()
        compared = con.execute(
            f"SELECT count(*) FROM (SELECT _key FROM ({full}) UNION SELECT _key FROM "
            f"({incremental}))"
        ).fetchone()
    finally:
        con.close()
    keys = int(compared[0]) if compared else 0
    figures = {
        "keys_compared": keys,
        "disagree": len(rows),
        "only_in_full_diff": sum(1 for _, f, i in rows if f and not i),
        "only_in_incremental": sum(1 for _, f, i in rows if i and not f),
        "sample_keys": [str(k) for k, _, _ in rows[:5]],
    }
    message = f"{keys:,} differing keys: the incremental export and the live export " + (
        "agree on every one" if not rows else f"disagree on {len(rows):,}"
    )
    return DrillCheck("incremental-agrees", not rows, message, figures)
