"""How fast the pipeline's two busy legs are: the API, and landing.

    python benchmarks/run.py [--requests 20000] [--events 100000] [--repeats 3]

1. The API: `serve` in its own process, loaded by the package's own `load` (another
   process): actions per second with the local event log, and with Kafka when
   KAFKA_BOOTSTRAP_SERVERS is set. Every answered action is one event; the run checks
   that the broker holds exactly that many afterwards.
2. Landing: `--events` events made with the package's own make_event and
   EventLogWriter into a temporary EVENTS_DIR, then landed into an empty lake by
   `land` with DuckDB and with Spark, and by the way a student would write it first
   (pandas: read_json(lines=True) per segment, to_parquet per table). Each landing
   runs in a fresh process, so that none inherits another's warm caches or JVM; each
   must land every event, or the benchmark stops.

Results go to benchmarks/RESULTS.md (with the machine they were measured on) and to
standard output. Nothing here is part of the test suite, and nothing asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The package's name, from pyproject.toml: the benchmark survives a rename.
PACKAGE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"][
    "build"
]["targets"]["wheel"]["packages"][0]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# What the load sends, in turn: every one is an action, so every one is an event.
# Most are refused once a player's 100 gold is spent (402), as in a real game.
PATHS = [
    "/purchase/potion",
    "/purchase/sword?quality=rare",
    "/join_guild?guild=red",
    "/declare_war?target=blue",
]
STARTED = "Serving on http://"


# -- the API ------------------------------------------------------------------------


@dataclass
class ApiRun:
    broker: str
    requests: int
    per_second: float
    statuses: dict[int, int]
    events: int
    other: float = 0.0  # cores that other processes used meanwhile


def measure_api(
    broker: str, requests: int, concurrency: int, players: int, work: Path
) -> ApiRun:
    """One `serve` + one `load`; returns the load's own requests/s."""
    events_dir = work / f"events-{uuid.uuid4().hex[:6]}"
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "") if broker == "kafka" else ""
    env = {
        **os.environ,
        "EVENTS_DIR": str(events_dir),
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAFKA_TOPIC": topic,
    }
    port = _free_port()
    serve = [sys.executable, "-m", PACKAGE, "serve", "--port", str(port)]
    wait_for_quiet()
    began, machine, own = time.monotonic(), _machine_cpu(), _own_cpu()
    with subprocess.Popen(
        serve,
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # one access-log line per request
        text=True,
    ) as server:
        try:
            first = server.stdout.readline() if server.stdout else ""
            if not first.startswith(STARTED):
                raise SystemExit(f"serve did not start ({broker}): {first!r}")
            load = [
                sys.executable,
                "-m",
                PACKAGE,
                "load",
                "--url",
                f"http://127.0.0.1:{port}",
                "--requests",
                str(requests),
                "--concurrency",
                str(concurrency),
                "--players",
                str(players),
                "--method",
                "POST",
                *PATHS,
            ]
            done = subprocess.run(
                load, env=env, cwd=work, capture_output=True, text=True, check=False
            )
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=120)
    other = (_machine_cpu() - machine - (_own_cpu() - own)) / (time.monotonic() - began)
    if done.returncode != 0:
        raise SystemExit(f"load failed ({broker}): {done.stdout}{done.stderr}")
    per_second = float(
        re.search(r"Requests/s: +([\d,.]+)", done.stdout)[1].replace(",", "")
    )
    statuses = {
        int(status): int(count)
        for status, count in re.findall(r"Status (\d+): +(\d+)", done.stdout)
    }
    expected = requests + 2 * players  # and each player's signup and login
    held = _kafka_messages(kafka, topic) if kafka else _log_lines(events_dir)
    if sum(statuses.values()) != requests or held != expected:
        raise SystemExit(
            f"{broker}: {sum(statuses.values())} answers and {held} events, "
            f"expected {requests} and {expected}"
        )
    shutil.rmtree(events_dir, ignore_errors=True)
    return ApiRun(broker, requests, per_second, statuses, held, max(other, 0.0))


def _log_lines(events_dir: Path) -> int:
    return sum(
        path.read_bytes().count(b"\n") for path in sorted(events_dir.glob("*.jsonl"))
    )


