"""Kafka goes away while `serve` runs: the player is answered 503 within the
broker's timeout, the server stays up, it records again once Kafka is back, and the
refused action's event is never read.

The shared broker keeps running for the other tests: `serve` reaches it through a
proxy (kafka_proxy.py) that this test cuts and restores.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from fakes import KAFKA, consumed, decoded, needs_kafka
from kafka_proxy import KafkaProxy
from test_serve import a_free_port, serving

from {{ cookiecutter.project_slug }}.broker import (
    KAFKA_TIMEOUT,
)

# Room on top of the broker's timeout for a slow machine: a bound, not a benchmark.
SLACK = 20.0


@pytest.fixture
def proxy() -> Iterator[KafkaProxy]:
    proxy = KafkaProxy(KAFKA)
    proxy.start()
    yield proxy
    proxy.stop()


def post(url: str) -> tuple[int, dict]:
    """POST, and the status and JSON answer, whatever the status."""
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=KAFKA_TIMEOUT + SLACK) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.load(refused)


@needs_kafka
def test_while_kafka_is_away_actions_answer_503_and_serve_stays_up(tmp_path, proxy):
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    port = a_free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        tmp_path / "events",
        port,
        KAFKA_BOOTSTRAP_SERVERS=proxy.bootstrap_servers,
        KAFKA_TOPIC=topic,
    ) as server:
        assert post(f"{url}/signup?username=before&password=secret-pw")[0] == 200

        proxy.cut()
        # post() gives up after the broker's timeout and the slack: an answer is
        # one within it.
        status, answer = post(f"{url}/signup?username=during&password=secret-pw")
        assert (status, answer["ok"]) == (503, False), answer
        assert "try again" in answer["message"]
        # The server is up, and answers at once what needs no broker.
        assert server.poll() is None
        with pytest.raises(urllib.error.HTTPError) as no_session:
            urllib.request.urlopen(f"{url}/inventory", timeout=5)
        assert no_session.value.code == 401
        no_session.value.close()

        proxy.restore()
        # Nothing changed by the refused signup: the name is still free.
        assert post(f"{url}/signup?username=during&password=secret-pw")[0] == 200
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
        log = server.stderr.read()
    assert "signup not recorded, answered 503" in log
    # The producer may keep the refused signup's event and store it once Kafka is
    # back, in the transaction it aborted: no reader of committed events sees it
    # (lake_samples.produce stores such a transaction for the landing tests).
    records = asyncio.run(consumed(topic))
    assert [event["username"] for event in decoded(records)] == ["before", "during"]
