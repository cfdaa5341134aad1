"""Where events go: Kafka, or the local event log, behind one small interface.

`send` returns only once the event is safe (written to the log, or acknowledged by
every in-sync Kafka replica), so the API can answer as soon as it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from .errors import BrokerError
from .event_log import EventLogWriter
from .events import encode
from .settings import Settings

log = logging.getLogger(__name__)

# How long a send may wait for Kafka's acknowledgement before the player is
# answered 503, and closing for the last events to go out.
KAFKA_TIMEOUT = 10.0  # seconds
# A topic the broker creates: one partition keeps all events in one order; each on
# up to three brokers, so that acks=all means on three machines where there are.
TOPIC_PARTITIONS = 1
REPLICAS = 3
TOPIC_EXISTS = 36  # Kafka's error code TOPIC_ALREADY_EXISTS


class Broker(Protocol):
    async def start(self) -> None:
        """Connect, or fail at once with a BrokerError that says why."""

    async def send(self, event: dict[str, Any]) -> None:
        """Return once the event is durable; raise BrokerError if it cannot be."""

    async def close(self) -> None:
        """Flush what is pending and let go of the connection or file."""


def open_broker(settings: Settings) -> Broker:
    """Kafka if KAFKA_BOOTSTRAP_SERVERS is set, else the local event log."""
    if settings.kafka_bootstrap_servers:
        return KafkaBroker(settings.kafka_bootstrap_servers, settings.kafka_topic)
    return LocalBroker(settings.events_dir)


class LocalBroker:
    """The append-only event log under EVENTS_DIR (event_log.py)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._writer = EventLogWriter(directory)

    async def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BrokerError(
                f"cannot create the event log folder {self.directory}: "
                f"{error.strerror}; set EVENTS_DIR to a folder you can write"
            ) from None

    async def send(self, event: dict[str, Any]) -> None:
        try:
            await self._writer.append(encode(event))
        except OSError as error:
            raise BrokerError(
                f"cannot write to the event log in {self.directory}: {error}"
            ) from None

    async def close(self) -> None:
        await self._writer.close()


class KafkaBroker:
    """An idempotent Kafka producer that waits for every in-sync replica (acks=all):
    an acknowledged event is on all of them, and a retried send is never stored
    twice."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect, creating the topic if the cluster does not have it yet."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(KAFKA_TIMEOUT * 1000),
        )
        try:
            # aiokafka logs each failed attempt; the BrokerError says it once.
            with _silenced("aiokafka"):
                await _ensure_topic(self.bootstrap_servers, self.topic)
                await producer.start()
        except KafkaError:
            await producer.stop()
            raise BrokerError(
                f"cannot reach Kafka at {self.bootstrap_servers}: start the broker, "
                "or fix KAFKA_BOOTSTRAP_SERVERS (empty: the local event log)"
            ) from None
        self._producer = producer

    async def send(self, event: dict[str, Any]) -> None:
        if self._producer is None:
            raise BrokerError("the Kafka producer is not started")
        username = event["username"]
        try:
            # aiokafka retries a broker that went away for as long as it is away;
            # the player should not wait that long. After a timeout the event may
            # still reach Kafka later: 503 says the action was not applied.
            async with asyncio.timeout(KAFKA_TIMEOUT):
                await self._producer.send_and_wait(
                    self.topic,
                    value=encode(event),
                    key=None if username is None else username.encode(),
                )
        except TimeoutError:
            raise BrokerError(
                f"Kafka did not acknowledge the event within {KAFKA_TIMEOUT:g} s"
            ) from None
        except KafkaError as error:
            raise BrokerError(f"Kafka refused the event: {error}") from None

    async def close(self) -> None:
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT):
                await producer.stop()  # sends what is still batched
        except TimeoutError:
            # Only events whose senders gave up (503) can still be pending here.
            log.warning(
                "Kafka is unreachable: closed without its last acknowledgements"
            )


async def _ensure_topic(bootstrap_servers: str, topic: str) -> None:
    """Create `topic` unless it exists: a fresh cluster then needs no setup, even
    where topics are not created on first use (auto.create.topics.enable=false)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        new = NewTopic(topic, TOPIC_PARTITIONS, min(REPLICAS, brokers))
        answer = await admin.create_topics([new])
    finally:
        await admin.close()
    for _, code, message in answer.topic_errors:
        if code not in (0, TOPIC_EXISTS):  # another server may have made it first
            raise BrokerError(f"Kafka could not create topic {topic}: {message}")


@contextmanager
def _silenced(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
