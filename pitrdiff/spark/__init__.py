"""pitrdiff on Apache Spark (AWS Glue 5.x, Amazon EMR, or local mode).

- :mod:`pitrdiff.spark.session`: the ``SparkSession`` pitrdiff runs on;
- :mod:`pitrdiff.spark.arrow`: Arrow batches between Spark and pitrdiff
  (sorted rows streamed to the driver, uint64 columns restored);
- :mod:`pitrdiff.spark.job`: the entry point of a cluster job
  (``spark-submit``, a Glue job script).

The engine itself is :class:`pitrdiff.diff.spark_engine.SparkEngine`; native
full exports are ingested on Spark by :func:`pitrdiff.export.native_spark.ingest_export_spark`.
pyspark is an optional dependency: ``pip install "pitrdiff[spark]"``.
"""
