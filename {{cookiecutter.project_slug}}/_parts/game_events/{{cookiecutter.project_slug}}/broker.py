"""Where events go: Kafka, or the local event log, behind one small interface.

`send` returns only once the event is safe (written to the log, or committed to
Kafka with every in-sync replica's acknowledgement), so the API can answer as soon
as it returns; when it raises, the event will never be read.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
# How long Kafka keeps a transaction open that its server left (a crash) before it
# aborts it; until then readers of committed events wait at it.
TRANSACTION_TIMEOUT = 3 * KAFKA_TIMEOUT
# Transactions in flight at once, one producer each. A producer's next transaction
# waits for the commit markers of its last one; with six taking turns, an action
# that waits for the one before it (a guild's, say) does not wait for those too.
PRODUCERS = 6
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


def open_broker(settings: Settings, instance: str | None = None) -> Broker:
    """Kafka if KAFKA_BOOTSTRAP_SERVERS is set, else the local event log.

    `instance` names this server among those sending to the same Kafka (host and
    port, say): one that restarts under the same name takes over its transactions.
    """
    if settings.kafka_bootstrap_servers:
        return KafkaBroker(
            settings.kafka_bootstrap_servers, settings.kafka_topic, instance
        )
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
    """Transactional Kafka producers (acks=all, idempotent): an event counts only
    once its transaction is committed, and readers of the lake read committed
    events only (isolation level read_committed).

    Events arriving together share one transaction (a group commit), so a
    transaction costs its round trips once per batch, not once per action. A batch
    not acknowledged within KAFKA_TIMEOUT is aborted: its actions are answered 503
    and their events, even those Kafka stores once it is back, are never read.
    """

    def __init__(
        self, bootstrap_servers: str, topic: str, instance: str | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        # Transactional ids per server: a restarted server fences its former self
        # and aborts what it left open, instead of waiting for the timeout.
        name = f"{topic}-api-{instance or uuid.uuid4().hex}"
        self._slots = [_Slot(f"{name}-{number}") for number in range(PRODUCERS)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        self._waiting: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Connect, creating the topic if the cluster does not have it yet."""
        try:
            # aiokafka logs each failed attempt; the BrokerError says it once.
            with _silenced("aiokafka"):
                await _ensure_topic(self.bootstrap_servers, self.topic)
                for slot in self._slots:
                    slot.producer = await self._started_producer(slot)
        except (KafkaError, BrokerError) as error:
            await asyncio.gather(*(self._discard_producer(s) for s in self._slots))
            if isinstance(error, BrokerError):
                raise
            raise BrokerError(
                f"cannot reach Kafka at {self.bootstrap_servers}: start the broker, "
                "or fix KAFKA_BOOTSTRAP_SERVERS (empty: the local event log)"
            ) from None
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._committer = asyncio.create_task(self._commit_batches())
        self._committer.add_done_callback(_report_failure)

    async def send(self, event: dict[str, Any]) -> None:
        if self._committer is None or self._closed:
            raise BrokerError("the Kafka producer is not running")
        username = event["username"]
        pending = _Pending(
            encode(event),
            None if username is None else username.encode(),
            asyncio.get_running_loop().time() + KAFKA_TIMEOUT,
        )
        self._waiting.append(pending)
        self._arrived.set()
        try:
            async with asyncio.timeout_at(pending.deadline):
                await asyncio.shield(pending.outcome)
        except TimeoutError:
            if not pending.taken:  # still waiting for a transaction: never sent
                raise _timed_out() from None
            # In a transaction: the committer settles it by the same deadline;
            # the bound is for a committer that died.
            try:
                async with asyncio.timeout(KAFKA_TIMEOUT):
                    await asyncio.shield(pending.outcome)
            except TimeoutError:
                raise _timed_out() from None
        finally:
            if not pending.taken:
                self._waiting.remove(pending)

    async def close(self) -> None:
        if self._committer is None or self._closed:
            return
        self._closed = True
        self._arrived.set()
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT):
                await self._committer  # the last batches, committed or aborted
                await asyncio.gather(*(self._discard_producer(s) for s in self._slots))
        except TimeoutError:
            # Only an abort can be pending: Kafka completes it once it is back.
            log.warning("Kafka is unreachable: closed with a transaction open")

    async def _started_producer(self, slot: _Slot) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            transactional_id=slot.transactional_id,
            transaction_timeout_ms=int(TRANSACTION_TIMEOUT * 1000),
            request_timeout_ms=int(KAFKA_TIMEOUT * 1000),
        )
        try:
            await producer.start()
            await _check_transactions(producer, self.bootstrap_servers)
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _commit_batches(self) -> None:
        """Each batch, every event waiting when a producer is free, in a
        transaction of its own, until the broker is closed."""
        transactions: set[asyncio.Task[None]] = set()
        while not self._closed or self._waiting:
            await self._arrived.wait()
            slot = await self._idle.get()  # meanwhile, the batch grows
            self._arrived.clear()
            batch, self._waiting = self._waiting, []
            if not batch:  # its senders gave up
                self._idle.put_nowait(slot)
                continue
            for pending in batch:
                pending.taken = True
            # Events of one batch never wait on those of another in flight: an
            # action waits for its own event, under its player's or guild's lock.
            transaction = asyncio.create_task(self._transact(slot, batch))
            transaction.add_done_callback(_report_failure)
            transactions.add(transaction)
            transaction.add_done_callback(transactions.discard)
        await asyncio.gather(*transactions)

    async def _transact(self, slot: _Slot, batch: list[_Pending]) -> None:
        """Commit `batch` in one transaction, or abort it; settle each outcome by
        the batch's earliest deadline. The slot is idle again after."""
        try:
            await self._transact_with(slot, batch)
        finally:
            self._idle.put_nowait(slot)

    async def _transact_with(self, slot: _Slot, batch: list[_Pending]) -> None:
        deadline = batch[0].deadline
        in_transaction = False
        try:
            async with asyncio.timeout_at(deadline):
                if slot.producer is None:  # the last one failed: a new one
                    slot.producer = await self._started_producer(slot)
                producer = slot.producer
                await producer.begin_transaction()
                in_transaction = True
                deliveries = [
                    await producer.send(
                        self.topic, value=pending.value, key=pending.key
                    )
                    for pending in batch
                ]
                await asyncio.wait(deliveries)  # unlike gather, cancels none
            for delivery in deliveries:
                delivery.result()
        except TimeoutError:
            _settle(batch, _timed_out())
            if in_transaction:
                # Kafka may store the events once it is back, then the abort
                # marker: no reader of committed events sees them.
                await self._end(slot, producer.abort_transaction())
        except KafkaError as error:
            _settle(batch, BrokerError(f"Kafka refused the events: {error}"))
            await self._discard_producer(slot)
        except BrokerError as error:
            _settle(batch, error)
        else:
            await self._commit(slot, batch, deadline)

    async def _commit(
        self, slot: _Slot, batch: list[_Pending], deadline: float
    ) -> None:
        assert slot.producer is not None
        commit = asyncio.ensure_future(slot.producer.commit_transaction())
        remaining = deadline - asyncio.get_running_loop().time()
        await asyncio.wait([commit], timeout=max(remaining, 0))
        if not commit.done():
            # Kafka went away between its acknowledgements and the commit's
            # answer: the one case where a 503 may still be committed later.
            log.warning(
                "Kafka went away while committing %d events, answered 503: they "
                "are read if the commit completes once Kafka is back",
                len(batch),
            )
            _settle(batch, _timed_out())
        elif commit.exception() is not None:
            _settle(
                batch, BrokerError(f"Kafka refused the commit: {commit.exception()}")
            )
        else:
            _settle(batch, None)
        await self._end(slot, commit)

    async def _end(self, slot: _Slot, ending: Awaitable[None]) -> None:
        """Wait for a commit or abort, however long Kafka is away: the slot's next
        transaction cannot begin before it."""
        try:
            await ending
        except KafkaError:
            await self._discard_producer(slot)

    async def _discard_producer(self, slot: _Slot) -> None:
        """Let go of a slot's producer: its next batch starts a new one, whose start
        aborts what this one left open, with fresh sequence numbers (aiokafka does
        not reset them after a refused batch)."""
        producer, slot.producer = slot.producer, None
        if producer is None:
            return
        try:
            async with asyncio.timeout(KAFKA_TIMEOUT):
                await producer.stop()
        except (TimeoutError, KafkaError) as error:
            log.warning("closing a Kafka producer: %r", error)


