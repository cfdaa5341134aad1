"""Settings: the real environment, then ./.env (read by dotenv_settings, which never
changes `os.environ`), then the defaults. An empty value counts as unset, so
`KAFKA_BOOTSTRAP_SERVERS=` in `.env` means the local event log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .dotenv_settings import SettingSources
from .errors import ConfigError

# Kafka's own rule for topic names (Topic.validate): at most 249 of these characters.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
# host:port, the host a name, an IPv4 address or an IPv6 address in brackets.
_SERVER = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")


@dataclass(frozen=True)
class Settings:
    """Where events go and where the lake is; nothing in it is a secret."""

    events_dir: Path = Path("events")
    lake_dir: Path = Path("lake")
    kafka_bootstrap_servers: str = ""  # "" = the local event log under events_dir
    kafka_topic: str = "events"
    spark_master: str = "local[*]"

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")
    ) -> Settings:
        """Resolve every setting, validate it, and raise ConfigError with the fix."""
        sources = SettingSources(environ, dotenv)

        def pick(name: str, default: str) -> str:
            return sources.get(name) or default

        defaults = cls()
        return cls(
            events_dir=Path(pick("EVENTS_DIR", str(defaults.events_dir))),
            lake_dir=Path(pick("LAKE_DIR", str(defaults.lake_dir))),
            kafka_bootstrap_servers=_checked_servers(
                pick("KAFKA_BOOTSTRAP_SERVERS", defaults.kafka_bootstrap_servers)
            ),
            kafka_topic=_checked_topic(pick("KAFKA_TOPIC", defaults.kafka_topic)),
            spark_master=pick("SPARK_MASTER", defaults.spark_master),
        )


def _checked_servers(servers: str) -> str:
    """A comma-separated list of host:port, as Kafka clients take it."""
    for server in filter(None, (part.strip() for part in servers.split(","))):
        port = server.rpartition(":")[2]
        if not _SERVER.fullmatch(server) or not 0 < int(port) < 65536:
            raise ConfigError(
                f"KAFKA_BOOTSTRAP_SERVERS holds {server!r}, which is not host:port: "
                "set it like localhost:9092 (several separated by commas), or leave "
                "it empty for the local event log"
            )
    return servers


def _checked_topic(topic: str) -> str:
    if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise ConfigError(
            f"KAFKA_TOPIC {topic!r} is not a Kafka topic name: use at most 249 "
            "letters, digits, '.', '_' or '-', like events"
        )
    return topic
