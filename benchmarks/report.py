"""Turns samples into the results: medians, ratios, targets, and the machine.

Each measurement is repeated, and the median is reported with its spread, because a
two-core machine is noisy. Tables are Markdown, printed and written alike.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from runner import Sample

PACKAGES = (
    "aiohttp",
    "elasticsearch",
    "elastic-transport",
    "opensearch-py",
    "cookiecutter",
)


@dataclass(frozen=True)
class Result:
    """A contender's repeated samples, summarised by their medians."""

    label: str
    events: int
    samples: Sequence[Sample]

    @property
    def wall_s(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def rate(self) -> float:
        """Events per second of wall time, interpreter start-up included."""
        return self.events / self.wall_s

    @property
    def cpu_s(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def peak_rss_mb(self) -> float:
        return statistics.median(s.peak_rss_mb for s in self.samples)

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median, of the events/s of the samples."""
        rates = [self.events / s.wall_s for s in self.samples]
        return (max(rates) - min(rates)) / self.rate

    @property
    def other_load(self) -> str:
        """Cores' worth of CPU that other processes used during the runs."""
        loads = [s.other_load for s in self.samples if s.other_load is not None]
        return f"{statistics.median(loads):.2f}" if loads else "n/a"

    @property
    def cpu_per_event_us(self) -> float:
        return self.cpu_s / self.events * 1e6

    @property
    def server_busy(self) -> float | None:
        """The server's CPU time / wall time, in cores: near its cores, it limits."""
        busy = [
            s.server_cpu_s / s.wall_s
            for s in self.samples
            if s.server_cpu_s is not None
        ]
        return statistics.median(busy) if busy else None

    @property
    def server_cpu_per_event_us(self) -> float | None:
        cpu = [s.server_cpu_s for s in self.samples if s.server_cpu_s is not None]
        return statistics.median(cpu) / self.events * 1e6 if cpu else None


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def contenders_table(results: Sequence[Result], ours: Result) -> str:
    header = (
        "contender",
        "events",
        "wall s",
        "events/s",
        "CPU s",
        "CPU us/event",
        "peak RSS MB",
        "ours vs it (events/s)",
        "spread",
        "sink busy",
        "other load",
    )
    rows = [
        (
            r.label,
            f"{r.events:,}",
            f"{r.wall_s:.2f}",
            f"{r.rate:,.0f}",
            f"{r.cpu_s:.2f}",
            f"{r.cpu_per_event_us:.1f}",
            f"{r.peak_rss_mb:.1f}",
            f"{ours.rate / r.rate:.2f}x",
            f"{r.spread:.0%}",
            _share(r.server_busy),
            r.other_load,
        )
        for r in results
    ]
    return table(header, rows)


def sweep_table(results: Mapping[int, Result], default: int) -> str:
    header = ("batch size", "events", "wall s", "events/s", "CPU us/event")
    header += ("peak RSS MB", "spread", "sink busy", "other load")
    rows = [
        (
            f"{size:,}" + (" (default)" if size == default else ""),
            f"{r.events:,}",
            f"{r.wall_s:.2f}",
            f"{r.rate:,.0f}",
            f"{r.cpu_per_event_us:.1f}",
            f"{r.peak_rss_mb:.1f}",
            f"{r.spread:.0%}",
            _share(r.server_busy),
            r.other_load,
        )
        for size, r in sorted(results.items())
    ]
    return table(header, rows)


def memory_table(results: Sequence[Result]) -> str:
    header = ("ours, events", "peak RSS MB", "wall s", "events/s")
    rows = [
        (f"{r.events:,}", f"{r.peak_rss_mb:.1f}", f"{r.wall_s:.2f}", f"{r.rate:,.0f}")
        for r in results
    ]
    return table(header, rows)


@dataclass(frozen=True)
class Target:
    """One of the project's targets, what was measured, and whether it is met."""

    wanted: str
    measured: str
    met: bool

    def line(self) -> str:
        verdict = "met" if self.met else "NOT met"
        return f"- {verdict}: {self.wanted} (measured {self.measured})"


def targets(
    ours: Result,
    skeleton: Result,
    async_bulk: Result,
    floor: Result,
    big: Result,
    rss_growth_limit: float,
) -> list[Target]:
    """The project's targets, each with what was measured."""
    vs_bulk = ours.rate / async_bulk.rate
    vs_skeleton = ours.rate / skeleton.rate
    wall_ratio = ours.wall_s / floor.wall_s
    growth = big.peak_rss_mb / ours.peak_rss_mb - 1
    return [
        Target("ours >= 3x async_bulk events/s", f"{vs_bulk:.2f}x", vs_bulk >= 3),
        Target(
            "ours >= 40x the course skeleton events/s",
            f"{vs_skeleton:.0f}x",
            vs_skeleton >= 40,
        ),
        Target(
            f"wall of ours at {ours.events:,} <= 1.4x generation-only "
            f"at {floor.events:,}",
            f"{ours.wall_s:.2f} s / {floor.wall_s:.2f} s = {wall_ratio:.2f}x",
            wall_ratio <= 1.4,
        ),
        Target(
            f"peak RSS of ours at {big.events:,} events < 150 MB",
            f"{big.peak_rss_mb:.1f} MB",
            big.peak_rss_mb < 150,
        ),
        Target(
            f"peak RSS not growing from {ours.events:,} to {big.events:,} events "
            f"(at most {rss_growth_limit:.0%} more)",
            f"{ours.peak_rss_mb:.1f} MB -> {big.peak_rss_mb:.1f} MB ({growth:+.1%})",
            growth <= rss_growth_limit,
        ),
    ]


def results_markdown(*, machine: Sequence[str], sections: Sequence[str]) -> str:
    """RESULTS.md: the machine, then each target's sections."""
    return "\n".join(
        [
            "# Ingestion benchmark: results",
            "",
            "Written by `python benchmarks/ingest.py`; benchmarks/README.md says "
            "what each contender is and how it is measured.",
            "",
            "## Machine",
            "",
            *machine,
            "",
            *sections,
        ]
    )


def sink_sections(
    *,
    results: Mapping[str, Result],
    sweep: Mapping[int, Result],
    default_batch: int,
    sink_load: Sequence[str],
    profile: str,
    repeats: int,
    rss_growth_limit: float,
    discarded: str,
) -> list[str]:
    """The sink's sections: the tables, the targets, its capacity and the profile.

    `results` holds skeleton, semaphore, async_bulk, ours, floor (generation only),
    ours_per_event (--batch-size 1) and ours_big (ours at the memory count).
    """
    ours, floor = results["ours"], results["floor"]
    main = [results[key] for key in ("skeleton", "semaphore", "async_bulk")]
    main += [ours, floor, results["ours_per_event"]]
    goals = targets(
        ours,
        results["skeleton"],
        results["async_bulk"],
        floor,
        results["ours_big"],
        rss_growth_limit,
    )
    return [
        "## Contenders, against the sink (an Elasticsearch 8 stand-in)",
        "",
        contenders_table(main, ours),
        "",
        f"- Medians of {repeats} runs, each contender in its own process.",
        "- events/s = events / wall time, interpreter start-up included; CPU = "
        "user + sys of the process; peak RSS = its ru_maxrss.",
        "- ours vs it = ours' events/s / that contender's events/s.",
        "- spread = (fastest - slowest) / median events/s.",
        "- sink busy = the sink's CPU time / wall time: well below 100%, the sink "
        "was not the limit.",
        "- other load = CPU that other processes on the machine used meanwhile, "
        f"in cores (0 on a quiet machine). {discarded}",
        "",
        f"wall(ours, {ours.events:,}) / wall(generation only, {floor.events:,}) = "
        f"{ours.wall_s:.2f} s / {floor.wall_s:.2f} s = "
        f"{ours.wall_s / floor.wall_s:.2f}",
        "",
        "## Targets",
        "",
        *(goal.line() for goal in goals),
        "",
        f"## Batch size (ours, --batch-size N, {ours.events:,} events)",
        "",
        sweep_table(sweep, default_batch),
        "",
        "## Memory (ours, default options)",
        "",
        memory_table([ours, results["ours_big"]]),
        "",
        "## The sink alone",
        "",
        *sink_load,
        "",
        f"## Where ours spends its time (cProfile, one run of {ours.events:,})",
        "",
        profile,
        "",
    ]


ENGINE_HEADING = "## Against a real engine: OpenSearch"
# An engine busy for at least this share of its cores, over the whole run with the
# client's start-up, was what limited the run.
SATURATED = 0.8


def engine_table(results: Sequence[Result], ours: Result) -> str:
    header = (
        "contender",
        "events",
        "wall s",
        "events/s",
        "client CPU us/event",
        "peak RSS MB",
        "client busy",
        "engine busy",
        "engine CPU us/event",
        "events/s, ours / it",
        "client CPU/event, it / ours",
        "spread",
        "other load",
    )
    rows = [
        (
            r.label,
            f"{r.events:,}",
            f"{r.wall_s:.2f}",
            f"{r.rate:,.0f}",
            f"{r.cpu_per_event_us:.1f}",
            f"{r.peak_rss_mb:.1f}",
            f"{r.cpu_s / r.wall_s:.0%}",
            _share(r.server_busy),
            _number(r.server_cpu_per_event_us),
            f"{ours.rate / r.rate:.2f}x",
            f"{r.cpu_per_event_us / ours.cpu_per_event_us:.2f}x",
            f"{r.spread:.0%}",
            r.other_load,
        )
        for r in results
    ]
    return table(header, rows)


def engine_limit(results: Sequence[Result], ours: Result, cores: int) -> list[str]:
    """Where the engine, not the client, set the pace; what is fair to compare."""
    its_cores = "its one core" if cores == 1 else f"its {cores} cores"
    lines = []
    for r in results:
        engine, client = r.server_busy, r.cpu_s / r.wall_s
        if engine is None:
            lines.append(f"- {r.label}: the engine's CPU could not be read here.")
        elif engine >= SATURATED * cores:
            lines.append(
                f"- {r.label}: **the engine was the limit**. Its JVM was busy "
                f"{engine:.0%} of a core ({its_cores}, over the whole run, the "
                f"client's start-up included); the client {client:.0%} of its own."
            )
        elif engine + client >= SATURATED:
            lines.append(
                f"- {r.label}: neither was saturated, they took turns: the engine "
                f"was busy {engine:.0%} of a core and the client {client:.0%}, about "
                "one core's worth between them, each waiting while the other worked."
            )
        else:
            lines.append(
                f"- {r.label}: neither was saturated (engine {engine:.0%} of a core, "
                f"client {client:.0%}): both waited."
            )
    others = [r for r in results if r is not ours]
    if ours.server_cpu_per_event_us and all(r.server_cpu_per_event_us for r in others):
        ceiling = 1e6 * cores / ours.server_cpu_per_event_us
        lines.append(
            f"- The engine's own CPU per event: ours {ours.server_cpu_per_event_us:.1f}"
            " us, "
            + ", ".join(f"{r.label} {r.server_cpu_per_event_us:.1f} us" for r in others)
            + f". At ours' cost, {its_cores} can index at most {ceiling:,.0f} "
            "events/s."
        )
    if any(r.server_busy and r.server_busy >= SATURATED * cores for r in results):
        lines.append(
            "- Where the engine is the limit, events/s says how well a client keeps "
            "the engine busy, not how fast the client is. The clients' own cost is "
            "their CPU per event: "
            + "; ".join(
                f"ours {ours.cpu_per_event_us:.1f} us against {r.label} "
                f"{r.cpu_per_event_us:.1f} us, "
                f"{r.cpu_per_event_us / ours.cpu_per_event_us:.1f}x as much"
                for r in others
            )
            + "."
        )
    return lines


def engine_sections(
    *,
    ours: Result,
    official: Result,
    version: str,
    engine: str,
    engine_cores: int,
    warm_up: tuple[int, Sequence[float]],
    repeats: int,
    discarded: str,
) -> list[str]:
    """The real engine's section: the table, the ratios, and what limited it.

    `warm_up` is the events of each warm-up run of ours and the engine's CPU per
    event in each (NaN where it could not be read).
    """
    results = [official, ours]
    events, costs = warm_up
    warm_up_line = (
        f"- warm-up: {len(costs)} unmeasured runs of ours, {events:,} events each, "
        "until the engine's CPU per event stopped falling: "
        + ", ".join("n/a" if math.isnan(c) else f"{c:.0f}" for c in costs)
        + " us"
    )
    return [
        f"{ENGINE_HEADING} {version}",
        "",
        f"- engine: {engine}",
        "- both contenders in this run (the machine and commit above), on the same "
        "node; each run gets a fresh index made with `ElasticLogger.schema` and the "
        "engine's default settings, and must leave exactly its events in it",
        warm_up_line,
        "",
        engine_table(results, ours),
        "",
        f"- Medians of {repeats} runs, round-robin, after the warm-up.",
        "- client CPU = user + sys of the contender's process (its rusage); peak "
        "RSS = its ru_maxrss; client busy = client CPU / wall time.",
        "- engine busy = the JVM's CPU time (/proc/<pid>/stat) / wall time, in "
        "shares of one core; engine CPU us/event = that CPU time / events.",
        "- ours / it: ours' events/s over its events/s; it / ours: its client CPU "
        "per event over ours (how many times more CPU it needs for an event).",
        "- other load = CPU that other processes on the machine used meanwhile, "
        f"in cores (0 on a quiet machine). {discarded}",
        "",
        "What limited what:",
        "",
        *engine_limit(results, ours, engine_cores),
        "",
    ]


def engine_skipped(reason: str) -> list[str]:
    return [ENGINE_HEADING, "", f"Not measured: {reason}.", ""]


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def machine(template: Path, project_version: str, pinning: str) -> list[str]:
    """What the numbers were measured on, one `- name: value` line each."""
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    facts = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpu_model(),
        "cores": f"{os.cpu_count()} ({pinning})",
        "RAM": _memory(),
        "OS": f"{_os_name()} (kernel {platform.release()}, {platform.machine()})",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": f"pset_x {project_version} (baked), {versions}",
        "template": f"yopy at {_git_describe(template)}",
    }
    return [f"- {name}: {value}" for name, value in facts.items()]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    for line in _read_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    for line in _read_lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _os_name() -> str:
    for line in _read_lines("/etc/os-release"):
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return platform.system()


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _git_describe(folder: Path) -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    commit = described.stdout.strip()
    if commit.endswith("-dirty"):
        return f"commit {commit.removesuffix('-dirty')} with uncommitted changes"
    return f"commit {commit}"
