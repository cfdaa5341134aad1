"""A real OpenSearch node on 127.0.0.1, for the tests and benchmarks that need one.

No package index ships an Elasticsearch server and these machines run no Docker, but
OpenSearch (which speaks the Elasticsearch 7.10 REST API) embeds in a JVM: the Maven
project in opensearch-node/ starts one node. `build` compiles it once, `running_node`
starts and stops it, and the `opensearch` fixture shares one node with a test session.
"""

import json
import os
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

try:
    import pytest
except ModuleNotFoundError:  # the benchmark uses the plain API and has no pytest
    pytest = None

PROJECT = Path(__file__).resolve().parent / "opensearch-node"
TARGET = PROJECT / "target"
# Written by the Maven build: the jars of the whole resolved dependency closure.
CLASSPATH_FILE = TARGET / "classpath.txt"
MAIN_CLASS = "yopy.EmbeddedOpenSearch"
JAVA_OPTIONS = ("-Xms512m", "-Xmx1g")
MINIMUM_JAVA = 17  # OpenSearch 2.19's floor; 3.x would need 21
START_TIMEOUT = 120.0
# The node gives itself 30 s to close (awaitClose); past this, it is killed.
STOP_TIMEOUT = 45.0
TAIL_LINES = 40


class NodeError(RuntimeError):
    """The node could not be built, or did not start."""


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


def why_not_available() -> str | None:
    """Why this machine cannot run the node (no java 17+, no mvn), or None if it can."""
    java = shutil.which("java")
    if java is None:
        return f"java is not on PATH; the OpenSearch node needs Java {MINIMUM_JAVA}+"
    if shutil.which("mvn") is None:
        return "mvn is not on PATH; Maven builds the OpenSearch node"
    version = _java_version(java)
    if version < MINIMUM_JAVA:
        return f"{java} is Java {version}; the OpenSearch node needs {MINIMUM_JAVA}+"
    return None


def _java_version(java: str) -> int:
    """The feature version (8, 17, 21...) of a java executable."""
    settings = subprocess.run(
        [java, "-XshowSettings:properties", "-version"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    for line in settings.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "java.specification.version":
            return int(value.strip().removeprefix("1."))  # Java 8 says 1.8
    return 0


def build() -> list[str]:
    """Build the node's Maven project if needed; returns the java command to start it.

    The first build downloads OpenSearch and its dependencies (about 75 MB) into the
    local Maven repository; later calls skip Maven while nothing changed.
    """
    if not _is_built():
        TARGET.mkdir(exist_ok=True)
        log = TARGET / "maven.log"
        command = [shutil.which("mvn") or "mvn", "-B", "-ntp", "process-classes"]
        with log.open("w", encoding="utf-8") as output:
            result = subprocess.run(
                command, cwd=PROJECT, stdout=output, stderr=subprocess.STDOUT
            )
        if result.returncode != 0:
            raise NodeError(
                f"`{' '.join(command)}` in {PROJECT} exited with {result.returncode};"
                f" its output is in {log}, ending with:\n{_tail(log)}"
            )
        # Maven leaves classpath.txt alone when the classpath did not change; touch it
        # so that it dates this build.
        os.utime(CLASSPATH_FILE)
    java = shutil.which("java") or "java"
    classpath = os.pathsep.join(str(path) for path in _classpath())
    return [java, *JAVA_OPTIONS, "-cp", classpath, MAIN_CLASS]


def _classpath() -> list[Path]:
    """The compiled class, then every jar Maven resolved."""
    jars = CLASSPATH_FILE.read_text(encoding="utf-8").strip().split(os.pathsep)
    return [TARGET / "classes", *map(Path, jars)]


def _is_built() -> bool:
    """Built since the pom or the source last changed, and every jar still there."""
    if not CLASSPATH_FILE.exists():
        return False
    built = CLASSPATH_FILE.stat().st_mtime
    sources = [PROJECT / "pom.xml", *(PROJECT / "src").rglob("*")]
    if any(path.stat().st_mtime > built for path in sources):
        return False
    return all(path.exists() for path in _classpath())


@contextmanager
def running_node(
    workdir: Path, http_port: int = 0, timeout: float = START_TIMEOUT
) -> Iterator[RunningNode]:
    """Start a node with its files in a new folder under workdir, ready for requests.

    Ready means cluster health yellow or green. On exit the node stops and its folder
    is removed. http_port 0 lets the system pick a free port.
    """
    command = build()
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
                f" its stderr ends with:\n{_tail(home / 'stderr.log')}"
            )
        url = url or _announced_url(home / "stdout.log")
        if url is not None and _health(url) in {"yellow", "green"}:
            return url
        time.sleep(0.1)
    raise NodeError(
        f"OpenSearch was not ready within {timeout:.0f} s;"
        f" its stderr ends with:\n{_tail(home / 'stderr.log')}"
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
    """Stop the node the clean way, and kill it only if that hangs.

    Closing stdin is the cue for a running node; SIGTERM also reaches one that is
    still starting. Both make it close itself.
    """
    process.stdin.close()
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path) -> str:
    """The last lines of a log, for error messages; Java's stack frames left out."""
    if not path.exists():
        return "(no output)"
    lines = [
        line
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if not line.lstrip().startswith(("at ", "... "))
    ]
    return "\n".join(lines[-TAIL_LINES:]) or "(no output)"


def require_available() -> None:
    """Skip the test when the node cannot run here, or fail it when CI says it must."""
    reason = why_not_available()
    if reason is None:
        return
    if os.environ.get("REQUIRE_REAL_ENGINES") == "1":
        pytest.fail(f"REQUIRE_REAL_ENGINES=1 but {reason}")
    pytest.skip(reason)


if pytest is not None:

    @pytest.fixture(scope="session")
    def opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
        """One real OpenSearch node for the whole session (its `.url` for requests)."""
        require_available()
        with running_node(tmp_path_factory.mktemp("opensearch")) as node:
            yield node
