"""LogEvent: timestamp masks, timestamps, and the fields of random events."""

import asyncio
import datetime as dt
import json
import random
import re
import uuid
from collections import Counter

import pytest

from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)
from {{ cookiecutter.project_slug }}.log_event import (
    FIELDS,
    MAPPINGS,
    EventFactory,
    LogEvent,
    parse_timestamp_mask,
)

# The course's index mapping: field -> Elasticsearch type.
COURSE_MAPPING = {
    "browser": "keyword",
    "eventTime": "date",
    "logID": "text",
    "responseCode": "integer",
    "ttfb": "float",
    "ua_country": "keyword",
    "ua_os": "text",
    "url": "keyword",
    "userId": "text",
    "location": "geo_point",
}
# The JSON value that each of those types is given by an event.
JSON_TYPES = {"keyword": str, "text": str, "date": str, "integer": int, "float": float}
JSON_TYPES |= {"geo_point": dict}
NOW = dt.datetime(2024, 2, 29, 13, 14, 15)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
THIS_YEAR = dt.date.today().year


@pytest.mark.parametrize(
    ("mask", "parsed"),
    [
        ("todayT?:?:?", dict(y=2024, m=2, d=29, H="?", M="?", S="?")),
        ("today ?:?:?", dict(y=2024, m=2, d=29, H="?", M="?", S="?")),
        ("todayTnow", dict(y=2024, m=2, d=29, H=13, M=14, S=15)),
        ("today now", dict(y=2024, m=2, d=29, H=13, M=14, S=15)),
        ("?-?-?T?:?:?", dict(y="?", m="?", d="?", H="?", M="?", S="?")),
        ("2020-01-15T12:30:45", dict(y=2020, m=1, d=15, H=12, M=30, S=45)),
        ("2020-1-5 3:4:5", dict(y=2020, m=1, d=5, H=3, M=4, S=5)),
        ("2020-?-31T?:00:59", dict(y=2020, m="?", d=31, H="?", M=0, S=59)),
        ("?-12-?Tnow", dict(y="?", m=12, d="?", H=13, M=14, S=15)),
        ("2024-02-29T00:00:00", dict(y=2024, m=2, d=29, H=0, M=0, S=0)),
        ("2020-12-31T23:59:59", dict(y=2020, m=12, d=31, H=23, M=59, S=59)),
        ("  2020-01-01T00:00:00\n", dict(y=2020, m=1, d=1, H=0, M=0, S=0)),
    ],
)
def test_every_mask_form_parses(mask, parsed):
    assert parse_timestamp_mask(mask, now=NOW) == parsed


def test_parse_timestamp_mask_resolves_today_and_now_to_the_current_time():
    before = dt.datetime.now()
    parsed = LogEvent.ParseTimestampMask("todayTnow")
    stamp = dt.datetime(*(parsed[k] for k in "ymdHMS"))
    assert before.replace(microsecond=0) <= stamp <= dt.datetime.now()


