"""A reverse proxy that injects the faults of a real cluster, for the template's tests.

The baked project must survive what a loaded cluster and the network do to it:
rejected writes (429), unavailable shards (503), gateways that give up (502, 504),
connections dropped before a request is applied or after (its answer lost), and slow
answers. The proxy sits between the project's client and a real search engine and
injects those faults at chosen rates, reproducibly from a seed, while it counts the
requests in flight, so a test can check both the outcome (every event stored once)
and the politeness (never more than 10 requests at once).

It runs in a thread of its own with its own event loop, so synchronous tests and a
project run as a subprocess can both talk to it:

    with running_proxy(upstream_url, FaultMix(seed=3, rates={"429": 0.1})) as proxy:
        subprocess.run([..., "generate"], env={..., "ELASTIC_HOST": proxy.url})
        assert proxy.max_in_flight <= 10
"""

import asyncio
import itertools
import json
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, DummyCookieJar, TCPConnector, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# What each kind does to a request:
#   429, 503     answered by the proxy in Elasticsearch's JSON, never forwarded
#   502, 504     answered by the proxy as a gateway would (HTML, text), never forwarded
#   drop_before  the connection closed unanswered, never forwarded
#   drop_after   forwarded and applied, then the connection closed: the answer is lost
#   slow         forwarded and applied, the answer held back for slow_seconds
# The tuple's order is the order in which the kinds share out a draw; a fixed order
# keeps a seed's faults the same whatever the order of the rates given.
FAULT_KINDS = ("429", "503", "502", "504", "drop_before", "drop_after", "slow")

# Far more than the 10 requests the project may have in flight, so that the proxy is
# never what limits them, and a test of the limit measures the project alone.
UPSTREAM_CONNECTIONS = 100

# Elasticsearch's own default cap on a request body (http.max_content_length);
# aiohttp's default of 1 MiB would turn a large _bulk into a 413 of the proxy's own.
MAX_BODY_BYTES = 100 * 1024**2

# The hop-by-hop headers of RFC 2616 section 13.5.1 (RFC 9110 section 7.6.1 keeps
# the rule): they belong to one connection and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# The proxy's own server has already answered these for the client; the upstream
# gets its own Host from the upstream URL.
NOT_FORWARDED_REQUEST_HEADERS = frozenset({"host", "expect"})

# Headers aiohttp's client adds by itself; the upstream should see the client's only.
CLIENT_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


@dataclass(frozen=True)
class FaultMix:
    """Which faults to inject, how often, and the seed that makes a run repeatable.

    rates maps a kind of FAULT_KINDS to its chance per request; each request draws at
    most one fault, so the rates add up to at most 1. only, when given, chooses the
    requests (by method and path) that can get a fault; the others pass untouched and
    use no draw.
    """

    seed: int = 0
    rates: Mapping[str, float] = field(default_factory=dict)
    slow_seconds: float = 0.5
    only: Callable[[str, str], bool] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rates) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(
                f"unknown fault kind {', '.join(map(repr, unknown))}; "
                f"the kinds are {', '.join(FAULT_KINDS)}"
            )
        for kind, rate in self.rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(
                    f"the rate of {kind} is {rate}; a rate is a chance per request, "
                    "between 0 and 1"
                )
        total = sum(self.rates.values())
        if total > 1 + 1e-9:
            raise ValueError(
                f"the fault rates add up to {total:g}; each request draws at most "
                "one fault, so they must add up to at most 1"
            )
        if self.slow_seconds < 0:
            raise ValueError(f"slow_seconds is {self.slow_seconds}; it cannot be < 0")

    def faults(self) -> Iterator[str | None]:
        """One draw per request in arrival order: the same seed, the same faults.

        Requests sent one at a time get the same faults run after run; requests
        sent together get the same faults between them, in the order they arrive.
        """
        kinds = [kind for kind in FAULT_KINDS if kind in self.rates]
        edges = list(
            zip(kinds, itertools.accumulate(self.rates[k] for k in kinds), strict=True)
        )
        chances = random.Random(self.seed)
        while True:
            point = chances.random()
            yield next((kind for kind, edge in edges if point < edge), None)


def _error_429() -> web.Response:
    return _elasticsearch_error(
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation (injected by the test proxy)",
    )


def _error_503() -> web.Response:
    return _elasticsearch_error(
        503,
        "unavailable_shards_exception",
        "primary shard is not active (injected by the test proxy)",
    )


