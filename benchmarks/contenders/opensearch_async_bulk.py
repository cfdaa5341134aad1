"""The real engine's contender: opensearch-py's `helpers.async_bulk`, chunks of 500.

The official client for OpenSearch (elasticsearch-py refuses to talk to it), used the
way es_async_bulk.py uses elasticsearch-py: `opensearch-py[async]`, the same create
actions under each event's logID, the same chunk size, one chunk in flight at a time,
each whole answer parsed, and a refresh at the end, as ours does.
"""

from __future__ import annotations

import asyncio

from common import Target, arguments, create_actions
from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk

CHUNK_SIZE = 500  # as for the Elasticsearch client


async def send(count: int, target: Target) -> None:
    client = AsyncOpenSearch(target.host, http_auth=(target.user, target.password))
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
