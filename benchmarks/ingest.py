"""The ingestion benchmark: bake the default project, race ways of storing its events.

    python benchmarks/ingest.py [--target all|sink|opensearch] [--repeats 3]
                                [--scale 1.0] [--output FILE]

Bakes the template from this working tree into a temporary folder. Against the sink
(an Elasticsearch 8 stand-in on 127.0.0.1, in its own process): checks that the sink
is fast enough, runs every contender as its own process several times, profiles ours
once. Against a real OpenSearch node (engine.py; skipped where Java is missing): runs
ours and opensearch-py's async_bulk the same way. Writes the tables to
benchmarks/RESULTS.md. README.md says what each contender is and how to read the
numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import engine
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
ENGINE_EVENTS = 100_000  # for both contenders on the real engine
WARM_UP_EVENTS = 100_000  # a warm-up run of ours
WARM_UP_RUNS = (4, 8)  # at least, at most
WARM = 0.9  # warm: a run's engine CPU per event fell by less than 10%
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


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


def plan(scale: float, default_batch: int) -> dict[str, Spec]:
    """Every measurement on the sink, keyed for the report. Counts make each run
    last seconds."""

    def n(count: int) -> int:
        return scaled(count, scale)

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


def engine_plan(scale: float) -> dict[str, Spec]:
    """The measurements on the real engine: ours and the engine's official client."""
    events = scaled(ENGINE_EVENTS, scale)
    return {
        "opensearch_py": Spec(
            "opensearch-py async_bulk (chunk 500)",
            events,
            contender("opensearch_async_bulk.py"),
        ),
        "ours": Spec("pset_x generate (ours)", events, ours()),
    }


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
    """Every contender's environment: the bake importable, ELASTIC_* at the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTIC_")}
    env.update(
        PYTHONPATH=str(project),
        ELASTIC_HOST=url,
        ELASTIC_INDEX=INDEX,
        ELASTIC_USERID="elastic",
        ELASTIC_PASSWORD="benchmark",
    )
    return env


@dataclass(frozen=True)
class Facts:
    """What the benchmark reads from the baked package."""

    version: str
    default_batch: int  # the CLI's --batch-size default
    schema: str  # ElasticLogger.schema, as JSON: the real engine's index is made so


def project_facts(project: Path, cwd: Path) -> Facts:
    code = (
        f"import json, {PACKAGE} as p, {PACKAGE}.cli as c, {PACKAGE}.es_logger as e;"
        " print(p.__version__, c.BATCH_SIZE, json.dumps(e.ElasticLogger.schema))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(project)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    version, batch, schema = answer.stdout.split(maxsplit=2)
    return Facts(version, int(batch), schema)


def run_all(
    specs: Mapping[str, Spec],
    repeats: int,
    env: Mapping[str, str],
    cwd: Path,
    server: runner.Server,
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
                server.reset()  # first, so the wait covers what resetting stirs up
                runner.wait_until_quiet(quiet_wait)
                sample = runner.measure(spec.command(), env, cwd, server)
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


def on_sink(
    args: argparse.Namespace,
    project: Path,
    cwd: Path,
    facts: Facts,
    core: set[int] | None,
) -> list[str]:
    """Every contender against the sink; RESULTS.md's sections for them."""
    with runner.running_sink(HERE / "sink.py", INDEX, core) as sink:
        env = environment(project, sink.url)
        print("measuring the sink alone ...", flush=True)
        load = (HERE / "sink_load.py", INDEX, SINK_LOAD_ITEMS, env, cwd)
        capacity = {
            "with the package's filter_path": runner.sink_capacity(sink, *load),
            "with full answers, as async_bulk gets them": runner.sink_capacity(
                sink, *load, full_answers=True
            ),
        }
        specs = plan(args.scale, facts.default_batch)
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
        size: results["ours" if size == facts.default_batch else f"batch_{size}"]
        for size in sorted({*SWEEP, facts.default_batch})
    }
    return report.sink_sections(
        results=results,
        sweep=sweep,
        default_batch=facts.default_batch,
        sink_load=(
            f"A client sending pre-built `_bulk` bodies (1,000 events each, 10 "
            f"requests in flight, {SINK_LOAD_ITEMS:,} items, median of 3 runs):",
            "",
            *(f"- {how}: {rate.describe()}" for how, rate in capacity.items()),
        ),
        profile=profile,
        repeats=args.repeats,
        rss_growth_limit=RSS_GROWTH_LIMIT,
        discarded=discarded_note(discarded),
    )


