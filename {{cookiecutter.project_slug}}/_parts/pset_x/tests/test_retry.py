"""The retry policy: capped backoff with full jitter, and patience that any success
renews, so a busy cluster is waited for while a dead one is given up on."""

import asyncio
import random
import statistics

import pytest

from {{ cookiecutter.project_slug }}.errors import (
    ConfigError,
    ElasticError,
)
from {{ cookiecutter.project_slug }}.retry import (
    Retrier,
    RetryPolicy,
)

BUSY = ElasticError("cluster busy", status=429, error_type="es_rejected_execution")


class Flaky:
    """An attempt that fails with `error` `failures` times, then returns "done"."""

    def __init__(self, failures, error=BUSY):
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def fast(retry_for=10.0):
    return RetryPolicy(retry_for=retry_for, backoff=0.0001, max_backoff=0.001)


def test_delays_are_jittered_below_a_doubling_ceiling_that_stops_at_the_cap():
    policy = RetryPolicy(backoff=0.5, max_backoff=10.0)
    random.seed(4)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (5, 10.0), (60, 10.0)]:
        delays = [policy.delay(attempt) for _ in range(2000)]
        assert 0 <= min(delays) < ceiling * 0.05
        assert ceiling * 0.95 < max(delays) <= ceiling
        assert statistics.mean(delays) == pytest.approx(ceiling / 2, rel=0.1)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "shortest", "longest"),
    [
        (0, 3.0, 3.0, 3.0),  # longer than the backoff: exactly what was asked
        (5, 3.0, 3.0, 10.0),  # shorter than the backoff ceiling: at least that
        (0, 60.0, 10.0, 10.0),  # longer than the cap: the cap
        (0, 0.0, 0.0, 0.5),  # nothing to wait: the backoff alone
    ],
)
def test_the_wait_the_server_asks_for_is_a_floor_under_the_backoff_up_to_the_cap(
    attempt, retry_after, shortest, longest
):
    policy = RetryPolicy(backoff=0.5, max_backoff=10.0)
    delays = [policy.delay(attempt, retry_after) for _ in range(500)]
    assert shortest <= min(delays)
    assert max(delays) <= longest


def test_retryable_errors_are_retried_until_the_attempt_succeeds():
    attempt = Flaky(failures=25)

    assert asyncio.run(Retrier(fast()).call(attempt)) == "done"
    assert attempt.calls == 26


def test_other_errors_are_raised_at_once():
    attempt = Flaky(failures=1, error=ConfigError("wrong"))

    with pytest.raises(ConfigError):
        asyncio.run(Retrier(fast()).call(attempt))
    assert attempt.calls == 1


def test_without_patience_a_retryable_error_is_raised_after_one_attempt():
    attempt = Flaky(failures=1)

    with pytest.raises(ElasticError, match="cluster busy"):
        asyncio.run(Retrier(fast(retry_for=0)).call(attempt))
    assert attempt.calls == 1


def test_patience_runs_out_without_success_and_a_success_renews_it():
    retrier = Retrier(fast(retry_for=0.05))

    async def scenario():
        assert await retrier.backoff(0, "429 cluster busy")
        await asyncio.sleep(0.06)  # nothing succeeded for longer than retry_for
        assert not await retrier.backoff(1, "429 cluster busy")
        retrier.succeeded()
        assert await retrier.backoff(2, "429 cluster busy")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("events", "status"),
    [
        ((1000, 200), "retrying 1200 events (429 cluster busy)"),
        ((1,), "retrying 1 event (429 cluster busy)"),
        ((0,), "retrying (429 cluster busy)"),  # a request without events: a refresh
    ],
)
def test_while_requests_wait_the_status_says_how_many_events_and_why(events, status):
    retrier = Retrier(RetryPolicy(backoff=0.05, max_backoff=0.05))
    seen = []

    async def scenario():
        waiting = [
            asyncio.create_task(retrier.backoff(0, "429 cluster busy", events=count))
            for count in events
        ]
        await asyncio.sleep(0)  # they are all waiting now
        seen.append(retrier.status())
        await asyncio.gather(*waiting)
        seen.append(retrier.status())

    asyncio.run(scenario())
    assert seen == [status, ""]


def test_each_retry_is_announced_in_one_line():
    lines = []
    retrier = Retrier(fast(), announce=lines.append)

    asyncio.run(retrier.call(Flaky(failures=2)))

    assert len(lines) == 2
    assert all(line.startswith("retrying in ") for line in lines)
    assert all(line.endswith(" s (429 cluster busy)") for line in lines)
