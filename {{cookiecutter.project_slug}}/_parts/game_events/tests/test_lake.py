"""The lake's tables, and parsing raw lines into typed rows or quarantine reasons."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from lake_samples import one_of_each, sample_event

from {{ cookiecutter.project_slug }}.events import (
    COMMON_FIELDS,
    TYPE_FIELDS,
    encode,
)
from {{ cookiecutter.project_slug }}.lake import (
    FIELD_TYPES,
    LANDED_AT,
    LINES,
    TABLE,
    TABLE_OF,
    TABLES,
    parse_lines,
)


def parsed(raw: bytes, torn: bool = False) -> tuple[str, dict[str, Any]]:
    """The table a line lands in, and its row (the columns of that table)."""
    lines = pa.table([[raw], ["segment.jsonl:7"], [torn]], schema=LINES)
    (row,) = parse_lines(lines).to_pylist()
    table = row[TABLE]
    return table, {
        name: row[name] for name in TABLES[table].column_names if name != LANDED_AT
    }


def reason_for(event: Any) -> str:
    table, row = parsed(json.dumps(event).encode())
    assert table == "quarantine"
    return row["reason"]


def test_the_spec_tables_and_their_typed_columns() -> None:
    assert list(TABLES) == [
        "visits",
        "accounts",
        "purchases",
        "guild_events",
        "quarantine",
    ]
    common = [
        ("event_id", "VARCHAR"),
        ("event_type", "VARCHAR"),
        ("timestamp", "TIMESTAMP"),
        ("success", "BOOLEAN"),
        ("reason", "VARCHAR"),
        ("username", "VARCHAR"),
        ("host", "VARCHAR"),
        ("user_agent", "VARCHAR"),
    ]
    landed_at = ("landed_at", "TIMESTAMP")
    assert list(TABLES["visits"].columns) == [*common, landed_at]
    assert list(TABLES["accounts"].columns) == [*common, landed_at]
    assert list(TABLES["purchases"].columns) == [
        *common,
        ("item_type", "VARCHAR"),
        ("quality", "VARCHAR"),
        ("strength", "INTEGER"),
        ("price", "INTEGER"),
        landed_at,
    ]
    assert list(TABLES["guild_events"].columns) == [
        *common,
        ("guild_name", "VARCHAR"),
        ("target", "VARCHAR"),
        landed_at,
    ]
    assert list(TABLES["quarantine"].columns) == [
        ("raw", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("source", "VARCHAR"),
        landed_at,
    ]


def test_every_event_type_has_a_table_and_every_field_a_type() -> None:
    assert TABLE_OF.keys() == TYPE_FIELDS.keys()
    fields = {*COMMON_FIELDS, *(f for own in TYPE_FIELDS.values() for f in own)}
    assert fields == FIELD_TYPES.keys()


@pytest.mark.parametrize("event", one_of_each(), ids=lambda event: event["event_type"])
def test_an_event_becomes_a_typed_row_of_its_table(event: dict[str, Any]) -> None:
    table, row = parsed(encode(event))
    assert table == TABLE_OF[event["event_type"]]
    assert row.keys() == {name for name, _ in TABLES[table].columns} - {"landed_at"}
    assert row["timestamp"] == datetime.fromisoformat(event["timestamp"]).replace(
        tzinfo=None
    )
    assert {name: row[name] for name in event if name != "timestamp"} == {
        name: value for name, value in event.items() if name != "timestamp"
    }


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-12-02T16:36:34.5+02:00", datetime(2026, 12, 2, 14, 36, 34, 500000)),
        ("2026-12-02T16:36:34.1234567+0200", datetime(2026, 12, 2, 14, 36, 34, 123456)),
        ("2026-12-02 13:06:00-01:30", datetime(2026, 12, 2, 14, 36)),
        ("2026-12-02T14:36:34Z", datetime(2026, 12, 2, 14, 36, 34)),
    ],
)
def test_a_timestamp_with_an_offset_is_stored_in_utc(text: str, utc: datetime) -> None:
    _, row = parsed(encode(sample_event("default") | {"timestamp": text}))
    assert row["timestamp"] == utc


def test_a_failed_purchase_keeps_its_null_fields() -> None:
    event = one_of_each()[-1]
    table, row = parsed(encode(event))
    assert table == "purchases"
    assert (row["item_type"], row["strength"], row["price"]) == ("bazooka", None, None)


def test_a_torn_line_is_quarantined_as_torn() -> None:
    table, row = parsed(b'{"event_id": "cut', torn=True)
    assert (table, row) == (
        "quarantine",
        {
            "raw": '{"event_id": "cut',
            "reason": "torn_line",
            "source": "segment.jsonl:7",
        },
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not_json"),
        (b"{not json", "not_json"),
        (b'{"bytes": "\xff"}', "not_json"),
        (b'{"half of a pair": "\\ud800"}', "not_json"),
        (b'["an", "array"]', "not_an_object"),
        (b"42", "not_an_object"),
    ],
)
def test_what_is_no_json_object_is_quarantined(raw: bytes, reason: str) -> None:
    table, row = parsed(raw)
    assert (table, row["reason"]) == ("quarantine", reason)
    assert row["raw"] == raw.decode(errors="replace")


def without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != name}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e | {"event_type": "teleport"}, "unknown_event_type"),
        (lambda e: without(e, "event_type"), "missing_field:event_type"),
        (lambda e: e | {"event_type": 3}, "bad_type:event_type"),
        (lambda e: without(e, "event_id"), "missing_field:event_id"),
        (lambda e: without(e, "price"), "missing_field:price"),
        (lambda e: e | {"event_id": None}, "bad_type:event_id"),
        (lambda e: e | {"success": "yes"}, "bad_type:success"),
        (lambda e: e | {"strength": "12"}, "bad_type:strength"),
        (lambda e: e | {"strength": True}, "bad_type:strength"),
        (lambda e: e | {"price": 2.5}, "bad_type:price"),
        (lambda e: e | {"price": 2**31}, "bad_type:price"),
        (lambda e: e | {"username": 7}, "bad_type:username"),
        (lambda e: e | {"timestamp": 1764686194}, "bad_type:timestamp"),
        (lambda e: e | {"timestamp": "yesterday"}, "bad_timestamp"),
        (lambda e: e | {"timestamp": "2026-12-02T14:36:34"}, "bad_timestamp"),
        (lambda e: e | {"timestamp": "2026-12-02T14:36Z"}, "bad_timestamp"),
        (lambda e: e | {"timestamp": "2026-12-02T24:00:00Z"}, "bad_timestamp"),
        (lambda e: e | {"timestamp": "2026-02-29T14:36:34Z"}, "bad_timestamp"),
        (lambda e: e | {"timestamp": "0001-01-01T00:30:00+01:00"}, "bad_timestamp"),
    ],
)
def test_a_malformed_event_is_quarantined_with_its_reason(
    change: Any, reason: str
) -> None:
    assert reason_for(change(sample_event("purchase"))) == reason


def test_fields_no_table_has_are_ignored() -> None:
    event = sample_event("default") | {"debug": True}
    table, row = parsed(encode(event))
    assert table == "visits"
    assert "debug" not in row


def test_a_batch_of_lines_is_parsed_in_its_order() -> None:
    events = one_of_each()
    raws = [b"{oops", *(encode(event) for event in events), b"[]"]
    sources = [f"segment.jsonl:{number}" for number in range(1, len(raws) + 1)]
    lines = pa.table([raws, sources, [False] * len(raws)], schema=LINES)

    rows = parse_lines(lines).to_pylist()

    assert [row[TABLE] for row in rows] == [
        "quarantine",
        *(TABLE_OF[event["event_type"]] for event in events),
        "quarantine",
    ]
    assert [row["event_id"] for row in rows[1:-1]] == [e["event_id"] for e in events]
    assert [rows[0]["source"], rows[-1]["source"]] == [sources[0], sources[-1]]
