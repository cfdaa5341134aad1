"""The real-engine target: one OpenSearch 2.19 node, a fresh index per run, its CPU.

The node is the one the template's tests use: tests/opensearch_node.py builds it with
Maven and starts it in its own JVM (heap 1 GB, data in a temporary folder). Here it
stands where the sink stands for the other target: `reset` gives each run a new index
made with the package's `ElasticLogger.schema`, `cpu_s` is the JVM's CPU time from
/proc/<pid>/stat, and `holds` counts the documents after a refresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import call

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.append(str(TESTS))  # the one place the benchmark reaches into tests/
import opensearch_node  # noqa: E402

HEAP = " ".join(opensearch_node.ENGINE.java_options)
NodeError = opensearch_node.NodeError  # the node could not be built or did not start


def why_not_available() -> str | None:
    """Why the node cannot run here (no Java 17+, no Maven), or None."""
    return opensearch_node.ENGINE.why_not_available()


@dataclass(frozen=True)
class Engine:
    """A running node and the one index the contenders fill."""

    url: str
    pid: int
    index: str
    schema: dict[str, Any]

    def reset(self) -> None:
        """Drop the index with whatever the last run stored; create it anew."""
        with contextlib.suppress(urllib.error.HTTPError):  # 404: there was none
            call("DELETE", f"{self.url}/{self.index}")
        call("PUT", f"{self.url}/{self.index}", self.schema)
        call("GET", f"{self.url}/_cluster/health/{self.index}?wait_for_status=yellow")

    def cpu_s(self) -> float | None:
        """User + system CPU seconds of the JVM since it started (None off Linux)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="ascii")
        except OSError:
            return None
        # Fields after the command, which is in parentheses: state is field 3,
        # utime and stime are fields 14 and 15.
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def holds(self) -> tuple[int, int]:
        """(documents in the index, 0): the engine refuses a second create of an id,
        and the client counts that as a failure, so no duplicate can be stored."""
        call("POST", f"{self.url}/{self.index}/_refresh")
        return call("GET", f"{self.url}/{self.index}/_count")["count"], 0

    def version(self) -> str:
        return call("GET", self.url)["version"]["number"]

    def processors(self) -> int:
        """How many processors the node sized its thread pools for."""
        nodes = call("GET", f"{self.url}/_nodes/_local/os")["nodes"]
        return next(iter(nodes.values()))["os"]["allocated_processors"]


@contextlib.contextmanager
def pinned(cores: set[int] | None) -> Iterator[None]:
    """Run the block on `cores` (processes started in it inherit them), then go back."""
    if cores is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


@contextlib.contextmanager
def running_engine(
    workdir: Path, index: str, schema_json: str, cores: set[int] | None
) -> Iterator[Engine]:
    """Start the node on `cores` (all the JVM's threads inherit them, and it sizes
    its thread pools to them), ready for requests; stop it on exit."""
    with contextlib.ExitStack() as stack:
        with pinned(cores):
            node = stack.enter_context(opensearch_node.running_node(workdir))
        yield Engine(node.url, node.process.pid, index, json.loads(schema_json))
