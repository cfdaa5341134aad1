"""Ingestion policy: batching, the retry of refused items, and the account of every
event.

Every event is written under its own id (its logID, a random UUID) with a create-only
operation, so sending it twice can never store two copies. That makes retrying safe
even when an answer was lost after the cluster applied the write. A create that meets
409 ("already exists") was therefore stored by an earlier attempt: ours, or aiohttp's
own resend of a PUT whose connection dropped, which we never see.

Each error is handled one of three ways: retried for as long as the cluster pushes
back (retry.py says how long; a `_bulk` batch is retried here, whole or by refused
item, the per-event writes by the transport), counted against the events it concerns
(a mapping error, a cluster that refused for longer than the policy's patience), or
raised to stop the run (credentials, missing index, unreachable, TLS): no event could
get past those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import (
    RETRYABLE_STATUSES,
    AuthError,
    ElasticError,
    IndexNotFound,
    PsetError,
)
from .es_logger import ElasticLogger, Response
from .log_event import EventFactory, LogEvent
from .task_engine import TaskEngine

Document = tuple[str, str]  # (id, JSON source)

STORED = frozenset({200, 201})
CONFLICT = 409
TOO_LARGE = 413


class Ingester:
    """Stores `count` events exactly once, and accounts for each: stored, or failed
    and why."""

    def __init__(self, es: ElasticLogger, count: int) -> None:
        self.es = es
        self.retrier = es.retrier  # one patience for the requests and the items
        self.count = count
        self.stored = 0
        self.failed = 0
        self.first_failure: str | None = None
        self.unrefreshed: PsetError | None = None  # why the final refresh failed

    async def ingest(
        self, engine: TaskEngine, *, events: EventFactory, batch_size: int
    ) -> None:
        """Store `count` new events through `engine`, then make them searchable.

        A batch is drawn just before it waits for a slot, so at most max_tasks + 1
        batches exist at once: memory stays flat however many events are asked for.
        """
        await self.es.check_index()  # a wrong host, key or index fails here, at once
        if batch_size == 1:  # one request per event, through LogEvent.log
            for _ in range(self.count):
                await engine.start_task(self.log_event, events.event())
        else:
            for first in range(0, self.count, batch_size):
                size = min(batch_size, self.count - first)
                documents = events.documents(size)
                await engine.start_task(self.store_batch, engine, documents, units=size)
        await engine.run_until_complete()
        if self.stored:
            try:
                await self.es.refresh()
            except PsetError as error:  # the events are stored all the same, and
                self.unrefreshed = error  # searchable at the next periodic refresh

    def summary(self, stopped_by: str = "") -> str:
        """The closing line: how many events are stored, and what became of the rest."""
        if self.stored == self.count:
            return f"{self.count} log events generated"
        parts = [f"{self.stored} of {self.count} log events generated"]
        if self.failed:
            parts.append(f"{self.failed} failed: {self.first_failure}")
        unconfirmed = self.count - self.stored - self.failed
        if unconfirmed:
            parts.append(f"{unconfirmed} not confirmed ({stopped_by})")
        return "; ".join(parts)

    async def store(self, event: Mapping[str, Any]) -> Response | None:
        """Store one event (the transport retries): the per-event path."""
        try:
            return await self.es(event)
        except ElasticError as error:
            if error.status == CONFLICT:
                return None  # stored by an attempt whose answer was lost
            raise

    async def log_event(self, event: LogEvent) -> None:
        """One event through LogEvent.log, accounted for."""
        try:
            await event.log(self.store)
        except PsetError as error:
            self._give_up(1, error)
        else:
            self.stored += 1

    async def store_batch(
        self, engine: TaskEngine, documents: Sequence[Document], attempt: int = 0
    ) -> None:
        """Store documents with `_bulk`, resending what may still succeed: the whole
        request if the cluster refused it, else only the items it refused.

        `attempt` counts the failures of the batch so far, whole or by item, and sets
        the backoff: the halves of a batch split after a 413 carry on its count.
        """
        pending = list(documents)
        while True:
            try:
                response = await self.es.bulk(_bulk_body(pending))
            except PsetError as error:
                if getattr(error, "status", None) == TOO_LARGE and len(pending) > 1:
                    await self._store_halves(engine, pending, attempt)
                    return
                refused = error
            else:
                pending, refusal = self._settle(pending, response.body)
                if refusal is None:
                    return
                refused = ElasticError(
                    f"Elasticsearch kept refusing events ({_describe_item(refusal)})",
                    status=refusal["status"],
                )
            waited = refused.retryable and await self.retrier.backoff(
                attempt,
                refused.brief,
                events=len(pending),
                retry_after=refused.retry_after,
            )
            if not waited:
                self._give_up(len(pending), refused)
                return
            attempt += 1

    async def _store_halves(
        self, engine: TaskEngine, documents: Sequence[Document], attempt: int
    ) -> None:
        """Store a batch the cluster found too large (413) as two halves.

        The second half runs beside the first, as a task of its own, if the engine
        has a slot free for it right now; if not, this task stores both halves in
        turn, in its own slot. It never waits for a slot while it holds one: tasks
        that all split at once would each hold a slot and wait for another, forever.
        The helper task counts no units: this task counts the events, and ends only
        once the helper has.
        """
        middle = len(documents) // 2
        first, second = documents[:middle], documents[middle:]
        beside = await engine.try_start_task(
            self.store_batch, engine, second, attempt, units=0
        )
        await self.store_batch(engine, first, attempt)
        if beside is None:
            await self.store_batch(engine, second, attempt)
        else:
            await beside

    def _settle(
        self, sent: list[Document], body: Any
    ) -> tuple[list[Document], dict[str, Any] | None]:
        """Account for a `_bulk` answer; return the items to resend, and the first
        refusal among them (None when there is nothing to resend)."""
        if not body.get("errors"):
            self._count_stored(len(sent))
            return [], None
        stored = 0
        retry: list[Document] = []
        refusal: dict[str, Any] | None = None
        for document, item in zip(sent, body["items"], strict=True):
            (result,) = item.values()  # {"create": {...}}
            status = result["status"]
            if status in STORED or status == CONFLICT:
                stored += 1
            elif status in RETRYABLE_STATUSES:
                retry.append(document)
                refusal = refusal or result
            else:
                reason = _describe_item(result)
                self._give_up(1, f"Elasticsearch rejected an event ({reason})")
        self._count_stored(stored)
        return retry, refusal

    def _give_up(self, count: int, problem: PsetError | str) -> None:
        """Count `count` events as failed, or raise `problem` if it stops the run."""
        if isinstance(problem, PsetError) and _stops_the_run(problem):
            raise problem
        self.failed += count
        self.first_failure = self.first_failure or str(problem)

    def _count_stored(self, count: int) -> None:
        if count:  # events got in: the cluster is making progress
            self.retrier.succeeded()
        self.stored += count
        LogEvent.logged += count


def _stops_the_run(error: PsetError) -> bool:
    """Errors that no other event could get past, as opposed to errors about events."""
    return not isinstance(error, ElasticError) or isinstance(
        error, AuthError | IndexNotFound
    )


def _bulk_body(documents: Sequence[Document]) -> bytes:
    action = '{"create":{"_id":"%s"}}\n%s\n'
    return "".join(action % document for document in documents).encode()


def _describe_item(result: Mapping[str, Any]) -> str:
    error = result.get("error") or {}
    return f"{result['status']} {error.get('type', '')}: {error.get('reason', '')}"
