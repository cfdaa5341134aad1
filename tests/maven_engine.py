"""Real engines from Maven Central, run on this machine's Java, for the tests.

No package index ships an OpenSearch node or a Kafka broker and these machines run no
Docker, but both are jars on Maven Central that run on Java 17. A `MavenEngine` is one
such Maven project under tests/: it says whether this machine can run it, resolves it
(and compiles its code, if it has any) once, and gives the java command with its whole
classpath. What the engines share lives here; each engine's module starts its own.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

try:
    import pytest
except ModuleNotFoundError:  # the benchmarks use the plain API and have no pytest
    pytest = None

MINIMUM_JAVA = 17  # the floor of OpenSearch 2.19 and of the Kafka 4.x broker
TAIL_LINES = 40


@dataclass(frozen=True)
class MavenEngine:
    """A Maven project whose build writes its runtime classpath to
    target/classpath.txt; `name` says what it is in messages."""

    name: str
    project: Path
    java_options: tuple[str, ...]
    error: type[Exception]  # what a failed build raises

    @property
    def classpath_file(self) -> Path:
        return self.project / "target" / "classpath.txt"

    def why_not_available(self) -> str | None:
        """Why this machine cannot run the engine (no java 17+, no mvn), or None."""
        java = shutil.which("java")
        if java is None:
            return f"java is not on PATH; {self.name} needs Java {MINIMUM_JAVA}+"
        if shutil.which("mvn") is None:
            return f"mvn is not on PATH; Maven builds {self.name}"
        version = java_version(java)
        if version < MINIMUM_JAVA:
            return f"{java} is Java {version}; {self.name} needs {MINIMUM_JAVA}+"
        return None

    def require_available(self) -> None:
        """Skip the test when the engine cannot run here, or fail it when CI says
        it must (REQUIRE_REAL_ENGINES=1)."""
        reason = self.why_not_available()
        if reason is None:
            return
        if os.environ.get("REQUIRE_REAL_ENGINES") == "1":
            pytest.fail(f"REQUIRE_REAL_ENGINES=1 but {reason}")
        pytest.skip(reason)

    def build(self) -> list[str]:
        """Build the project if needed; returns java with the engine's classpath.

        The first build downloads the engine into the local Maven repository; later
        calls skip Maven while nothing changed.
        """
        if not self._is_built():
            log = self.project / "target" / "maven.log"
            log.parent.mkdir(exist_ok=True)
            command = [shutil.which("mvn") or "mvn", "-B", "-ntp", "process-classes"]
            with log.open("w", encoding="utf-8") as output:
                result = subprocess.run(
                    command, cwd=self.project, stdout=output, stderr=subprocess.STDOUT
                )
            if result.returncode != 0:
                raise self.error(
                    f"`{' '.join(command)}` in {self.project} exited with "
                    f"{result.returncode}; its output is in {log}, ending with:\n"
                    f"{tail(log)}"
                )
            # Maven leaves classpath.txt alone when the classpath did not change;
            # touch it so that it dates this build.
            os.utime(self.classpath_file)
        java = shutil.which("java") or "java"
        classpath = os.pathsep.join(str(path) for path in self._classpath())
        return [java, *self.java_options, "-cp", classpath]

    def _sources(self) -> list[Path]:
        return [self.project / "pom.xml", *(self.project / "src").rglob("*")]

    def _classpath(self) -> list[Path]:
        """The compiled classes, if the project has code, then every resolved jar."""
        jars = self.classpath_file.read_text(encoding="utf-8").strip().split(os.pathsep)
        classes = [self.project / "target" / "classes"]
        return [*(classes if (self.project / "src").exists() else []), *map(Path, jars)]

    def _is_built(self) -> bool:
        """Built since the pom or the code last changed, and every jar still there."""
        if not self.classpath_file.exists():
            return False
        built = self.classpath_file.stat().st_mtime
        if any(path.stat().st_mtime > built for path in self._sources()):
            return False
        return all(path.exists() for path in self._classpath())


def java_version(java: str) -> int:
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


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Stop an engine the clean way (SIGTERM), and kill it only if that hangs."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_lines(path: Path) -> list[str]:
    """A log's lines without Java's stack frames, for error messages."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    return [
        line
        for line in text.splitlines()
        if not line.lstrip().startswith(("at ", "... "))
    ]


def tail(path: Path) -> str:
    """The last lines of a log, for error messages."""
    return "\n".join(log_lines(path)[-TAIL_LINES:]) or "(no output)"
