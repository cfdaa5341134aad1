"""TaskEngine: the in-flight limit, the counters, the monitor line, stopping."""

import asyncio
import io
import random
import re
import signal

import pytest

from {{ cookiecutter.project_slug }}.task_engine import (
    Interrupted,
    TaskEngine,
    _StatusLine,
)

FINAL_LINE = re.compile(r"Started: (\d{4,}) : Pending: (\d{4,}) : Completed: (\d{4,})")


class Probe:
    """A task that records how many copies of itself run at once."""

    def __init__(self):
        self.running = 0
        self.most = 0
        self.done = 0

    async def __call__(self, seconds=0.0):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.running -= 1
        self.done += 1


class Closing:
    def __init__(self):
        self.closed = 0

    async def close(self):
        self.closed += 1


@pytest.mark.parametrize("max_tasks", [1, 3, 10])
def test_never_more_than_max_tasks_run_at_once(max_tasks):
    probe = Probe()
    engine = TaskEngine(max_tasks=max_tasks)
    seen_pending = []

    async def driver(engine):
        rng = random.Random(max_tasks)
        for _ in range(200):
            await engine.start_task(probe, rng.uniform(0, 0.002))
            seen_pending.append(engine.pending)

    engine.run(driver)
    assert probe.most == max_tasks
    assert max(seen_pending) <= max_tasks
    assert probe.done == 200


def test_counters_add_up_when_everything_succeeds():
    engine = TaskEngine(max_tasks=4)

    async def driver(engine):
        for _ in range(50):
            await engine.start_task(Probe())
        assert engine.started == 50
        assert engine.pending + engine.completed == 50

    engine.run(driver)
    assert (engine.started, engine.pending, engine.completed) == (50, 0, 50)
    assert engine.stopped
    assert not engine.running()


def test_units_count_the_work_inside_each_task():
    probe = Probe()
    engine = TaskEngine(max_tasks=2)

    async def driver(engine):
        for _ in range(5):
            await engine.start_task(probe, 0.001, units=100)

    engine.run(driver)
    assert probe.most == 2
    assert (engine.started, engine.pending, engine.completed) == (500, 0, 500)


def test_a_waiting_task_starts_as_soon_as_a_slot_frees():
    events = []
    engine = TaskEngine(max_tasks=1)

    async def slow(name, seconds):
        events.append(f"{name} start")
        await asyncio.sleep(seconds)
        events.append(f"{name} end")

    async def driver(engine):
        await engine.start_task(slow, "first", 0.05)
        await engine.start_task(slow, "second", 0)
        events.append("second scheduled")

    engine.run(driver)
    assert events == [
        "first start",
        "first end",
        "second scheduled",
        "second start",
        "second end",
    ]


def test_a_failed_task_stops_the_run_and_is_not_counted_as_completed():
    engine = TaskEngine(max_tasks=2)
    logger = Closing()
    engine.logger = logger

    async def fails():
        raise LookupError("index gone")

    async def driver(engine):
        await engine.start_task(Probe())
        await engine.start_task(fails)
        for _ in range(100):
            await engine.start_task(Probe(), 0.001)

    with pytest.raises(LookupError, match="index gone"):
        engine.run(driver)
    assert engine.started < 102
    assert engine.completed == engine.started - 1
    assert engine.pending == 0
    assert logger.closed == 1


def test_run_returns_what_the_driver_returns_and_closes_the_logger():
    logger = Closing()

    async def driver(engine):
        await engine.start_task(Probe())
        return "done"

    assert TaskEngine(logger=logger).run(driver) == "done"
    assert logger.closed == 1


def test_stop_lets_running_tasks_finish_within_the_grace_period():
    probe = Probe()

    async def scenario():
        engine = TaskEngine(max_tasks=3, grace=1.0)
        for _ in range(3):
            await engine.start_task(probe, 0.02)
        await engine.stop()
        return engine

    engine = asyncio.run(scenario())
    assert probe.done == 3
    assert engine.completed == 3


def test_stop_cancels_tasks_that_outlive_the_grace_period():
    cancelled = []

    async def stuck():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def scenario():
        engine = TaskEngine(max_tasks=2, grace=0.05)
        await engine.start_task(stuck)
        await engine.start_task(Probe())
        await engine.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            await engine.start_task(Probe())
        return engine

    engine = asyncio.run(scenario())
    assert cancelled == [True]
    assert (engine.started, engine.pending, engine.completed) == (2, 0, 1)


def test_try_start_task_starts_a_task_only_if_a_slot_is_free_now():
    probe = Probe()

    async def scenario():
        engine = TaskEngine(max_tasks=2)
        started = [await engine.try_start_task(probe, 0.01) for _ in range(3)]
        await engine.run_until_complete()
        await engine.stop()
        started.append(await engine.try_start_task(probe))
        return engine, started

    engine, (first, second, third, once_stopped) = asyncio.run(scenario())
    assert first is not None
    assert second is not None
    assert (third, once_stopped) == (None, None)
    assert (probe.done, engine.completed) == (2, 2)


