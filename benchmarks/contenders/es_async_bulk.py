"""Contender 3: the official client's `helpers.async_bulk`, 500 actions a request.

The usual way to load Elasticsearch from asyncio: `elasticsearch[async]` 8.x, actions
drawn lazily from the package's events, each a create under the event's logID. The
helper sends one chunk at a time and parses the whole answer, as it comes. A refresh
at the end leaves the events searchable, as ours does.
"""

from __future__ import annotations

import asyncio

from common import Target, arguments, create_actions
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

CHUNK_SIZE = 500


async def send(count: int, target: Target) -> None:
    client = AsyncElasticsearch(target.host, basic_auth=(target.user, target.password))
    try:
        stored, errors = await async_bulk(
            client, create_actions(count, target.index), chunk_size=CHUNK_SIZE
        )
        await client.indices.refresh(index=target.index)
    finally:
        await client.close()
    if stored != count or errors:
        raise SystemExit(f"stored {stored} of {count} events: {errors[:3]}")


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    asyncio.run(send(args.count, Target.from_environment()))


if __name__ == "__main__":
    main()
