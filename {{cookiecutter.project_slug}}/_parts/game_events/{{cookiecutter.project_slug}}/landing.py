"""Landing: events not landed yet become rows of the lake's Parquet tables.

`land` reads from the broker the project uses (the local event log, or Kafka when
KAFKA_BOOTSTRAP_SERVERS is set) and lands with DuckDB here, or with Spark
(spark_landing.py). The DuckDB engine works in batches, each in three steps:

1. parse every line into a typed row or a quarantine row (lake.py);
2. keep only rows whose key (event_id; source for quarantine) is new, both within
   the batch and against the lake, and write them as a new Parquet file per table
   (a hidden temporary file, then a rename, so readers never see half a file);
3. record in LAKE_DIR/_state what has been landed: sealed segment names for the log,
   the next offset of each partition for Kafka.

A crash between 2 and 3 lands the batch again next time, and step 2 drops every row
that made it the first time: landing is idempotent, and so is an event delivered
twice. Ctrl-C stops between batches, never in the middle of one.

Steps 1 and 2 are SQL that DuckDB runs over the whole batch at once, never a Python
loop over its lines: that is what keeps a landing fast.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO

import duckdb
import pyarrow as pa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from .errors import BrokerError, InputError, LandingError
from .event_log import read_lines, sealed_segments, wait_until_sealed
from .lake import (
    LANDED_AT,
    LINES,
    QUARANTINE,
    TABLE,
    TABLES,
    Table,
    parse_lines,
    sql_string,
)
from .settings import Settings

ENGINES = ("duckdb", "spark")
# A batch holds sealed segments up to this many bytes, or this many Kafka messages.
BATCH_BYTES = 64 * 1024 * 1024
BATCH_MESSAGES = 100_000
STREAM_INTERVAL = 1.0  # seconds between two looks for new events with --stream
PROGRESS_INTERVAL = 1.0  # a landing shorter than this prints no progress line
# The column of a batch's parsed rows that holds their line's place in the batch.
ORDER = "_line"


@dataclass
class LandingReport:
    """What one landing did: rows landed per table, duplicates skipped, quarantined."""

    landed: dict[str, int] = field(
        default_factory=lambda: {name: 0 for name in TABLES if name != QUARANTINE}
    )
    duplicates: int = 0
    quarantined: int = 0

    def count(self, table: str, rows: int, written: int) -> None:
        """Account for `rows` rows of one table of which `written` were new."""
        if table == QUARANTINE:
            self.quarantined += written
        else:
            self.landed[table] += written
        self.duplicates += rows - written

    def summary(self) -> str:
        """One line for people: `landed 12 rows (visits 2, ...), 0 duplicates, ...`."""
        tables = ", ".join(f"{name} {rows}" for name, rows in self.landed.items())
        return (
            f"landed {sum(self.landed.values())} rows ({tables}),"
            f" {self.duplicates} duplicates skipped, {self.quarantined} quarantined"
        )


def land(
    settings: Settings,
    *,
    engine: str = "duckdb",
    stream: bool = False,
    progress: TextIO | None = sys.stderr,
) -> LandingReport:
    """Land every event not landed yet; with `stream`, keep landing until Ctrl-C."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    with only_landing(settings):
        if not settings.kafka_bootstrap_servers:
            # The events serve wrote just before are in a segment it seals within
            # half a second: every event written before this call is landed.
            wait_until_sealed(settings.events_dir)
        if engine == "spark":
            # Imported here: pyspark is optional, and only this engine needs it.
            from .spark_landing import land_with_spark

            return land_with_spark(settings, stream=stream, progress=progress)
        return asyncio.run(_land_with_duckdb(settings, stream, Progress(progress)))


@contextmanager
def only_landing(settings: Settings) -> Iterator[None]:
    """Hold the lake's lock for a landing, or fail at once if another holds it.

    Two landings at once could both find an event new and both write it: the
    deduplication on event_id is exact only for one landing at a time.
    """
    lock = state_dir(settings) / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LandingError(
                f"another landing is running on {settings.lake_dir}: wait for it to"
                " finish (or stop its --stream with Ctrl-C)"
            ) from None
        yield  # closing the file releases the lock, also if this process dies


def state_dir(settings: Settings) -> Path:
    """Where the DuckDB engine records what it has landed."""
    return settings.lake_dir / "_state"


