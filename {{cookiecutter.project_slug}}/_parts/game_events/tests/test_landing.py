"""Landing with DuckDB: typed tables, idempotence, quarantine, streaming, Kafka."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from pathlib import Path

import pytest
from lake_samples import (
    KAFKA,
    expected_schema,
    kafka_settings,
    lake_rows,
    lake_schema,
    make_settings,
    one_of_each,
    produce,
    sample_event,
    stream_lands_new_events_until_ctrl_c,
    write_events,
    write_segment,
)

from {{ cookiecutter.project_slug }} import landing
from {{ cookiecutter.project_slug }}.errors import (
    BrokerError,
    InputError,
    LandingError,
)
from {{ cookiecutter.project_slug }}.events import encode
from {{ cookiecutter.project_slug }}.landing import land
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

needs_kafka = pytest.mark.skipif(
    not KAFKA, reason="needs KAFKA_BOOTSTRAP_SERVERS: a running Kafka broker"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def test_each_event_lands_in_its_table_with_typed_columns(settings: Settings) -> None:
    events = one_of_each()
    write_events(settings.events_dir, events)

    report = land(settings, progress=None)

    assert report.landed == {
        "visits": 1,
        "accounts": 2,
        "purchases": 2,
        "guild_events": 3,
    }
    assert report.duplicates == report.quarantined == 0
    for table in report.landed:
        assert lake_schema(settings.lake_dir, table) == expected_schema(table)
    (sword, bazooka) = sorted(
        lake_rows(settings.lake_dir, "purchases"), key=lambda row: row["price"] is None
    )
    assert (sword["item_type"], sword["strength"], sword["price"]) == ("sword", 12, 40)
    assert (bazooka["success"], bazooka["reason"]) == (False, "unknown_item")


def test_landing_twice_adds_nothing(settings: Settings) -> None:
    write_events(settings.events_dir, one_of_each())
    land(settings, progress=None)
    before = lake_rows(settings.lake_dir, "guild_events")

    again = land(settings, progress=None)

    assert sum(again.landed.values()) == again.duplicates == 0
    assert lake_rows(settings.lake_dir, "guild_events") == before


def test_an_event_delivered_twice_lands_once(settings: Settings) -> None:
    event, other = sample_event("login"), sample_event("signup")
    write_events(settings.events_dir, [event, event, other])
    first = land(settings, progress=None)
    write_events(settings.events_dir, [other, event])

    second = land(settings, progress=None)

    assert (first.landed["accounts"], first.duplicates) == (2, 1)
    assert (second.landed["accounts"], second.duplicates) == (0, 2)
    landed = [row["event_id"] for row in lake_rows(settings.lake_dir, "accounts")]
    assert sorted(landed) == sorted([event["event_id"], other["event_id"]])


def test_of_two_events_with_one_id_the_first_lands(settings: Settings) -> None:
    first = sample_event("login")
    second = first | {"username": "mallory"}
    write_events(settings.events_dir, [first, second])

    report = land(settings, progress=None)

    assert (report.landed["accounts"], report.duplicates) == (1, 1)
    (row,) = lake_rows(settings.lake_dir, "accounts")
    assert row["username"] == "ada"


def test_a_crash_before_the_state_is_written_relands_nothing_twice(
    settings: Settings,
) -> None:
    write_events(settings.events_dir, one_of_each())
    write_segment(settings.events_dir, [b"not json"])
    land(settings, progress=None)
    (landing.state_dir(settings) / "event_log.json").unlink()

    again = land(settings, progress=None)

    assert sum(again.landed.values()) == again.quarantined == 0
    assert again.duplicates == len(one_of_each()) + 1
    assert len(lake_rows(settings.lake_dir, "quarantine")) == 1


def test_malformed_events_are_quarantined_never_dropped(settings: Settings) -> None:
    good = sample_event("default")
    bad = encode(sample_event("purchase") | {"price": "free"})
    segment = write_segment(
        settings.events_dir, [b"{oops", encode(good), b"[]", bad], torn=b'{"ev'
    )

    report = land(settings, progress=None)

    assert (report.landed["visits"], report.quarantined) == (1, 4)
    quarantined = {
        row["source"]: (row["reason"], row["raw"])
        for row in lake_rows(settings.lake_dir, "quarantine")
    }
    assert quarantined == {
        f"{segment.name}:1": ("not_json", "{oops"),
        f"{segment.name}:3": ("not_an_object", "[]"),
        f"{segment.name}:4": ("bad_type:price", bad.decode()),
        f"{segment.name}:5": ("torn_line", '{"ev'),
    }
    assert lake_schema(settings.lake_dir, "quarantine") == expected_schema("quarantine")


def test_a_long_landing_shows_a_progress_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(landing, "PROGRESS_INTERVAL", 0)
    monkeypatch.setattr(landing, "BATCH_BYTES", 1)  # one batch per segment
    for _ in range(3):
        write_events(settings.events_dir, [sample_event("default")])
    progress = io.StringIO()

    report = land(settings, progress=progress)

    assert report.landed["visits"] == 3
    assert progress.getvalue().endswith("\r")
    *updates, erased = progress.getvalue().split("\r")[1:-1]
    assert updates[-1] == f"landing: {report.summary()}"
    assert erased == " " * len(updates[-1])
    assert report.summary().startswith("landed 3 rows (visits 3, accounts 0,")


def test_nothing_to_land_is_not_an_error(settings: Settings) -> None:
    report = land(settings, progress=None)
    assert sum(report.landed.values()) == report.quarantined == 0


def test_one_landing_at_a_time(settings: Settings) -> None:
    write_events(settings.events_dir, [sample_event("default")])
    with (
        landing.only_landing(settings),
        pytest.raises(LandingError, match="another landing is running"),
    ):
        land(settings, progress=None)
    assert land(settings, progress=None).landed["visits"] == 1


def test_an_unknown_engine_is_refused(settings: Settings) -> None:
    with pytest.raises(InputError, match="unknown engine 'hive'"):
        land(settings, engine="hive")


def test_streaming_lands_new_events_and_restarts_where_it_stopped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(landing, "STREAM_INTERVAL", 0.05)
    stream_lands_new_events_until_ctrl_c(settings, land)


def test_an_unreachable_broker_is_one_clear_error(
    settings: Settings, unused_tcp_port: int
) -> None:
    kafka = replace(settings, kafka_bootstrap_servers=f"127.0.0.1:{unused_tcp_port}")
    with pytest.raises(BrokerError, match=r"cannot reach Kafka at 127\.0\.0\.1"):
        land(kafka, progress=None)


@needs_kafka
def test_landing_from_kafka_lands_each_message_once(tmp_path: Path) -> None:
    settings = kafka_settings(tmp_path)
    events = one_of_each()
    values = [encode(event) for event in events]
    refused = [encode(sample_event("purchase"))]
    asyncio.run(produce(settings, [*values, values[0], b"not json"], aborted=refused))

    first = land(settings, progress=None)
    again = land(settings, progress=None)
    newest = sample_event("default")
    asyncio.run(produce(settings, [encode(newest)]))
    last = land(settings, progress=None)

    assert sum(first.landed.values()) == len(events)
    assert (first.duplicates, first.quarantined) == (1, 1)
    assert sum(again.landed.values()) == again.duplicates == 0
    assert (sum(last.landed.values()), last.landed["visits"]) == (1, 1)
    (bad,) = lake_rows(settings.lake_dir, "quarantine")
    assert bad["source"].startswith(f"{settings.kafka_topic}-")
    assert bad["reason"] == "not_json"


@needs_kafka
def test_a_missing_topic_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="has no topic"):
        land(kafka_settings(tmp_path), progress=None)
