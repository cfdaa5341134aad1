"""Random web-log events: what an event is, and how to make many of them cheaply.

`LogEvent` keeps the course's interface. Its fields are the one list of what an event
holds: the stored document, its fast JSON and the index mapping are all made from it.
`EventFactory` does the drawing: it parses a timestamp mask once and precomputes
everything the mask allows, so producing an event costs a handful of `random()` calls
and one string format. At ingestion speed the generator, not the network, is the
floor, so this matters.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
import os
import random
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any, ClassVar

ANY = "?"
DEFAULT_MASK = "todayT?:?:?"
YEARS_BACK = 5  # a random year is drawn from this year and the 5 before it

Mask = dict[str, int | str]

_MASK = re.compile(
    r"""^(?:today|(?P<y>[^-T ]+)-(?P<m>[^-T ]+)-(?P<d>[^-T ]+))
        [T ]
        (?:now|(?P<H>[^: ]+):(?P<M>[^: ]+):(?P<S>[^: ]+))$""",
    re.VERBOSE,
)
# (key, name, digits allowed, lowest, highest)
_PARTS = (
    ("y", "year", (4,), 1, 9999),
    ("m", "month", (1, 2), 1, 12),
    ("d", "day", (1, 2), 1, 31),
    ("H", "hour", (1, 2), 0, 23),
    ("M", "minute", (1, 2), 0, 59),
    ("S", "second", (1, 2), 0, 59),
)


@dataclasses.dataclass  # no slots: the course's code reads vars(event)
class LogEvent:
    """One web-server log event, with the field names the index mapping uses."""

    countries: ClassVar = ["VI", "EG", "US", "UK", "CN", "CA", "DE", "MX", "FR", "BR"]
    browsers: ClassVar = ["Chrome", "Safari", "IE", "Firefox", "Edge"]
    os: ClassVar = ["Mac", "Android", "Linux", "IOS", "windows"]
    resp_codes: ClassVar = [501, 100, 200, 201, 303, 411, 403, 406, 507, 208, 426]
    logged: ClassVar[int] = 0  # events stored so far, by any path

    # The fields, in the order of the stored document; each one's metadata is its
    # mapping in the index.
    logID: str = dataclasses.field(metadata={"type": "text"})
    eventTime: str = dataclasses.field(metadata={"type": "date"})
    url: str = dataclasses.field(metadata={"type": "keyword"})
    ua_country: str = dataclasses.field(metadata={"type": "keyword"})
    userId: str = dataclasses.field(metadata={"type": "text"})
    browser: str = dataclasses.field(metadata={"type": "keyword"})
    ua_os: str = dataclasses.field(metadata={"type": "text"})
    responseCode: int = dataclasses.field(metadata={"type": "integer"})
    ttfb: float = dataclasses.field(metadata={"type": "float"})
    location: dict[str, float] = dataclasses.field(metadata={"type": "geo_point"})

    def as_dict(self) -> dict[str, Any]:
        """The event as the JSON document stored in Elasticsearch (a copy)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))

    async def log(self, logger: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
        """Store the event through `logger`; count it only once the logger succeeded."""
        response = await logger(self.as_dict())
        LogEvent.logged += 1
        return response

    @staticmethod
    def ParseTimestampMask(ts_str: str) -> Mask:
        """Parse `Y-M-D<T or space>H:M:S`; each part a number or `?`, `today`, `now`.

        Returns {"y", "m", "d", "H", "M", "S"} -> int or "?". `today` and `now` are
        resolved to numbers here. Raises ValueError naming the part that is wrong.
        """
        return parse_timestamp_mask(ts_str)

    @staticmethod
    def CreateTimestamp(mask: Mapping[str, int | str]) -> str:
        """A `YYYY-MM-DDTHH:MM:SS` string, uniform over the times the mask allows."""
        return _TimestampSampler.for_mask(mask).sample(random.random)

    @staticmethod
    def random_event(
        ts_mask: str | Mapping[str, int | str] = DEFAULT_MASK,
        rng: random.Random | None = None,
    ) -> LogEvent:
        """One random event; use EventFactory directly to make many."""
        return EventFactory(ts_mask, rng).event()


def parse_timestamp_mask(ts_str: str, now: dt.datetime | None = None) -> Mask:
    """See LogEvent.ParseTimestampMask; `now` is injectable for tests."""
    match = _MASK.match(ts_str.strip()) if isinstance(ts_str, str) else None
    if match is None:
        raise ValueError(
            f"timestamp mask {ts_str!r} is malformed: use Y-M-D, then T or a space, "
            "then H:M:S, where any part may be ?, the date may be 'today' and the "
            "time 'now' (for example todayT?:?:? or 2020-?-? 12:?:?)"
        )
    now = now or dt.datetime.now()
    resolved = {"y": now.year, "m": now.month, "d": now.day}
    resolved |= {"H": now.hour, "M": now.minute, "S": now.second}
    mask: Mask = {}
    for key, name, digits, low, high in _PARTS:
        text = match[key]
        if text is None:  # 'today' or 'now'
            mask[key] = resolved[key]
        elif text == ANY:
            mask[key] = ANY
        elif text.isascii() and text.isdigit() and len(text) in digits:
            value = int(text)
            if not low <= value <= high:
                raise ValueError(
                    f"{name} {value} is out of range {low}-{high} "
                    f"in timestamp mask {ts_str!r}"
                )
            mask[key] = value
        else:
            shape = "4 digits" if digits == (4,) else "1 or 2 digits"
            raise ValueError(
                f"{name} {text!r} in timestamp mask {ts_str!r} must be {shape} or ?"
            )
    _TimestampSampler.for_mask(mask)  # rejects masks no real date matches (2021-02-30)
    return mask


class _TimestampSampler:
    """Every date a mask allows, listed once, so drawing one is uniform and O(1)."""

    _TWO_DIGITS: ClassVar[list[str]] = [f"{n:02d}" for n in range(60)]

    def __init__(self, mask: tuple[int | str, ...]) -> None:
        year, month, day, hour, minute, second = mask
        self.dates = _matching_dates(year, month, day)
        if not self.dates:
            shown = "-".join(_two_digits(part) for part in (year, month, day))
            years = _years(ANY)
            raise ValueError(
                f"no real date matches {shown} in the timestamp mask"
                + (f" (a random year is {years[0]}-{years[-1]})" if year == ANY else "")
            )
        self.hours = self._values(hour, 24)
        self.minutes = self._values(minute, 60)
        self.seconds = self._values(second, 60)

    @classmethod
    def for_mask(cls, mask: Mapping[str, int | str]) -> _TimestampSampler:
        return _sampler(tuple(mask[key] for key, *_ in _PARTS))

    @classmethod
    def _values(cls, part: int | str, count: int) -> list[str]:
        return cls._TWO_DIGITS[:count] if part == ANY else [cls._TWO_DIGITS[int(part)]]

    def sample(self, random: Callable[[], float]) -> str:
        date = self.dates[int(random() * len(self.dates))]
        hour = self.hours[int(random() * len(self.hours))]
        minute = self.minutes[int(random() * len(self.minutes))]
        second = self.seconds[int(random() * len(self.seconds))]
        return f"{date}T{hour}:{minute}:{second}"


@lru_cache(maxsize=64)
def _sampler(mask: tuple[int | str, ...]) -> _TimestampSampler:
    return _TimestampSampler(mask)


def _two_digits(part: int | str) -> str:
    return ANY if part == ANY else f"{int(part):02d}"


def _years(year: int | str) -> range:
    if year == ANY:
        this_year = dt.date.today().year
        return range(this_year - YEARS_BACK, this_year + 1)
    return range(int(year), int(year) + 1)


def _matching_dates(year: int | str, month: int | str, day: int | str) -> list[str]:
    dates = []
    for y in _years(year):
        for m in range(1, 13) if month == ANY else (int(month),):
            last_day = calendar.monthrange(y, m)[1]
            days = range(1, last_day + 1) if day == ANY else (int(day),)
            dates.extend(f"{y:04d}-{m:02d}-{d:02d}" for d in days if d <= last_day)
    return dates


FIELDS = dataclasses.fields(LogEvent)
# The index mapping of the events (ElasticLogger.schema holds it).
MAPPINGS = {"properties": {field.name: dict(field.metadata) for field in FIELDS}}

# The stored JSON of an event, for values this module drew itself: none of them needs
# escaping, so %-formatting gives exactly what json.dumps would, several times faster.
# Floats use repr(), as json.dumps does.
_JSON_FORMATS = {
    "text": '"%s"',
    "keyword": '"%s"',
    "date": '"%s"',
    "integer": "%d",
    "float": "%r",
    "geo_point": '{"lat":%r,"lon":%r}',
}
_DOCUMENT = (
    "{"
    + ",".join(f'"{f.name}":{_JSON_FORMATS[f.metadata["type"]]}' for f in FIELDS)
    + "}"
)


class EventFactory:
    """Draws random events for one timestamp mask.

    The distributions: uniform choice from LogEvent's lists; url ?url=000..015 and
    user001..user015 uniform; ttfb uniform in [0.4, 10.6] rounded to 2 places; latitude
    uniform in [-90, 90] and longitude in [-180, 180], rounded to 5 places; the time
    uniform over what the mask allows; logID a random (version 4) UUID.
    """

    urls: ClassVar[list[str]] = [f"http://example.com/?url={n:03d}" for n in range(16)]
    users: ClassVar[list[str]] = [f"user{n:03d}" for n in range(1, 16)]

    def __init__(
        self,
        ts_mask: str | Mapping[str, int | str] = DEFAULT_MASK,
        rng: random.Random | None = None,
    ) -> None:
        mask = parse_timestamp_mask(ts_mask) if isinstance(ts_mask, str) else ts_mask
        self._timestamps = _TimestampSampler.for_mask(mask)
        self._random = (rng or random.Random()).random
        self._ids = _uuid4_strings()
        self._choices = (
            tuple(LogEvent.countries),
            tuple(LogEvent.browsers),
            tuple(LogEvent.os),
            tuple(LogEvent.resp_codes),
        )

    def draw(self) -> tuple[Any, ...]:
        """The values of one event, in the order of LogEvent's fields; location is
        the last two (lat, lon)."""
        r = self._random
        countries, browsers, systems, codes = self._choices
        urls, users = self.urls, self.users
        return (
            next(self._ids),
            self._timestamps.sample(r),
            urls[int(r() * len(urls))],
            countries[int(r() * len(countries))],
            users[int(r() * len(users))],
            browsers[int(r() * len(browsers))],
            systems[int(r() * len(systems))],
            codes[int(r() * len(codes))],
            round(0.4 + 10.2 * r(), 2),
            round(-90.0 + 180.0 * r(), 5),
            round(-180.0 + 360.0 * r(), 5),
        )

    def event(self) -> LogEvent:
        *fields, lat, lon = self.draw()
        return LogEvent(*fields, location={"lat": lat, "lon": lon})

    def documents(self, count: int) -> list[tuple[str, str]]:
        """`count` new events as (logID, JSON document) pairs, ready for a bulk body."""
        draws = (self.draw() for _ in range(count))
        return [(values[0], _DOCUMENT % values) for values in draws]


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid4_strings(chunk: int = 256) -> Iterator[str]:
    """Random UUID4 strings, as uuid.uuid4() makes, reading os.urandom in chunks."""
    while True:
        hexdigits = os.urandom(16 * chunk).hex()
        for start in range(0, len(hexdigits), 32):
            h = hexdigits[start : start + 32]
            yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
