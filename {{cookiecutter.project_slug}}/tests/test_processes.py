"""The command as a real process: Ctrl-C, and a reader that stops reading."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import INDEX

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = "{{ cookiecutter.project_slug }}"


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


def test_ctrl_c_drains_in_flight_requests_and_reports_what_was_stored(index, tmp_path):
    index.latency = 0.02  # a slow cluster, so the run is still going when we stop it
    generate = start(
        "generate", "--count", "1000000", "--batch-size", "50", cwd=tmp_path
    )
    deadline = time.monotonic() + 30
    while index.count(INDEX, refreshed=False) < 1000 and time.monotonic() < deadline:
        time.sleep(0.02)
    generate.send_signal(signal.SIGINT)
    out, err = generate.communicate(timeout=30)

    assert generate.returncode == 130, err
    assert err == "interrupted\n"
    *_, final, stopped, summary = out.splitlines()
    assert stopped == "Engine stopped."
    match = re.fullmatch(
        r"(\d+) of 1000000 log events generated; (\d+) not confirmed \(interrupted\)",
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
