"""Failures a user can act on: the shared ones (base_errors), and the cluster's.

Each exception's message is one line that says what is wrong and how to fix it. The
CLI prints that line on stderr and exits non-zero; nothing else prints errors.
Errors that may go away by waiting (a busy cluster, a lost connection) are
`retryable`, `brief` names them in a few words for the progress line, and
`retry_after` holds the wait the server asked for, if it asked (Retry-After).
"""

from __future__ import annotations

from .base_errors import ConfigError, InputError, PsetError

__all__ = [
    "RETRYABLE_STATUSES",
    "STATUS_WORDS",
    "AuthError",
    "ConfigError",
    "ConnectionFailed",
    "DocumentNotFound",
    "ElasticError",
    "IndexNotFound",
    "InputError",
    "MappingMismatch",
    "NotElasticsearch",
    "PsetError",
    "TLSFailed",
]

# The statuses worth retrying, and what each means for the student watching the
# progress line.
STATUS_WORDS = {
    429: "cluster busy",
    502: "bad gateway",
    503: "unavailable",
    504: "gateway timeout",
}
RETRYABLE_STATUSES = frozenset(STATUS_WORDS)


class ConnectionFailed(PsetError):
    """No answer from the cluster: unreachable, reset, closed early or timed out."""

    def __init__(self, message: str, *, brief: str, retryable: bool = True) -> None:
        super().__init__(message)
        self._brief = brief
        self.retryable = retryable

    @property
    def brief(self) -> str:
        return self._brief


class NotElasticsearch(PsetError):
    """What answers at ELASTIC_HOST is not Elasticsearch (a web page, Kibana, a
    redirect), or answered as Elasticsearch never would; retrying will not help."""

    @property
    def brief(self) -> str:
        return "not Elasticsearch"


class TLSFailed(ConnectionFailed):
    """The cluster's certificate could not be verified; retrying will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, brief="TLS failed", retryable=False)


class ElasticError(PsetError):
    """Elasticsearch answered with an error status."""

    def __init__(self, message: str, *, status: int, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in RETRYABLE_STATUSES

    @property
    def brief(self) -> str:
        return f"{self.status} {STATUS_WORDS.get(self.status, self.error_type)}"


class AuthError(ElasticError):
    """The credentials were refused (401) or lack a privilege (403)."""


class IndexNotFound(ElasticError):
    """The index does not exist yet."""


class DocumentNotFound(ElasticError):
    """The index holds no document under the id asked for."""


class MappingMismatch(PsetError):
    """The index exists, but not with the event mapping: `init` recreates it."""
