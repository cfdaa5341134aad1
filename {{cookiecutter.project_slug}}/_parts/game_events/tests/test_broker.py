"""The brokers: the local event log, and Kafka when one is running."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes import FAST_HASH, KAFKA, consumed, decoded, logged_in, needs_kafka

from {{ cookiecutter.project_slug }} import broker as brokers
from {{ cookiecutter.project_slug }}.api import make_app
from {{ cookiecutter.project_slug }}.broker import (
    KafkaBroker,
    LocalBroker,
    open_broker,
)
from {{ cookiecutter.project_slug }}.errors import (
    BrokerError,
)
from {{ cookiecutter.project_slug }}.event_log import (
    sealed_segments,
)
from {{ cookiecutter.project_slug }}.events import (
    make_event,
)
from {{ cookiecutter.project_slug }}.players import Game
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)


def an_event(username: str | None = "ana") -> dict:
    return make_event(
        "signup", success=True, reason=None, username=username, host="h", user_agent="u"
    )


def test_open_broker_picks_kafka_only_when_servers_are_set(tmp_path):
    assert isinstance(open_broker(Settings(events_dir=tmp_path)), LocalBroker)
    kafka = open_broker(Settings(kafka_bootstrap_servers="k:9092", kafka_topic="t"))
    assert isinstance(kafka, KafkaBroker)
    assert (kafka.bootstrap_servers, kafka.topic) == ("k:9092", "t")


async def test_the_local_broker_writes_one_line_per_event(tmp_path):
    broker = LocalBroker(tmp_path / "events")
    await broker.start()
    events = [an_event(), an_event(None)]
    for event in events:
        await broker.send(event)
    await broker.close()
    lines = [
        json.loads(line)
        for segment in sealed_segments(tmp_path / "events")
        for line in segment.read_bytes().splitlines()
    ]
    assert lines == events


async def test_a_local_broker_that_cannot_write_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    broker = LocalBroker(blocker / "events")
    with pytest.raises(BrokerError, match="EVENTS_DIR"):
        await broker.start()


async def test_kafka_that_cannot_be_reached_fails_at_start_in_one_line():
    broker = KafkaBroker("127.0.0.1:1", "events")
    with pytest.raises(
        BrokerError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"
    ) as raised:
        await broker.start()
    assert "\n" not in str(raised.value)


@needs_kafka
async def test_kafka_acknowledges_each_event_keyed_by_username():
    topic = f"test-{uuid.uuid4().hex[:8]}"
    broker = KafkaBroker(KAFKA, topic)
    await broker.start()
    events = [an_event("ana"), an_event(None)]
    try:
        for event in events:
            await broker.send(event)
    finally:
        await broker.close()
    records = await consumed(topic)
    assert decoded(records) == events
    assert [record.key for record in records] == [b"ana", None]


@needs_kafka
async def test_events_sent_together_are_each_committed_once():
    topic = f"test-{uuid.uuid4().hex[:8]}"
    broker = KafkaBroker(KAFKA, topic)
    await broker.start()
    events = [an_event(f"player-{number}") for number in range(300)]
    try:
        await asyncio.gather(*(broker.send(event) for event in events))
    finally:
        await broker.close()
    assert sorted(decoded(await consumed(topic)), key=str) == sorted(events, key=str)


@needs_kafka
async def test_a_refused_event_takes_its_transaction_down_and_the_next_goes_on():
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        small = NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})
        await admin.create_topics([small])
    finally:
        await admin.close()
    broker = KafkaBroker(KAFKA, topic)
    await broker.start()
    too_big = {**an_event("big"), "user_agent": "x" * 5000}
    try:
        sent = await asyncio.gather(
            broker.send(an_event("beside")),
            broker.send(too_big),
            return_exceptions=True,
        )
        await broker.send(an_event("after"))
    finally:
        await broker.close()
    assert [type(outcome) for outcome in sent] == [BrokerError, BrokerError]
    assert [e["username"] for e in decoded(await consumed(topic))] == ["after"]


async def test_kafka_without_transactions_fails_at_start(monkeypatch):
    class NoCoordinator:
        async def begin_transaction(self) -> None:
            await asyncio.Event().wait()  # as aiokafka waits for a coordinator

    monkeypatch.setattr(brokers, "KAFKA_TIMEOUT", 0.1)
    with pytest.raises(BrokerError, match=r"replication\.factor=1"):
        await brokers._check_transactions(NoCoordinator(), "k:9092")


async def test_with_the_local_log_each_answered_action_is_one_line(tmp_path):
    broker = LocalBroker(tmp_path)
    await broker.start()
    app = make_app(broker, Game(scrypt_n=FAST_HASH))
    async with TestClient(TestServer(app)) as client:
        await logged_in(client)
        paths = ["/purchase/potion", "/purchase/sword?quality=epic", "/purchase/bow"]
        statuses = [(await client.post(path)).status for path in paths]
    await broker.close()
    lines = [
        json.loads(line)
        for segment in sealed_segments(tmp_path)
        for line in segment.read_bytes().splitlines()
    ]
    assert statuses == [200, 402, 404]
    assert [(e["event_type"], e["success"]) for e in lines] == [
        ("signup", True),
        ("login", True),
        ("purchase", True),
        ("purchase", False),
        ("purchase", False),
    ]
