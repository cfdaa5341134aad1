"""Failures a user can act on.

Each exception's message is one line that says what is wrong and how to fix it. The
CLI prints that line on stderr and exits non-zero; nothing else prints errors.
"""

from __future__ import annotations


class PsetError(Exception):
    """Base class: the message is meant for the person running the command."""


class ConfigError(PsetError):
    """A setting (environment variable or .env entry) is invalid."""


class InputError(PsetError):
    """What the user passed in (an argument, a query) cannot be used."""


class BrokerError(PsetError):
    """The broker (Kafka or the local event log) is unreachable or refused an event."""


class LandingError(PsetError):
    """Events could not be landed into the lake."""
