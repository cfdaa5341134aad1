"""Contender 3: the official client's `helpers.async_bulk`, 500 actions a request.

The usual way to load Elasticsearch from asyncio: `elasticsearch[async]` 8.x, actions
drawn lazily from the package's events, each a create under the event's logID. The
helper sends one chunk at a time and parses the whole answer, as it comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from common import Target, arguments
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk
from pset_x.log_event import EventFactory

CHUNK_SIZE = 500


def actions(count: int, index: str) -> Iterator[dict[str, Any]]:
    factory = EventFactory()
    for _ in range(count):
        event = factory.event()
        yield {
            "_op_type": "create",
            "_index": index,
            "_id": event.logID,
            "_source": event.as_dict(),
        }


async def send(count: int, target: Target) -> None:
    client = AsyncElasticsearch(target.host, basic_auth=(target.user, target.password))
    try:
        stored, errors = await async_bulk(
            client, actions(count, target.index), chunk_size=CHUNK_SIZE
        )
    finally:
        await client.close()
    if stored != count or errors:
        raise SystemExit(f"stored {stored} of {count} events: {errors[:3]}")


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    asyncio.run(send(args.count, Target.from_environment()))


if __name__ == "__main__":
    main()
