"""The failures every pset has: a user can act on each one.

Each exception's message is one line that says what is wrong and how to fix it. The
CLI prints that line on stderr and exits non-zero; nothing else prints errors. A
pset's own `errors` module adds its failures to these and names these too.
Errors that may go away by waiting (a busy server, a lost connection) are
`retryable`, `brief` names them in a few words for a progress line, and
`retry_after` holds the wait the server asked for, if it asked (Retry-After).
"""

from __future__ import annotations


class PsetError(Exception):
    """Base class: the message is meant for the person running the command."""

    retryable = False
    retry_after: float | None = None  # seconds; the transport sets it from the answer

    @property
    def brief(self) -> str:
        return str(self)


class ConfigError(PsetError):
    """A setting (argument, environment variable, .env entry) is missing or invalid."""


class InputError(PsetError):
    """What the user passed in (an argument, a query) cannot be used."""