class Progress:
    """A progress line, rewritten in place, for landings that take a while.

    Done, it erases itself: the caller prints the final report.
    """

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._last = time.monotonic()
        self._width = 0

    def update(self, report: LandingReport) -> None:
        if self.out is None or time.monotonic() - self._last < PROGRESS_INTERVAL:
            return
        line = f"landing: {report.summary()}"
        self.out.write(f"\r{line.ljust(self._width)}")
        self.out.flush()
        self._last = time.monotonic()
        self._width = len(line)

    def done(self) -> None:
        if self.out is not None and self._width:
            self.out.write(f"\r{' ' * self._width}\r")
            self.out.flush()


@contextmanager
def ctrl_c_stops() -> Iterator[threading.Event]:
    """Turn Ctrl-C into an event that the landing loop checks between batches.

    Python raises KeyboardInterrupt wherever it happens to be, which could be halfway
    through writing a file; setting a flag instead lets the batch in hand finish.
    Signal handlers belong to the main thread: elsewhere, Ctrl-C is left alone.
    """
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Batch:
    """Lines to land (lake.LINES), and how to record in the state that they are
    landed."""

    lines: pa.Table
    commit: Callable[[], None]


class Source(Protocol):
    """Where events come from, and what is already landed from it."""

    async def __aenter__(self) -> Source: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    def batches(self) -> AsyncIterator[Batch]:
        """The events not landed yet, up to those there are now."""
        ...


async def _land_with_duckdb(
    settings: Settings, stream: bool, progress: Progress
) -> LandingReport:
    report = LandingReport()
    connection = duckdb.connect(":memory:")
    source = open_source(settings)
    try:
        with ctrl_c_stops() as stopped:
            async with source:
                while not stopped.is_set():
                    async for batch in source.batches():
                        write_batch(connection, settings.lake_dir, batch.lines, report)
                        batch.commit()
                        progress.update(report)
                        if stopped.is_set():
                            break
                    if not stream:
                        break
                    await asyncio.sleep(STREAM_INTERVAL)
    finally:
        connection.close()
        progress.done()
    return report


def open_source(settings: Settings) -> Source:
    """Kafka when bootstrap servers are set, else the local event log."""
    if settings.kafka_bootstrap_servers:
        return KafkaSource(settings, state_dir(settings))
    return EventLogSource(settings.events_dir, state_dir(settings))


def write_batch(
    connection: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    lines: pa.Table,
    report: LandingReport,
) -> None:
    """Parse lines and append the rows that are new to their tables."""
    parsed = parse_lines(lines)
    # Where each row's line was in the batch: of two rows with one key, the first wins.
    order = pa.array(range(parsed.num_rows), pa.int64())
    connection.register("parsed", parsed.append_column(ORDER, order))
    landed_at = datetime.now(UTC).replace(tzinfo=None)
    tables = f"SELECT {TABLE}, count(*) FROM parsed GROUP BY {TABLE}"
    for name, rows in connection.execute(tables).fetchall():
        written = _append_new_rows(connection, lake_dir / name, TABLES[name], landed_at)
        report.count(name, rows, written)
    connection.unregister("parsed")


