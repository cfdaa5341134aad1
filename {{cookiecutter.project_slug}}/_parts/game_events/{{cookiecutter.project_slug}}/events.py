"""What an event is and how to make one.

An event is a plain dict, its keys always in the same order: the fields every event
has, then its type's own. `encode` turns it into the bytes that travel: one line of
the local event log, or one Kafka message value, the same either way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

COMMON_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "timestamp",
    "success",
    "reason",
    "username",
    "host",
    "user_agent",
)
_GUILD_ACTION = ("guild_name", "target")
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "default": (),
    "signup": (),
    "login": (),
    "purchase": ("item_type", "quality", "strength", "price"),
    "join_guild": ("guild_name",),
    "declare_war": _GUILD_ACTION,
    "declare_peace": _GUILD_ACTION,
}


def make_event(
    event_type: str,
    *,
    success: bool,
    reason: str | None,
    username: str | None,
    host: str,
    user_agent: str,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new event with a fresh id. `fields` are the type's own; those it lacks are
    null (a failed action may not know them), and any other is a bug, refused here
    so that no table ever meets a column it does not have."""
    own = TYPE_FIELDS[event_type]
    fields = dict(fields or {})
    if unknown := fields.keys() - set(own):
        raise ValueError(f"{event_type} events have no fields {sorted(unknown)}")
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": timestamp(),
        "success": success,
        "reason": reason,
        "username": username,
        "host": host,
        "user_agent": user_agent,
        **{name: fields.get(name) for name in own},
    }


def timestamp(now: datetime | None = None) -> str:
    """UTC in ISO 8601, always with microseconds and a Z: one fixed width, which
    sorts as text in time order."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact JSON in UTF-8, with no newline: the log adds its own."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
