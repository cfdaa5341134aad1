"""Landing with Spark: the DuckDB engine's tables, batch and streaming, and Kafka."""

from __future__ import annotations

import asyncio
import gc
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TextIO

import pytest
from lake_samples import (
    KAFKA,
    expected_schema,
    kafka_settings,
    lake_rows,
    lake_schema,
    make_settings,
    one_of_each,
    produce,
    sample_event,
    stream_lands_new_events_until_ctrl_c,
    write_events,
    write_segment,
)

from {{ cookiecutter.project_slug }}.errors import (
    LandingError,
)
from {{ cookiecutter.project_slug }}.events import encode
from {{ cookiecutter.project_slug }}.lake import TABLES
from {{ cookiecutter.project_slug }}.landing import (
    LandingReport,
    land,
)
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

pytest.importorskip("pyspark", reason="needs pyspark: pip install -e '.[spark]'")
from pyspark.sql import SparkSession

from {{ cookiecutter.project_slug }} import spark_landing
from {{ cookiecutter.project_slug }}.spark_landing import (
    KAFKA_PACKAGE,
    land_with_spark,
    spark_session,
)

pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None, reason="needs java: Spark runs on the JVM"
    ),
]


@dataclass(frozen=True)
class Spark:
    """The session's Spark, and why it has no Kafka source (a skip reason), if so."""

    session: SparkSession
    without_kafka: str | None


@pytest.fixture(scope="session")
def spark_and_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spark]:
    """One Spark for the whole session: starting one takes seconds. With a broker,
    it has Spark's Kafka source, if that can be fetched; else the other tests still
    run on a Spark without it."""
    folder = tmp_path_factory.mktemp("spark")
    settings = make_settings(folder, spark_master="local[2]")
    without_kafka = None if KAFKA else "needs KAFKA_BOOTSTRAP_SERVERS: a running broker"
    session = None
    with warnings.catch_warnings():
        # A JVM that failed to start leaves PySpark's pipe to it open until collected.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            session = spark_session(replace(settings, kafka_bootstrap_servers=KAFKA))
        except LandingError as error:
            if not KAFKA:
                raise
            without_kafka = f"needs {KAFKA_PACKAGE}: {error}"
        gc.collect()
    session = session or spark_session(settings)
    yield Spark(session, without_kafka)
    session.stop()


@pytest.fixture
def spark(spark_and_kafka: Spark) -> SparkSession:
    return spark_and_kafka.session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def spark_land(
    spark: SparkSession,
    settings: Settings,
    *,
    stream: bool = False,
    progress: TextIO | None = None,
) -> LandingReport:
    return land_with_spark(settings, spark=spark, stream=stream, progress=progress)


def test_spark_and_duckdb_land_identical_tables(
    spark: SparkSession, tmp_path: Path
) -> None:
    duckdb_lake = make_settings(tmp_path)
    spark_lake = replace(duckdb_lake, lake_dir=tmp_path / "spark-lake")
    events = one_of_each()
    write_events(duckdb_lake.events_dir, [*events, events[0]])
    bad = encode(sample_event("purchase") | {"strength": "strong"})
    write_segment(
        duckdb_lake.events_dir, [b"{oops", bad, encode(events[1])], torn=b'{"ev'
    )

    by_duckdb = land(duckdb_lake, progress=None)
    by_spark = spark_land(spark, spark_lake)

    assert by_spark == by_duckdb
    assert (by_spark.duplicates, by_spark.quarantined) == (2, 3)
    for table in TABLES:
        assert lake_schema(spark_lake.lake_dir, table) == expected_schema(table)
        assert lake_rows(spark_lake.lake_dir, table) == lake_rows(
            duckdb_lake.lake_dir, table
        )


def test_spark_adds_nothing_to_what_is_landed_already(
    spark: SparkSession, settings: Settings
) -> None:
    write_events(settings.events_dir, one_of_each())
    write_segment(settings.events_dir, [b"not json"])
    land(settings, progress=None)  # DuckDB first: Spark has no checkpoint yet

    by_spark = spark_land(spark, settings)
    again = spark_land(spark, settings)

    assert sum(by_spark.landed.values()) == by_spark.quarantined == 0
    assert by_spark.duplicates == len(one_of_each()) + 1
    assert again == type(again)()  # the checkpoint: nothing new was even read
    assert len(lake_rows(settings.lake_dir, "quarantine")) == 1


def test_spark_streaming_lands_new_events_and_restarts_where_it_stopped(
    spark: SparkSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spark_landing, "STREAM_INTERVAL", 0.2)
    stream_lands_new_events_until_ctrl_c(settings, partial(spark_land, spark))


def test_spark_lands_from_kafka_like_duckdb(
    spark_and_kafka: Spark, tmp_path: Path
) -> None:
    if spark_and_kafka.without_kafka is not None:
        pytest.skip(spark_and_kafka.without_kafka)
    spark = spark_and_kafka.session
    duckdb_lake = kafka_settings(tmp_path)
    spark_lake = replace(duckdb_lake, lake_dir=tmp_path / "spark-lake")
    values = [encode(event) for event in one_of_each()]
    refused = [encode(sample_event("purchase"))]
    asyncio.run(produce(duckdb_lake, [*values, values[0], b"[]"], aborted=refused))

    by_duckdb = land(duckdb_lake, progress=None)
    by_spark = spark_land(spark, spark_lake)
    newest = sample_event("default")
    asyncio.run(produce(duckdb_lake, [encode(newest)]))
    restarted = spark_land(spark, spark_lake)

    assert by_spark == by_duckdb
    assert sum(by_spark.landed.values()) == len(values)  # not the aborted one
    assert (restarted.landed["visits"], sum(restarted.landed.values())) == (1, 1)
    for table in TABLES:
        if table != "visits":
            assert lake_rows(spark_lake.lake_dir, table) == lake_rows(
                duckdb_lake.lake_dir, table
            )


def test_a_spark_failure_is_told_by_its_python_line() -> None:
    missing = f"ModuleNotFoundError: No module named '{spark_landing.__package__}'"
    failure = Exception(
        "An exception was raised by the Python Proxy. Return Message: Traceback\n"
        '  File "worker.py", line 3, in <module>\n'
        f"{missing}\n"
        "\tat org.apache.spark.sql.execution.python.PythonRunner(X.scala:1)"
    )
    assert spark_landing._what_went_wrong(failure) == missing
    java = Exception("\nJava says no\n\tat x")
    assert spark_landing._what_went_wrong(java) == "Java says no"
