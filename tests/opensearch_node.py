"""A real OpenSearch node on 127.0.0.1, for the tests and benchmarks that need one.

No package index ships an Elasticsearch server and these machines run no Docker, but
OpenSearch (which speaks the Elasticsearch 7.10 REST API) embeds in a JVM: the Maven
project in opensearch-node/ starts one node. `ENGINE` builds it once (the first build
downloads OpenSearch and its dependencies, about 75 MB), `running_node` starts and
stops it, and the `opensearch` fixture shares one node with a test session.
"""

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from maven_engine import MavenEngine, stop, tail

try:
    import pytest
except ModuleNotFoundError:  # the benchmark uses the plain API and has no pytest
    pytest = None


class NodeError(RuntimeError):
    """The node could not be built, or did not start."""


ENGINE = MavenEngine(
    name="the OpenSearch node",
    project=Path(__file__).resolve().parent / "opensearch-node",
    java_options=("-Xms512m", "-Xmx1g"),
    error=NodeError,
)
MAIN_CLASS = "yopy.EmbeddedOpenSearch"
START_TIMEOUT = 120.0
# The node gives itself 30 s to close (awaitClose); past this, it is killed.
STOP_TIMEOUT = 45.0


@dataclass(frozen=True)
class RunningNode:
    """A started node: its REST address and the folder that holds all its files."""

    url: str
    home: Path
    process: subprocess.Popen

    @property
    def data(self) -> Path:
        """Where the node keeps its indices (path.data)."""
        return self.home / "data"


@contextmanager
def running_node(
    workdir: Path, http_port: int = 0, timeout: float = START_TIMEOUT
) -> Iterator[RunningNode]:
    """Start a node with its files in a new folder under workdir, ready for requests.

    Ready means cluster health yellow or green. On exit the node stops and its folder
    is removed. http_port 0 lets the system pick a free port.
    """
    command = [*ENGINE.build(), MAIN_CLASS]
    home = Path(tempfile.mkdtemp(prefix="opensearch-", dir=workdir))
    try:
        with (
            (home / "stdout.log").open("wb") as stdout,
            (home / "stderr.log").open("wb") as stderr,
        ):
            # Files, not pipes: nothing has to drain them while the tests run.
            process = subprocess.Popen(
                [*command, str(home), str(http_port)],
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            url = _wait_until_ready(process, home, timeout)
            yield RunningNode(url=url, home=home, process=process)
        finally:
            _stop(process)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_ready(process: subprocess.Popen, home: Path, timeout: float) -> str:
    """The node's URL, once its cluster is yellow or green."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NodeError(
                f"OpenSearch exited with {process.returncode} before it was ready;"
                f" its stderr ends with:\n{tail(home / 'stderr.log')}"
            )
        url = url or _announced_url(home / "stdout.log")
        if url is not None and _health(url) in {"yellow", "green"}:
            return url
        time.sleep(0.1)
    raise NodeError(
        f"OpenSearch was not ready within {timeout:.0f} s;"
        f" its stderr ends with:\n{tail(home / 'stderr.log')}"
    )


def _announced_url(stdout: Path) -> str | None:
    """The URL from the node's `HTTP host:port` line, once it has printed it."""
    for line in stdout.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("HTTP "):
            return f"http://{line.removeprefix('HTTP ').strip()}"
    return None


def _health(url: str) -> str | None:
    """The cluster's health status, or None while the node cannot say."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=5) as response:
            return json.load(response).get("status")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _stop(process: subprocess.Popen) -> None:
    """Stop the node: closing stdin is the cue for a running node, and SIGTERM also
    reaches one that is still starting. Both make it close itself."""
    process.stdin.close()
    stop(process, STOP_TIMEOUT)


if pytest is not None:

    @pytest.fixture(scope="session")
    def opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
        """One real OpenSearch node for the whole session (its `.url` for requests)."""
        ENGINE.require_available()
        with running_node(tmp_path_factory.mktemp("opensearch")) as node:
            yield node
