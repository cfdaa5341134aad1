"""Contenders 1 and 2: one `POST /<index>/_doc` per event, at most 10 in flight.

`--slots polling` is the course skeleton: a new request waits for a slot by checking
the pending count every 10 ms. `--slots semaphore` waits on an asyncio.Semaphore
instead, which wakes the waiter the moment a slot frees. Everything else is the same,
so the difference between the two is the cost of polling.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import aiohttp
from common import MAX_IN_FLIGHT, Target, arguments
from pset_x.log_event import LogEvent


class Slots(Protocol):
    async def acquire(self) -> Any: ...
    def release(self) -> None: ...


class PollingSlots:
    """The skeleton's wait: sleep 10 ms while all slots are taken."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pending = 0

    async def acquire(self) -> None:
        # The busy wait is what this contender measures, so keep it.
        while self.pending >= self.size:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self.pending += 1

    def release(self) -> None:
        self.pending -= 1


async def send(count: int, target: Target, slots: Slots) -> None:
    """POST `count` random events, each once a slot is free; raise on any refusal."""
    url = f"{target.host}/{target.index}/_doc"
    headers = {"Authorization": target.authorization}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(event: dict[str, Any]) -> None:
            try:
                async with session.post(url, json=event) as answer:
                    if answer.status != 201:
                        raise RuntimeError(f"{answer.status}: {await answer.text()}")
                    await answer.read()
            finally:
                slots.release()

        async with asyncio.TaskGroup() as tasks:
            for _ in range(count):
                event = LogEvent.random_event().as_dict()
                await slots.acquire()
                tasks.create_task(post(event))


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--slots", choices=("polling", "semaphore"), required=True)
    args = parser.parse_args()
    slots: Slots = (
        asyncio.Semaphore(MAX_IN_FLIGHT)
        if args.slots == "semaphore"
        else PollingSlots(MAX_IN_FLIGHT)
    )
    asyncio.run(send(args.count, Target.from_environment(), slots))


if __name__ == "__main__":
    main()
