"""Where ours spends its time: one cProfile run of the real CLI against the sink.

Own time is summed by area (a module of the package, aiohttp, the event loop, ...).
Time in C functions is charged to the Python code that called them, so `str.join`
inside the bulk body builder counts as serialisation. Waiting in epoll for the sink's
answers is shown apart: it is idle time, not work. cProfile slows down code that makes
many small calls the most, so the shares are indicative, not exact.
"""

from __future__ import annotations

import pstats
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from report import table

IDLE = "idle: waiting for the sink (epoll)"
START_UP = "start-up (imports, TLS contexts, argparse)"
# (part of the file path, area), first match wins
AREAS = (
    ("/aiohttp/", "aiohttp (HTTP client)"),
    ("/multidict/", "aiohttp (HTTP client)"),
    ("/yarl/", "aiohttp (HTTP client)"),
    ("/asyncio/", "asyncio (event loop, tasks)"),
    ("/selectors.py", "asyncio (event loop, tasks)"),
    ("/json/", "json (reading answers)"),
    ("/argparse.py", START_UP),
    ("/ssl.py", START_UP),  # aiohttp makes its default TLS contexts on import
    ("<frozen ", START_UP),
)

Function = tuple[str, int, str]  # (file, line, name), as pstats keys them


def area(function: Function, package: str) -> str:
    file, _, name = function
    if "epoll" in name and "poll" in name:
        return IDLE
    if name == "<module>":
        return START_UP
    if f"/{package}/" in file:
        return f"{package}.{Path(file).stem}"
    for part, label in AREAS:
        if part in file:
            return label
    return "other (stdlib, C)"


def own_time_by_area(stats: pstats.Stats, package: str) -> dict[str, float]:
    """Seconds of own time per area; a C function's time goes to its callers."""
    totals: dict[str, float] = defaultdict(float)
    for function, (_, _, own, _, callers) in stats.stats.items():
        if function[0] != "~" or area(function, package) == IDLE or not callers:
            totals[area(function, package)] += own
            continue
        for caller, (_, _, own_from_caller, _) in callers.items():
            totals[area(caller, package)] += own_from_caller
    return dict(totals)


def profile(
    arguments: Sequence[str], env: Mapping[str, str], cwd: Path, package: str
) -> str:
    """Profile `python <arguments>` once; a Markdown summary of where time went."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "run.prof"
        subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", str(output), *arguments],
            env=env,
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        stats = pstats.Stats(str(output))
    totals = own_time_by_area(stats, package)
    whole = sum(totals.values())
    areas = sorted(totals.items(), key=lambda item: -item[1])
    shown = [(name, seconds) for name, seconds in areas if seconds >= whole / 200]
    rest = whole - sum(seconds for _, seconds in shown)
    by_area = table(
        ("area (own time, C calls charged to their caller)", "s", "share"),
        [
            (name, f"{seconds:.2f}", f"{seconds / whole:.0%}")
            for name, seconds in [*shown, ("the rest, each under 0.5%", rest)]
        ]
        + [("total (profiled, so slower than unprofiled)", f"{whole:.2f}", "100%")],
    )
    functions = sorted(
        stats.stats.items(),
        key=lambda item: -item[1][2],
    )[:12]
    top = table(
        ("function (top 12 by own time)", "calls", "own s"),
        [
            (_name(function), f"{calls:,}", f"{own:.2f}")
            for function, (_, calls, own, _, _) in functions
        ],
    )
    return f"{by_area}\n\n{top}"


def _name(function: Function) -> str:
    file, line, name = function
    if file == "~":
        return f"`{name}`"
    return f"`{name}` ({Path(file).parent.name}/{Path(file).name}:{line})"
