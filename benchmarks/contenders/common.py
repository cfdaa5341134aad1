"""What every contender shares: where the server is, how many events to send, and
the actions the official clients' bulk helpers are given.

Contenders read the same ELASTIC_* variables as the package, so the runner points
them all at the sink, or at the OpenSearch node, in one way.
"""

from __future__ import annotations

import argparse
import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pset_x.log_event import EventFactory

MAX_IN_FLIGHT = 10  # the assignment's limit on requests in flight


@dataclass(frozen=True)
class Target:
    """The server's URL, the index and the credentials (neither server checks them)."""

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
        """The basic-auth header value."""
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with --count; a contender adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, required=True, help="events to send")
    return parser


def create_actions(count: int, index: str) -> Iterator[dict[str, Any]]:
    """`count` bulk-helper actions, drawn lazily from the package's events: each a
    create under the event's logID, so that a retried item cannot store it twice."""
    factory = EventFactory()
    for _ in range(count):
        event = factory.event()
        yield {
            "_op_type": "create",
            "_index": index,
            "_id": event.logID,
            "_source": event.as_dict(),
        }
