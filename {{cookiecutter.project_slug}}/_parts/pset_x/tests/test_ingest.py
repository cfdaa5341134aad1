"""Ingestion against a misbehaving cluster: every event stored exactly once, or
accounted for, with never more than 10 requests in flight."""

import asyncio
import email.utils
import time
from functools import partial

import pytest
from conftest import INDEX
from fake_elasticsearch import delay, drop_after, item_status, status

from {{ cookiecutter.project_slug }}.errors import (
    AuthError,
    ConnectionFailed,
)
from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)
from {{ cookiecutter.project_slug }}.ingest import Ingester
from {{ cookiecutter.project_slug }}.log_event import (
    EventFactory,
    LogEvent,
)
from {{ cookiecutter.project_slug }}.retry import (
    Retrier,
    RetryPolicy,
)
from {{ cookiecutter.project_slug }}.task_engine import (
    TaskEngine,
)

# Short waits, and patience (seconds without any success) far beyond what about 40%
# of failing requests can exhaust: any loss seen here is a bug, not bad luck.
FAST = RetryPolicy(retry_for=10.0, backoff=0.001, max_backoff=0.01)
CHAOS = {
    "429": 0.08,
    "502": 0.03,
    "503": 0.05,
    "504": 0.03,
    "drop_before": 0.05,
    "drop_after": 0.05,
    "item_429": 0.1,
}


def ingest(count, batch_size=100, policy=FAST, max_tasks=10, announce=None, **options):
    """Run the generate pipeline in-process, with a fast retry policy."""
    es = ElasticLogger(retrier=Retrier(policy, announce=announce), **options)
    ingester = Ingester(es, count)
    engine = TaskEngine(max_tasks=max_tasks, logger=es)
    driver = partial(ingester.ingest, events=EventFactory(), batch_size=batch_size)
    engine.run(driver)
    return ingester


def assert_stored_once(cluster, count):
    documents = cluster.documents(INDEX)
    assert len(documents) == count
    assert all(doc["logID"] == doc_id for doc_id, doc in documents.items())


def bulk_sizes(cluster):
    """How many documents each _bulk request carried, in order."""
    return [r.body.count(b'{"create"') for r in cluster.requests if "_bulk" in r.path]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("batch_size", "count"), [(100, 3000), (1, 300)])
def test_every_event_is_stored_exactly_once_whatever_the_faults(
    index, seed, batch_size, count
):
    index.faults.chaos(seed=seed, every_request=True, **CHAOS)
    ingester = ingest(count, batch_size)
    assert (ingester.stored, ingester.failed) == (count, 0)
    assert ingester.summary() == f"{count} log events generated"
    assert_stored_once(index, count)
    assert index.max_in_flight <= 10
    assert sum(index.faults.injected.values()) >= 5


def test_an_answer_lost_after_the_write_is_not_a_duplicate(index):
    index.faults.next(drop_after(), drop_after(), drop_after())
    ingester = ingest(250, batch_size=100)
    assert (ingester.stored, ingester.failed) == (250, 0)
    assert_stored_once(index, 250)
    assert sorted(bulk_sizes(index)) == [50, 50, 100, 100, 100, 100]


def test_a_per_event_write_whose_answer_was_lost_counts_once(index):
    index.faults.next(drop_after(), drop_after())
    ingester = ingest(20, batch_size=1)
    assert (ingester.stored, ingester.failed) == (20, 0)
    assert_stored_once(index, 20)


def test_an_event_without_an_id_is_never_sent_twice_even_when_its_answer_is_lost(
    index,
):
    event = LogEvent.random_event().as_dict()
    del event["logID"]  # Elasticsearch picks the id: a resend would be a second copy
    index.faults.next(drop_after())
    es = ElasticLogger(retrier=Retrier(FAST))

    async def store():
        async with es:
            await Ingester(es, 1).store(event)

    with pytest.raises(ConnectionFailed, match="closed before an answer"):
        asyncio.run(store())
    assert [request.method for request in index.requests] == ["POST"]
    assert len(index.documents(INDEX)) == 1


def test_only_the_items_that_failed_are_sent_again(index):
    index.faults.next(item_status(429, 0.3))
    ingester = ingest(100, batch_size=100, policy=FAST)
    assert_stored_once(index, 100)
    first, *retries = bulk_sizes(index)
    assert first == 100
    assert sum(retries) == 30
    assert ingester.stored == 100


def test_a_request_too_large_is_split_in_halves_sent_side_by_side(index):
    index.latency = 0.05  # each write takes long enough for the halves to overlap
    index.faults.next(status(413))
    ingest(100, batch_size=100)
    assert_stored_once(index, 100)
    assert bulk_sizes(index) == [100, 50, 50]
    assert index.max_in_flight == 2


def test_without_a_free_slot_the_halves_go_in_turn_in_the_slot_of_the_batch(index):
    index.latency = 0.01
    index.faults.next(status(413))
    ingest(100, batch_size=100, max_tasks=1)
    assert_stored_once(index, 100)
    assert bulk_sizes(index) == [100, 50, 50]
    assert index.max_in_flight == 1


