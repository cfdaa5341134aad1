"""The ingestion benchmark: bake the default project, race ways of storing its events.

    python benchmarks/ingest.py [--repeats 3] [--scale 1.0] [--output FILE]

Bakes the template from this working tree into a temporary folder, starts the sink
(an Elasticsearch 8 stand-in on 127.0.0.1) in its own process, checks that the sink
is fast enough, runs every contender as its own process several times, profiles ours
once, and writes the tables to benchmarks/RESULTS.md. README.md says what each
contender is and how to read the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import profiling
import report
import runner
from cookiecutter.main import cookiecutter

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
CONTENDERS = HERE / "contenders"
PACKAGE = "pset_x"  # the default bake's package
INDEX = "bench"
SWEEP = (250, 500, 1000, 2000, 4000, 8000)
RSS_GROWTH_LIMIT = 0.05  # "not growing": at most 5% more peak RSS for 5x the events
SINK_LOAD_ITEMS = 300_000
MAX_OTHER_LOAD = 0.25  # cores other processes may use during a run that is kept
RERUNS = 3


@dataclass(frozen=True)
class Spec:
    """One measurement: what to call it, how many events, the command after python."""

    label: str
    events: int
    arguments: tuple[str, ...]
    stores: bool = True  # False: no network, the sink must receive nothing

    def command(self) -> list[str]:
        return [sys.executable, *self.arguments, "--count", str(self.events)]


def contender(script: str, *options: str) -> tuple[str, ...]:
    return (str(CONTENDERS / script), *options)


def ours(*options: str) -> tuple[str, ...]:
    return ("-m", PACKAGE, "generate", *options)


def plan(scale: float, default_batch: int) -> dict[str, Spec]:
    """Every measurement, keyed for the report. Counts make each run last seconds."""

    def n(count: int) -> int:
        return max(1, round(count * scale))

    specs = {
        "skeleton": Spec(
            "course skeleton",
            n(3_000),
            contender("per_document.py", "--slots", "polling"),
        ),
        "semaphore": Spec(
            "per-document + semaphore",
            n(10_000),
            contender("per_document.py", "--slots", "semaphore"),
        ),
        "async_bulk": Spec(
            "elasticsearch async_bulk (chunk 500)",
            n(100_000),
            contender("es_async_bulk.py"),
        ),
        "ours": Spec("pset_x generate (ours)", n(200_000), ours()),
        "floor": Spec(
            "generation + serialisation only",
            n(200_000),
            contender("gen_only.py"),
            stores=False,
        ),
        "ours_per_event": Spec(
            "ours, --batch-size 1 (per event)", n(10_000), ours("--batch-size", "1")
        ),
        "ours_big": Spec("pset_x generate (ours)", n(1_000_000), ours()),
    }
    for size in SWEEP:
        if size != default_batch:  # the default size is "ours" itself
            specs[f"batch_{size}"] = Spec(
                f"ours, --batch-size {size}",
                n(200_000),
                ours("--batch-size", str(size)),
            )
    return specs


@contextlib.contextmanager
def stdout_hidden() -> Iterator[None]:
    """Hide what child processes print (the bake's hook says what to do next)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def bake(folder: Path) -> Path:
    """The default project from this working tree. A config of its own keeps the
    user's config out, and the replay file in `folder`, not in the user's home."""
    config = folder / "cookiecutter-config.json"  # JSON is YAML too
    config.write_text(
        json.dumps(
            {
                "replay_dir": str(folder / "replay"),
                "cookiecutters_dir": str(folder / "cookiecutters"),
            }
        ),
        encoding="utf-8",
    )
    with stdout_hidden():
        project = cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(folder / "bake"),
            config_file=str(config),
        )
    return Path(project)


