"""Runs contenders as child processes and measures each one the same way.

Wall time runs from spawn to exit, and CPU time (user + sys) and peak RSS come from
the child's own rusage (os.wait4), so interpreter start-up and imports count alike for
every contender, and nothing the runner itself does is counted. The server (the sink,
or the OpenSearch node of engine.py) runs in a process of its own; after each run it
says how many documents arrived, so a run that lost or duplicated events is caught,
not timed, and how much CPU it used meanwhile. Before the contenders, the sink is
measured alone, to show it is not what limits them.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class Sample:
    """One run of one contender."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stored: int  # distinct documents the server holds after the run
    duplicates: int  # creates the sink refused because the id was already stored
    server_cpu_s: float | None  # the server's CPU time during the run
    other_cpu_s: float | None  # what other processes used meanwhile (Linux only)

    @property
    def other_load(self) -> float | None:
        """Cores' worth of CPU that other processes used during the run."""
        return None if self.other_cpu_s is None else self.other_cpu_s / self.wall_s


class RunFailed(RuntimeError):
    """A contender exited with an error, or the server did not get what it should."""


class Server(Protocol):
    """What the contenders send to: the sink, or a real engine (engine.Engine)."""

    url: str

    def reset(self) -> None:
        """Empty the index, before a run."""

    def cpu_s(self) -> float | None:
        """The server's CPU seconds so far (None where it cannot be read)."""

    def holds(self) -> tuple[int, int]:
        """(distinct documents stored, creates refused as duplicates)."""


def call(method: str, url: str, document: Any = None) -> Any:
    """One JSON request to a server, its JSON answer; HTTPError on an error status."""
    data = None if document is None else json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def split_cores() -> tuple[set[int] | None, set[int] | None]:
    """(the server's core, the contenders' cores): apart, so neither slows the other.

    None when the platform cannot pin processes or has a single core.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[-1]}, set(cores[:-1])


class Sink:
    """The sink process: started, asked for its counters, stopped."""

    def __init__(self, script: Path, index: str, core: set[int] | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--index", index],
            stdout=subprocess.PIPE,  # one line: where it listens
            text=True,
        )
        if core is not None:
            os.sched_setaffinity(self.process.pid, core)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RunFailed(f"the sink did not start: {line}")
        self.url = line.removeprefix("listening on ").strip()

    def reset(self) -> None:
        call("POST", f"{self.url}/_bench/reset")

    def stats(self) -> dict[str, Any]:
        return call("GET", f"{self.url}/_bench/stats")

    def cpu_s(self) -> float:
        return self.stats()["cpu_s"]  # since the last reset

    def holds(self) -> tuple[int, int]:
        stats = self.stats()
        return stats["documents"], stats["duplicates"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)  # its last line goes to our stderr


@contextlib.contextmanager
def running_sink(script: Path, index: str, core: set[int] | None) -> Iterator[Sink]:
    sink = Sink(script, index, core)
    try:
        yield sink
    finally:
        sink.stop()


@dataclass(frozen=True)
class Capacity:
    """What the sink takes from a client that costs little: the rate reached (the
    client is on the other core and has its limits too), and the rate the sink's own
    CPU time allows."""

    reached: float
    by_sink_cpu: float

    def describe(self) -> str:
        return (
            f"{self.reached:,.0f} items/s reached, "
            f"{self.by_sink_cpu:,.0f} items/s per second of sink CPU"
        )


def sink_capacity(
    sink: Sink,
    script: Path,
    index: str,
    items: int,
    env: Mapping[str, str],
    cwd: Path,
    *,
    full_answers: bool = False,
) -> Capacity:
    """Medians of 3 runs of the sink load script, with the package's filter_path or,
    for full answers, none."""
    command = [sys.executable, str(script), sink.url, index, "--items", str(items)]
    command += ["--filter-path", ""] if full_answers else []
    reached, by_cpu = [], []
    for _ in range(3):
        sink.reset()
        answer = subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, check=True
        )
        reached.append(json.loads(answer.stdout)["items_per_s"])
        by_cpu.append(items / sink.stats()["cpu_s"])
    return Capacity(statistics.median(reached), statistics.median(by_cpu))


def measure(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, server: Server
) -> Sample:
    """Run `command` once and measure it (the caller has reset the server)."""
    server_before = server.cpu_s()
    busy_before = machine_busy_s()
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        # Reaped by wait4 for its rusage, so Popen is told the exit code.
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace")[-2000:]
            raise RunFailed(f"{' '.join(command)} exited {child.returncode}:\n{tail}")
    busy_after = machine_busy_s()
    server_after = server.cpu_s()
    stored, duplicates = server.holds()
    cpu = usage.ru_utime + usage.ru_stime
    server_cpu = other = None
    if server_before is not None and server_after is not None:
        server_cpu = server_after - server_before
        if busy_before is not None and busy_after is not None:
            other = max(0.0, busy_after - busy_before - cpu - server_cpu)
    return Sample(
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=usage.ru_maxrss * _RSS_UNIT / 2**20,
        stored=stored,
        duplicates=duplicates,
        server_cpu_s=server_cpu,
        other_cpu_s=other,
    )


def wait_until_quiet(limit_s: float, cores: float = 0.2, window_s: float = 0.5) -> None:
    """Wait, at most `limit_s`, for half a second in which the rest of the machine
    uses less than `cores` of CPU: on a shared machine, start runs in a lull."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = machine_busy_s()
        time.sleep(window_s)
        after = machine_busy_s()
        if before is None or after is None or (after - before) / window_s < cores:
            return


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy since boot, from /proc/stat.

    Other processes on a shared machine slow the contenders down; the difference
    over a run, less the contender's and the server's own CPU, shows how much.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    ticks = user + nice + system + irq + softirq + steal
    return ticks / os.sysconf("SC_CLK_TCK")


def check(sample: Sample, expected: int, what: str) -> None:
    """The server must hold exactly the events asked for, none twice."""
    if sample.stored != expected or sample.duplicates:
        raise RunFailed(
            f"{what}: the server stored {sample.stored} documents "
            f"({sample.duplicates} duplicates refused), expected {expected}"
        )
