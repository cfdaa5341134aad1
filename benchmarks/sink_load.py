"""How many `_bulk` items per second the sink takes when the client costs nothing.

The sink must not be what limits a contender. This client sends bodies built before
the clock starts (the package's own documents and bulk body, the filter_path the
package sends), 10 requests in flight, and prints one JSON line with the rate.

    PYTHONPATH=<baked project> python benchmarks/sink_load.py URL INDEX [--items N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from pset_x.es_logger import BULK_FILTER
from pset_x.ingest import _bulk_body
from pset_x.log_event import EventFactory

BATCH = 1000
IN_FLIGHT = 10


async def send_all(url: str, bodies: list[bytes], filter_path: str) -> float:
    """Send every body, IN_FLIGHT at a time; returns the seconds it took."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Content-Type": "application/x-ndjson"}
    params = {"filter_path": filter_path} if filter_path else {}
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(body: bytes) -> None:
            async with slots, session.post(url, data=body, params=params) as answer:
                reply = (
                    await answer.read()
                )  # checked, not parsed: keep the client cheap
                if answer.status != 200 or b'"errors":false' not in reply[:40]:
                    raise RuntimeError(f"sink answered {answer.status}: {reply[:200]}")

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for body in bodies:
                group.create_task(send(body))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the sink, like http://127.0.0.1:9200")
    parser.add_argument("index")
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument(
        "--filter-path",
        default=BULK_FILTER,
        help="'' for the full answer, as the official client gets it",
    )
    args = parser.parse_args()
    factory = EventFactory()
    batches = range(0, args.items, BATCH)
    bodies = [
        _bulk_body(factory.documents(min(BATCH, args.items - n))) for n in batches
    ]
    seconds = asyncio.run(
        send_all(f"{args.url}/{args.index}/_bulk", bodies, args.filter_path)
    )
    rate = args.items / seconds
    print(json.dumps({"items": args.items, "seconds": seconds, "items_per_s": rate}))


if __name__ == "__main__":
    main()
