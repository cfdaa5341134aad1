"""Events, event logs and lakes for the storage and landing tests."""

from __future__ import annotations

import _thread
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from {{ cookiecutter.project_slug }}.event_log import (
    SEALED,
)
from {{ cookiecutter.project_slug }}.events import (
    encode,
    make_event,
)
from {{ cookiecutter.project_slug }}.lake import (
    LANDED_AT,
    TABLES,
)
from {{ cookiecutter.project_slug }}.landing import (
    LandingReport,
)
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
FIELDS: dict[str, dict[str, Any]] = {
    "default": {},
    "signup": {},
    "login": {},
    "purchase": {"item_type": "sword", "quality": "rare", "strength": 12, "price": 40},
    "join_guild": {"guild_name": "knights"},
    "declare_war": {"guild_name": "knights", "target": "dragons"},
    "declare_peace": {"guild_name": "knights", "target": "dragons"},
}


def sample_event(event_type: str, username: str | None = "ada", **fields: Any) -> dict:
    """A successful event of the type, its own fields filled in unless given."""
    return make_event(
        event_type,
        success=True,
        reason=None,
        username=username,
        host="localhost:5000",
        user_agent="pytest",
        fields={**FIELDS[event_type], **fields},
    )


def one_of_each() -> list[dict[str, Any]]:
    """One event of every type, plus a failed purchase with unknown fields null."""
    failed = make_event(
        "purchase",
        success=False,
        reason="unknown_item",
        username="bob",
        host="localhost:5000",
        user_agent="pytest",
        fields={"item_type": "bazooka"},
    )
    return [sample_event(event_type) for event_type in FIELDS] + [failed]


def write_segment(directory: Path, lines: list[bytes], *, torn: bytes = b"") -> Path:
    """A sealed segment holding lines, as a writer that has closed leaves one."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"20261202T000000{len(list(directory.iterdir())):06d}Z"
    path = directory / f"{name}-{os.getpid()}-{secrets.token_hex(4)}{SEALED}"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + torn)
    return path


def write_events(directory: Path, events: list[dict[str, Any]]) -> Path:
    return write_segment(directory, [encode(event) for event in events])


def make_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings with the event log and the lake in a test's folder."""
    return Settings(events_dir=folder / "events", lake_dir=folder / "lake", **overrides)


def lake_rows(lake_dir: Path, table: str) -> list[dict[str, Any]]:
    """A table's rows as dicts without landed_at, sorted, read with DuckDB."""
    files = sorted((lake_dir / table).glob("*.parquet"))
    if not files:
        return []
    relation = duckdb.read_parquet([str(path) for path in files])
    columns = [name for name in relation.columns if name != LANDED_AT]
    rows = [
        dict(zip(columns, row, strict=True))
        for row in relation.select(*columns).fetchall()
    ]
    return sorted(rows, key=lambda row: tuple(str(value) for value in row.values()))


def lake_schema(lake_dir: Path, table: str) -> list[tuple[str, str]]:
    """A table's columns and their types as DuckDB reads its Parquet files."""
    files = [str(path) for path in sorted((lake_dir / table).glob("*.parquet"))]
    relation = duckdb.read_parquet(files, union_by_name=True)
    return [
        (name, str(kind))
        for name, kind in zip(relation.columns, relation.types, strict=True)
    ]


def expected_schema(table: str) -> list[tuple[str, str]]:
    return list(TABLES[table].columns)


def interrupt_when(done: Callable[[], bool], then: Callable[[], None]) -> None:
    """In another thread: once `done()`, run `then`; once done again, press Ctrl-C.

    Gives up waiting after a minute and presses Ctrl-C anyway, so that a landing
    that never lands fails the test instead of hanging it.
    """

    def watch() -> None:
        for step in (then, lambda: None):
            deadline = time.monotonic() + 60
            while not done() and time.monotonic() < deadline:
                time.sleep(0.05)
            step()
        _thread.interrupt_main(signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()


def stream_lands_new_events_until_ctrl_c(
    settings: Settings, land: Callable[..., LandingReport]
) -> None:
    """A streaming landing lands new events as they come; Ctrl-C stops it cleanly,
    and a landing started afterwards picks up only what came since."""
    first = [sample_event("default") for _ in range(3)]
    later = [sample_event("login") for _ in range(2)]
    write_events(settings.events_dir, first)
    landed: list[int] = []

    def visits_then_accounts() -> bool:
        wanted = len(first) if not landed else len(later)
        table = "visits" if not landed else "accounts"
        if len(lake_rows(settings.lake_dir, table)) < wanted:
            return False
        landed.append(wanted)
        return True

    interrupt_when(
        visits_then_accounts, lambda: write_events(settings.events_dir, later)
    )
    report = land(settings, stream=True, progress=None)

    assert (report.landed["visits"], report.landed["accounts"]) == (3, 2)
    newest = sample_event("default")
    write_events(settings.events_dir, [newest])
    restarted = land(settings, progress=None)
    assert sum(restarted.landed.values()) == restarted.landed["visits"] == 1
    assert restarted.duplicates == 0
    assert len(lake_rows(settings.lake_dir, "visits")) == 4


async def produce(
    settings: Settings,
    values: list[bytes],
    partitions: int = 2,
    aborted: list[bytes] | None = None,
) -> None:
    """Create the settings' topic if needed and send values to it; then `aborted`
    in a transaction that is aborted, as `serve` does with the events of actions it
    answered 503."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        if settings.kafka_topic not in await admin.list_topics():
            topic = NewTopic(settings.kafka_topic, partitions, replication_factor=1)
            await admin.create_topics([topic])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        transactional_id=f"test-{uuid.uuid4().hex}",
    )
    await producer.start()
    try:
        for sent, transaction_ends in [
            (values, producer.commit_transaction),
            (aborted or [], producer.abort_transaction),
        ]:
            await producer.begin_transaction()
            for number, value in enumerate(sent):
                await producer.send_and_wait(
                    settings.kafka_topic, value, partition=number % partitions
                )
            await transaction_ends()
    finally:
        await producer.stop()


def kafka_settings(tmp_path: Path) -> Settings:
    """Settings for the real broker, with a topic of the test's own."""
    topic = f"events-{uuid.uuid4().hex[:12]}"
    return make_settings(tmp_path, kafka_bootstrap_servers=KAFKA, kafka_topic=topic)