def _elasticsearch_error(status: int, error_type: str, reason: str) -> web.Response:
    """An error the way Elasticsearch writes it, so the client parses the real shape."""
    cause = {"type": error_type, "reason": reason}
    error = {"root_cause": [cause], **cause}
    body = json.dumps({"error": error, "status": status}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def _error_502() -> web.Response:
    # The page nginx writes: a gateway's error is HTML, not Elasticsearch's JSON.
    title = "502 Bad Gateway"
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body>"
    return web.Response(status=502, text=page + "</html>\n", content_type="text/html")


def _error_504() -> web.Response:
    # The plain text a load balancer such as Envoy answers when the upstream is late.
    return web.Response(status=504, text="upstream request timeout")


CANNED_ANSWERS: dict[str, Callable[[], web.Response]] = {
    "429": _error_429,
    "503": _error_503,
    "502": _error_502,
    "504": _error_504,
}


class FaultProxy:
    """The proxy's state, read from the test's thread while it serves from its own.

    url is set by running_proxy once the proxy listens.
    """

    def __init__(self, upstream_url: str, mix: FaultMix) -> None:
        self.url = ""
        self._upstream = upstream_url.rstrip("/")
        self._mix = mix
        self._faults = mix.faults()
        self._lock = threading.Lock()
        self._paused = False
        self._requests = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._injected: Counter[str] = Counter()
        self._session: ClientSession | None = None

    @property
    def requests(self) -> int:
        """Requests received, faulty or not."""
        with self._lock:
            return self._requests

    @property
    def in_flight(self) -> int:
        """Requests received and neither answered nor dropped yet."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests ever in flight at once."""
        with self._lock:
            return self._max_in_flight

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far, by kind (a copy)."""
        with self._lock:
            return Counter(self._injected)

    def pause(self) -> None:
        """Forward every request untouched, using no draws, until resume()."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Inject faults again, continuing the seed's sequence where it stopped."""
        with self._lock:
            self._paused = False

    def app(self) -> web.Application:
        """The aiohttp application that forwards to the upstream and injects faults."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.cleanup_ctx.append(self._upstream_session)
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    async def _upstream_session(self, app: web.Application) -> AsyncIterator[None]:
        connector = TCPConnector(limit=UPSTREAM_CONNECTIONS)
        async with ClientSession(
            connector=connector,
            auto_decompress=False,  # relay the body byte for byte
            cookie_jar=DummyCookieJar(),
            skip_auto_headers=CLIENT_AUTO_HEADERS,
        ) as session:
            # aiohttp resends an idempotent request (GET, HEAD, PUT, DELETE...) once
            # when the connection drops, with no public switch (aiohttp issue
            # #10790); its own TestClient turns it off like this. A proxy that
            # retried would hide the upstream's faults from the client under test.
            session._retry_connection = False
            self._session = session
            yield

    def _arrive(self, method: str, path: str) -> str | None:
        """Count the request in and draw its fault, if it can have one."""
        only = self._mix.only
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if self._paused or (only is not None and not only(method, path)):
                return None
            fault = next(self._faults)
            if fault is not None:
                self._injected[fault] += 1
            return fault

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._arrive(request.method, request.path)
        try:
            # Read the whole body first, even for a fault that ignores it: closing a
            # socket with unread data sends a reset instead of a clean close.
            try:
                body = await request.read()
            except ConnectionError:
                return _drop(request)  # the client left while sending the body
            if fault in CANNED_ANSWERS:
                return await _send(request, CANNED_ANSWERS[fault]())
            if fault == "drop_before":
                return _drop(request)
            answer = await self._forward(request, body)
            if fault == "drop_after":
                return _drop(request)
            if fault == "slow":
                await asyncio.sleep(self._mix.slow_seconds)
            return await _send(request, answer)
        finally:
            self._leave()

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        """The upstream's answer to the request, or a 502 if it cannot be reached."""
        assert self._session is not None
        url = URL(self._upstream + request.raw_path, encoded=True)
        headers = _end_to_end(request.headers, NOT_FORWARDED_REQUEST_HEADERS)
        try:
            async with self._session.request(
                request.method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
            ) as upstream:
                return web.Response(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=_end_to_end(upstream.headers),
                    body=await upstream.read(),
                )
        except ClientError as error:
            # A real failure, not an injected one: say so as a gateway would.
            return web.Response(
                status=502,
                text=f"the test proxy cannot reach {self._upstream}: {error}",
            )


def _end_to_end(
    headers: CIMultiDictProxy[str], also_drop: frozenset[str] = frozenset()
) -> CIMultiDict[str]:
    """The headers meant for the other end: without the hop-by-hop ones, and
    without those the Connection header names as hop-by-hop for this connection.

    Content-Length is kept: the proxy relays bodies byte for byte, and a HEAD's
    answer must keep the length of the body it does not carry.
    """
    named = {
        name.strip().lower()
        for value in headers.getall("Connection", ())
        for name in value.split(",")
    }
    dropped = HOP_BY_HOP | named | also_drop
    return CIMultiDict(
        (name, value) for name, value in headers.items() if name.lower() not in dropped
    )


async def _send(request: web.Request, answer: web.Response) -> web.Response:
    """Write the answer now, so that a request stays in flight until it is written."""
    try:
        await answer.prepare(request)
        await answer.write_eof()
    except ConnectionError:
        pass  # the client left first; aiohttp lets the connection go quietly
    return answer


def _drop(request: web.Request) -> web.Response:
    """Close the client's connection without answering.

    aiohttp finds the connection closed when it sends the returned response, and
    treats that as a client that went away: no answer, no traceback in the log.
    Only the access log shows the response, with nginx's code for a connection
    closed without answering.
    """
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=444, reason="Connection Closed Without Response")


@contextmanager
def running_app(app: web.Application) -> Iterator[str]:
    """Serve an aiohttp application on a free port of 127.0.0.1 from a thread.

    Yields its URL; on exit, waits for the requests in progress, then closes
    everything the application opened, inside its own loop.
    """
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, str]] = Future()
    finished: Future[None] = Future()

    async def serve() -> None:
        stop = asyncio.Event()
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            started.set_result(
                (asyncio.get_running_loop(), stop, f"http://{host}:{port}")
            )
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            finished.set_exception(error)
        else:
            finished.set_result(None)

    thread = threading.Thread(target=run, name="running_app", daemon=True)
    thread.start()
    loop, stop, url = started.result()
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        finished.result()


@contextmanager
def running_proxy(
    upstream_url: str, mix: FaultMix | None = None
) -> Iterator[FaultProxy]:
    """Run a FaultProxy in front of upstream_url; without a mix it injects nothing."""
    proxy = FaultProxy(upstream_url, mix or FaultMix())
    with running_app(proxy.app()) as url:
        proxy.url = url
        yield proxy