@dataclass(eq=False)
class _Slot:
    """One transactional producer, under an id of its own."""

    transactional_id: str
    producer: AIOKafkaProducer | None = None


@dataclass(eq=False)
class _Pending:
    """An event waiting for its transaction, and how that ended for it."""

    value: bytes
    key: bytes | None
    deadline: float  # event loop time
    taken: bool = False  # in a transaction (or settled): send no longer removes it
    outcome: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _settle(batch: list[_Pending], error: BrokerError | None) -> None:
    for pending in batch:
        if pending.outcome.done():
            continue
        if error is None:
            pending.outcome.set_result(None)
        else:
            pending.outcome.set_exception(error)
            pending.outcome.exception()  # retrieved: a sender may have gone


def _report_failure(committer: asyncio.Task[None]) -> None:
    if not committer.cancelled() and committer.exception() is not None:
        log.error("the Kafka committer failed", exc_info=committer.exception())


def _timed_out() -> BrokerError:
    return BrokerError(
        f"Kafka did not acknowledge the event within {KAFKA_TIMEOUT:g} s"
    )


async def _check_transactions(producer: AIOKafkaProducer, servers: str) -> None:
    """Begin and abort an empty transaction, so that a cluster without a
    transaction coordinator fails `serve` at start, not every action."""
    try:
        async with asyncio.timeout(KAFKA_TIMEOUT):
            await producer.begin_transaction()
    except TimeoutError:
        raise BrokerError(
            f"Kafka at {servers} offers no transactions: on a single broker set "
            "transaction.state.log.replication.factor=1 and "
            "transaction.state.log.min.isr=1"
        ) from None
    await producer.abort_transaction()  # nothing was sent: no request to Kafka


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
