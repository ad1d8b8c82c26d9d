"""Export: a table (or a native DynamoDB S3 export) to an export dataset.

- :mod:`pitrdiff.export.scan`: parallel segmented Scan of a live table;
- :mod:`pitrdiff.export.dataset`: the export dataset (manifest, Parquet parts);
- :mod:`pitrdiff.export.native`: DynamoDB's own exports to S3, ingested.
"""
