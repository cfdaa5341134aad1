"""The lake's tables, and how raw lines become typed rows.

This is the only place that says which tables exist, which columns they have and of
what type, and which table each event type lands in. Both landing engines (DuckDB and
Spark) parse with `parse_lines` and build their schemas from `TABLES`, which is what
makes their tables identical.

A line that is not a well-formed event is not dropped: it becomes a row of the
`quarantine` table, with the raw text and the reason (`torn_line`, `not_json`,
`not_an_object`, `unknown_event_type`, `missing_field:<name>`, `bad_type:<name>`,
`bad_timestamp`).

Parsing is one SQL query that DuckDB runs over a whole batch of lines: checking the
lines one at a time in Python took most of a landing's time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
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


# What parsing reads: one row per line as it arrived, where it came from, and whether
# it was cut short (its writer died before the newline).
LINES = pa.schema([("raw", pa.binary()), ("source", pa.string()), ("torn", pa.bool_())])
# What parsing gives, one row per line: the table it lands in, then every column of
# every table (tables that share a column share its type), null where that table has
# no such column.
TABLE = "_table"
PARSED = pa.schema(
    [(TABLE, pa.string())]
    + [
        (name, ARROW_TYPES[kind])
        for name, kind in dict(
            column for table in TABLES.values() for column in table.columns
        ).items()
        if name != LANDED_AT
    ]
)
# How DuckDB's json_type names the JSON values that a field of each SQL type takes.
_JSON_TYPES = {
    "VARCHAR": ("VARCHAR",),
    "TIMESTAMP": ("VARCHAR",),
    "BOOLEAN": ("BOOLEAN",),
    "INTEGER": ("BIGINT", "UBIGINT"),  # not DOUBLE: 2.5 is no strength
}
# An instant in ISO 8601 with its offset, as RFC 3339 has it: a date, a time to the
# second (its fraction optional), then Z or +HH:MM (or +HHMM, +HH). A time without
# an offset is refused: nobody could say which instant it was.
_INSTANT = (
    r"\d{4}-\d{2}-\d{2}[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)"
)


def parse_lines(lines: pa.Table) -> pa.Table:
    """Each line (LINES) as a row (PARSED) of the table it lands in, in their order,
    without `landed_at` (the engine's).

    JSON is as DuckDB reads it, which also takes a comma before a closing bracket,
    and NaN or Infinity in any case; of two fields with the same name, the first
    counts.
    """
    text, json_text = _decoded(lines.column("raw"))
    lines = lines.append_column("text", text).append_column("json_text", json_text)
    with duckdb.connect() as db:
        db.register("lines", lines)
        return pa.table(db.sql(_PARSE)).cast(PARSED)


def _decoded(raw: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The lines as text for the quarantine, and as text for the JSON parser: null
    where a line is not UTF-8, and so not JSON."""
    try:
        text = raw.cast(pa.string())
    except pa.ArrowInvalid:  # a line is not UTF-8: rare, so found line by line
        lines = raw.to_pylist()
        return (
            pa.chunked_array([[_text(line) for line in lines]], pa.string()),
            pa.chunked_array([[_utf8(line) for line in lines]], pa.string()),
        )
    return text, text


def _text(line: bytes | None) -> str | None:
    """The line with U+FFFD for each byte that is not UTF-8."""
    return None if line is None else line.decode(errors="replace")


def _utf8(line: bytes | None) -> str | None:
    try:
        return None if line is None else line.decode()
    except UnicodeDecodeError:
        return None


def _parse_query() -> str:
    """What parse_lines asks DuckDB, over `lines` (LINES, `text` and `json_text`).

    Each line is parsed three times, each time for all its fields at once: is it
    JSON, the JSON type of the line and of each field (`<field>:type`, null when
    missing), and each field's value as text (`<field>`: a string unquoted, a
    number's digits). Then come the timestamps, the quarantine reason (`why`, null
    for an event) and PARSED's columns.
    """
    paths = _sql_values(["$", *(f"$.{name}" for name in FIELD_TYPES)])
    fields = ", ".join(
        f'kinds[{number}] AS "{name}:type", strings[{number}] AS "{name}"'
        for number, name in enumerate(FIELD_TYPES, start=2)
    )
    instants = ", ".join(
        f'CASE WHEN regexp_full_match("{name}", {sql_string(_INSTANT)})'
        f" THEN TRY_CAST(\"{name}\" AS TIMESTAMPTZ) AT TIME ZONE 'UTC'"
        f' END AS "{name}:instant"'
        for name, (kind, _) in FIELD_TYPES.items()
        if kind == "TIMESTAMP"
    )
    # A quarantined line's columns: its table, text, why, and where it was read.
    quarantined = {
        TABLE: sql_string(QUARANTINE),
        "raw": "text",
        "reason": "why",
        "source": "source",
    }
    columns = ", ".join(
        f"CASE WHEN why IS NULL THEN {_event_column(name)}"
        f' ELSE {quarantined.get(name, "NULL")} END AS "{name}"'
        for name in PARSED.names
    )
    return f"""
        WITH decoded AS (
            SELECT *, NOT torn AND coalesce(json_valid(json_text), false) AS is_json
            FROM lines
        ), parsed AS (
            SELECT *,
                CASE WHEN is_json THEN json_type(json_text, [{paths}]) END AS kinds,
                CASE WHEN is_json THEN json_extract_string(json_text, [{paths}]) END
                    AS strings
            FROM decoded
        ), fields AS (
            SELECT *, kinds[1] AS "line:type", {fields} FROM parsed
        ), instants AS (
            SELECT *, {instants} FROM fields
        ), checked AS (
            SELECT *, {_reason()} AS why FROM instants
        )
        SELECT {columns} FROM checked
    """


def _reason() -> str:
    """Why a line is quarantined, in SQL: the first check it fails, or null."""
    own = " ".join(
        f"WHEN {sql_string(event_type)} THEN coalesce({_checks(fields)})"
        for event_type, fields in TYPE_FIELDS.items()
        if fields
    )
    return f"""coalesce(
        CASE
            WHEN torn THEN 'torn_line'
            WHEN NOT is_json THEN 'not_json'
            WHEN "line:type" <> 'OBJECT' THEN 'not_an_object'
        END,
        {_check("event_type")},
        CASE WHEN event_type NOT IN ({_sql_values(TABLE_OF)})
            THEN 'unknown_event_type' END,
        {_checks(COMMON_FIELDS)},
        CASE event_type {own} END
    )"""


def _checks(fields: tuple[str, ...]) -> str:
    return ", ".join(_check(name) for name in fields)


def _check(name: str) -> str:
    """The reason a field's value quarantines its line, in SQL; null if none."""
    kind, nullable = FIELD_TYPES[name]
    json_type = f'"{name}:type"'
    is_a = f"{json_type} IN ({_sql_values(_JSON_TYPES[kind])})"
    if kind == "INTEGER":  # and within the range of an INTEGER
        is_a += f' AND TRY_CAST("{name}" AS INTEGER) IS NOT NULL'
    checks = [
        (f"{json_type} IS NULL", f"missing_field:{name}"),
        (f"{json_type} = 'NULL'", None if nullable else f"bad_type:{name}"),
        (f"NOT ({is_a})", f"bad_type:{name}"),
    ]
    if kind == "TIMESTAMP":  # and an instant of the years 1 to 9999, as Spark's
        years = "TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59.999999'"
        in_years = f'coalesce("{name}:instant" BETWEEN {years}, false)'
        checks.append((f"NOT {in_years}", "bad_timestamp"))
    whens = " ".join(
        f"WHEN {condition} THEN {'NULL' if reason is None else sql_string(reason)}"
        for condition, reason in checks
    )
    return f"CASE {whens} END"


def _event_column(name: str) -> str:
    """A PARSED column of an event's row, in SQL: its table, or the field's typed
    value; null for the fields of the table's other event types (and for the
    quarantine's columns)."""
    if name == TABLE:
        tables = " ".join(
            f"WHEN {sql_string(event_type)} THEN {sql_string(table)}"
            for event_type, table in TABLE_OF.items()
        )
        return f"CASE event_type {tables} END"
    if name not in FIELD_TYPES:
        return "NULL"
    kind, _ = FIELD_TYPES[name]
    value = {
        "VARCHAR": f'"{name}"',
        "TIMESTAMP": f'"{name}:instant"',
        "BOOLEAN": f'TRY_CAST("{name}" AS BOOLEAN)',
        "INTEGER": f'TRY_CAST("{name}" AS INTEGER)',
    }[kind]
    if name in COMMON_FIELDS:
        return value
    owners = [event_type for event_type, own in TYPE_FIELDS.items() if name in own]
    return f"CASE WHEN event_type IN ({_sql_values(owners)}) THEN {value} END"


def sql_string(text: object) -> str:
    """A SQL string literal holding text (a path, usually)."""
    return "'" + str(text).replace("'", "''") + "'"


def _sql_values(texts: Iterable[str]) -> str:
    return ", ".join(sql_string(text) for text in texts)


_PARSE = _parse_query()
