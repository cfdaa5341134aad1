"""How long to keep trying when the cluster pushes back, and how long to wait between.

A busy cluster answers 429 (or 503 while a shard moves) and expects the client to
come back later; Logstash and Beats keep retrying such answers, with capped backoff,
for as long as the cluster pushes back. So do we: what ends the retrying is not a
number of attempts but `retry_for` seconds in which nothing at all succeeded. While
any request of the run succeeds the cluster is alive and merely busy, and waiting
pays off; every success therefore renews the patience of every waiting request.
A server that says how long to wait (a Retry-After header) is waited for that long,
up to the longest backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import PsetError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, within a renewable time budget.

    Full jitter (a delay drawn uniformly below the exponential ceiling) keeps writers
    that failed together from all coming back at the same moment.
    """

    retry_for: float = 300.0  # seconds without any success before giving up
    backoff: float = 0.5  # ceiling of the first delay, doubled at each attempt
    max_backoff: float = 10.0  # the ceiling never grows past this

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `attempt`-th failure in a row (0 for the first).

        At least `retry_after`, the wait the server asked for, if it did: but never
        more than `max_backoff`, so that a proxy asking for an hour cannot stall the
        run (`retry_for` still bounds the whole wait).
        """
        ceiling = min(self.max_backoff, self.backoff * 2 ** min(attempt, 32))
        drawn = random.uniform(0, ceiling)
        if retry_after is None:
            return drawn
        return max(drawn, min(retry_after, self.max_backoff))


class Retrier:
    """The retrying of one run: its policy, the patience its requests share, and
    what is waiting right now, for the progress line."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        """`announce`, when given, is told of each retry in one line."""
        self.policy = policy or RetryPolicy()
        self.announce = announce
        self.waiting = 0  # requests waiting to be sent again
        self.waiting_events = 0  # the events they carry
        self.reason = ""  # why the latest of them waits
        self._last_success = time.monotonic()

    def succeeded(self) -> None:
        """Something got through: the cluster is alive, patience starts again."""
        self._last_success = time.monotonic()

    async def backoff(
        self,
        attempt: int,
        reason: str,
        *,
        events: int = 0,
        retry_after: float | None = None,
    ) -> bool:
        """Wait before trying again, or return False once patience has run out.

        `attempt` counts the failures in a row of this request (0 for the first),
        `events` how many events it carries, `reason` says why, in a few words;
        `retry_after` is the wait the server asked for, if it did.
        """
        if time.monotonic() - self._last_success >= self.policy.retry_for:
            return False
        delay = self.policy.delay(attempt, retry_after)
        if self.announce is not None:
            self.announce(f"retrying in {delay:.1f} s ({reason})")
        self.waiting += 1
        self.waiting_events += events
        self.reason = reason
        try:
            await asyncio.sleep(delay)
        finally:
            self.waiting -= 1
            self.waiting_events -= events
        return True

    async def call(self, attempt: Callable[[], Awaitable[T]], *, events: int = 0) -> T:
        """`await attempt()` until it succeeds, retrying the errors that may pass;
        `events` counts those the request carries, for the progress line."""
        failures = 0
        while True:
            try:
                result = await attempt()
            except PsetError as error:
                if not error.retryable:
                    raise
                waited = await self.backoff(
                    failures, error.brief, events=events, retry_after=error.retry_after
                )
                if not waited:
                    raise
                failures += 1
            else:
                self.succeeded()
                return result

    def status(self) -> str:
        """What the progress line adds while events wait: why the run slowed down."""
        if not self.waiting:
            return ""
        if not self.waiting_events:  # an index check or a refresh
            return f"retrying ({self.reason})"
        plural = "s" * (self.waiting_events != 1)
        return f"retrying {self.waiting_events} event{plural} ({self.reason})"
