"""What every pset's command line shares: its exit codes, a parser whose usage
errors are one line, and argparse types that refuse a wrong number clearly."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2  # and 128 + the signal's number, as shells


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: what is wrong and where to read more."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def at_least(kind: type[int] | type[float], lowest: float) -> Callable[[str], Any]:
    """An argparse type: a number of `kind`, at least `lowest`, or a clear refusal."""
    what = "a whole number" if kind is int else "a number"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= lowest:  # `not >=` refuses NaN too
            raise argparse.ArgumentTypeError(
                f"must be {what} >= {lowest}, not {text!r}"
            )
        return value

    return convert
