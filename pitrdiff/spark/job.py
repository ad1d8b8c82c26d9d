"""The entry point of a pitrdiff job on a Spark cluster (AWS Glue, EMR ``spark-submit``).

Two commands, with named arguments (AWS Glue passes job parameters as
``--name value`` and adds its own, which are ignored)::

    --command diff   --live DIR --restored DIR --out DIR [--overwrite true]
    --command diff   --live s3://B/P --restored s3://B/P --out s3://B/P [--overwrite true]
    --command ingest --source s3://B/P/AWSDynamoDB/ID --out DIR [--key pk:S,sk:N]
                     [--table-name NAME] [--overwrite true]

``diff`` runs :func:`pitrdiff.diff.exports.diff_exports` with the Spark
engine; ``ingest`` runs
:func:`pitrdiff.export.native_spark.ingest_export_spark`. Both run on the
session the cluster provides. The result (the diff's summary, or the export's
manifest) is written to stdout as one JSON document; the exit code is ``0``
when the job did its work (differences found or not: the JSON says
``"same"``), else the error's exit code (``2`` bad input, ``3`` an I/O
failure) with its one-line message on stderr.

The two-line job script (a Glue job, or ``spark-submit job.py …`` on EMR)::

    from pitrdiff.spark.job import main
    main()

``spark-submit`` can also run this module's file directly:
``spark-submit "$(python3 -c 'import pitrdiff.spark.job as j; print(j.__file__)')" …``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from pitrdiff.errors import PitrdiffError

LOG = logging.getLogger("pitrdiff.spark.job")
TRUE_WORDS = ("true", "yes", "1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pitrdiff.spark.job", allow_abbrev=False)
    parser.add_argument("--command", choices=("diff", "ingest"), required=True)
    parser.add_argument("--live", help="diff: the live table's export dataset")
    parser.add_argument("--restored", help="diff: the restored table's export dataset")
    parser.add_argument("--source", help="ingest: the native export, s3://B/P/AWSDynamoDB/ID")
    parser.add_argument("--out", required=True, help="the dataset to write")
    parser.add_argument("--key", help="ingest: the table's key, PK[:TYPE][,SK[:TYPE]]")
    parser.add_argument("--table-name", help="ingest: the table name to record")
    parser.add_argument("--s3-endpoint-url", help="an S3-compatible endpoint (s3:// datasets)")
    parser.add_argument("--overwrite", default="false", help="true: replace what --out holds")
    parser.add_argument("--master", help="Spark master when no session is active")
    return parser


def run(argv: Sequence[str]) -> dict[str, Any]:
    """Run the job described by ``argv``; return what it reports.

    Parameters
    ----------
    argv
        Named arguments (see the module docstring); unknown ones (Glue's own
        ``--JOB_NAME`` …) are ignored.

    Returns
    -------
    dict
        ``diff``: ``{"command", "out", "same", "counts", "summary"}``;
        ``ingest``: ``{"command", "out", "items", "bytes", "files"}``.

    Raises
    ------
    PitrdiffError
        Bad arguments (:class:`~pitrdiff.errors.InputError`) or the job's own refusals.
    """
    from pitrdiff.errors import InputError
    from pitrdiff.spark.session import get_session

    args, _ = _parser().parse_known_args(list(argv))
    overwrite = str(args.overwrite).lower() in TRUE_WORDS
    get_session(args.master)
    if args.command == "diff":
        if not args.live or not args.restored:
            raise InputError("--command diff needs --live DIR and --restored DIR")
        if str(args.out).startswith("s3://"):
            diff = _diff_on_s3(args.live, args.restored, args.out, overwrite, args.s3_endpoint_url)
        else:
            from pitrdiff.diff.exports import diff_exports

            diff = diff_exports(
                args.live, args.restored, args.out, engine="spark", overwrite=overwrite
            )
        return {
            "command": "diff",
            "out": str(args.out),
            "same": diff.same,
            "counts": diff.manifest.counts,
            "summary": diff.manifest.summary,
        }
    if not args.source:
        raise InputError("--command ingest needs --source s3://BUCKET/PREFIX/AWSDynamoDB/ID")
    from pitrdiff.export.native_spark import ingest_export_spark

    manifest = ingest_export_spark(
        args.source,
        args.out,
        key_schema=args.key,
        table_name=args.table_name,
        s3_endpoint_url=args.s3_endpoint_url,
        overwrite=overwrite,
    )
    return {
        "command": "ingest",
        "out": str(args.out),
        "items": manifest.items,
        "bytes": manifest.bytes,
        "files": len(manifest.files),
    }


def _diff_on_s3(
    live: str, restored: str, out: str, overwrite: bool, endpoint_url: str | None
) -> Any:
    """Diff two exports on S3 into a diff dataset on S3.

    The executors read and check the inputs' parts on S3
    (:class:`pitrdiff.spark.s3.S3Export`); the diff is written on the driver and
    published with its manifest last (:func:`pitrdiff.diff.exports.diff_exports`
    with an ``s3://`` out, which refuses the prefix before the diff runs; the
    inputs' manifests only are read before that).
    """
    from pitrdiff.diff.exports import diff_exports
    from pitrdiff.errors import InputError
    from pitrdiff.spark.s3 import load_s3_export

    if not (live.startswith("s3://") and restored.startswith("s3://")):
        raise InputError("with --out s3://…, --live and --restored are s3:// URLs too")
    inputs = [load_s3_export(url, endpoint_url=endpoint_url) for url in (live, restored)]
    return diff_exports(
        inputs[0],
        inputs[1],
        out,
        engine="spark",
        overwrite=overwrite,
        s3_endpoint_url=endpoint_url,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the job from ``sys.argv`` and exit (``0`` done; else the error's exit code)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        result = run(sys.argv[1:] if argv is None else argv)
    except PitrdiffError as exc:
        sys.stderr.write(f"pitrdiff: {exc}\n")
        raise SystemExit(exc.exit_code) from exc
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")
    LOG.info("pitrdiff %s done: %s", result["command"], result["out"])


if __name__ == "__main__":
    main()
