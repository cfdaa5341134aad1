"""Ctrl-C on a real `generate` process."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import INDEX

PROJECT = Path(__file__).resolve().parent.parent


def test_ctrl_c_drains_in_flight_requests_and_reports_what_was_stored(index, tmp_path):
    index.latency = 0.02  # a slow cluster, so the run is still going when we stop it
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "PYTHONWARNINGS": "error",  # an unclosed session or lost task would show
    }
    generate = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "{{ cookiecutter.project_slug }}",
            "generate",
            "--count",
            "1000000",
            "--batch-size",
            "50",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
