"""pitrdiff: diff a DynamoDB table against its point-in-time restore.

Export both tables to Parquet, diff them item by item into deleted / changed /
added, and write a selective re-put plan that puts back only what was lost,
with conditional writes so nothing written since is clobbered.

The public API is importable from this package; modules load on first use so
``import pitrdiff`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AwsConfig": "pitrdiff.aws",
    "PitrdiffError": "pitrdiff.errors",
    "Export": "pitrdiff.export.dataset",
    "KeySchema": "pitrdiff.export.dataset",
    "Manifest": "pitrdiff.export.dataset",
    "load_export": "pitrdiff.export.dataset",
    "write_export": "pitrdiff.export.dataset",
    "export_table": "pitrdiff.export.scan",
    "canonical_json": "pitrdiff.codec",
    "content_hash": "pitrdiff.codec",
    "item_size": "pitrdiff.codec",
    "item_to_python": "pitrdiff.codec",
    "item_from_python": "pitrdiff.codec",
    "Diff": "pitrdiff.diff.notebook",
    "DiffSummary": "pitrdiff.diff.report",
    "Explanation": "pitrdiff.diff.notebook",
    "diff_exports": "pitrdiff.diff.exports",
    "load_diff": "pitrdiff.diff.notebook",
    "write_diff_dataset": "pitrdiff.diff.writer",
    "Operation": "pitrdiff.recovery.plan",
    "Plan": "pitrdiff.recovery.plan",
    "PlanSummary": "pitrdiff.recovery.plan",
    "load_plan": "pitrdiff.recovery.plan",
    "write_plan": "pitrdiff.recovery.plan",
    "ApplyReport": "pitrdiff.recovery.apply",
    "apply_plan": "pitrdiff.recovery.apply",
    "ExportSummary": "pitrdiff.export.native",
    "diff_incremental": "pitrdiff.diff.incremental",
    "export_native": "pitrdiff.export.native",
    "ingest_export": "pitrdiff.export.native",
    "read_summary": "pitrdiff.export.native",
    "PitrWindow": "pitrdiff.pitr",
    "RestoreResult": "pitrdiff.pitr",
    "cleanup": "pitrdiff.pitr",
    "enable_pitr": "pitrdiff.pitr",
    "restore": "pitrdiff.pitr",
    "wait_for_table": "pitrdiff.pitr",
    "window": "pitrdiff.pitr",
    "RecoverResult": "pitrdiff.recovery.recover",
    "DemoResult": "pitrdiff.demo",
    "run_demo": "pitrdiff.demo",
}

if TYPE_CHECKING:
    from pitrdiff.aws import AwsConfig
    from pitrdiff.codec import (
        canonical_json,
        content_hash,
        item_from_python,
        item_size,
        item_to_python,
    )
    from pitrdiff.demo import DemoResult, run_demo
    from pitrdiff.diff.exports import diff_exports
    from pitrdiff.diff.incremental import diff_incremental
    from pitrdiff.diff.notebook import Diff, Explanation, load_diff
    from pitrdiff.diff.report import DiffSummary
    from pitrdiff.diff.writer import write_diff_dataset
    from pitrdiff.errors import PitrdiffError
    from pitrdiff.export.dataset import Export, KeySchema, Manifest, load_export, write_export
    from pitrdiff.export.native import (
        ExportSummary,
        export_native,
        ingest_export,
        read_summary,
    )
    from pitrdiff.export.scan import export_table
    from pitrdiff.pitr import (
        PitrWindow,
        RestoreResult,
        cleanup,
        enable_pitr,
        restore,
        wait_for_table,
        window,
    )
    from pitrdiff.recovery.apply import ApplyReport, apply_plan
    from pitrdiff.recovery.plan import Operation, Plan, PlanSummary, load_plan, write_plan
    from pitrdiff.recovery.recover import RecoverResult

__all__ = [
    "ApplyReport",
    "AwsConfig",
    "DemoResult",
    "Diff",
    "DiffSummary",
    "Explanation",
    "Export",
    "ExportSummary",
    "KeySchema",
    "Manifest",
    "Operation",
    "PitrWindow",
    "PitrdiffError",
    "Plan",
    "PlanSummary",
    "RecoverResult",
    "RestoreResult",
    "apply_plan",
    "canonical_json",
    "cleanup",
    "content_hash",
    "diff_exports",
    "diff_incremental",
    "enable_pitr",
    "export_native",
    "export_table",
    "ingest_export",
    "item_from_python",
    "item_size",
    "item_to_python",
    "load_diff",
    "load_export",
    "load_plan",
    "read_summary",
    "restore",
    "run_demo",
    "wait_for_table",
    "window",
    "write_diff_dataset",
    "write_export",
    "write_plan",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pitrdiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
