"""Failures a user can act on: the shared ones (base_errors), and the broker's and
the lake's.

Each exception's message is one line that says what is wrong and how to fix it. The
CLI prints that line on stderr and exits non-zero; nothing else prints errors.
"""

from __future__ import annotations

from .base_errors import ConfigError, InputError, PsetError

__all__ = ["BrokerError", "ConfigError", "InputError", "LandingError", "PsetError"]


class BrokerError(PsetError):
    """The broker (Kafka or the local event log) is unreachable or refused an event."""


class LandingError(PsetError):
    """Events could not be landed into the lake."""
