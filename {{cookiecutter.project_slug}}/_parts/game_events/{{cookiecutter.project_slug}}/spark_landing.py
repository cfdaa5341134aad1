"""Landing with Spark: the same tables as the DuckDB engine, by structured streaming.

Batch and stream are one streaming query. `land --engine spark` runs it with the
availableNow trigger (everything there is now, then stop); `--stream` with a one-second
processing-time trigger, until Ctrl-C. Its checkpoint, LAKE_DIR/_checkpoints/<source>,
records which sealed segments or Kafka offsets were landed, so a restart, batch or
stream, picks up only new events.

The source is the local event log (Spark's file source over sealed `*.jsonl`
segments, read whole so that a torn last line is known as torn) or Kafka (Spark's
Kafka source). Every line is parsed by `lake.parse_lines`, in Spark's Python workers
(`mapInArrow`), into the tables' types from lake.py; each micro-batch then keeps, per
table, the rows whose key neither the batch nor the lake holds yet, and appends them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyspark
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from .errors import LandingError
from .event_log import SEALED, read_lines, seal_dead_writers
from .lake import LANDED_AT, LINES, PARSED, TABLE, TABLES, parse_lines
from .landing import (
    STREAM_INTERVAL,
    KafkaSource,
    LandingReport,
    Progress,
    ctrl_c_stops,
    state_dir,
)
from .settings import Settings

# Spark's Kafka source, of the feature release (4.2, ...) of the Spark that pyspark
# carries: its first version, which every mirror of Maven Central has by the time
# pyspark's later fixes are on PyPI, and which works with them. Spark fetches it
# (and its dependencies) into ~/.ivy2 the first time.
SPARK_LINE = ".".join(pyspark.__version__.split(".")[:2])
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_LINE}.0"
# The default of 200 suits a cluster; a laptop's small batches run faster with few.
SHUFFLE_PARTITIONS = 4
# Arrow's types as Spark's DDL names them: Arrow is what Spark's Python workers speak.
SPARK_TYPES = {
    pa.string(): "string",
    pa.bool_(): "boolean",
    pa.int32(): "int",
    pa.timestamp("us"): "timestamp_ntz",  # naive UTC, like DuckDB's TIMESTAMP
    pa.binary(): "binary",
}
# How a Python traceback's last line starts: `ModuleNotFoundError: ...`.
PYTHON_ERROR = re.compile(r"[A-Za-z_]\w*(Error|Exception): ")
# The schema Spark's binaryFile source always has; a streaming source must be told.
BINARY_FILE = "path string, modificationTime timestamp, length long, content binary"


def spark_session(settings: Settings) -> SparkSession:
    """A session in UTC, with the Kafka source when the project uses Kafka."""
    # Spark's Python workers parse the events, so they must import this package: run
    # them on this interpreter, unless PYSPARK_PYTHON already names one. PySpark
    # reads only the environment variable for that.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(__package__ or __name__)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS)
        .config("spark.ui.showConsoleProgress", "false")
    )
    if settings.kafka_bootstrap_servers:
        builder = builder.config("spark.jars.packages", KAFKA_PACKAGE)
    try:
        spark = builder.getOrCreate()
    except PySparkRuntimeError as error:  # Java is missing, or a package is
        raise LandingError(
            f"Spark could not start ({_what_went_wrong(error)}): it needs Java 17+"
            f" and, with Kafka, {KAFKA_PACKAGE} from Maven Central; its own"
            " messages are above"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def land_with_spark(
    settings: Settings,
    *,
    stream: bool = False,
    progress: TextIO | None = sys.stderr,
    spark: SparkSession | None = None,
) -> LandingReport:
    """Land every event not landed yet with Spark; with `stream`, until Ctrl-C.

    Without `spark`, a session is made for this landing and stopped afterwards.
    """
    own_session = spark is None
    spark = spark or spark_session(settings)
    report = LandingReport()
    meter = Progress(progress)
    try:
        query = _start(spark, settings, stream, _batch_lander(settings, report, meter))
        _run(query, settings)
    finally:
        meter.done()
        if own_session:
            spark.stop()
    return report


def _start(
    spark: SparkSession,
    settings: Settings,
    stream: bool,
    land_batch: Callable[[DataFrame, int], None],
) -> StreamingQuery:
    lines, checkpoint = _lines(spark, settings)
    checkpoints = settings.lake_dir / "_checkpoints"
    writer = (
        lines.mapInArrow(_parse, _ddl(PARSED))
        .writeStream.foreachBatch(land_batch)
        .option("checkpointLocation", str(checkpoints / checkpoint))
    )
    if stream:
        return writer.trigger(processingTime=f"{STREAM_INTERVAL} seconds").start()
    return writer.trigger(availableNow=True).start()


def _run(query: StreamingQuery, settings: Settings) -> None:
    """Wait for the query to finish, or for Ctrl-C; raise what made it fail."""
    with ctrl_c_stops() as stopped:
        while query.isActive and not stopped.wait(STREAM_INTERVAL):
            if not settings.kafka_bootstrap_servers:
                seal_dead_writers(settings.events_dir)
        # Stopping interrupts a micro-batch in progress: let it finish first (a new
        # one starts at most every STREAM_INTERVAL).
        while query.isActive and query.status["isTriggerActive"]:
            time.sleep(0.05)
        query.stop()
    if (failure := query.exception()) is not None:
        raise LandingError(f"Spark failed to land: {_what_went_wrong(failure)}")


def _what_went_wrong(error: Exception) -> str:
    """The line of a Spark error that says what went wrong.

    Spark wraps an error of Python code (a worker's, or a micro-batch's) in Java's
    and returns both with their stacks: the Python exception's own line is the one
    that helps, and when there is none, the first.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    python = [line for line in lines if PYTHON_ERROR.match(line)]
    return python[-1] if python else (lines or [type(error).__name__])[0]


