"""A game_events bake on the real engines: its own suite with the Kafka and Spark
tests run, and the course's pipeline end to end through a real Kafka broker.

The bake installs with its `spark` extra into a venv of its own (PySpark is large,
and the other psets must not see it); the session's broker (kafka_broker.py) is
the one both tests use, and Spark runs in local mode on the same Java.
"""

import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import make_venv, run, without_cluster_settings
from ports import free_ports, wait_until_listening

PLAYERS = 20
ACTIONS = 5_000
# Only actions (POST), so that every request emits an event, refused ones too.
PATHS = [
    "/purchase/sword",
    "/purchase/potion?quality=rare",
    "/join_guild?guild=red",
    "/declare_peace?target=blue",
]
TABLES = ["visits", "accounts", "purchases", "guild_events", "quarantine"]
SERVE_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def game_events(bake_once, tmp_path_factory, kafka) -> tuple[Path, Path]:
    """A game_events bake and the python of its venv, with Spark installed."""
    result = bake_once({"pset": "game_events"})
    assert result.exit_code == 0, result.exception
    python = make_venv(tmp_path_factory.mktemp("venv") / "game_events")
    project = result.project_path
    run([python, "-m", "pip", "install", "--quiet", "-e", ".[test,spark]"], cwd=project)
    return project, python


def test_baked_suite_runs_its_kafka_and_spark_tests(game_events, kafka):
    project, python = game_events
    environ = without_cluster_settings()
    environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers

    tests = run(
        [python, "-m", "pytest", "-p", "no:cacheprovider"], cwd=project, env=environ
    )

    last = tests.stdout.strip().splitlines()[-1]
    assert " passed" in last
    assert "skipped" not in last, tests.stdout


def answered(load_report: str) -> int:
    """The requests the load generator got an answer to, from its `Status` lines."""
    return sum(
        int(line.split(":")[1])
        for line in load_report.splitlines()
        if line.startswith("Status ")
    )


def table_counts(python: Path, slug: str, environ: dict, cwd: Path) -> dict[str, int]:
    sql = " UNION ALL ".join(
        f"SELECT '{table}' AS name, count(*) AS n FROM {table}" for table in TABLES
    )
    rows = run(
        [python, "-m", slug, "query", "--format", "csv", sql], cwd=cwd, env=environ
    ).stdout.splitlines()[1:]
    return {name: int(count) for name, count in (row.split(",") for row in rows)}


def test_every_answered_action_lands_once_through_kafka_with_spark_and_duckdb(
    game_events, kafka, tmp_path
):
    project, python = game_events
    slug = project.name
    environ = without_cluster_settings()
    environ |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC": f"game-{uuid.uuid4().hex[:8]}",
        "EVENTS_DIR": str(tmp_path / "events"),
    }
    port = free_ports(1)[0]
    # A file, not a pipe: serve logs every request, and a full pipe would stall it.
    server_log = tmp_path / "serve.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [python, "-m", slug, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(f"127.0.0.1:{port}", server, SERVE_TIMEOUT, server_log)
        load = run(
            [
                *(python, "-m", slug, "load", "--url", f"http://127.0.0.1:{port}"),
                *("--requests", ACTIONS, "--concurrency", 20, "--players", PLAYERS),
                *("--method", "POST", *PATHS),
            ],
            cwd=tmp_path,
            env=environ,
        )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=SERVE_TIMEOUT)
    assert server.returncode == 0, server_log.read_text(encoding="utf-8")
    assert answered(load.stdout) == ACTIONS, load.stdout

    lakes = {}
    for engine in ("spark", "duckdb"):
        environ["LAKE_DIR"] = str(tmp_path / f"lake-{engine}")
        run([python, "-m", slug, "land", "--engine", engine], cwd=tmp_path, env=environ)
        lakes[engine] = table_counts(python, slug, environ, tmp_path)

    # Every action and each player's signup and login, once, in the same tables.
    counts = lakes["spark"]
    assert lakes["duckdb"] == counts
    assert counts["purchases"] + counts["guild_events"] == ACTIONS, counts
    assert (counts["accounts"], counts["visits"], counts["quarantine"]) == (
        2 * PLAYERS,
        0,
        0,
    ), counts
