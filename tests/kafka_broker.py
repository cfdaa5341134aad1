"""A real single-node Kafka broker on 127.0.0.1, for the tests that need one.

No package index ships a Kafka server and these machines run no Docker, but Kafka is
a set of jars on Maven Central that runs on Java 17: the Maven project in
kafka-broker/ resolves them, and Kafka's own main classes format the log folder and
start one node that is both broker and controller (KRaft mode, no ZooKeeper). `ENGINE`
resolves the jars once (about 45 MB the first time), `running_broker` starts and stops
a broker, and the `kafka` fixture shares one broker with a test session. Readiness
is asked of the broker over the Kafka protocol, with aiokafka, the client the
generated project uses.
"""

import asyncio
import base64
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from maven_engine import TAIL_LINES, MavenEngine, log_lines, stop
from ports import accepts_connections, free_ports


class BrokerError(RuntimeError):
    """The broker could not be built, formatted or started."""


ENGINE = MavenEngine(
    name="the Kafka broker",
    project=Path(__file__).resolve().parent / "kafka-broker",
    # Kafka's own scripts give a broker 1 GB; a test broker holds a few small topics.
    java_options=("-Xms256m", "-Xmx512m"),
    error=BrokerError,
)
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# With no configuration file, log4j logs to stdout at log4j2.level (the storage tool
# keeps its errors only, or it would print the whole configuration). Log4j's own
# shutdown hook would stop logging while Kafka's still shuts the broker down.
BROKER_OPTIONS = ("-Dlog4j2.level=INFO", "-Dlog4j2.shutdownHookEnabled=false")
NODE_ID = 1
START_TIMEOUT = 120.0
# A broker's clean shutdown takes under a second here; past this, it is killed.
STOP_TIMEOUT = 30.0
# How log4j's default configuration starts a record: an ISO instant, the thread, the
# level. The lines that follow, up to the next record, belong to it.
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z .+? (?P<level>[A-Z]+) ")


@dataclass(frozen=True)
class RunningBroker:
    """A started broker: its client address and the folder that holds all its files."""

    bootstrap_servers: str
    home: Path
    process: subprocess.Popen

    @property
    def data(self) -> Path:
        """Where the broker keeps its partitions and the metadata log (log.dirs)."""
        return self.home / "data"

    @property
    def log(self) -> Path:
        """Everything the broker printed."""
        return self.home / "broker.log"


@contextmanager
def running_broker(
    workdir: Path, timeout: float = START_TIMEOUT
) -> Iterator[RunningBroker]:
    """Start a broker with its files in a new folder under workdir, ready for clients.

    Ready means the broker lists itself in a metadata response. On exit the broker
    stops and its folder is removed.
    """
    java = ENGINE.build()
    home = Path(tempfile.mkdtemp(prefix="kafka-", dir=workdir))
    try:
        # The controller's port goes into controller.quorum.voters before the
        # broker starts, so the system cannot pick it at bind time.
        client_port, controller_port = free_ports(2)
        config = home / "server.properties"
        _write_config(config, home / "data", client_port, controller_port)
        _format_storage(java, config)
        with (home / "broker.log").open("wb") as log:
            # A file, not a pipe: nothing has to drain it while the tests run.
            process = subprocess.Popen(
                [*java, *BROKER_OPTIONS, BROKER_MAIN, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        broker = RunningBroker(f"127.0.0.1:{client_port}", home, process)
        try:
            _wait_until_ready(broker, timeout)
            yield broker
        finally:
            stop(process, STOP_TIMEOUT)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _write_config(
    path: Path, data: Path, client_port: int, controller_port: int
) -> None:
    """A server.properties for one node that is its own broker and controller."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{client_port},"
            f"CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{client_port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": data,
        # One node holds every replica: the internal topics' defaults of 3 (and a
        # minimum in sync of 2) would leave groups and transactions unavailable.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "min.insync.replicas": 1,
        # The first consumer group creates __consumer_offsets: 1 partition, not 50.
        "offsets.topic.num.partitions": 1,
        # A group starts at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": 0,
        # Topics exist only once made, so a test that forgets to make one fails.
        "auto.create.topics.enable": "false",
    }
    lines = [f"{name}={value}" for name, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _format_storage(java: list[str], config: Path) -> None:
    """Format the broker's log folder with a new cluster id, as KRaft needs once."""
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. The
    # `=` form keeps an id that starts with "-" from being read as an option.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    command = [*java, STORAGE_TOOL, "format", "--config", str(config)]
    log = config.with_name("format.log")
    with log.open("wb") as output:
        result = subprocess.run(
            [*command, f"--cluster-id={cluster_id}"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise BrokerError(
            f"Kafka's storage tool exited with {result.returncode};"
            f" its output ends with:\n{_tail(log)}"
        )


def _wait_until_ready(broker: RunningBroker, timeout: float) -> None:
    """Return once the broker answers a metadata request with itself in it."""
    address = broker.bootstrap_servers
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise BrokerError(
                f"Kafka exited with {broker.process.returncode} before it was ready;"
                f" its log says:\n{_tail(broker.log)}"
            )
        # The client listener opens last, once the broker is up; asking before that
        # would only fill the log with aiokafka's connection errors.
        if accepts_connections(address) and asyncio.run(_lists_itself(address)):
            return
        time.sleep(0.2)
    raise BrokerError(
        f"Kafka was not ready within {timeout:.0f} s;"
        f" its log says:\n{_tail(broker.log)}"
    )


async def _lists_itself(address: str) -> bool:
    """Whether the broker at address lists its own node in a metadata response."""
    admin = AIOKafkaAdminClient(bootstrap_servers=address, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except KafkaError:
        return False
    finally:
        await admin.close()
    return any(broker["node_id"] == NODE_ID for broker in cluster["brokers"])


def _tail(path: Path) -> str:
    """What a broker's log says went wrong, for error messages.

    A broker goes on logging its shutdown long after what stopped it, so its warnings
    and errors come first, each with the exception it logged; a log with none (the
    storage tool's) gives its last lines.
    """
    lines = log_lines(path)
    problems, in_problem = [], False
    for line in lines:
        record = LOG_RECORD.match(line)
        if record is not None:
            in_problem = record["level"] in {"WARN", "ERROR"}
        if in_problem:
            problems.append(line)
    return "\n".join((problems or lines)[-TAIL_LINES:]) or "(no output)"


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """One real Kafka broker for the whole session (its `.bootstrap_servers`)."""
    ENGINE.require_available()
    with running_broker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker
