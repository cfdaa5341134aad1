"""A TCP proxy in front of a real Kafka cluster, which a test can cut and restore.

A Kafka client connects to the bootstrap address only to learn the brokers'
addresses (a Metadata answer), then talks to those directly, so a plain proxy would
be bypassed. This one also rewrites every Metadata answer to name its own listeners,
one per broker: every connection of the client passes through it. `cut()` then does
what a broker that goes away does (open connections reset, new ones refused) without
touching the shared cluster the other tests use; `restore()` brings it back on the
same ports.

It decodes Metadata with aiokafka's own protocol classes, for the versions aiokafka
sends (0 to 5); every other request and answer is forwarded byte for byte.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

from aiokafka.protocol import metadata

METADATA = 3  # Kafka's api_key of Metadata
ANSWERS = {
    request.API_VERSION: request.RESPONSE_TYPE
    for request in (
        metadata.MetadataRequest_v0,
        metadata.MetadataRequest_v1,
        metadata.MetadataRequest_v2,
        metadata.MetadataRequest_v3,
        metadata.MetadataRequest_v4,
        metadata.MetadataRequest_v5,
    )
}
HOST = "127.0.0.1"


class KafkaProxy:
    """Runs on an event loop of its own, in a thread: the tests that use it are
    synchronous and may run their own loops meanwhile."""

    def __init__(self, bootstrap: str) -> None:
        host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
        self._bootstrap = (host, int(port))
        self._ports: dict[tuple[str, int], int] = {}  # upstream -> our port
        self._servers: dict[tuple[str, int], asyncio.Server] = {}
        self._connections: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self._ports[self._bootstrap]}"

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen(self._bootstrap))

    def cut(self) -> None:
        """Kafka goes away: listeners closed, open connections reset."""
        self._call(self._cut())

    def restore(self) -> None:
        """Kafka comes back, at the same addresses."""
        self._call(self._restore())

    def stop(self) -> None:
        self._call(self._cut())
        self._call(asyncio.sleep(0.2))  # the relays see their resets and end
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _listen(self, upstream: tuple[str, int]) -> int:
        """Our listener for one upstream address (the same port as before, if any)."""
        if upstream not in self._servers:
            server = await asyncio.start_server(
                lambda r, w: self._relay(upstream, r, w),
                HOST,
                self._ports.get(upstream, 0),
            )
            self._servers[upstream] = server
            self._ports[upstream] = server.sockets[0].getsockname()[1]
        return self._ports[upstream]

    async def _cut(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
        for writer in list(self._connections):
            writer.transport.abort()  # a reset, as from a broker that died
        for server in servers:
            await server.wait_closed()

    async def _restore(self) -> None:
        for upstream in list(self._ports):
            await self._listen(upstream)

    async def _relay(
        self,
        upstream: tuple[str, int],
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        """One client connection: requests up, answers down, Metadata rewritten."""
        try:
            broker_reader, broker_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._connections |= {client_writer, broker_writer}
        asked: dict[bytes, int] = {}  # correlation id -> Metadata version
        pumps = [
            asyncio.ensure_future(
                self._forward(client_reader, broker_writer, asked, to_broker=True)
            ),
            asyncio.ensure_future(
                self._forward(broker_reader, client_writer, asked, to_broker=False)
            ),
        ]
        try:
            # Either side closing ends the connection, as it would without us.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)  # a reset, say
            for writer in (client_writer, broker_writer):
                writer.transport.abort()
                self._connections.discard(writer)

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        asked: dict[bytes, int],
        *,
        to_broker: bool,
    ) -> None:
        """Frames one way until that side closes: requests to the broker, noting in
        `asked` those for Metadata, or answers to the client, those rewritten."""
        while (payload := await read_frame(reader)) is not None:
            if to_broker:
                # Every request header starts api_key (2 bytes), api_version (2),
                # correlation_id (4).
                if int.from_bytes(payload[:2], "big") == METADATA:
                    asked[payload[4:8]] = int.from_bytes(payload[2:4], "big")
            elif (correlation := payload[:4]) in asked:
                payload = correlation + await self._rewritten(
                    ANSWERS[asked.pop(correlation)], payload[4:]
                )
            writer.write(len(payload).to_bytes(4, "big") + payload)
            await writer.drain()

    async def _rewritten(self, answer_type: Any, body: bytes) -> bytes:
        """A Metadata answer whose brokers are our listeners."""
        answer = answer_type.decode(body)
        brokers = []
        for node_id, host, port, *rest in answer.brokers:
            brokers.append((node_id, HOST, await self._listen((host, port)), *rest))
        answer.__dict__["brokers"] = brokers
        return answer.encode()


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One Kafka frame (a 4-byte size, then that many bytes), or None once the
    connection is gone."""
    try:
        size = int.from_bytes(await reader.readexactly(4), "big")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:  # closed between frames, or inside one
        return None
    except ConnectionError:  # reset, as cut() does
        return None
