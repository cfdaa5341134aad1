"""How many things run at once: at most `max_tasks` coroutines in flight.

A semaphore holds the slots. `start_task` waits on it (no polling: the waiter wakes as
soon as a slot frees), and each task returns its slot in a done-callback, so a slot can
never leak, whether the task succeeds, fails or is cancelled.

`run` also decides how a run ends when the user asks: Ctrl-C (SIGINT) and SIGTERM
stop it as `stop()` does, letting the requests in flight finish first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TextIO, TypeVar

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal stopped the run: Ctrl-C (SIGINT) or SIGTERM, as `signum` says.

    A KeyboardInterrupt, so that code written for Ctrl-C stops alike for both; its
    text is the word for it: "interrupted" or "terminated".
    """

    def __init__(self, signum: int) -> None:
        super().__init__("terminated" if signum == signal.SIGTERM else "interrupted")
        self.signum = signum


class Closable(Protocol):
    async def close(self) -> None: ...


class TaskEngine:
    """Runs coroutines with at most `max_tasks` in flight, and counts their work.

    `started`, `pending` and `completed` count units of work: one per task unless
    `start_task(..., units=n)` says a task carries n events (a bulk request). A task
    that raises stops the engine: `start_task` and `run_until_complete` re-raise its
    error, so a failed write is never counted as done.
    """

    def __init__(
        self,
        max_tasks: int = 10,
        monitor: bool = False,
        logger: Closable | None = None,
        *,
        grace: float = 5.0,
        note: Callable[[], str] | None = None,
    ) -> None:
        """`note`, when given, adds its words to the status line (why it slowed)."""
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be at least 1, not {max_tasks}")
        self.max_tasks = max_tasks
        self.monitor = monitor
        self.logger = logger
        self.grace = grace  # seconds running tasks get to finish once stopped
        self.note = note
        self.started = 0
        self.pending = 0
        self.completed = 0
        self.stopped = False
        self._slots = asyncio.Semaphore(max_tasks)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._error: BaseException | None = None
        self._status: _StatusLine | None = None
        self._signalled: int | None = None  # the signal that stopped the run

    def run(self, driver: Callable[[TaskEngine], Awaitable[T]]) -> T:
        """Run `await driver(engine)` in a new event loop, wait for every task, stop,
        and close the logger, however the driver ends.

        Ctrl-C or SIGTERM ends the run as a failed task does: the driver is cancelled
        and running tasks get `grace` seconds; a second signal cancels them at once.
        Then, the closing lines printed and the logger closed, it raises Interrupted.
        """
        return asyncio.run(self._run_stoppable(driver))

    async def _run_stoppable(self, driver: Callable[[TaskEngine], Awaitable[T]]) -> T:
        # Python's own Ctrl-C raises KeyboardInterrupt wherever the program happens
        # to be, the middle of the cleanup included, and SIGTERM ends the process on
        # the spot. Caught by the event loop instead, a signal becomes a callback
        # that runs between two steps of the tasks, like any other.
        work = asyncio.create_task(self._run(driver))
        with _calling_on(STOP_SIGNALS, functools.partial(self._on_signal, work)):
            try:
                return await work
            except asyncio.CancelledError:
                if self._signalled is None:
                    raise
                raise Interrupted(self._signalled) from None

    def _on_signal(self, work: asyncio.Task[Any], signum: int) -> None:
        """The first stop signal cancels the driver, and `_run` drains what runs, as
        after an error; another, or one while stopping, cancels what still runs."""
        if self._signalled is None and not self.stopped:
            self._signalled = signum
            work.cancel()
            if self._status is not None and self._tasks:
                self._status.say(
                    f"Stopping: waiting up to {self.grace:g} s for {len(self._tasks)} "
                    "tasks in flight (Ctrl-C again cancels them)"
                )
        else:
            for task in self._tasks:
                task.cancel()

    async def _run(self, driver: Callable[[TaskEngine], Awaitable[T]]) -> T:
        try:
            result = await driver(self)
            await self.run_until_complete()
            return result
        finally:
            try:
                await self.stop()
            finally:
                if self.logger is not None:
                    await self.logger.close()

    async def start_task(
        self,
        task: Callable[..., Awaitable[Any]],
        *args: Any,
        units: int = 1,
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        """Wait for a free slot, then run `task(*args, **kwargs)` in the background."""
        await self._slots.acquire()
        if self.stopped or self._error is not None:
            self._slots.release()
            raise self._error or RuntimeError("the engine is stopped")
        if self.monitor and self._status is None:
            self._status = _StatusLine(self, sys.stdout)
        self.started += units
        self.pending += units
        running = asyncio.create_task(task(*args, **kwargs))
        self._tasks.add(running)  # a task nobody references can be garbage-collected
        running.add_done_callback(functools.partial(self._finished, units))
        return running

    async def try_start_task(
        self,
        task: Callable[..., Awaitable[Any]],
        *args: Any,
        units: int = 1,
        **kwargs: Any,
    ) -> asyncio.Task[Any] | None:
        """Start `task` as `start_task` does if a slot is free right now; else return
        None at once. For a task that must not wait for a slot while it holds one."""
        if self.stopped or self._error is not None or self._slots.locked():
            return None
        # A free slot is taken without waiting: nothing can run in between.
        return await self.start_task(task, *args, units=units, **kwargs)

    def _finished(self, units: int, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        self.pending -= units
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self.completed += units
        elif self._error is None:
            self._error = error

    async def run_until_complete(self) -> None:
        """Wait for every started task; raise the first error one of them raised."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        """Take no more tasks; give running ones `grace` seconds, then cancel them."""
        if self.stopped:
            return
        self.stopped = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._status is not None:
            await self._status.close()

    def running(self) -> bool:
        """True until the engine is stopped."""
        return not self.stopped


class _StatusLine:
    """Counters redrawn in place on a terminal, a line every few seconds in logs."""

    terminal_interval = 0.1
    log_interval = 5.0

    def __init__(self, engine: TaskEngine, stream: TextIO) -> None:
        self.engine = engine
        self.stream = stream
        self.in_place = stream.isatty()
        self._reader_gone = False
        self.started_at = time.perf_counter()
        interval = self.terminal_interval if self.in_place else self.log_interval
        self._redrawing = asyncio.create_task(self._redraw(interval))

    def counts(self) -> str:
        e = self.engine
        return (
            f"Started: {e.started:04d} : Pending: {e.pending:04d} : "
            f"Completed: {e.completed:04d}"
        )

    async def _redraw(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            elapsed = time.perf_counter() - self.started_at
            rate = self.engine.completed / elapsed
            line = f"{self.counts()} : {rate:,.0f} events/s"
            if self.engine.note is not None and (note := self.engine.note()):
                line += f" : {note}"
            self._show(line)

    def _show(self, line: str) -> None:
        self._write(f"\r{line}\x1b[K" if self.in_place else f"{line}\n")

    def say(self, line: str) -> None:
        """A line of its own, kept above the status line that goes on below it."""
        self._write(f"\r{line}\x1b[K\n" if self.in_place else f"{line}\n")

    def _write(self, text: str) -> None:
        """Write now, unless the reader has gone (`| head -1`): the line is only for
        watching, so a run that nobody watches goes on, and ends as it would have."""
        if self._reader_gone:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone = True

    async def close(self) -> None:
        self._redrawing.cancel()
        await asyncio.wait([self._redrawing])  # unlike await, keeps a cancel of ours
        self._show(self.counts())
        self._write("\nEngine stopped.\n" if self.in_place else "Engine stopped.\n")


@contextlib.contextmanager
def _calling_on(
    signals: Iterable[int], handler: Callable[[int], None]
) -> Iterator[None]:
    """Have the running loop call `handler(signum)` for `signals` within the block.

    Where a loop cannot (on Windows, or outside the main thread), Python's own
    handling stays: Ctrl-C interrupts at once, SIGTERM ends the process.
    """
    loop = asyncio.get_running_loop()
    replaced = {}
    for signum in signals:
        previous = signal.getsignal(signum)
        try:
            loop.add_signal_handler(signum, handler, signum)
        except RuntimeError:  # NotImplementedError (Windows) is one too
            continue
        replaced[signum] = previous
    try:
        yield
    finally:
        for signum, previous in replaced.items():
            loop.remove_signal_handler(signum)
            if previous is not None:  # a handler set from Python: give it back
                signal.signal(signum, previous)