def test_batches_split_again_and_again_stay_within_the_in_flight_limit(index):
    index.latency = 0.005
    index.faults.next(*[status(413)] * 60)
    ingester = ingest(3000, batch_size=100)
    assert (ingester.stored, ingester.failed) == (3000, 0)
    assert_stored_once(index, 3000)
    assert min(bulk_sizes(index)) < 25  # split at least three times over
    assert index.max_in_flight <= 10


def test_one_count_of_attempts_follows_a_batch_through_a_split(index, monkeypatch):
    attempts = []

    def delay(self, attempt, retry_after=None):
        attempts.append(attempt)
        return 0.001

    monkeypatch.setattr(RetryPolicy, "delay", delay)
    index.faults.next(status(429), status(429), status(413), status(429), status(429))
    ingest(100, batch_size=100, max_tasks=1)
    assert_stored_once(index, 100)
    assert bulk_sizes(index) == [100, 100, 100, 50, 50, 50, 50]
    assert attempts == [0, 1, 2, 3]  # the half goes on from the batch's 2 failures


def http_date(seconds_from_now):
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize("batch_size", [100, 1])
@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("0.1", "0.1"),  # what the cluster asked for
        ("3600", "0.2"),  # at most the longest backoff
        (http_date(3600), "0.2"),  # a date, as HTTP allows
        ("soon", "0.0"),  # not a wait: the usual backoff, from a tiny first delay
    ],
    ids=["seconds", "capped", "http-date", "not-a-wait"],
)
def test_the_wait_a_busy_cluster_asks_for_is_honoured_up_to_the_longest_backoff(
    index, batch_size, retry_after, wait
):
    index.faults.next(status(429, retry_after=retry_after))
    policy = RetryPolicy(retry_for=10.0, backoff=0.001, max_backoff=0.2)
    announced = []
    ingester = ingest(10, batch_size, policy=policy, announce=announced.append)
    assert ingester.stored == 10
    assert announced == [f"retrying in {wait} s (429 cluster busy)"]


def test_a_cluster_busy_for_many_attempts_in_a_row_loses_nothing(index):
    index.faults.next(*[status(429)] * 40, *[item_status(429, 0.5)] * 40)
    ingester = ingest(300, batch_size=100, max_tasks=1)
    assert (ingester.stored, ingester.failed) == (300, 0)
    assert_stored_once(index, 300)


def test_events_refused_for_longer_than_the_patience_are_counted_not_lost(index):
    index.faults.chaos(seed=1, **{"429": 1.0})  # every write, from now on
    policy = RetryPolicy(retry_for=0.05, backoff=0.001, max_backoff=0.01)
    ingester = ingest(300, batch_size=100, policy=policy)
    assert (ingester.stored, ingester.failed) == (0, 300)
    assert ingester.summary().startswith(
        "0 of 300 log events generated; 300 failed: Elasticsearch could not "
        "store the events (429 es_rejected_execution_exception: "
    )


def test_items_refused_for_longer_than_the_patience_are_counted_not_lost(index):
    index.faults.next(item_status(429, 0.1), *[item_status(429, 1.0)] * 1000)
    policy = RetryPolicy(retry_for=0.05, backoff=0.001, max_backoff=0.01)
    ingester = ingest(100, batch_size=100, policy=policy)
    assert (ingester.stored, ingester.failed) == (90, 10)
    assert_stored_once(index, 90)
    assert ingester.first_failure.startswith(
        "Elasticsearch kept refusing events (429 es_rejected_execution_exception: "
    )


def test_a_refresh_that_keeps_failing_leaves_every_event_stored(index):
    index.faults.every_request = True
    index.faults.next(delay(0), delay(0), *[status(503)] * 1000)  # HEAD, _bulk, ...
    policy = RetryPolicy(retry_for=0.05, backoff=0.001, max_backoff=0.01)
    ingester = ingest(100, batch_size=100, policy=policy)
    assert (ingester.stored, ingester.failed) == (100, 0)
    assert ingester.unrefreshed.brief == "503 unavailable"
    assert ingester.summary() == "100 log events generated"


def test_events_the_mapping_rejects_fail_without_retries(cluster):
    cluster.create_index(INDEX, {"properties": {"browser": {"type": "boolean"}}})
    ingester = ingest(300, batch_size=100)
    assert (ingester.stored, ingester.failed) == (0, 300)
    assert "document_parsing_exception" in ingester.first_failure
    assert bulk_sizes(cluster) == [100, 100, 100]
    assert ingester.summary().startswith("0 of 300 log events generated; 300 failed: ")


def test_refused_credentials_stop_the_run(index):
    index.refuse_credentials = True
    with pytest.raises(AuthError, match="refused the credentials"):
        ingest(1000)
    assert index.count(INDEX) == 0


def test_a_write_that_times_out_is_retried_without_a_duplicate(index):
    index.faults.next(delay(0.5))
    ingester = ingest(100, batch_size=50, timeout=0.2)
    assert (ingester.stored, ingester.failed) == (100, 0)
    assert_stored_once(index, 100)


def test_an_unreachable_cluster_stops_the_run_at_once(unused_port):
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        ingest(10, host=f"http://127.0.0.1:{unused_port}")