def _append_new_rows(
    connection: duckdb.DuckDBPyConnection,
    folder: Path,
    table: Table,
    landed_at: datetime,
) -> int:
    """Write the parsed rows of the table whose key it does not hold yet, each key
    once; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(f'"{name}"' for name in table.column_names if name != LANDED_AT)
    new = f"SELECT {columns}, $landed_at AS {LANDED_AT} FROM parsed"
    if any(folder.glob("*.parquet")):
        files = sql_string(f"{folder}/*.parquet")
        new += f" ANTI JOIN read_parquet({files}) AS lake USING ({table.key})"
    # Of the batch's rows with one key (an event delivered twice), the first.
    firsts = (
        f"SELECT min({ORDER}) FROM parsed WHERE {TABLE} = $table GROUP BY {table.key}"
    )
    new += f" WHERE {TABLE} = $table AND {ORDER} IN ({firsts})"
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE new AS {new}",
        {"landed_at": landed_at, "table": table.name},
    ).fetchall()
    [(written,)] = connection.execute("SELECT count(*) FROM new").fetchall()
    if written:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.parquet"
        # The dot hides the file from `*.parquet` (DuckDB) and from Spark until the
        # rename, which is atomic: a reader sees the whole file or none of it.
        temporary = folder / f".{name}.tmp"
        copy = f"COPY new TO {sql_string(temporary)} (FORMAT parquet)"
        connection.execute(copy).fetchall()
        temporary.rename(folder / name)
    return written


class EventLogSource:
    """The local event log; the state is the set of sealed segments landed."""

    def __init__(self, events_dir: Path, state: Path) -> None:
        self.events_dir = events_dir
        self.state = state / "event_log.json"

    async def __aenter__(self) -> EventLogSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[Batch]:
        landed = set(read_state(self.state).get("segments", []))
        pending = [
            path for path in sealed_segments(self.events_dir) if path.name not in landed
        ]
        for chunk in _chunks(pending, BATCH_BYTES):
            lines = pa.concat_tables(
                read_lines(path.read_bytes(), path.name) for path in chunk
            )
            landed.update(path.name for path in chunk)
            state = {"segments": sorted(landed)}
            yield Batch(lines, partial(write_state, self.state, state))


def _chunks(paths: list[Path], limit: int) -> Iterator[list[Path]]:
    """Consecutive runs of paths, each of at most `limit` bytes (or one big file)."""
    chunk: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if chunk and size + length > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(path)
        size += length
    if chunk:
        yield chunk


class KafkaSource:
    """A Kafka topic; the state is the next offset to land of each partition.

    No consumer group: the lake's own state says what is landed, written after the
    rows, which Kafka's committed offsets could not promise.
    """

    def __init__(self, settings: Settings, state: Path) -> None:
        self.servers = settings.kafka_bootstrap_servers
        self.topic = settings.kafka_topic
        self.state = state / f"kafka-{self.topic}.json"
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.servers,
            enable_auto_commit=False,
            # Offsets the broker no longer holds (past retention) restart at the
            # oldest it has, not at the newest.
            auto_offset_reset="earliest",
            # Events of aborted transactions are those of actions answered 503.
            isolation_level="read_committed",
        )
        # The consumer knows partitions only of topics it subscribed to, and this one
        # assigns itself partitions instead: the admin client tells it which.
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.servers)

    async def __aenter__(self) -> KafkaSource:
        try:
            await self._admin.start()
            await self._consumer.start()
        except KafkaError as error:
            await self.__aexit__(None, None, None)
            raise BrokerError(
                f"cannot reach Kafka at {self.servers} ({error}): start the broker,"
                " or fix KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def batches(self) -> AsyncIterator[Batch]:
        """The messages up to the end offsets as they are when this is called."""
        partitions = await self.partitions()
        offsets = {int(key): value for key, value in read_state(self.state).items()}
        for partition in partitions:
            if partition.partition in offsets:
                self._consumer.seek(partition, offsets[partition.partition])
            else:
                await self._consumer.seek_to_beginning(partition)
                offsets[partition.partition] = await self._consumer.position(partition)
        end = await self._consumer.end_offsets(partitions)
        while behind := [p for p in partitions if offsets[p.partition] < end[p]]:
            raw: list[bytes] = []
            sources: list[str] = []
            fetched = await self._consumer.getmany(
                *behind, timeout_ms=1000, max_records=BATCH_MESSAGES
            )
            for partition, messages in fetched.items():
                source = f"{partition.topic}-{partition.partition}"
                for message in messages:
                    if message.offset < end[partition]:
                        raw.append(message.value or b"")
                        sources.append(f"{source}-{message.offset}")
            for partition in behind:
                position = await self._consumer.position(partition)
                offsets[partition.partition] = min(position, end[partition])
            state = {str(partition): offset for partition, offset in offsets.items()}
            lines = pa.table([raw, sources, [False] * len(raw)], schema=LINES)
            yield Batch(lines, partial(write_state, self.state, state))

    async def partitions(self) -> list[TopicPartition]:
        """The topic's partitions, assigned to this consumer; BrokerError if none."""
        # Listing first: asking about a missing topic could make a broker create it.
        if self.topic not in await self._admin.list_topics():
            raise BrokerError(
                f"Kafka at {self.servers} has no topic {self.topic!r}: serve some"
                " events first, or fix KAFKA_TOPIC"
            )
        (topic,) = await self._admin.describe_topics([self.topic])
        numbers = sorted(partition["partition"] for partition in topic["partitions"])
        partitions = [TopicPartition(self.topic, number) for number in numbers]
        self._consumer.assign(partitions)
        return partitions


def read_state(path: Path) -> dict[str, Any]:
    """A state file's contents; {} before the first landing."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace a state file in one rename, so that a crash leaves the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)
