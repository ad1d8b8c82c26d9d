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
    "Export": "pitrdiff.dataset",
    "KeySchema": "pitrdiff.dataset",
    "Manifest": "pitrdiff.dataset",
    "load_export": "pitrdiff.dataset",
    "write_export": "pitrdiff.dataset",
    "export_table": "pitrdiff.scan",
    "canonical_json": "pitrdiff.codec",
    "content_hash": "pitrdiff.codec",
    "item_size": "pitrdiff.codec",
    "item_to_python": "pitrdiff.codec",
    "item_from_python": "pitrdiff.codec",
    "Diff": "pitrdiff.diff",
    "DiffSummary": "pitrdiff.diff",
    "Explanation": "pitrdiff.diff",
    "diff_exports": "pitrdiff.diff",
    "load_diff": "pitrdiff.diff",
    "write_diff_dataset": "pitrdiff.diff",
    "Operation": "pitrdiff.plan",
    "Plan": "pitrdiff.plan",
    "PlanSummary": "pitrdiff.plan",
    "load_plan": "pitrdiff.plan",
    "write_plan": "pitrdiff.plan",
    "ApplyReport": "pitrdiff.apply",
    "apply_plan": "pitrdiff.apply",
    "ExportSummary": "pitrdiff.s3export",
    "diff_incremental": "pitrdiff.s3export",
    "export_native": "pitrdiff.s3export",
    "ingest_export": "pitrdiff.s3export",
    "read_summary": "pitrdiff.s3export",
    "PitrWindow": "pitrdiff.pitr",
    "RestoreResult": "pitrdiff.pitr",
    "cleanup": "pitrdiff.pitr",
    "enable_pitr": "pitrdiff.pitr",
    "restore": "pitrdiff.pitr",
    "wait_for_table": "pitrdiff.pitr",
    "window": "pitrdiff.pitr",
    "RecoverResult": "pitrdiff.recover",
    "DemoResult": "pitrdiff.demo",
    "run_demo": "pitrdiff.demo",
}

if TYPE_CHECKING:
    from pitrdiff.apply import ApplyReport, apply_plan
    from pitrdiff.aws import AwsConfig
    from pitrdiff.codec import (
        canonical_json,
        content_hash,
        item_from_python,
        item_size,
        item_to_python,
    )
    from pitrdiff.dataset import Export, KeySchema, Manifest, load_export, write_export
    from pitrdiff.demo import DemoResult, run_demo
    from pitrdiff.diff import (
        Diff,
        DiffSummary,
        Explanation,
        diff_exports,
        load_diff,
        write_diff_dataset,
    )
    from pitrdiff.errors import PitrdiffError
    from pitrdiff.pitr import (
        PitrWindow,
        RestoreResult,
        cleanup,
        enable_pitr,
        restore,
        wait_for_table,
        window,
    )
    from pitrdiff.plan import Operation, Plan, PlanSummary, load_plan, write_plan
    from pitrdiff.recover import RecoverResult
    from pitrdiff.s3export import (
        ExportSummary,
        diff_incremental,
        export_native,
        ingest_export,
        read_summary,
    )
    from pitrdiff.scan import export_table

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
