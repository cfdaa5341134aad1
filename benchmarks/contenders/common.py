"""What every contender shares: where the server is, how many events to send, and
the actions the official clients' bulk helpers are given.

Contenders read the same ELASTIC_* variables as the package, so the runner points
them all at the sink, or at the OpenSearch node, in one way.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pset_x.log_event import EventFactory

MAX_IN_FLIGHT = 10  # the assignment's limit on requests in flight
BULK_CHUNK_SIZE = 500  # actions per request for both official bulk helpers


@dataclass(frozen=True)
class Target:
    """The server's URL, the index and the credentials (neither server checks them)."""

    host: str
    index: str
    user: str
    password: str

    @classmethod
    def from_environment(cls) -> Target:
        env = os.environ
        return cls(
            host=env["ELASTIC_HOST"].rstrip("/"),
            index=env.get("ELASTIC_INDEX", "pset_x"),
            user=env.get("ELASTIC_USERID", "elastic"),
            password=env.get("ELASTIC_PASSWORD", ""),
        )

    @property
    def authorization(self) -> str:
        """The basic-auth header value."""
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with --count; a contender adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, required=True, help="events to send")
    return parser


def create_actions(count: int, index: str) -> Iterator[dict[str, Any]]:
    """`count` bulk-helper actions, drawn lazily from the package's events: each a
    create under the event's logID, so that a retried item cannot store it twice."""
    factory = EventFactory()
    for _ in range(count):
        event = factory.event()
        yield {
            "_op_type": "create",
            "_index": index,
            "_id": event.logID,
            "_source": event.as_dict(),
        }


async def load_with_bulk_helper(
    client: Any, async_bulk: Callable[..., Awaitable[Any]], count: int, target: Target
) -> None:
    """Store `count` events with an official client's `helpers.async_bulk`, then
    refresh, as ours does; elasticsearch-py and opensearch-py are used alike."""
    try:
        stored, errors = await async_bulk(
            client, create_actions(count, target.index), chunk_size=BULK_CHUNK_SIZE
        )
        await client.indices.refresh(index=target.index)
    finally:
        await client.close()
    if stored != count or errors:
        raise SystemExit(f"stored {stored} of {count} events: {errors[:3]}")


def run_contender(
    description: str, send: Callable[[int, Target], Awaitable[None]]
) -> None:
    """The command line of a contender: --count, the target from the environment."""
    args = arguments(description).parse_args()
    asyncio.run(send(args.count, Target.from_environment()))
