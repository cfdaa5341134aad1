"""Failures a user can act on.

Each exception's message is one line that says what is wrong and how to fix it. The
CLI prints that line on stderr and exits non-zero; nothing else prints errors.
"""

from __future__ import annotations

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class PsetError(Exception):
    """Base class: the message is meant for the person running the command."""

    retryable = False


class ConfigError(PsetError):
    """A setting (argument, environment variable, .env entry) is missing or invalid."""


class InputError(PsetError):
    """What the user passed in (a query on standard input) cannot be used."""


class ConnectionFailed(PsetError):
    """No answer from the cluster: unreachable, reset, closed early or timed out."""

    retryable = True


class TLSFailed(ConnectionFailed):
    """The cluster's certificate could not be verified; retrying will not help."""

    retryable = False


class ElasticError(PsetError):
    """Elasticsearch answered with an error status."""

    def __init__(self, message: str, *, status: int, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in RETRYABLE_STATUSES


class AuthError(ElasticError):
    """The credentials were refused (401) or lack a privilege (403)."""


class IndexNotFound(ElasticError):
    """The index does not exist yet."""
