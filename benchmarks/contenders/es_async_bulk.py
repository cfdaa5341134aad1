"""Contender 3: the official client's `helpers.async_bulk`, 500 actions a request.

The usual way to load Elasticsearch from asyncio: `elasticsearch[async]` 8.x, actions
drawn lazily from the package's events, each a create under the event's logID. The
helper sends one chunk at a time and parses the whole answer, as it comes. A refresh
at the end leaves the events searchable, as ours does.
"""

from __future__ import annotations

from common import Target, load_with_bulk_helper, run_contender
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk


async def send(count: int, target: Target) -> None:
    client = AsyncElasticsearch(target.host, basic_auth=(target.user, target.password))
    await load_with_bulk_helper(client, async_bulk, count, target)


if __name__ == "__main__":
    run_contender(__doc__.splitlines()[0], send)
