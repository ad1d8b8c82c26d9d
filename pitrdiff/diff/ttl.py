"""Time to Live: which deleted items DynamoDB's TTL removed (the ``expired`` class).

A restore does not carry the TTL setting, and items TTL removed after T are
ordinary deletes to a plain diff. By DynamoDB's rules (developer guide: "Time
to Live (TTL)" and "Computing time to live (TTL) in DynamoDB"):

- the TTL attribute's value is a **Number** of epoch seconds; an attribute of
  another type, or no attribute, means the item never expires;
- an item whose value is **less than** the current time is expired (and
  deleted within a few days, best effort);
- a value more than **five years** in the past is ignored by TTL.

:class:`TtlRule` applies them at one moment: the live export's time. A deleted
item whose restored version had expired by then was removed by TTL, not lost.
A changed item whose live version had expired is still there (TTL deletes lag)
and will vanish: the summary flags it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from pitrdiff.export.dataset import Manifest

FIVE_YEARS_DAYS = 5 * 365 + 1  # at least five calendar years


class TtlRule:
    """Tells expired items at one moment.

    Parameters
    ----------
    attribute
        The TTL attribute's name (top-level).
    as_of
        The moment, ISO 8601 with a zone (the live export's time).

    Raises
    ------
    ValueError
        When ``as_of`` is not an ISO 8601 time.
    """

    def __init__(self, attribute: str, as_of: str) -> None:
        moment = parse_time(as_of)
        if moment is None:
            raise ValueError(f"not an ISO 8601 time: {as_of!r}")
        self.attribute = attribute
        self.as_of = as_of
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        micros = (moment - epoch) // dt.timedelta(microseconds=1)
        self._now = Decimal(micros) / Decimal(1_000_000)
        self._oldest = self._now - Decimal(FIVE_YEARS_DAYS * 86400)
        self._needle = orjson.dumps(attribute).decode("utf-8") + ':{"N":"'

    def __repr__(self) -> str:
        return f"TtlRule({self.attribute!r}, {self.as_of!r})"

    def expired(self, item: str | None) -> bool:
        """Whether a canonical item's TTL had passed at :attr:`as_of`.

        Parameters
        ----------
        item
            Canonical DynamoDB JSON of the item (``None``: absent, not expired).
        """
        if not item or self._needle not in item:
            return False
        typed = orjson.loads(item).get(self.attribute)
        if not isinstance(typed, Mapping) or "N" not in typed:
            return False
        try:
            seconds = Decimal(typed["N"])
        except (InvalidOperation, TypeError):
            return False
        return self._oldest <= seconds < self._now

    def to_dict(self) -> dict[str, Any]:
        """JSON form (recorded in the diff's summary)."""
        return {"attribute": self.attribute, "as_of": self.as_of}


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 text (or epoch seconds) as an aware UTC datetime; ``None`` if neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def export_time(manifest: Manifest) -> str | None:
    """The moment an export shows its table, ISO 8601 UTC (``None`` if unknown).

    A native export's export time, else the scan's start (an item absent from
    the scan was gone by then at the latest), else the export's creation.
    """
    source = manifest.source
    for value in (source.get("export_time"), source.get("started_at"), manifest.created_at):
        moment = parse_time(value)
        if moment is not None:
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def ttl_rule(live: Manifest, restored: Manifest, attribute: str | None = None) -> TtlRule | None:
    """The TTL rule of a diff, or ``None`` (TTL not enabled on either, or no time).

    The attribute is ``attribute`` if given, else the live export's recorded
    setting, else the restored one's (a restore does not carry TTL); the
    moment is the live export's time (:func:`export_time`).
    """
    name = attribute or live.ttl_attribute or restored.ttl_attribute
    moment = export_time(live)
    if not name or moment is None:
        return None
    return TtlRule(name, moment)
