"""`serve` as a student runs it: a process of its own, loaded, then stopped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fakes import KAFKA, consumed, decoded, needs_kafka

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.event_log import (
    sealed_segments,
)

PACKAGE = "{{ cookiecutter.project_slug }}"
STARTED = "Serving on http://"


def a_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(port: int) -> list[str]:
    """`python -m <package> serve` on the port, in this interpreter."""
    return [sys.executable, "-m", PACKAGE, "serve", "--port", str(port)]


def environment(events: Path, **more: str) -> dict[str, str]:
    env = {**os.environ, "EVENTS_DIR": str(events), "KAFKA_BOOTSTRAP_SERVERS": ""}
    return {**env, **more}


@contextmanager
def serving(events: Path, port: int, **env: str) -> Iterator[subprocess.Popen[str]]:
    """`serve` in a subprocess, up once its first line says so; stopped by SIGINT,
    the way Ctrl-C stops it."""
    with subprocess.Popen(
        serve_command(port),
        env=environment(events, **env),
        cwd=events.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            first = server.stdout.readline()
            assert first.startswith(STARTED), first + server.stderr.read()
            yield server
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)
            server.wait(timeout=60)


def test_every_answered_action_is_one_event_in_the_log(tmp_path, capsys):
    events = tmp_path / "events"
    port = a_free_port()
    with serving(events, port) as server:
        argv = ["load", "--url", f"http://127.0.0.1:{port}", "-n", "120", "-c", "8"]
        paths = [
            "/purchase/potion",
            "/purchase/axe?quality=epic",
            "/join_guild?guild=g",
        ]
        assert main([*argv, "--players", "4", "-m", "POST", *paths]) == 0
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
        log = server.stderr.read()
    report = capsys.readouterr().out
    statuses = {
        int(status): int(count)
        for status, count in re.findall(r"Status (\d+): +(\d+)", report)
    }
    assert sum(statuses.values()) == 120
    written = [
        json.loads(line)
        for segment in sealed_segments(events)
        for line in segment.read_bytes().splitlines()
    ]
    assert not list(events.glob("*.open"))  # the drain sealed the segment
    actions = [
        e for e in written if e["username"] and e["username"].startswith("load-")
    ]
    assert len(written) == len(actions) == 120 + 2 * 4  # and the signups and logins
    assert sum(e["success"] for e in written) == statuses[200] + 2 * 4
    assert "Traceback" not in log
    assert "password" not in log


def test_serve_on_a_port_in_use_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_command(port),
            env=environment(tmp_path / "events"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert done.stderr.count("\n") == 1


def test_serve_with_kafka_unreachable_is_one_line_and_exit_1(tmp_path):
    env = environment(tmp_path / "events", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    done = subprocess.run(
        serve_command(a_free_port()),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert done.stderr.count("\n") == 1


@needs_kafka
def test_with_kafka_every_answered_action_is_one_acknowledged_message(tmp_path):
    topic = f"serve-{uuid.uuid4().hex[:8]}"
    port = a_free_port()
    with serving(
        tmp_path / "events", port, KAFKA_BOOTSTRAP_SERVERS=KAFKA, KAFKA_TOPIC=topic
    ) as server:
        argv = ["load", "--url", f"http://127.0.0.1:{port}", "-n", "60", "-c", "6"]
        assert main([*argv, "--players", "3", "-m", "POST", "/purchase/shield"]) == 0
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
    events = decoded(asyncio.run(consumed(topic)))
    assert len(events) == len({e["event_id"] for e in events}) == 60 + 2 * 3
    assert not (tmp_path / "events").exists()  # nothing went to the local log