def environment(project: Path, url: str) -> dict[str, str]:
    """Every contender's environment: the bake importable, ELASTIC_* at the sink."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_")}
    env.update(
        PYTHONPATH=str(project),
        ELASTIC_HOST=url,
        ELASTIC_INDEX=INDEX,
        ELASTIC_USERID="elastic",
        ELASTIC_PASSWORD="benchmark",
    )
    return env


def project_facts(env: Mapping[str, str], cwd: Path) -> tuple[str, int]:
    """The baked package's version and its CLI's default batch size."""
    code = (
        f"import {PACKAGE} as p, {PACKAGE}.cli as c; print(p.__version__, c.BATCH_SIZE)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    version, batch = answer.stdout.split()
    return version, int(batch)


def run_all(
    specs: Mapping[str, Spec],
    repeats: int,
    env: Mapping[str, str],
    cwd: Path,
    sink: runner.Sink,
    quiet_wait: float,
) -> tuple[dict[str, list[runner.Sample]], int]:
    """Each spec `repeats` times, round-robin, so slow drifts hit every contender.

    A run during which other processes used more than MAX_OTHER_LOAD cores is run
    again, at most RERUNS times (the last one is kept, whatever its load). Returns
    the samples and how many runs were discarded.
    """
    samples: dict[str, list[runner.Sample]] = {key: [] for key in specs}
    discarded = 0
    for round_ in range(1, repeats + 1):
        for key, spec in specs.items():
            for attempt in range(RERUNS + 1):
                runner.wait_until_quiet(quiet_wait)
                sample = runner.measure(spec.command(), env, cwd, sink)
                runner.check(sample, spec.events if spec.stores else 0, spec.label)
                load = sample.other_load
                kept = load is None or load <= MAX_OTHER_LOAD or attempt == RERUNS
                print(
                    f"[{round_}/{repeats}] {progress(spec, sample, kept)}", flush=True
                )
                if kept:
                    break
                discarded += 1
            samples[key].append(sample)
    return samples, discarded


def progress(spec: Spec, sample: runner.Sample, kept: bool) -> str:
    line = (
        f"{spec.label}, {spec.events:,} events: {sample.wall_s:.2f} s, "
        f"{spec.events / sample.wall_s:,.0f} events/s, CPU {sample.cpu_s:.2f} s, "
        f"{sample.peak_rss_mb:.0f} MB"
    )
    if sample.other_load is not None:
        line += f", other load {sample.other_load:.2f}"
    return line if kept else f"{line}: discarded, run again"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every count (0.1: a smoke run)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest to wait before each run for other processes to go quiet "
        "(default: %(default)s; 0: never wait)",
    )
    args = parser.parse_args()

    sink_core, contender_cores = runner.split_cores()
    if contender_cores is not None:
        os.sched_setaffinity(0, contender_cores)  # the contenders inherit it
        pinning = f"sink on CPU {min(sink_core)}, contenders on the others"
    else:
        pinning = "no pinning"
    with tempfile.TemporaryDirectory(prefix="yopy-bench-") as folder:
        cwd = Path(folder)
        print("baking the default project ...", flush=True)
        project = bake(cwd)
        with runner.running_sink(HERE / "sink.py", INDEX, sink_core) as sink:
            env = environment(project, sink.url)
            version, default_batch = project_facts(env, cwd)
            print("measuring the sink alone ...", flush=True)
            load = (HERE / "sink_load.py", INDEX, SINK_LOAD_ITEMS, env, cwd)
            capacity = {
                "with the package's filter_path": runner.sink_capacity(sink, *load),
                "with full answers, as async_bulk gets them": runner.sink_capacity(
                    sink, *load, full_answers=True
                ),
            }
            specs = plan(args.scale, default_batch)
            samples, discarded = run_all(
                specs, args.repeats, env, cwd, sink, args.quiet_wait
            )
            print("profiling ours ...", flush=True)
            ours_spec = specs["ours"]
            profile = profiling.profile(
                [*ours_spec.arguments, "--count", str(ours_spec.events)],
                env,
                cwd,
                PACKAGE,
            )
    results = {
        key: report.Result(spec.label, spec.events, samples[key])
        for key, spec in specs.items()
    }
    sweep = {
        size: results["ours" if size == default_batch else f"batch_{size}"]
        for size in sorted({*SWEEP, default_batch})
    }
    text = report.results_markdown(
        results=results,
        sweep=sweep,
        default_batch=default_batch,
        machine=report.machine(TEMPLATE, version, pinning),
        sink_load=(
            f"A client sending pre-built `_bulk` bodies (1,000 events each, 10 "
            f"requests in flight, {SINK_LOAD_ITEMS:,} items, median of 3 runs):",
            "",
            *(f"- {how}: {rate.describe()}" for how, rate in capacity.items()),
        ),
        profile=profile,
        repeats=args.repeats,
        rss_growth_limit=RSS_GROWTH_LIMIT,
        discarded=(
            f"{discarded} runs were discarded and run again because other processes "
            f"used more than {MAX_OTHER_LOAD} cores during them (at most {RERUNS} "
            "times a run)."
        ),
    )
    args.output.write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()
