"""The Kafka harness gives tests a real broker, and CI cannot quietly skip it."""

import asyncio
import socket

import kafka_broker
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from ports import accepts_connections, free_ports

MESSAGES = [f"event {n}".encode() for n in range(100)]


async def create_topic(bootstrap_servers: str, name: str) -> None:
    """Create a topic of one partition, the only replica on the one broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def produce(bootstrap_servers: str, topic: str, values: list[bytes]) -> None:
    """Send every value at once, then wait until every replica in sync has them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        # Queued all at once, the values leave in batches: the idempotent producer has
        # to keep them in order and write none twice.
        sent = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def consume(bootstrap_servers: str, topic: str, count: int) -> list[bytes]:
    """The first `count` values of a topic, read from its earliest offset in a group."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"{topic}-readers",
        auto_offset_reset="earliest",
    )
    values = []
    try:
        # A bound, so that a group that never forms or a lost message fails the test
        # instead of hanging it.
        async with asyncio.timeout(60):
            await consumer.start()
            async for message in consumer:
                values.append(message.value)
                if len(values) == count:
                    break
    finally:
        await consumer.stop()
    return values


async def describe_cluster(bootstrap_servers: str) -> dict:
    """The cluster's metadata: its brokers and its controller."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return await admin.describe_cluster()
    finally:
        await admin.close()


# First, so that its broker and the session's do not start at once on a small runner.
def test_broker_keeps_data_in_its_folder_and_stops_on_exit(tmp_path):
    kafka_broker.ENGINE.require_available()
    with kafka_broker.running_broker(tmp_path) as broker:
        asyncio.run(create_topic(broker.bootstrap_servers, "harness-data"))
        asyncio.run(produce(broker.bootstrap_servers, "harness-data", [b"kept"]))
        assert broker.home.parent == tmp_path
        partition = broker.data / "harness-data-0"
        assert any(path.stat().st_size > 0 for path in partition.glob("*.log"))
    assert broker.process.returncode in {0, 143}  # it closed itself, nothing killed it
    assert not accepts_connections(broker.bootstrap_servers)
    assert not broker.home.exists()


def test_broker_that_cannot_start_says_why(monkeypatch, tmp_path):
    kafka_broker.ENGINE.require_available()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        client_port = free_ports(1)[0]
        controller_port = taken.getsockname()[1]
        monkeypatch.setattr(
            kafka_broker, "free_ports", lambda count: [client_port, controller_port]
        )
        with (
            pytest.raises(kafka_broker.BrokerError, match="Address already in use"),
            kafka_broker.running_broker(tmp_path),
        ):
            pass
    assert list(tmp_path.iterdir()) == []


def test_broker_is_its_own_one_node_cluster(kafka):
    cluster = asyncio.run(describe_cluster(kafka.bootstrap_servers))
    host, port = kafka.bootstrap_servers.split(":")
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [
        (kafka_broker.NODE_ID, host, int(port))
    ]
    assert cluster["controller_id"] == kafka_broker.NODE_ID


def test_produced_messages_are_consumed_in_order(kafka):
    asyncio.run(create_topic(kafka.bootstrap_servers, "harness-order"))
    asyncio.run(produce(kafka.bootstrap_servers, "harness-order", MESSAGES))
    count = len(MESSAGES)
    consumed = asyncio.run(consume(kafka.bootstrap_servers, "harness-order", count))
    assert consumed == MESSAGES
