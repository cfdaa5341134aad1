"""Settings: the environment over .env over the defaults, each value checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.errors import (
    ConfigError,
)
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)


def test_the_defaults(tmp_path):
    settings = Settings.load(environ={}, dotenv=tmp_path / "missing.env")
    assert settings == Settings(
        events_dir=Path("events"),
        lake_dir=Path("lake"),
        kafka_bootstrap_servers="",
        kafka_topic="events",
        spark_master="local[*]",
    )


def test_the_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("EVENTS_DIR=from-file\nLAKE_DIR=file-lake\nKAFKA_TOPIC=t1\n")
    settings = Settings.load(environ={"EVENTS_DIR": "from-env"}, dotenv=dotenv)
    assert settings.events_dir == Path("from-env")
    assert settings.lake_dir == Path("file-lake")
    assert settings.kafka_topic == "t1"


def test_an_empty_value_counts_as_unset(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("KAFKA_BOOTSTRAP_SERVERS=\nKAFKA_TOPIC=\n")
    settings = Settings.load(environ={"KAFKA_TOPIC": "  "}, dotenv=dotenv)
    assert settings.kafka_bootstrap_servers == ""
    assert settings.kafka_topic == "events"


def test_loading_leaves_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKE_DIR", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("LAKE_DIR=somewhere\n")
    assert Settings.load(dotenv=dotenv).lake_dir == Path("somewhere")
    assert "LAKE_DIR" not in os.environ


@pytest.mark.parametrize(
    "servers", ["localhost:9092", "a:1,b:2", "10.0.0.1:9092, [::1]:9093"]
)
def test_bootstrap_servers_are_host_port_lists(tmp_path, servers):
    environ = {"KAFKA_BOOTSTRAP_SERVERS": servers}
    assert Settings.load(environ, tmp_path / "x").kafka_bootstrap_servers == servers


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "not host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost:99999", "not host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "http://kafka:9092", "not host:port"),
        ("KAFKA_TOPIC", "my topic", "not a Kafka topic name"),
        ("KAFKA_TOPIC", "..", "not a Kafka topic name"),
        ("EVENTS_DIR", "bad\udcff", "not valid UTF-8"),
    ],
)
def test_invalid_values_say_how_to_fix_them(tmp_path, name, value, words):
    with pytest.raises(ConfigError, match=words) as raised:
        Settings.load({name: value}, tmp_path / "x")
    assert "\n" not in str(raised.value)
