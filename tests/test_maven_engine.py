"""Each real engine says why it cannot run here, and CI cannot quietly skip it."""

import os
import shutil

import pytest
from kafka_broker import ENGINE as KAFKA
from maven_engine import MavenEngine
from opensearch_node import ENGINE as OPENSEARCH

ENGINES = pytest.mark.parametrize(
    "engine", [OPENSEARCH, KAFKA], ids=["opensearch", "kafka"]
)


def fake_commands(folder, **scripts: str) -> None:
    """Put shell scripts named after commands in folder."""
    for name, script in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{script}\n")
        (folder / name).chmod(0o755)


@ENGINES
def test_missing_java_is_the_reason(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert engine.why_not_available() == (
        f"java is not on PATH; {engine.name} needs Java 17+"
    )


@ENGINES
def test_missing_maven_is_the_reason(engine, monkeypatch, tmp_path):
    (tmp_path / "java").symlink_to(shutil.which("java") or "/usr/bin/java")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert (
        engine.why_not_available() == f"mvn is not on PATH; Maven builds {engine.name}"
    )


@ENGINES
def test_old_java_is_the_reason(engine, monkeypatch, tmp_path):
    fake_commands(
        tmp_path, java="echo '    java.specification.version = 1.8' >&2", mvn="exit 0"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert engine.why_not_available().endswith(f"is Java 8; {engine.name} needs 17+")


@ENGINES
def test_missing_engine_skips_locally(engine, monkeypatch, tmp_path):
    monkeypatch.delenv("REQUIRE_REAL_ENGINES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="java is not on PATH"):
        engine.require_available()


@ENGINES
def test_missing_engine_fails_when_real_engines_are_required(
    engine, monkeypatch, tmp_path
):
    monkeypatch.setenv("REQUIRE_REAL_ENGINES", "1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_REAL_ENGINES=1 but java"):
        engine.require_available()


def test_failed_build_says_where_its_output_is(monkeypatch, tmp_path):
    project = tmp_path / "engine"
    project.mkdir()
    (project / "pom.xml").write_text("<project>not a pom</project>\n")
    fake_commands(tmp_path, mvn="echo '[ERROR] Non-parseable POM'; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    broken = MavenEngine(
        name="a test engine", project=project, java_options=(), error=RuntimeError
    )
    with pytest.raises(
        RuntimeError, match=r"exited with 1; its output is in .*maven\.log"
    ):
        broken.build()
    assert "Non-parseable POM" in (project / "target" / "maven.log").read_text()
