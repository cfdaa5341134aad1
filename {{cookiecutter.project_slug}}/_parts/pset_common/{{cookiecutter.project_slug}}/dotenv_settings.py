"""Where settings come from: the real environment, then ./.env.

Reading `.env` never changes `os.environ`: importing or using the package has no side
effects on the process. An empty value counts as unset, in either place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from .base_errors import ConfigError


class SettingSources:
    """The environment (`os.environ` unless another is given), then a .env file."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        dotenv: str | os.PathLike[str] = ".env",
    ) -> None:
        self._sources = [os.environ if environ is None else environ, _read(dotenv)]

    def get(self, name: str, explicit: str | None = None) -> str | None:
        """The first value that is not blank, `explicit` first, stripped and checked
        to be text; None when every source leaves `name` unset."""
        for value in (explicit, *(source.get(name) for source in self._sources)):
            if value and value.strip():
                return checked_text(name, value.strip())
        return None


def _read(path: str | os.PathLike[str]) -> dict[str, str]:
    if not Path(path).is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value}


def checked_text(name: str, value: str) -> str:
    """Any setting: text that UTF-8 can carry (an environment variable holding
    bytes that are not UTF-8 arrives with surrogates, which no file name or address
    may hold). Never shows the value, which may be a password."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ConfigError(
            f"{name} is not valid UTF-8 text: set it again in .env or in the "
            "environment"
        ) from None
    return value
