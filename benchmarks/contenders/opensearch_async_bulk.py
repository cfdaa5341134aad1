"""The real engine's contender: opensearch-py's `helpers.async_bulk`, chunks of 500.

The official client for OpenSearch (elasticsearch-py refuses to talk to it), used the
way es_async_bulk.py uses elasticsearch-py: `opensearch-py[async]`, the same create
actions under each event's logID, the same chunk size, one chunk in flight at a time,
each whole answer parsed, and a refresh at the end, as ours does.
"""

from __future__ import annotations

from common import Target, load_with_bulk_helper, run_contender
from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk


async def send(count: int, target: Target) -> None:
    client = AsyncOpenSearch(target.host, http_auth=(target.user, target.password))
    await load_with_bulk_helper(client, async_bulk, count, target)


if __name__ == "__main__":
    run_contender(__doc__.splitlines()[0], send)