def _kafka_messages(servers: str, topic: str) -> int:
    """The committed events in `topic`, read as the lake reads them: offsets alone
    would count the transactions' commit markers too."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def count() -> int:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=servers,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()  # subscribed: it knows the topic's partitions
        try:
            numbers = consumer.partitions_for_topic(topic) or set()
            partitions = [TopicPartition(topic, number) for number in numbers]
            ends = await consumer.end_offsets(partitions)
            read = 0
            while any([await consumer.position(p) < ends[p] for p in partitions]):
                batches = await consumer.getmany(timeout_ms=1_000)
                read += sum(len(records) for records in batches.values())
            return read
        finally:
            await consumer.stop()

    return asyncio.run(count())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- landing ------------------------------------------------------------------------


def make_events(events_dir: Path, count: int, seed: int = 3) -> int:
    """`count` events such as a day of the game makes, through the package's own
    writer; returns how many sealed segments hold them."""
    events = importlib.import_module(f"{PACKAGE}.events")
    event_log = importlib.import_module(f"{PACKAGE}.event_log")
    rng = random.Random(seed)
    items = {"sword": (30, 10), "axe": (40, 12), "shield": (25, 8), "potion": (10, 3)}
    qualities = {"common": 1, "rare": 3, "epic": 8, "legendary": 20}
    guilds = ["red", "blue", "green", "gold"]

    def one(number: int) -> dict[str, Any]:
        username = f"player-{number % 500}"
        common = {"host": "game.example", "user_agent": "ApacheBench/2.3"}
        kind = rng.choices(
            ["purchase", "join_guild", "declare_war", "login", "signup", "default"],
            weights=[60, 10, 5, 15, 5, 5],
        )[0]
        if kind == "purchase":
            item, quality = rng.choice(list(items)), rng.choice(list(qualities))
            price, strength = (value * qualities[quality] for value in items[item])
            ok = rng.random() < 0.7
            return events.make_event(
                kind,
                success=ok,
                reason=None if ok else "not_enough_gold",
                username=username,
                fields={
                    "item_type": item,
                    "quality": quality,
                    "strength": strength,
                    "price": price,
                },
                **common,
            )
        if kind in ("join_guild", "declare_war"):
            guild, target = rng.sample(guilds, 2)
            fields = {"guild_name": guild}
            if kind == "declare_war":
                fields["target"] = target
            return events.make_event(
                kind,
                success=True,
                reason=None,
                username=username,
                fields=fields,
                **common,
            )
        return events.make_event(
            kind,
            success=True,
            reason=None,
            username=None if kind == "default" else username,
            **common,
        )

    async def write() -> None:
        writer = event_log.EventLogWriter(events_dir)
        for number in range(count):
            await writer.append(events.encode(one(number)))
        await writer.close()

    events_dir.mkdir(parents=True)
    asyncio.run(write())
    return len(event_log.sealed_segments(events_dir))


def land_with_pandas(events_dir: Path, lake_dir: Path) -> int:
    """The first landing a student writes: each segment read whole by pandas, split
    by event type, one Parquet file per table and segment. It does less than
    `land`: no deduplication, no quarantine, pandas' own guess at the types."""
    import pandas as pd

    lake = importlib.import_module(f"{PACKAGE}.lake")
    rows = 0
    for segment in sorted(events_dir.glob("*.jsonl")):
        frame = pd.read_json(segment, lines=True)
        for name, table in lake.TABLES.items():
            if name == lake.QUARANTINE:
                continue
            kinds = [k for k, t in lake.TABLE_OF.items() if t == name]
            part = frame[frame["event_type"].isin(kinds)]
            columns = [c for c in table.column_names if c != lake.LANDED_AT]
            part = part.reindex(columns=columns).assign(
                landed_at=pd.Timestamp.now(tz="UTC")
            )
            (lake_dir / name).mkdir(parents=True, exist_ok=True)
            part.to_parquet(lake_dir / name / f"{segment.stem}.parquet", index=False)
            rows += len(part)
    return rows


def landing_worker(engine: str, events_dir: Path, lake_dir: Path) -> dict[str, Any]:
    """Runs in its own process: one landing, timed from just before the call."""
    if engine == "pandas":
        import pandas  # noqa: F401  (imported before the clock starts, as the others)

        began = time.perf_counter()
        rows = land_with_pandas(events_dir, lake_dir)
    else:
        landing = importlib.import_module(f"{PACKAGE}.landing")
        settings_module = importlib.import_module(f"{PACKAGE}.settings")
        if engine == "spark":
            importlib.import_module(f"{PACKAGE}.spark_landing")
        settings = settings_module.Settings(
            events_dir=events_dir, lake_dir=lake_dir, kafka_bootstrap_servers=""
        )
        began = time.perf_counter()
        report = landing.land(settings, engine=engine, progress=None)
        rows = sum(report.landed.values()) + report.quarantined
    return {"rows": rows, "seconds": time.perf_counter() - began}


@dataclass
class LandRun:
    engine: str
    rows: int
    seconds: float
    cpu: float = 0.0  # the machine's, over the run: start-up and JVM included
    busy_before: float = 0.0  # cores the rest of the machine used just before
    error: str = ""
    runs: list[float] = field(default_factory=list)


