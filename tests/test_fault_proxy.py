"""The fault-injecting proxy forwards faithfully and injects exactly what it is told.

The tests that put the baked project behind the proxy trust it to be transparent when
it injects nothing, to keep a fault's promise (a 429 never reaches the engine, a
drop_after always does, once), to repeat a seed's faults, and to count the requests
in flight exactly. These tests prove each against a small upstream app that records
what it applied.
"""

import asyncio
import gzip
import http.client
import itertools
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from fault_proxy import FaultMix, running_app, running_proxy
from multidict import CIMultiDictProxy

GZIPPED = gzip.compress(b'{"hits": []}', mtime=0)


class Applied(NamedTuple):
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes


class Upstream:
    """A search-engine stand-in that records every request it applies.

    /_gzip answers a compressed body; /_hang_up closes the connection unanswered;
    /_together/N answers only once N requests wait there at the same time, so the
    requests that pass are known to have been in flight together.
    """

    def __init__(self) -> None:
        self.url = ""
        self.applied: list[Applied] = []
        self._waiting = 0
        self._all_there: asyncio.Event | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_together/{count}", self._together)
        app.router.add_get("/_hang_up", self._hang_up)
        app.router.add_get("/_gzip", self._gzip)
        app.router.add_route("*", "/{path:.*}", self._echo)
        return app

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.applied.append(
            Applied(request.method, request.raw_path, request.headers, body)
        )
        return web.json_response(
            {"method": request.method, "path": request.raw_path, "body": body.decode()},
            status=int(request.query.get("status", "200")),
            headers={"X-Upstream": "echo"},
        )

    async def _gzip(self, request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=GZIPPED, headers=headers)

    async def _hang_up(self, request: web.Request) -> web.Response:
        self.applied.append(
            Applied(request.method, request.raw_path, request.headers, b"")
        )
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async def _together(self, request: web.Request) -> web.Response:
        if self._all_there is None:
            self._all_there = asyncio.Event()
        self._waiting += 1
        if self._waiting == int(request.match_info["count"]):
            self._all_there.set()
        async with asyncio.timeout(5):
            await self._all_there.wait()
        return web.json_response({"together": self._waiting})


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def call(
    url: str,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
) -> Answer:
    """One request on a connection of its own, so no client retries hide a drop."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(
        address.hostname, address.port, timeout=timeout
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def outcome(url: str) -> int | str:
    """A request's status, or "dropped" when the connection closed unanswered."""
    try:
        return call(url, "POST", "/logs/_doc", b"{}").status
    except http.client.RemoteDisconnected:
        return "dropped"


