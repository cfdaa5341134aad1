"""Connection settings: explicit arguments, then the real environment, then ./.env
(read by dotenv_settings, which never changes `os.environ`)."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlunsplit

from yarl import URL

from .dotenv_settings import SettingSources
from .errors import ConfigError

DEFAULT_USER = "elastic"
# The package's own name, whatever the project was called: the module is only ever
# imported from its package (its imports are relative), so __package__ is set.
DEFAULT_INDEX = str(__package__)

# Elasticsearch's rule for index names (MetadataCreateIndexService): the characters it
# refuses, and the whole rule as the message states it.
_INDEX_FORBIDDEN = frozenset('\\/*?"<>|,#: ')
INDEX_RULE = (
    "an index name is lower case, at most 255 bytes, holds none of "
    '\\ / * ? " < > | , # : or a space, does not start with -, _ or +, and is not . '
    "or .."
)
# What an encoded API key (base64 of id:key) is made of.
_API_KEY = re.compile(r"[A-Za-z0-9+/=_-]+")
# One label of a host name: letters (any script), digits, - and _ (Docker service
# names have it), neither starting nor ending with -.
_HOST_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")
_EXAMPLE_HOST = "like https://my-deployment.es.us-east-1.aws.elastic.cloud:443"


@dataclass(frozen=True)
class Settings:
    """Where the cluster is and how to authenticate; secrets stay out of repr().

    `host` is the endpoint as the user wrote it, checked and without a trailing
    slash; it never holds credentials, so it is safe to print.
    """

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
        sources = SettingSources(environ, dotenv)

        def pick(explicit: str | None, name: str) -> str | None:
            return sources.get(name, explicit)

        password = pick(password, "ELASTIC_PASSWORD")
        host = pick(host, "ELASTIC_HOST")
        cloud_id = None if host else pick(cloud_id, "ELASTIC_CLOUD_ID")
        return cls(
            host=_cloud_endpoint(cloud_id) if cloud_id else _checked_host(host),
            index=_checked_index(pick(index, "ELASTIC_INDEX") or DEFAULT_INDEX),
            user=pick(user, "ELASTIC_USERID") or (DEFAULT_USER if password else None),
            password=password,
            api_key=_checked_api_key(pick(api_key, "ELASTIC_API_KEY")),
            ca_certs=_checked_ca_file(pick(ca_certs, "ELASTIC_CA_CERTS")),
        )

    @property
    def url(self) -> URL:
        """The endpoint as a URL, for building the URLs of requests."""
        return URL(self.host)

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
            return f"API key id {key_id!r}" if key_id else "the API key"
        if self.password is not None:
            return f"user {self.user!r}"
        return "no credentials"


def _checked_host(host: str | None) -> str:
    """The endpoint: http or https, a host (a name, an IPv4 address or an IPv6
    address in brackets), an optional port and an optional path prefix (for a
    cluster behind a reverse proxy); nothing else, and never credentials."""
    if host is None:
        raise ConfigError(
            "ELASTIC_HOST is not set: put the https endpoint of your cluster (or "
            "ELASTIC_CLOUD_ID) in .env (copy .env.example) or in the environment"
        )
    scheme, separator, rest = host.partition("://")
    # Neither credentials nor a query (which may hold a token) are ever shown.
    if "@" in host:  # user:password@host, and all before the last @ may be secret
        after = re.split(r"[?#]", host.rpartition("@")[2])[0]
        without = scheme + separator + after if separator else after
        raise ConfigError(
            "ELASTIC_HOST holds a user name or password: put them in ELASTIC_USERID "
            "and ELASTIC_PASSWORD (or use ELASTIC_API_KEY), and set ELASTIC_HOST "
            f"without them, to {without!r}"
        )
    if extra := re.search(r"[?#]", host):
        raise ConfigError(
            "ELASTIC_HOST has a query (?...) or a fragment (#...), which has no "
            f"place in it: set it to the endpoint alone, {host[: extra.start()]!r}"
        )
    authority, slash, path = rest.partition("/")
    if not separator or scheme.lower() not in ("http", "https"):
        problem = "it must start with https:// or http://"
    elif not host.isprintable() or any(char.isspace() for char in host):
        problem = "it holds a space or a control character"
    else:
        problem = _authority_problem(authority)
    endpoint = urlunsplit((scheme.lower(), authority, slash + path, "", ""))
    if problem is None:
        try:
            URL(endpoint)  # what builds the URLs of requests must accept it too
        except ValueError:  # UnicodeError included: a name IDNA cannot encode
            problem = "the host name is not valid"
    if problem is not None:
        raise ConfigError(
            f"ELASTIC_HOST {host!r} is not a URL ({problem}): use the full "
            f"endpoint, {_EXAMPLE_HOST}"
        )
    return endpoint.rstrip("/")


def _authority_problem(authority: str) -> str | None:
    """What is wrong with `host[:port]`, or None."""
    if authority.startswith("["):
        address, bracket, port = authority[1:].partition("]")
        if not bracket:
            return "an IPv6 address needs its closing ]"
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return f"[{address}] is not an IPv6 address"
    elif authority.count(":") > 1:
        return "an IPv6 address goes in brackets, like http://[::1]:9200"
    else:
        name, colon, number = authority.partition(":")
        port = colon + number
        if not name:
            return "the host is missing"
        if name.replace(".", "").isdigit():
            try:
                ipaddress.IPv4Address(name)
            except ValueError:
                return f"{name} is not an IPv4 address"
        elif not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
            return f"{name!r} is not a host name"
    number = port.removeprefix(":")
    if port and not (
        port[0] == ":" and _PORT.fullmatch(number) and 1 <= int(number) <= 65535
    ):
        return "the port after : must be a number from 1 to 65535"
    return None


def _checked_index(index: str) -> str:
    """Elasticsearch's own rule for index names, so that a wrong one fails here, not
    halfway through `init`."""
    forbidden = next((char for char in index if char in _INDEX_FORBIDDEN), None)
    problem = None
    if index != index.lower():
        problem = "it has upper case"
    elif forbidden is not None:
        problem = f"it holds {forbidden!r}"
    elif index[0] in "-_+":
        problem = f"it starts with {index[0]!r}"
    elif index in (".", ".."):
        problem = f"it is {index!r}"
    elif len(index.encode()) > 255:
        problem = f"it is {len(index.encode())} bytes long"
    if problem is not None:
        raise ConfigError(
            f"ELASTIC_INDEX {index!r} is not a valid index name ({problem}): "
            f"{INDEX_RULE}"
        )
    return index


def _checked_api_key(key: str | None) -> str | None:
    """An encoded API key, which goes into a header as it is: base64 characters
    only. The message never shows the key."""
    if key is not None and not _API_KEY.fullmatch(key):
        raise ConfigError(
            "ELASTIC_API_KEY is not an encoded API key (it holds characters that "
            "base64 never has): copy the key's encoded value, shown when it was "
            "created"
        )
    return key


def _checked_ca_file(path: str | None) -> str | None:
    """A file of CA certificates that TLS can load: a wrong one fails here, not
    on the first request."""
    if path is None:
        return None
    if not Path(path).is_file():
        problem = "which is not a file"
    else:
        try:
            ssl.create_default_context(cafile=path)
            return path
        except OSError:  # ssl.SSLError (not PEM), or unreadable
            problem = "which holds no certificate TLS can read"
    raise ConfigError(
        f"ELASTIC_CA_CERTS is {path!r}, {problem}: point it to your cluster's CA "
        "certificate (for a local cluster, config/certs/http_ca.crt)"
    )


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
    if domain and es_id:
        with contextlib.suppress(ConfigError):  # then it names no host: not an ID
            return _checked_host(f"https://{es_id}.{domain}:{port or 443}")
    raise ConfigError(
        "ELASTIC_CLOUD_ID is not a cloud ID: copy it from your deployment's page "
        "in Elastic Cloud (it looks like name:bG9jYWxob3N0JGFiY2QkZWZnaA==)"
    )


def _api_key_id(encoded: str) -> str | None:
    """The id half of an encoded API key (base64 of id:key); the id is not a secret."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:  # binascii.Error or UnicodeDecodeError
        return None
    key_id, sep, _ = decoded.partition(":")
    return key_id if sep else None
