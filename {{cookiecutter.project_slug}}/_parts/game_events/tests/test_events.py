"""What an event is: its fields, in order, and its encoding."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.project_slug }}.events import (
    COMMON_FIELDS,
    TYPE_FIELDS,
    encode,
    make_event,
    timestamp,
)

COMMON = {
    "success": True,
    "reason": None,
    "username": "ana",
    "host": "h",
    "user_agent": "u",
}


@pytest.mark.parametrize("event_type", sorted(TYPE_FIELDS))
def test_events_have_the_common_fields_then_their_own_in_order(event_type):
    event = make_event(event_type, **COMMON)
    assert list(event) == [*COMMON_FIELDS, *TYPE_FIELDS[event_type]]
    assert uuid.UUID(event["event_id"]).version == 4
    assert all(event[name] is None for name in TYPE_FIELDS[event_type])


def test_the_type_fields_are_the_contracts():
    assert TYPE_FIELDS == {
        "default": (),
        "signup": (),
        "login": (),
        "purchase": ("item_type", "quality", "strength", "price"),
        "join_guild": ("guild_name",),
        "declare_war": ("guild_name", "target"),
        "declare_peace": ("guild_name", "target"),
    }


def test_an_unknown_field_is_a_bug_refused_at_once():
    with pytest.raises(ValueError, match="no fields"):
        make_event("signup", **COMMON, fields={"password": "x"})


def test_timestamps_are_utc_with_microseconds_and_z():
    moment = datetime(
        2026, 12, 2, 15, 36, 34, 123456, tzinfo=timezone(timedelta(hours=1))
    )
    assert timestamp(moment) == "2026-12-02T14:36:34.123456Z"
    assert timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


def test_encode_is_compact_utf8_json_without_a_newline():
    event = make_event("join_guild", **COMMON, fields={"guild_name": "Ørn"})
    line = encode(event)
    assert b"\n" not in line
    assert b", " not in line
    assert "Ørn".encode() in line
    assert json.loads(line) == event


@given(st.text(), st.text())
def test_any_text_survives_encoding(guild, agent):
    event = make_event(
        "join_guild", **{**COMMON, "user_agent": agent}, fields={"guild_name": guild}
    )
    encoded = encode(event)
    assert b"\n" not in encoded
    assert json.loads(encoded.decode()) == event
