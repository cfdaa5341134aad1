"""What every contender shares: where the sink is, and how many events to send.

Contenders read the same ELASTIC_* variables as the package, so the runner points
them all at the sink in one way.
"""

from __future__ import annotations

import argparse
import base64
import os
from dataclasses import dataclass

MAX_IN_FLIGHT = 10  # the assignment's limit on requests in flight


@dataclass(frozen=True)
class Target:
    """The sink's URL, the index and the (any) credentials."""

    host: str
    index: str
    user: str
    password: str

    @classmethod
    def from_environment(cls) -> Target:
        env = os.environ
        return cls(
            host=env["ELASTIC_HOST"].rstrip("/"),
            index=env.get("ELASTIC_INDEX", "pset_x"),
            user=env.get("ELASTIC_USERID", "elastic"),
            password=env.get("ELASTIC_PASSWORD", ""),
        )

    @property
    def authorization(self) -> str:
        """The basic-auth header value (the sink takes any credentials)."""
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with --count; a contender adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, required=True, help="events to send")
    return parser
