"""The drill's results and the state its stages share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.aws import AwsConfig
from pitrdiff.progress import Progress

EXPECT_KEYS = frozenset(
    {
        "max_rto_seconds",
        "restored_items",
        "live_items",
        "max_deleted",
        "max_changed",
        "max_added",
        "max_expired",
        "settings_must_match",
        "keys_must_exist",
    }
)
RESTORED_DIR, LIVE_DIR, DIFF_DIR = "restored", "live", "diff"
INCREMENTAL_DIR = "incremental"
JSON_NAME, JUNIT_NAME = "drill.json", "junit.xml"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DrillCheck:
    """One check of a drill: a JUnit test case.

    Attributes
    ----------
    name
        ``pitr-window``, ``restore``, ``max-rto``, ``updated-attr``, ``max-deleted`` …
    passed
        Whether it holds.
    message
        One line saying what was checked and found.
    figures
        The numbers behind it (JSON values), written to the test case's output.
    """

    name: str
    passed: bool
    message: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The check as plain JSON values."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "figures": dict(self.figures),
        }


@dataclass(frozen=True)
class DrillStage:
    """One stage that ran: its name, when it started and how long it took (seconds)."""

    name: str
    started_at: str
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """The stage as plain JSON values."""
        return {"name": self.name, "started_at": self.started_at, "elapsed_s": self.elapsed_s}


@dataclass(frozen=True)
class DrillResult:
    """What a drill found.

    Attributes
    ----------
    table, restored_table
        The live table and the table restored for the drill (``None`` if no restore started).
    at
        T, the restore time asked for (with ``latest``, the window's latest time).
    rto_s
        Seconds from the restore request to the table ACTIVE (``None`` without a restore).
    stages, checks
        Every stage that ran and every check, in order.
    counts
        Items per diff class (empty when the diff did not run).
    settings
        The settings diff as a JSON document (``None`` when it did not run).
    cleaned_up
        ``deleted``, ``kept`` (``keep``), ``none`` (no restore) or ``failed: <why>``.
    workdir, junit_path, json_path, html_path
        Where the drill wrote its files.
    """

    table: str
    restored_table: str | None
    at: dt.datetime | None
    rto_s: float | None
    stages: tuple[DrillStage, ...]
    checks: tuple[DrillCheck, ...]
    counts: Mapping[str, int]
    settings: Mapping[str, Any] | None
    cleaned_up: str
    workdir: Path
    junit_path: Path
    json_path: Path
    html_path: Path | None

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[DrillCheck, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values (also written as ``drill.json``)."""
        return {
            "table": self.table,
            "restored_table": self.restored_table,
            "at": pitr.format_time(self.at),
            "rto_s": self.rto_s,
            "passed": self.passed,
            "stages": [s.to_dict() for s in self.stages],
            "checks": [c.to_dict() for c in self.checks],
            "counts": dict(self.counts),
            "settings": self.settings,
            "cleaned_up": self.cleaned_up,
            "workdir": str(self.workdir),
            "junit": str(self.junit_path),
            "json": str(self.json_path),
            "report_html": None if self.html_path is None else str(self.html_path),
        }


# --------------------------------------------------------------------------- the drill


@dataclass
class DrillState:
    """The state the stages share (mutable while the drill runs)."""

    table: str
    workdir: Path
    aws: AwsConfig
    progress: Progress
    at: dt.datetime | None
    latest: bool
    target: str
    no_indexes: bool
    segments: int | None
    min_window: dt.timedelta
    updated_attr: str | None
    expect: Mapping[str, Any]
    poll_seconds: float
    incremental: str | None = None  # an incremental export from T to the live export's time
    restored: str | None = None
    rto_s: float | None = None
    t: dt.datetime | None = None
    stages: list[DrillStage] = field(default_factory=list)
    checks: list[DrillCheck] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    settings: Any = None
    stop: bool = False
    cleaned_up: str | None = None  # what became of the restored table, once decided
