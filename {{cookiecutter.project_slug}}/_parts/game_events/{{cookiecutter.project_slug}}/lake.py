"""The lake's tables, and how one raw event becomes one typed row.

This is the only place that says which tables exist, which columns they have and of
what type, and which table each event type lands in. Both landing engines (DuckDB and
Spark) parse with `parse_line` and build their schemas from `TABLES`, which is what
makes their tables identical.

A line that is not a well-formed event is not dropped: it becomes a row of the
`quarantine` table, with the raw text and the reason (`torn_line`, `not_json`,
`not_an_object`, `unknown_event_type`, `missing_field:<name>`, `bad_type:<name>`,
`bad_timestamp`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from .events import COMMON_FIELDS, TYPE_FIELDS

QUARANTINE = "quarantine"
# Every table's last column: when the engine landed the row (not from the event).
LANDED_AT = "landed_at"
# Where each event type lands; an event type missing here is quarantined.
TABLE_OF: dict[str, str] = {
    "default": "visits",
    "signup": "accounts",
    "login": "accounts",
    "purchase": "purchases",
    "join_guild": "guild_events",
    "declare_war": "guild_events",
    "declare_peace": "guild_events",
}
# The SQL type of every event field, and whether it may be null. The type's own
# fields may always be null: a failed action may not know them (an unknown item has
# no price).
FIELD_TYPES: dict[str, tuple[str, bool]] = {
    "event_id": ("VARCHAR", False),
    "event_type": ("VARCHAR", False),
    "timestamp": ("TIMESTAMP", False),
    "success": ("BOOLEAN", False),
    "reason": ("VARCHAR", True),
    "username": ("VARCHAR", True),
    "host": ("VARCHAR", False),
    "user_agent": ("VARCHAR", False),
    "item_type": ("VARCHAR", True),
    "quality": ("VARCHAR", True),
    "strength": ("INTEGER", True),
    "price": ("INTEGER", True),
    "guild_name": ("VARCHAR", True),
    "target": ("VARCHAR", True),
}
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    # Naive and in UTC: DuckDB calls it TIMESTAMP, Spark TIMESTAMP_NTZ, and both write
    # it to Parquet the same way (microseconds, not adjusted to a time zone).
    "TIMESTAMP": pa.timestamp("us"),
}
_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class Table:
    """A table of the lake: its columns in order, with their SQL types."""

    name: str
    columns: tuple[tuple[str, str], ...]
    # Two rows with the same key are the same row landed twice.
    key: str

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def arrow_schema(self) -> pa.Schema:
        """The schema both engines write, as Arrow sees it."""
        return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.columns])


def _event_table(name: str) -> Table:
    """A table's columns: the fields every event has, then its event types' own."""
    own = [
        field
        for event_type, table in TABLE_OF.items()
        if table == name
        for field in TYPE_FIELDS[event_type]
    ]
    fields = [*COMMON_FIELDS, *dict.fromkeys(own)]
    columns = [(field, FIELD_TYPES[field][0]) for field in fields]
    return Table(name, (*columns, (LANDED_AT, "TIMESTAMP")), key="event_id")


TABLES: dict[str, Table] = {
    name: _event_table(name) for name in dict.fromkeys(TABLE_OF.values())
}
# `source` says where the line was read: `<segment>:<line number>` for the local event
# log, `<topic>-<partition>-<offset>` for Kafka; either way it is unique per line.
TABLES[QUARANTINE] = Table(
    QUARANTINE,
    (
        ("raw", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("source", "VARCHAR"),
        (LANDED_AT, "TIMESTAMP"),
    ),
    key="source",
)


class RawLine(NamedTuple):
    """One event as it arrived: its bytes, where they came from, and whether the line
    was cut short (a writer died before its newline)."""

    raw: bytes
    source: str
    torn: bool = False


class Invalid(Exception):
    """Why a line is not a well-formed event: the quarantine reason."""


def parse_line(line: RawLine) -> tuple[str, dict[str, Any]]:
    """The table a line lands in and its row, without `landed_at` (the engine's)."""
    try:
        event = _decode(line)
        table = TABLES[TABLE_OF[event["event_type"]]]
        fields = [*COMMON_FIELDS, *TYPE_FIELDS[event["event_type"]]]
        # The table's other columns belong to its other event types: null here.
        row = dict.fromkeys(table.column_names[:-1])
        row.update((name, _typed(name, event)) for name in fields)
    except Invalid as invalid:
        raw = line.raw.decode(errors="replace")
        return QUARANTINE, {"raw": raw, "reason": str(invalid), "source": line.source}
    return table.name, row


def _decode(line: RawLine) -> dict[str, Any]:
    """The event as a dict whose event_type has a table."""
    if line.torn:
        raise Invalid("torn_line")
    try:
        event = json.loads(line.raw)
    except ValueError:  # also bytes that are not UTF-8
        raise Invalid("not_json") from None
    if not isinstance(event, dict):
        raise Invalid("not_an_object")
    if _typed("event_type", event) not in TABLE_OF:
        raise Invalid("unknown_event_type")
    return event


def _typed(name: str, event: dict[str, Any]) -> Any:
    """The field's value, checked against its type; timestamps become datetimes."""
    if name not in event:
        raise Invalid(f"missing_field:{name}")
    value = event[name]
    kind, nullable = FIELD_TYPES[name]
    if value is None and nullable:
        return None
    if kind == "TIMESTAMP" and isinstance(value, str):
        return _timestamp(value)
    if not _is_a(kind, value):
        raise Invalid(f"bad_type:{name}")
    return value


def _is_a(kind: str, value: Any) -> bool:
    if kind == "VARCHAR":
        return isinstance(value, str)
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    # JSON's true is a Python bool, which is an int: not a strength.
    return (
        kind == "INTEGER"
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value in _INT32
    )


def _timestamp(text: str) -> datetime:
    """An ISO 8601 instant with its offset, as a naive datetime in UTC.

    A time without an offset is refused: nobody could say which instant it was.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("bad_timestamp") from None
    if moment.tzinfo is None:
        raise Invalid("bad_timestamp")
    return moment.astimezone(UTC).replace(tzinfo=None)