def measure_landing(engine: str, events_dir: Path, work: Path, count: int) -> LandRun:
    lake_dir = work / f"lake-{engine}-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        str(events_dir),
        str(lake_dir),
    ]
    busy_before = wait_for_quiet()
    before = _machine_cpu()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=work
    )
    cpu = _machine_cpu() - before
    shutil.rmtree(lake_dir, ignore_errors=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return LandRun(engine, 0, 0.0, error=last[:300])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rows"] != count:
        raise SystemExit(f"{engine} landed {result['rows']} rows of {count}")
    return LandRun(engine, result["rows"], result["seconds"], cpu, busy_before)


def _machine_cpu() -> float:
    """CPU seconds the whole machine has used (Linux): Spark's JVM is nobody's
    waited-for child, so only the machine's count includes it."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    ticks = [int(n) for n in stat.read_text().split("\n")[0].split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


QUIET = 0.25  # cores that other processes may use for a run to start


def wait_for_quiet(limit: float = 30.0) -> float:
    """Wait (up to `limit` s) until the rest of the machine uses under QUIET cores;
    returns what it used in the last second. The benchmark's own processes are all
    finished by then, so whatever is busy is someone else."""
    deadline = time.monotonic() + limit
    while True:
        before = _machine_cpu()
        time.sleep(1.0)
        busy = _machine_cpu() - before
        if busy < QUIET or time.monotonic() > deadline:
            return busy


def _own_cpu() -> float:
    """CPU time of the processes this one has waited for (serve, load, a worker)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_run(runs: list[LandRun]) -> LandRun:
    good = [run for run in runs if not run.error]
    if not good:
        return runs[0]
    middle = sorted(good, key=lambda run: run.seconds)[len(good) // 2]
    middle.runs = [run.seconds for run in good]
    return middle


# -- the report ---------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    with_name = Path("/proc/cpuinfo")
    if with_name.exists():
        names = re.findall(r"model name\s*:\s*(.+)", with_name.read_text())
        cpu = names[0] if names else cpu
    versions = []
    for name in (PACKAGE, "aiohttp", "aiokafka", "duckdb", "pyarrow", "pandas"):
        versions.append(f"{name} {_version(name)}")
    versions.append(f"pyspark {_version('pyspark')}")
    java = shutil.which("java")
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Java: {_java_version() if java else 'none'}",
        f"- packages: {', '.join(versions)}",
    ]


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _java_version() -> str:
    done = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False
    )
    return (done.stderr.splitlines() or ["?"])[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, events_dir, lake_dir = args.worker
        print(json.dumps(landing_worker(engine, Path(events_dir), Path(lake_dir))))
        return 0

    lines = ["# Benchmark results", "", "Written by `python benchmarks/run.py`.", ""]
    lines += ["## Machine", "", *machine(), ""]
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        work = Path(folder)
        lines += api_section(args, work)
        lines += landing_section(args, work)
    text = "\n".join(lines) + "\n"
    args.output.write_text(text)
    print(text)
    return 0


def api_section(args: argparse.Namespace, work: Path) -> list[str]:
    brokers = ["log"]
    kafka_note = ""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        brokers.append("kafka")
    else:
        kafka_note = "Kafka: not measured (KAFKA_BOOTSTRAP_SERVERS is not set)."
    runs: dict[str, list[ApiRun]] = {broker: [] for broker in brokers}
    for repeat in range(args.repeats):
        for broker in brokers:  # round-robin: a slow minute hurts both alike
            run = measure_api(
                broker, args.requests, args.concurrency, args.players, work
            )
            print(f"api {broker} #{repeat + 1}: {run.per_second:,.0f}/s", flush=True)
            runs[broker].append(run)
    rates = {b: statistics.median(r.per_second for r in runs[b]) for b in brokers}
    label = {"log": "local event log", "kafka": "Kafka (acks=all, transactions)"}
    lines = [
        "## The API: actions per second",
        "",
        f"`serve` and `load --requests {args.requests:,} --concurrency "
        f"{args.concurrency} --players {args.players} --method POST "
        f"{' '.join(PATHS)}`, each in its own process, on the same machine. Median "
        f"of {args.repeats} runs; each action's event is with the broker before "
        "its answer, and afterwards the broker held exactly one event per answer "
        "(plus each player's signup and login). Other load: cores that other "
        "processes used during each run (0 on a quiet machine; with Kafka, the "
        "broker's own work is in it).",
        "",
        "| broker | actions/s (median) | runs | other load (cores) "
        "| statuses (last run) |",
        "|---|---|---|---|---|",
    ]
    for broker in brokers:
        last = runs[broker][-1].statuses
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(last.items()))
        each = ", ".join(f"{r.per_second:,.0f}" for r in runs[broker])
        other = ", ".join(f"{r.other:.2f}" for r in runs[broker])
        lines.append(
            f"| {label[broker]} | {rates[broker]:,.0f} | {each} | {other} | "
            f"{statuses} |"
        )
    lines.append("")
    if "kafka" in rates:
        lines.append(
            f"Local event log / Kafka = {rates['log'] / rates['kafka']:.1f}x "
            f"(Kafka at {os.environ['KAFKA_BOOTSTRAP_SERVERS']}, a single local "
            "broker)."
        )
    else:
        lines.append(kafka_note)
    return [*lines, ""]


