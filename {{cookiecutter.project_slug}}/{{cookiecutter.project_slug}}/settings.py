"""Connection settings: explicit arguments, then the real environment, then ./.env.

Reading `.env` never changes `os.environ`: importing or using the package has no side
effects on the process.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .errors import ConfigError

DEFAULT_USER = "elastic"
DEFAULT_INDEX = __package__ or "pset_x"

# Elasticsearch refuses these in index names, as well as upper case and a leading - _ +.
_INDEX_FORBIDDEN = re.compile(r'[\\/*?"<>|,#: ]')


@dataclass(frozen=True)
class Settings:
    """Where the cluster is and how to authenticate; secrets stay out of repr()."""

    host: str
    index: str = DEFAULT_INDEX
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    ca_certs: str | None = None

    @classmethod
    def load(
        cls,
        *,
        host: str | None = None,
        index: str | None = None,
        user: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        ca_certs: str | None = None,
        cloud_id: str | None = None,
        environ: Mapping[str, str] | None = None,
        dotenv: str | os.PathLike[str] = ".env",
    ) -> Settings:
        """Resolve every setting, validate it, and raise ConfigError with the fix."""
        sources = [os.environ if environ is None else environ, _read_dotenv(dotenv)]

        def pick(explicit: str | None, name: str) -> str | None:
            for value in (explicit, *(source.get(name) for source in sources)):
                if value and value.strip():
                    return value.strip()
            return None

        password = pick(password, "ELASTIC_PASSWORD")
        host = pick(host, "ELASTIC_HOST")
        if host is None and (cloud_id := pick(cloud_id, "ELASTIC_CLOUD_ID")):
            host = _cloud_endpoint(cloud_id)
        return cls(
            host=_checked_host(host),
            index=_checked_index(pick(index, "ELASTIC_INDEX") or DEFAULT_INDEX),
            user=pick(user, "ELASTIC_USERID") or (DEFAULT_USER if password else None),
            password=password,
            api_key=pick(api_key, "ELASTIC_API_KEY"),
            ca_certs=_checked_ca_file(pick(ca_certs, "ELASTIC_CA_CERTS")),
        )

    @property
    def authorization(self) -> str | None:
        """The Authorization header: an API key wins over user and password."""
        if self.api_key:
            return f"ApiKey {self.api_key}"
        if self.password is not None:
            pair = f"{self.user or DEFAULT_USER}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    @property
    def credentials(self) -> str:
        """Which credentials are in use, safe to print: never a password or key."""
        if self.api_key:
            key_id = _api_key_id(self.api_key)
            return f"API key id '{key_id}'" if key_id else "the API key"
        if self.password is not None:
            return f"user '{self.user}'"
        return "no credentials"


def _read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    if not Path(path).is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value}


def _checked_host(host: str | None) -> str:
    if host is None:
        raise ConfigError(
            "ELASTIC_HOST is not set: put the https endpoint of your cluster (or "
            "ELASTIC_CLOUD_ID) in .env (copy .env.example) or in the environment"
        )
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"ELASTIC_HOST {host!r} is not a URL: use the full endpoint, "
            "like https://my-deployment.es.us-east-1.aws.elastic.cloud:443"
        )
    return host.rstrip("/")


def _checked_index(index: str) -> str:
    if (
        index != index.lower()
        or index in (".", "..")
        or index[0] in "-_+"
        or _INDEX_FORBIDDEN.search(index)
        or len(index.encode()) > 255
    ):
        raise ConfigError(
            f"ELASTIC_INDEX {index!r} is not a valid index name: use lower case "
            "letters, digits, '-' and '_', not starting with '-', '_' or '+'"
        )
    return index


def _checked_ca_file(path: str | None) -> str | None:
    if path is not None and not Path(path).is_file():
        raise ConfigError(
            f"ELASTIC_CA_CERTS is {path!r}, which is not a file: point it to your "
            "cluster's CA certificate (for a local cluster, config/certs/http_ca.crt)"
        )
    return path


def _cloud_endpoint(cloud_id: str) -> str:
    """The https endpoint an Elastic Cloud ID stands for.

    A cloud ID is `name:base64(host[:port]$es_id$kibana_id)`; Elasticsearch is at
    https://<es_id>.<host>:<port, 443 by default>.
    """
    _, _, encoded = cloud_id.rpartition(":")
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        host, es_id, *_ = base64.b64decode(padded, validate=True).decode().split("$")
    except ValueError:  # bad base64 or text, or no $ in it
        host = es_id = ""
    domain, _, port = host.partition(":")
    if not (domain and es_id):
        raise ConfigError(
            "ELASTIC_CLOUD_ID is not a cloud ID: copy it from your deployment's page "
            "in Elastic Cloud (it looks like name:bG9jYWxob3N0JGFiY2QkZWZnaA==)"
        )
    return f"https://{es_id}.{domain}:{port or 443}"


def _api_key_id(encoded: str) -> str | None:
    """The id half of an encoded API key (base64 of id:key); the id is not a secret."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:  # binascii.Error or UnicodeDecodeError
        return None
    key_id, sep, _ = decoded.partition(":")
    return key_id if sep else None