@pytest.mark.parametrize(
    ("mask", "complaint"),
    [
        ("", "malformed"),
        ("garbage", "malformed"),
        ("2020-01-01", "malformed"),
        ("2020-01-01T", "malformed"),
        ("2020-01-01T00:00", "malformed"),
        ("2020-01-01X00:00:00", "malformed"),
        ("2020-01-01T00:00:00Z", "second '00Z'"),
        ("2020/01/01T00:00:00", "malformed"),
        ("nowT?:?:?", "malformed"),
        ("todayTtoday", "malformed"),
        ("2020-01-01T00:00:00:00", "malformed"),
        ("2020-13-01T00:00:00", "month 13 is out of range 1-12"),
        ("2020-00-01T00:00:00", "month 0 is out of range 1-12"),
        ("2020-01-32T00:00:00", "day 32 is out of range 1-31"),
        ("2020-01-00T00:00:00", "day 0 is out of range 1-31"),
        ("2020-01-01T24:00:00", "hour 24 is out of range 0-23"),
        ("2020-01-01T00:60:00", "minute 60 is out of range 0-59"),
        ("2020-01-01T00:00:60", "second 60 is out of range 0-59"),
        ("20-01-01T00:00:00", "year '20'"),
        ("02020-01-01T00:00:00", "year '02020'"),
        ("2020-001-01T00:00:00", "month '001'"),
        ("2020-01-1a T00:00:00", "day '1a'"),
        ("2020-x-01T00:00:00", "month 'x'"),
        ("2020-01-01T-1:00:00", "hour '-1'"),
        ("\uff12\uff10\uff12\uff10-01-01T00:00:00", "year"),  # full-width digits
        ("2020-01-01T??:00:00", "hour '??'"),
        ("2021-02-29T00:00:00", "no real date matches 2021-02-29"),
        ("2020-04-31T00:00:00", "no real date matches 2020-04-31"),
        ("?-02-30T00:00:00", "no real date matches ?-02-30 in the timestamp mask (a"),
    ],
)
def test_every_invalid_mask_is_refused_saying_what_is_wrong(mask, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        LogEvent.ParseTimestampMask(mask)


def test_a_mask_that_is_not_text_is_refused():
    with pytest.raises(ValueError, match="malformed"):
        LogEvent.ParseTimestampMask(None)


def draws(mask, count=5000):
    parsed = LogEvent.ParseTimestampMask(mask)
    return [LogEvent.CreateTimestamp(parsed) for _ in range(count)]


def test_timestamps_are_always_valid_dates_across_many_draws():
    for stamp in draws("?-?-?T?:?:?", 20000):
        assert TIMESTAMP.fullmatch(stamp)
        parsed = dt.datetime.fromisoformat(stamp)
        assert THIS_YEAR - 5 <= parsed.year <= THIS_YEAR


def test_random_dates_cover_every_month_day_and_year_uniformly():
    stamps = draws("?-?-?T00:00:00", 40000)
    months = Counter(stamp[5:7] for stamp in stamps)
    years = Counter(stamp[:4] for stamp in stamps)
    assert len(months) == 12
    assert {int(y) for y in years} == set(range(THIS_YEAR - 5, THIS_YEAR + 1))
    # uniform over dates: the 31st exists in 7 months of 12, so ~7/365 of draws
    thirty_firsts = sum(stamp[8:10] == "31" for stamp in stamps)
    assert 0.013 < thirty_firsts / len(stamps) < 0.025


def test_a_fixed_day_only_lands_in_months_that_have_it():
    months = {stamp[5:7] for stamp in draws("2023-?-31T?:?:?")}
    assert months == {"01", "03", "05", "07", "08", "10", "12"}


def test_february_29th_with_a_random_year_only_lands_in_leap_years():
    for stamp in draws("?-02-29T?:?:?", 500):
        assert dt.date.fromisoformat(stamp[:10]).month == 2


def test_fixed_parts_are_kept_and_random_parts_vary():
    stamps = draws("2021-06-?T12:?:30", 3000)
    assert all(s.startswith("2021-06-") and s[11:13] == "12" for s in stamps)
    assert all(s.endswith(":30") for s in stamps)
    assert len({s[8:10] for s in stamps}) == 30
    assert len({s[14:16] for s in stamps}) == 60


def test_today_keeps_today_and_random_time_covers_the_day():
    stamps = draws("todayT?:?:?", 20000)
    assert {s[:10] for s in stamps} == {dt.date.today().isoformat()}
    assert len({s[11:13] for s in stamps}) == 24


EVENTS = [LogEvent.random_event("?-?-?T?:?:?") for _ in range(3000)]


def test_log_ids_are_distinct_uuid4_strings():
    for event in EVENTS:
        parsed = uuid.UUID(event.logID)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == event.logID
    assert len({event.logID for event in EVENTS}) == len(EVENTS)


def test_every_field_is_in_range():
    for event in EVENTS:
        assert TIMESTAMP.fullmatch(event.eventTime)
        assert re.fullmatch(r"http://example\.com/\?url=0(0\d|1[0-5])", event.url)
        assert re.fullmatch(r"user0(0[1-9]|1[0-5])", event.userId)
        assert event.ua_country in LogEvent.countries
        assert event.browser in LogEvent.browsers
        assert event.ua_os in LogEvent.os
        assert event.responseCode in LogEvent.resp_codes
        assert isinstance(event.responseCode, int)
        assert 0.4 <= event.ttfb <= 10.6
        assert event.ttfb == round(event.ttfb, 2)
        assert set(event.location) == {"lat", "lon"}
        assert -90 <= event.location["lat"] <= 90
        assert -180 <= event.location["lon"] <= 180
        for value in event.location.values():
            assert value == round(value, 5)


def test_every_choice_is_drawn():
    assert {e.url[-3:] for e in EVENTS} == {f"{n:03d}" for n in range(16)}
    assert {e.userId for e in EVENTS} == {f"user{n:03d}" for n in range(1, 16)}
    assert {e.ua_country for e in EVENTS} == set(LogEvent.countries)
    assert {e.browser for e in EVENTS} == set(LogEvent.browsers)
    assert {e.ua_os for e in EVENTS} == set(LogEvent.os)
    assert {e.responseCode for e in EVENTS} == set(LogEvent.resp_codes)


def test_the_fast_documents_are_exactly_the_events_as_json():
    """EventFactory.documents formats JSON itself: it must equal json.dumps."""
    seeded = EventFactory("?-?-?T?:?:?", random.Random(7)).documents(2000)
    same_seed = EventFactory("?-?-?T?:?:?", random.Random(7))
    for doc_id, source in seeded:
        event = same_seed.event()
        document = json.loads(source)
        assert document["logID"] == doc_id
        event.logID = doc_id  # ids come from the OS, not the seeded generator
        assert document == event.as_dict()
        assert source == event.to_json()


def test_events_are_json_documents_with_the_mapping_fields():
    event = EVENTS[0]
    assert json.loads(event.to_json()) == event.as_dict()
    assert list(event.as_dict()) == [
        "logID",
        "eventTime",
        "url",
        "ua_country",
        "userId",
        "browser",
        "ua_os",
        "responseCode",
        "ttfb",
        "location",
    ]


def test_the_index_mapping_is_the_course_s():
    properties = {name: {"type": type_} for name, type_ in COURSE_MAPPING.items()}
    assert ElasticLogger.schema == {"mappings": {"properties": properties}}


def test_documents_events_and_the_mapping_have_the_same_fields_in_the_same_order():
    names = [field.name for field in FIELDS]
    ((_, source),) = EventFactory().documents(1)
    assert list(json.loads(source)) == names
    assert list(EVENTS[0].as_dict()) == names
    assert list(MAPPINGS["properties"]) == names
    assert ElasticLogger.schema["mappings"] == MAPPINGS


def test_every_stored_value_is_the_json_its_mapped_type_expects():
    properties = MAPPINGS["properties"]
    for _, source in EventFactory("?-?-?T?:?:?").documents(500):
        for name, value in json.loads(source).items():
            assert isinstance(value, JSON_TYPES[properties[name]["type"]]), name


def test_vars_of_an_event_are_its_ten_fields_as_the_course_reads_them():
    event = EVENTS[3]
    assert vars(event) == event.__dict__ == event.as_dict()
    assert len(vars(event)) == 10


def test_vars_of_a_random_event_hold_its_ten_fields_and_their_values():
    event = LogEvent.random_event("2021-03-?T12:?:?")

    fields = vars(event)

    assert list(fields) == [field.name for field in FIELDS]
    assert len(fields) == 10
    assert fields == {name: getattr(event, name) for name in fields}
    assert fields is event.__dict__  # the event's own attributes, not a copy
    event.browser = "Edge"
    assert vars(event)["browser"] == "Edge"
    assert json.loads(json.dumps(event.__dict__)) == event.as_dict()


def test_log_hands_the_event_to_the_logger_and_counts_it():
    received = []

    async def logger(document):
        received.append(document)
        return "answer"

    before = LogEvent.logged
    assert asyncio.run(EVENTS[1].log(logger)) == "answer"
    assert received == [EVENTS[1].as_dict()]
    assert LogEvent.logged == before + 1


def test_log_does_not_count_an_event_the_logger_failed_to_store():
    async def logger(document):
        raise OSError("no route")

    before = LogEvent.logged
    with pytest.raises(OSError, match="no route"):
        asyncio.run(EVENTS[2].log(logger))
    assert LogEvent.logged == before