def on_engine(
    args: argparse.Namespace,
    project: Path,
    cwd: Path,
    facts: Facts,
    cores: set[int] | None,
) -> list[str]:
    """Ours and opensearch-py on a real OpenSearch node; RESULTS.md's section."""
    reason = engine.why_not_available()
    if reason is not None:
        print(f"skipping the real-engine target: {reason}", flush=True)
        return report.engine_skipped(reason)
    print("starting OpenSearch ...", flush=True)
    specs = engine_plan(args.scale)
    warming = replace(specs["ours"], events=scaled(WARM_UP_EVENTS, args.scale))
    try:
        with engine.running_engine(cwd, INDEX, facts.schema, cores) as node:
            env = environment(project, node.url)
            version, processors = node.version(), node.processors()
            warm_up_costs = warm_up(warming, env, cwd, node)
            samples, discarded = run_all(
                specs, args.repeats, env, cwd, node, args.quiet_wait
            )
    except engine.NodeError as error:  # the sink's results are kept all the same
        first = str(error).splitlines()[0].rstrip(":;, ")
        reason = f"the OpenSearch node did not start: {first}"
        print(f"skipping the real-engine target: {reason}", flush=True)
        return report.engine_skipped(reason)
    results = {
        key: report.Result(spec.label, spec.events, samples[key])
        for key, spec in specs.items()
    }
    where = f"CPU {min(cores)}" if cores else "any core"
    return report.engine_sections(
        ours=results["ours"],
        official=results["opensearch_py"],
        version=version,
        engine=(
            f"OpenSearch {version}, one node embedded in a JVM by "
            f"tests/opensearch_node.py ({engine.HEAP}), on {where} "
            f"({processors} allocated processor{'s' * (processors != 1)})"
        ),
        engine_cores=len(cores) if cores else os.cpu_count() or 1,
        warm_up=(warming.events, warm_up_costs),
        repeats=args.repeats,
        discarded=discarded_note(discarded),
    )


def warm_up(
    spec: Spec, env: Mapping[str, str], cwd: Path, node: engine.Engine
) -> list[float]:
    """Run `spec`, unmeasured, until the engine's CPU per event stops falling;
    returns that cost, in us, run after run.

    A fresh JVM costs several times more CPU per document for its first few hundred
    thousand: it is still compiling the indexing path, on the one core it has, and
    the cost can stall for a run before it falls again, hence a minimum of runs.
    Ours keeps the engine busiest, so it warms the path both contenders take fastest.
    """
    costs: list[float] = []
    while len(costs) < WARM_UP_RUNS[1]:
        node.reset()
        cpu = runner.measure(spec.command(), env, cwd, node).server_cpu_s
        costs.append(math.nan if cpu is None else cpu / spec.events * 1e6)
        print(
            f"warming the engine up (run {len(costs)}, not measured): "
            f"{spec.events:,} events, {costs[-1]:.0f} us of engine CPU per event",
            flush=True,
        )
        # Stopped falling; or, where the engine's CPU cannot be read (NaN), the minimum.
        if len(costs) >= WARM_UP_RUNS[0] and not costs[-1] < WARM * costs[-2]:
            break
    return costs


def discarded_note(discarded: int) -> str:
    return (
        f"{discarded} runs were discarded and run again because other processes "
        f"used more than {MAX_OTHER_LOAD} cores during them (at most {RERUNS} "
        "times a run)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        choices=("all", "sink", "opensearch"),
        default="all",
        help="the sink (an Elasticsearch 8 stand-in), a real OpenSearch node, or "
        "both (default: %(default)s)",
    )
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

    server_core, contender_cores = runner.split_cores()
    if contender_cores is not None:
        os.sched_setaffinity(0, contender_cores)  # the contenders inherit it
        pinning = (
            f"the sink or the OpenSearch node on CPU {min(server_core)}, "
            "contenders on the others"
        )
    else:
        pinning = "no pinning"
    sections = []
    with tempfile.TemporaryDirectory(prefix="yopy-bench-") as folder:
        cwd = Path(folder)
        print("baking the default project ...", flush=True)
        project = bake(cwd)
        facts = project_facts(project, cwd)
        if args.target in ("all", "sink"):
            sections += on_sink(args, project, cwd, facts, server_core)
        if args.target in ("all", "opensearch"):
            sections += on_engine(args, project, cwd, facts, server_core)
    text = report.results_markdown(
        machine=report.machine(TEMPLATE, facts.version, pinning), sections=sections
    )
    args.output.write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {args.output}")


if __name__ == "__main__":
    main()