def press_ctrl_c():
    """Ctrl-C, as the terminal sends it: SIGINT to this process."""
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_lets_running_tasks_finish_then_raises_interrupted(capsys):
    probe = Probe()
    logger = Closing()

    async def driver(engine):
        for _ in range(3):
            await engine.start_task(probe, 0.05)
        press_ctrl_c()
        while True:  # stopped while it waits for a slot
            await engine.start_task(probe, 0.05)

    engine = TaskEngine(max_tasks=3, monitor=True, logger=logger)
    with pytest.raises(Interrupted) as stop:
        engine.run(driver)
    assert (stop.value.signum, str(stop.value)) == (signal.SIGINT, "interrupted")
    assert probe.done == engine.started == engine.completed >= 3  # none cancelled
    assert logger.closed == 1
    *_, stopping, final, stopped = capsys.readouterr().out.splitlines()
    assert stopping == (
        f"Stopping: waiting up to 5 s for {engine.started} tasks in flight "
        "(Ctrl-C again cancels them)"
    )
    assert FINAL_LINE.fullmatch(final)
    assert stopped == "Engine stopped."


def test_a_second_ctrl_c_cancels_the_running_tasks_at_once():
    cancelled = []

    async def stuck():
        try:
            await asyncio.sleep(30)  # longer than a test may take, shorter than grace
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def driver(engine):
        await engine.start_task(stuck)
        press_ctrl_c()
        try:
            await asyncio.sleep(30)  # cancelled by the first Ctrl-C
        finally:
            press_ctrl_c()  # the second, as the engine starts waiting for `stuck`

    engine = TaskEngine(grace=60)
    with pytest.raises(Interrupted):
        engine.run(driver)
    assert cancelled == [True]
    assert (engine.started, engine.pending, engine.completed) == (1, 0, 0)


def test_a_reader_that_went_away_ends_the_status_line_not_the_run(monkeypatch):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    monkeypatch.setattr(_StatusLine, "log_interval", 0.001)
    probe = Probe()

    async def driver(engine):
        for _ in range(20):
            await engine.start_task(probe, 0.002)

    TaskEngine(max_tasks=2, monitor=True).run(driver)
    assert probe.done == 20


def test_in_a_log_a_status_line_is_printed_every_few_seconds(capsys, monkeypatch):
    monkeypatch.setattr(_StatusLine, "log_interval", 0.01)

    async def driver(engine):
        for _ in range(12):
            await engine.start_task(Probe(), 0.01)

    TaskEngine(max_tasks=2, monitor=True).run(driver)
    *progress, final, stopped = capsys.readouterr().out.splitlines()
    assert len(progress) >= 3
    for line in progress:
        assert re.fullmatch(FINAL_LINE.pattern + r" : [\d,]+ events/s", line)
    assert final == "Started: 0012 : Pending: 0000 : Completed: 0012"
    assert stopped == "Engine stopped."


def test_the_status_line_adds_the_note_while_there_is_one(capsys, monkeypatch):
    monkeypatch.setattr(_StatusLine, "log_interval", 0.01)
    notes = iter(["retrying 12 events (429 cluster busy)"] * 3)

    async def driver(engine):
        for _ in range(40):
            await engine.start_task(Probe(), 0.01)

    TaskEngine(max_tasks=2, monitor=True, note=lambda: next(notes, "")).run(driver)
    *progress, final, _ = capsys.readouterr().out.splitlines()
    note = " : retrying 12 events (429 cluster busy)"
    assert [line.endswith(note) for line in progress[:4]] == [True] * 3 + [False]
    for line in progress[3:]:  # once the note is empty, the line is as before
        assert re.fullmatch(FINAL_LINE.pattern + r" : [\d,]+ events/s", line)
    assert final == "Started: 0040 : Pending: 0000 : Completed: 0040"


def test_the_monitor_ends_with_the_final_counts_and_engine_stopped(capsys):
    async def driver(engine):
        for _ in range(12):
            await engine.start_task(Probe())

    TaskEngine(monitor=True).run(driver)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Started: 0012 : Pending: 0000 : Completed: 0012",
        "Engine stopped.",
    ]


def test_the_monitor_prints_nothing_when_off(capsys):
    async def driver(engine):
        await engine.start_task(Probe())

    TaskEngine(monitor=False).run(driver)
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_status_line_is_redrawn_in_place_with_the_rate(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr(_StatusLine, "terminal_interval", 0.001)

    async def driver(engine):
        for _ in range(30):
            await engine.start_task(Probe(), 0.01, units=10)

    TaskEngine(max_tasks=2, monitor=True).run(driver)
    drawn = terminal.getvalue()
    frames = drawn.split("\r")[1:]
    assert len(frames) >= 10  # redrawn while running, not only at the end
    for frame in frames[:-1]:
        assert re.fullmatch(FINAL_LINE.pattern + r" : [\d,]+ events/s\x1b\[K", frame)
    assert frames[-1] == (
        "Started: 0300 : Pending: 0000 : Completed: 0300\x1b[K\nEngine stopped.\n"
    )


def test_counts_wider_than_four_digits_are_not_cut(capsys):
    async def driver(engine):
        await engine.start_task(Probe(), units=123456)

    TaskEngine(monitor=True).run(driver)
    final = "Started: 123456 : Pending: 0000 : Completed: 123456"
    assert final in capsys.readouterr().out.splitlines()


def test_max_tasks_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        TaskEngine(max_tasks=0)