def _lines(spark: SparkSession, settings: Settings) -> tuple[DataFrame, str]:
    """The stream of raw lines (raw, source, torn), and its checkpoint's name."""
    if settings.kafka_bootstrap_servers:
        asyncio.run(_check_kafka(settings))
        messages = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
            .option("subscribe", settings.kafka_topic)
            .option("startingOffsets", "earliest")
            # Events of aborted transactions are those of actions answered 503.
            .option("kafka.isolation.level", "read_committed")
            # Offsets past the topic's retention are gone either way; the DuckDB
            # engine goes on from the oldest left, and so does this.
            .option("failOnDataLoss", "false")
            .load()
        )
        source = F.concat_ws("-", "topic", "partition", "offset")
        lines = messages.select(
            F.col("value").alias("raw"),
            source.alias("source"),
            F.lit(False).alias("torn"),
        )
        return lines, f"kafka-{settings.kafka_topic}"
    settings.events_dir.mkdir(parents=True, exist_ok=True)
    seal_dead_writers(settings.events_dir)
    segments = (
        spark.readStream.format("binaryFile")
        .schema(BINARY_FILE)
        .option("pathGlobFilter", f"*{SEALED}")
        .load(str(settings.events_dir))
    )
    return segments.mapInArrow(_split_segments, _ddl(LINES)), "event_log"


async def _check_kafka(settings: Settings) -> None:
    """Fail at once, as the DuckDB engine does, if Kafka or the topic is not there
    (Spark's Kafka source would wait and retry)."""
    async with KafkaSource(settings, state_dir(settings)) as source:
        await source.partitions()


def _split_segments(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Whole segments (path, content) into their lines, as the DuckDB engine reads
    them: `source` is `<segment>:<line number>`."""
    for batch in batches:
        for path, content in zip(
            batch.column("path").to_pylist(),
            batch.column("content").to_pylist(),
            strict=True,
        ):
            yield from read_lines(content, path.rpartition("/")[2]).to_batches()


def _parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Raw lines into rows of the tables' types, each with its table's name."""
    for batch in batches:
        yield from parse_lines(pa.Table.from_batches([batch])).to_batches()


def _batch_lander(
    settings: Settings, report: LandingReport, progress: Progress
) -> Callable[[DataFrame, int], None]:
    """What each micro-batch does (in this process, the driver)."""

    def land_batch(parsed: DataFrame, batch_id: int) -> None:
        parsed = parsed.persist()
        try:
            for count in parsed.groupBy(TABLE).count().collect():
                name = count[TABLE]
                written = _append_new_rows(parsed, settings.lake_dir / name, name)
                report.count(name, count["count"], written)
        finally:
            parsed.unpersist()
        progress.update(report)

    return land_batch


def _append_new_rows(parsed: DataFrame, folder: Path, name: str) -> int:
    """Append the table's rows whose key is new; returns how many."""
    table = TABLES[name]
    columns = [column for column in table.column_names if column != LANDED_AT]
    rows = parsed.where(F.col(TABLE) == name).select(*columns)
    rows = rows.dropDuplicates([table.key])
    if any(folder.glob("*.parquet")):
        spark = parsed.sparkSession
        landed = spark.read.schema(f"{table.key} string").parquet(str(folder))
        rows = rows.join(landed, table.key, "left_anti")
    # localtimestamp is the session's wall clock, UTC: the same naive type as DuckDB's.
    rows = rows.withColumn(LANDED_AT, F.localtimestamp()).persist()
    try:
        written = rows.count()
        if written:
            rows.write.mode("append").parquet(str(folder))
    finally:
        rows.unpersist()
    return written


def _ddl(schema: pa.Schema) -> str:
    """An Arrow schema in Spark's DDL, such as `raw binary, source string`."""
    return ", ".join(f"`{field.name}` {SPARK_TYPES[field.type]}" for field in schema)