def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait for something that happens in another thread, failing if it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Dropping connections on purpose must not look like a failure in the logs."""
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    records += caplog.records  # this teardown so far: the servers have stopped
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    stand_in = Upstream()
    with running_app(stand_in.app()) as url:
        stand_in.url = url
        yield stand_in


def test_forwarding_is_transparent(upstream):
    body = '{"index":{}}\n{"message":"h\u00e9"}\n'.encode()
    path = "/logs/_bulk?refresh=wait_for&q=a%20b%2Fc"
    headers = {"Content-Type": "application/x-ndjson", "X-Opaque-Id": "test-7"}
    with running_proxy(upstream.url) as proxy:
        answer = call(proxy.url, "POST", path, body, headers)

    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.headers["X-Upstream"] == "echo"
    assert json.loads(answer.body) == {
        "method": "POST",
        "path": path,
        "body": body.decode(),
    }
    [applied] = upstream.applied
    assert (applied.method, applied.path, applied.body) == ("POST", path, body)
    assert applied.headers["X-Opaque-Id"] == "test-7"
    assert applied.headers["Content-Type"] == "application/x-ndjson"
    assert applied.headers["Host"] == urlsplit(upstream.url).netloc
    assert (proxy.requests, proxy.injected) == (1, {})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_each_method_reaches_upstream_as_sent(upstream, method):
    with running_proxy(upstream.url) as proxy:
        answer = call(proxy.url, method, "/logs?status=404")

    assert answer.status == 404
    assert json.loads(answer.body)["method"] == method
    assert [(a.method, a.path) for a in upstream.applied] == [
        (method, "/logs?status=404")
    ]


def test_head_answer_keeps_the_length_of_the_body_it_does_not_carry(upstream):
    direct = call(upstream.url, "HEAD", "/logs")
    with running_proxy(upstream.url) as proxy:
        head = call(proxy.url, "HEAD", "/logs")

    assert (head.status, head.body) == (200, b"")
    assert int(direct.headers["Content-Length"]) > 0
    assert head.headers["Content-Length"] == direct.headers["Content-Length"]


def test_compressed_answer_is_relayed_byte_for_byte(upstream):
    with running_proxy(upstream.url) as proxy:
        answer = call(proxy.url, "GET", "/_gzip", headers={"Accept-Encoding": "gzip"})

    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.body == GZIPPED


def test_hop_by_hop_headers_stay_with_the_connection(upstream):
    headers = {"Connection": "X-Hop", "X-Hop": "1", "Keep-Alive": "5", "X-End": "1"}
    with running_proxy(upstream.url) as proxy:
        call(proxy.url, headers=headers)

    [applied] = upstream.applied
    assert applied.headers["X-End"] == "1"
    assert not {"X-Hop", "Keep-Alive"} & set(applied.headers)


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("429", "es_rejected_execution_exception"),
        ("503", "unavailable_shards_exception"),
    ],
)
def test_rejections_answer_like_elasticsearch_without_reaching_upstream(
    upstream, kind, error_type
):
    with running_proxy(upstream.url, FaultMix(rates={kind: 1.0})) as proxy:
        answer = call(proxy.url, "POST", "/logs/_bulk", b"{}\n")

    assert answer.status == int(kind)
    assert answer.headers["Content-Type"] == "application/json"
    error = json.loads(answer.body)
    assert error["status"] == int(kind)
    assert error["error"]["type"] == error["error"]["root_cause"][0]["type"]
    assert error["error"]["type"] == error_type
    assert "injected by the test proxy" in error["error"]["reason"]
    assert upstream.applied == []
    assert proxy.injected == {kind: 1}


@pytest.mark.parametrize(
    ("kind", "content_type"), [("502", "text/html"), ("504", "text/plain")]
)
def test_gateway_errors_answer_like_a_proxy_without_reaching_upstream(
    upstream, kind, content_type
):
    with running_proxy(upstream.url, FaultMix(rates={kind: 1.0})) as proxy:
        answer = call(proxy.url)

    assert answer.status == int(kind)
    assert answer.headers["Content-Type"].startswith(content_type)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.body)
    assert upstream.applied == []
    assert proxy.injected == {kind: 1}


def test_drop_before_disconnects_without_reaching_upstream(upstream):
    mix = FaultMix(rates={"drop_before": 1.0})
    with (
        running_proxy(upstream.url, mix) as proxy,
        pytest.raises(http.client.RemoteDisconnected),
    ):
        call(proxy.url, "POST", "/logs/_bulk", b"{}\n")

    assert upstream.applied == []
    assert proxy.injected == {"drop_before": 1}
    assert proxy.in_flight == 0


def test_drop_after_applies_once_then_disconnects(upstream):
    mix = FaultMix(rates={"drop_after": 1.0})
    with (
        running_proxy(upstream.url, mix) as proxy,
        pytest.raises(http.client.RemoteDisconnected),
    ):
        call(proxy.url, "POST", "/logs/_bulk", b"{}\n")

    assert [(a.method, a.body) for a in upstream.applied] == [("POST", b"{}\n")]
    assert proxy.injected == {"drop_after": 1}
    assert proxy.in_flight == 0


@pytest.mark.parametrize(("method", "sent"), [("POST", 1), ("PUT", 2), ("GET", 2)])
def test_aiohttp_client_sees_server_disconnected_and_resends_idempotent_once(
    upstream, method, sent
):
    """What the baked project's client meets: aiohttp itself resends a dropped
    GET, PUT, DELETE or HEAD once, so such a drop_after applies the request twice.
    """

    async def send(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url + "/logs/_doc/1", data=b"{}"),
        ):
            pass

    mix = FaultMix(rates={"drop_after": 1.0})
    with (
        running_proxy(upstream.url, mix) as proxy,
        pytest.raises(aiohttp.ServerDisconnectedError),
    ):
        asyncio.run(send(proxy.url))

    assert proxy.requests == sent
    assert len(upstream.applied) == sent


def test_slow_delays_the_answer(upstream):
    mix = FaultMix(rates={"slow": 1.0}, slow_seconds=0.3)
    with running_proxy(upstream.url, mix) as proxy:
        start = time.monotonic()
        answer = call(proxy.url, "POST", "/logs/_doc", b"{}")
        elapsed = time.monotonic() - start

    assert answer.status == 200
    assert elapsed >= 0.3
    assert len(upstream.applied) == 1
    assert proxy.injected == {"slow": 1}


def test_same_seed_gives_the_same_faults(upstream):
    rates = {"429": 0.3, "503": 0.2, "drop_before": 0.2, "504": 0.1}
    outcome_of = {"429": 429, "503": 503, "drop_before": "dropped", "504": 504}

    def run(seed: int) -> list[int | str]:
        with running_proxy(upstream.url, FaultMix(seed=seed, rates=rates)) as proxy:
            return [outcome(proxy.url) for _ in range(40)]

    first, again, other = run(3), run(3), run(4)
    predicted = [
        outcome_of.get(kind, 200)
        for kind in itertools.islice(FaultMix(seed=3, rates=rates).faults(), 40)
    ]
    assert first == again == predicted
    assert other != first
    assert set(first) == {200, 429, 503, 504, "dropped"}


def test_max_in_flight_counts_the_requests_in_flight_together(upstream):
    with running_proxy(upstream.url) as proxy:
        for _ in range(3):
            call(proxy.url)
        alone = proxy.max_in_flight
        with ThreadPoolExecutor(15) as pool:
            answers = list(
                pool.map(lambda _: call(proxy.url, path="/_together/15"), range(15))
            )

    assert alone == 1
    assert [answer.status for answer in answers] == [200] * 15
    assert proxy.max_in_flight == 15
    assert proxy.in_flight == 0
    assert proxy.requests == 18


def test_only_restricts_faults_to_the_chosen_requests(upstream):
    mix = FaultMix(rates={"429": 1.0}, only=lambda method, path: method == "POST")
    with running_proxy(upstream.url, mix) as proxy:
        statuses = [call(proxy.url, "GET").status, outcome(proxy.url)]

    assert statuses == [200, 429]
    assert proxy.injected == {"429": 1}


def test_paused_proxy_forwards_untouched_until_resumed(upstream):
    with running_proxy(upstream.url, FaultMix(rates={"429": 1.0})) as proxy:
        proxy.pause()
        paused = outcome(proxy.url)
        proxy.resume()
        resumed = outcome(proxy.url)

    assert (paused, resumed) == (200, 429)
    assert proxy.injected == {"429": 1}


def test_unreachable_upstream_is_a_502_from_the_proxy():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with running_proxy(f"http://127.0.0.1:{port}") as proxy:
        answer = call(proxy.url)

    assert answer.status == 502
    assert b"cannot reach" in answer.body
    assert proxy.injected == {}


def test_upstream_hanging_up_is_a_502_and_never_resent(upstream):
    with running_proxy(upstream.url) as proxy:
        answer = call(proxy.url, "GET", "/_hang_up")

    assert answer.status == 502
    assert len(upstream.applied) == 1


def test_client_giving_up_on_a_slow_answer_leaves_the_proxy_calm(upstream):
    mix = FaultMix(rates={"slow": 1.0}, slow_seconds=0.5)
    with running_proxy(upstream.url, mix) as proxy, pytest.raises(TimeoutError):
        call(proxy.url, timeout=0.1)

    assert proxy.in_flight == 0
    assert len(upstream.applied) == 1


def test_client_leaving_in_the_middle_of_a_body_is_not_forwarded(upstream):
    with running_proxy(upstream.url) as proxy:
        address = urlsplit(proxy.url)
        with socket.create_connection((address.hostname, address.port)) as client:
            client.sendall(b"POST /logs/_bulk HTTP/1.1\r\nHost: x\r\n")
            client.sendall(b"Content-Length: 100\r\n\r\n{")
            wait_until(lambda: proxy.requests == 1)

    assert proxy.in_flight == 0
    assert upstream.applied == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rates": {"418": 0.1}}, "unknown fault kind '418'; the kinds are 429, 503"),
        ({"rates": {"429": 0.6, "503": 0.5}}, "the fault rates add up to 1.1"),
        ({"rates": {"429": 1.5}}, "the rate of 429 is 1.5; a rate is a chance"),
        ({"rates": {"slow": -0.1}}, "between 0 and 1"),
        ({"slow_seconds": -1}, "slow_seconds is -1"),
    ],
)
def test_invalid_mix_is_a_value_error_that_says_why(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultMix(**settings)
