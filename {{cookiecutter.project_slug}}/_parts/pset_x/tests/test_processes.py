"""The command as a real process: Ctrl-C, SIGTERM, and a reader that stops reading."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import INDEX
from fake_elasticsearch import delay

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = "{{ cookiecutter.project_slug }}"
FINAL = re.compile(r"Started: (\d+) : Pending: (\d+) : Completed: (\d+)")
STOPPING = re.compile(
    r"Stopping: waiting up to 5 s for \d+ tasks in flight \(Ctrl-C again cancels them\)"
)


def start(*arguments, cwd):
    """`python -m <package> *arguments`, warnings as errors, output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", PACKAGE, *arguments],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT),
            "PYTHONWARNINGS": "error",  # an unclosed session or lost task would show
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition):
    """Poll `condition` until it holds (a test that waits longer fails anyway)."""
    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def generating(index, tmp_path):
    """A `generate` of a million events, well under way against a slow cluster."""
    index.latency = 0.02  # a slow cluster, so the run is still going when we stop it
    generate = start(
        "generate", "--count", "1000000", "--batch-size", "50", cwd=tmp_path
    )
    wait_until(lambda: index.count(INDEX) >= 1000)
    return generate


def read_until_stopping(generate):
    """Read stdout up to the line saying that the engine is draining."""
    lines = []
    while not STOPPING.fullmatch(line := generate.stdout.readline().rstrip("\n")):
        assert line, lines  # the output ended without it
        lines.append(line)


@pytest.mark.parametrize(
    ("stop", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_drains_in_flight_requests_and_reports_what_was_stored(
    index, tmp_path, stop, status, word
):
    generate = generating(index, tmp_path)
    generate.send_signal(stop)
    out, err = generate.communicate(timeout=30)

    assert generate.returncode == status, err
    assert err == f"{word}\n"
    *progress, final, stopped, summary = out.splitlines()
    assert len([line for line in progress if STOPPING.fullmatch(line)]) == 1
    assert stopped == "Engine stopped."
    match = re.fullmatch(
        rf"(\d+) of 1000000 log events generated; (\d+) not confirmed \({word}\)",
        summary,
    )
    assert match, summary
    stored = int(match[1])
    assert stored >= 1000
    assert int(match[2]) == 1000000 - stored
    # in-flight requests were allowed to finish: what is stored is what was reported
    assert len(index.documents(INDEX)) == stored
    assert re.fullmatch(
        rf"Started: {stored} : Pending: 0000 : Completed: {stored}", final
    )


def test_a_second_ctrl_c_stops_at_once_and_still_reports_what_was_stored(
    index, tmp_path
):
    generate = generating(index, tmp_path)
    index.latency = 3.0  # shorter than the 5 s of grace: a drain would wait for them
    slow_since = len(index.requests)
    wait_until(lambda: len(index.requests) >= slow_since + 10)  # all 10 slots slow
    generate.send_signal(signal.SIGINT)
    read_until_stopping(generate)
    generate.send_signal(signal.SIGINT)
    out, err = generate.communicate(timeout=30)

    assert generate.returncode == 130, err
    assert err == "interrupted\n"
    *_, final, stopped, summary = out.splitlines()
    started, pending, completed = map(int, FINAL.fullmatch(final).groups())
    assert stopped == "Engine stopped."
    assert pending == 0
    assert started - completed == 10 * 50  # the slow writes, cancelled, not waited for
    assert summary == (
        f"{completed} of 1000000 log events generated; "
        f"{1000000 - completed} not confirmed (interrupted)"
    )


def test_ctrl_c_keeps_its_exit_status_when_the_reader_of_the_output_is_gone(
    index, tmp_path
):
    with generating(index, tmp_path) as generate:
        generate.stdout.close()  # as `| head -1` does once it has its line
        generate.send_signal(signal.SIGINT)
        assert generate.wait(timeout=30) == 130
        assert generate.stderr.read() == "interrupted\n"


@pytest.mark.parametrize("command", ["init", "query"])
def test_sigterm_stops_init_and_query_cleanly_with_status_143(index, tmp_path, command):
    index.faults.every_request = True
    index.faults.next(delay(30))  # the first request hangs until the signal
    with start(command, cwd=tmp_path) as process:
        process.stdin.write("{}")
        process.stdin.close()
        wait_until(lambda: index.requests)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143
        assert (process.stdout.read(), process.stderr.read()) == ("", "terminated\n")


def test_output_cut_short_by_its_reader_ends_quietly(index, tmp_path):
    with start("generate", "--count", "2000", cwd=tmp_path) as generate:
        generate.communicate(timeout=30)
    assert generate.returncode == 0
    with start("query", cwd=tmp_path) as query:
        query.stdin.write('{"size": 2000}')  # an answer far bigger than a pipe holds
        query.stdin.close()
        assert query.stdout.readline() == "Response: 200\n"
        query.stdout.close()  # as `| head -1` does
        assert query.wait(timeout=30) == 1
        assert query.stderr.read() == ""
