"""What the tests share: a broker that keeps its events in memory, and Kafka's."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from {{ cookiecutter.project_slug }}.errors import (
    BrokerError,
)

FAST_HASH = 2**4  # scrypt's cost in tests: the same code, a thousandth of the work
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
needs_kafka = pytest.mark.skipif(
    not KAFKA, reason="needs KAFKA_BOOTSTRAP_SERVERS: a running Kafka broker"
)


class FakeBroker:
    """Keeps the events it is sent; `fail` makes it refuse them, `gate` (when set)
    holds every send until it is released."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()  # set while a send waits at the gate

    async def start(self) -> None:
        pass

    async def send(self, event: dict[str, Any]) -> None:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if self.fail:
            raise BrokerError("the fake broker refuses")
        self.events.append(event)

    async def close(self) -> None:
        pass


async def logged_in(client: TestClient, username: str = "ana") -> None:
    """Sign `username` up and log in: the client keeps the session cookie."""
    params = {"username": username, "password": "secret-pw"}
    assert (await client.post("/signup", params=params)).status == 200
    assert (await client.post("/login", params=params)).status == 200


async def consumed(topic: str) -> list[Any]:
    """Every record in `topic` so far, read from the start as the lake reads it:
    committed only."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    records = []
    try:
        while batches := await consumer.getmany(timeout_ms=2_000):
            records += [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()
    return records


def decoded(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]