SMALL = 1_000  # events of the small Spark landing, which shows its fixed cost


def landing_section(args: argparse.Namespace, work: Path) -> list[str]:
    events_dir = work / "events"
    segments = make_events(events_dir, args.events)
    size = sum(path.stat().st_size for path in events_dir.glob("*.jsonl"))
    small_dir = work / "events-small"
    make_events(small_dir, SMALL)
    engines = ["pandas", "duckdb", "spark", "spark-small"]
    runs: dict[str, list[LandRun]] = {engine: [] for engine in engines}
    for repeat in range(args.repeats):
        for engine in engines:
            if runs[engine] and runs[engine][-1].error:
                continue  # it cannot run here: once is enough to say why
            if engine == "spark-small":
                if runs["spark"][-1].error:
                    continue
                run = measure_landing("spark", small_dir, work, SMALL)
            else:
                run = measure_landing(engine, events_dir, work, args.events)
            runs[engine].append(run)
            what = run.error or f"{run.rows / run.seconds:,.0f} rows/s"
            print(f"land {engine} #{repeat + 1}: {what}", flush=True)
    best = {engine: median_run(runs[engine]) for engine in engines if runs[engine]}
    label = {
        "pandas": "pandas (read_json per segment, to_parquet)",
        "duckdb": "`land` (DuckDB)",
        "spark": "`land --engine spark` (local[*])",
        "spark-small": f"`land --engine spark`, {SMALL:,} events only",
    }
    pandas_rate = best["pandas"].rows / best["pandas"].seconds
    lines = [
        "## Landing: rows per second",
        "",
        f"{args.events:,} events ({size / 2**20:.1f} MiB in {segments} sealed "
        "segments, made with the package's make_event and EventLogWriter), landed "
        "into an empty lake; each landing in a fresh process, timed from just "
        "before the call (imports done, Spark's JVM not started: its start-up is "
        f"part of the landing). Median of {args.repeats} runs.",
        "",
        "| landing | rows/s | seconds | CPU s | vs pandas | runs (s) | busy before |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine, run in best.items():
        if run.error:
            lines.append(f"| {label[engine]} | did not run: {run.error} | | | | | |")
            continue
        rate = run.rows / run.seconds
        each = ", ".join(f"{s:.2f}" for s in run.runs)
        busy = ", ".join(f"{r.busy_before:.2f}" for r in runs[engine])
        # The small landing has other rows: its rate is no comparison.
        versus = "" if engine == "spark-small" else f"{rate / pandas_rate:.2f}x"
        lines.append(
            f"| {label[engine]} | {rate:,.0f} | {run.seconds:.2f} | {run.cpu:.2f} | "
            f"{versus} | {each} | {busy} |"
        )
    lines.append("")
    for engine in ("duckdb", "spark"):
        if engine in best and not best[engine].error:
            ratio = best[engine].rows / best[engine].seconds / pandas_rate
            faster = (
                f"pandas is {1 / ratio:.1f}x faster"
                if ratio < 1
                else f"{ratio:.1f}x faster than pandas"
            )
            lines.append(
                f"- {label[engine]} is {ratio:.2f}x pandas' rows/s ({faster})."
            )
    if "spark-small" in best and not best["spark-small"].error:
        big, small = best["spark"], best["spark-small"]
        marginal = (big.rows - small.rows) / (big.seconds - small.seconds)
        lines.append(
            f"- Spark's fixed cost: {small.seconds:.1f} s for {SMALL:,} events "
            f"(starting the JVM and the session, planning the streaming query, "
            f"one micro-batch); past it, {marginal:,.0f} rows/s "
            f"({big.rows - small.rows:,} rows in "
            f"{big.seconds - small.seconds:.1f} s more)."
        )
    lines += [
        "- vs pandas = rows/s / pandas' rows/s. pandas does less than `land`: no "
        "deduplication against the lake, no quarantine, no landing state.",
        "- seconds: the landing call alone. CPU s: what the whole machine used "
        "over the run's process (interpreter start-up, imports and Spark's JVM "
        "included; on a quiet machine, that is the run's), so it can exceed "
        "seconds on several cores.",
        "- busy before: cores the rest of the machine used in the second before "
        f"each run, after waiting up to 30 s for it to fall under {QUIET}; "
        "higher means the run shared the machine and is slower than it would be.",
    ]
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
