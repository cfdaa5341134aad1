"""An in-memory Elasticsearch 8 for tests: real HTTP, real routing, strict checks.

The project's tests must run without a network and without a cluster, yet they should
exercise the real client stack: the aiohttp connector, connection pooling, timeouts and
TLS.  Patching the client would test none of that, so this module serves HTTP on
127.0.0.1 and answers the way Elasticsearch 8 does, error bodies included.  It is strict
on purpose: what a real cluster rejects (a wrong header, a date in the wrong format, a
terms aggregation on a text field, a bulk body without its final newline) is rejected
here too, so code that passes against the fake also works against a cluster.

Write requests (``_bulk``, ``_doc``, ``_create``, ``_update``) can be made to fail on
purpose through :class:`FaultPlan` (HTTP errors, dropped connections, delays, rejected
bulk items) to test a client's retries and its accounting of what was stored.

Use it from tests::

    fake = FakeElasticsearch()
    with serving(fake) as url:
        ...  # talk to url with aiohttp
    assert fake.count("pset_x") == 10

or run it as a script (a local endpoint for trying the CLI, or a benchmark sink)::

    python tests/fake_elasticsearch.py --port 9200 --no-keep-sources
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import calendar
import collections
import contextlib
import copy
import dataclasses
import datetime as dt
import functools
import ipaddress
import json
import math
import random
import re
import secrets
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

# --------------------------------------------------------------------------------------
# Constants: what this "cluster" says about itself
# --------------------------------------------------------------------------------------


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


VERSION_NUMBER = "8.15.0"
NODE_NAME = "fake-node"
NODE_ID = "fAkEnOdE0000000000000w"
CLUSTER_NAME = "fake-elasticsearch"
PRIMARY_TERM = 1
# One primary per index and one replica that a single node cannot allocate: this is what
# a single-node cluster reports for every write.
WRITE_SHARDS = {"total": 2, "successful": 1, "failed": 0}
NOOP_SHARDS = {"total": 0, "successful": 0, "failed": 0}
MAX_RESULT_WINDOW = 10_000
MAX_BUCKETS = 65_536  # search.max_buckets
DEFAULT_TRACK_TOTAL_HITS = 10_000
MAX_ID_BYTES = 512
DEFAULT_MAX_CONTENT_LENGTH = 100 * 1024 * 1024  # http.max_content_length

FIELD_TYPES = words(
    """
    aggregate_metric_double alias binary boolean byte completion constant_keyword
    date date_nanos date_range dense_vector double double_range flattened float
    float_range geo_point geo_shape half_float histogram integer integer_range ip
    ip_range join keyword long long_range match_only_text murmur3 nested object
    percolator point rank_feature rank_features scaled_float search_as_you_type
    semantic_text shape short sparse_vector text token_count unsigned_long version
    wildcard
    """
)
# Parameters a field mapping may carry (the union over all types: enough to catch typos
# such as "tpye" without modelling every mapper).
FIELD_PARAMS = words(
    """
    analyzer boost coerce copy_to dims doc_values dynamic eager_global_ordinals
    element_type enabled fielddata fielddata_frequency_filter fields format
    ignore_above ignore_malformed ignore_z_value index index_options index_phrases
    index_prefixes locale max_input_length meta metrics default_metric normalizer norms
    null_value on_script_error orientation path position_increment_gap
    preserve_position_increments preserve_separators properties relations
    scaling_factor script search_analyzer search_quote_analyzer similarity
    split_queries_on_whitespace store subobjects term_vector time_series_dimension
    time_series_metric type value inference_id positive_score_impact
    """
)
ROOT_MAPPING_PARAMS = words(
    """
    properties dynamic date_detection numeric_detection dynamic_templates
    dynamic_date_formats _source _meta _routing runtime subobjects enabled
    _data_stream_timestamp _field_names
    """
)
KNOWN_SETTINGS = words(
    """
    index.number_of_shards index.number_of_replicas index.refresh_interval
    index.max_result_window index.max_inner_result_window index.codec
    index.auto_expand_replicas index.hidden index.default_pipeline index.final_pipeline
    index.priority index.number_of_routing_shards index.query.default_field
    index.write.wait_for_active_shards index.mode
    """
)
KNOWN_SETTING_PREFIXES = (
    "index.analysis.",
    "index.mapping.",
    "index.blocks.",
    "index.routing.",
    "index.lifecycle.",
    "index.sort.",
    "index.translog.",
    "index.search.",
    "index.indexing.",
    "index.merge.",
)
INTEGER_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({"float", "double", "half_float", "scaled_float"})
NUMERIC_TYPES = FLOAT_TYPES | INTEGER_RANGES.keys()
STRING_TYPES = frozenset(
    {
        "keyword",
        "constant_keyword",
        "wildcard",
        "version",
        "text",
        "match_only_text",
        "search_as_you_type",
    }
)
TEXT_TYPES = frozenset({"text", "match_only_text", "search_as_you_type"})
OBJECT_TYPES = frozenset({"object", "nested"})
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# --------------------------------------------------------------------------------------
# Errors: one helper builds every Elasticsearch-shaped error
# --------------------------------------------------------------------------------------


def cause(type_: str, reason: str, **extra: Any) -> dict[str, Any]:
    """One Elasticsearch error object: ``{"type", "reason", ...extra}``.

    Used both for whole-request errors (inside ``{"error": ..., "status": ...}``) and
    failed bulk items, which carry the same object without the wrapper.  Keys with dots
    (``resource.type``) are passed as ``**{"resource.type": ...}``.
    """
    return {"type": type_, "reason": reason, **extra}


class EsError(Exception):
    """An error answer, raised anywhere while a request is handled.

    ``error`` is a :func:`cause` dict (rendered with ``root_cause`` like Elasticsearch
    does) or a plain string for the few errors Elasticsearch reports as a bare string
    (unsupported Content-Type, unknown route).
    """

    def __init__(
        self,
        status: int,
        error: dict[str, Any] | str,
        *,
        root_cause: list[dict[str, Any]] | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if isinstance(error, dict):
            if root_cause is None:
                root_cause = [{k: v for k, v in error.items() if k != "caused_by"}]
            error = {"root_cause": root_cause, **error}
            message = f"{error['type']}: {error['reason']}"
        else:
            message = error
        super().__init__(f"[{status}] {message}")
        self.status = status
        self.body = {"error": error, "status": status}
        self.headers = list(headers)


def bad_request(type_: str, reason: str, **extra: Any) -> EsError:
    return EsError(400, cause(type_, reason, **extra))


def unsupported(what: str) -> EsError:
    """Something valid for Elasticsearch that this fake does not implement.

    Failing loudly beats silently ignoring it: a test must never pass because the fake
    skipped part of a request.
    """
    return bad_request("illegal_argument_exception", f"[fake elasticsearch] {what}")


def index_not_found(name: str) -> EsError:
    return EsError(
        404,
        cause(
            "index_not_found_exception",
            f"no such index [{name}]",
            **{"resource.type": "index_or_alias", "resource.id": name},
            index_uuid="_na_",
            index=name,
        ),
    )


def search_failure(index: str, reason: dict[str, Any]) -> EsError:
    """A query-time failure: Elasticsearch reports it as "all shards failed"."""
    return EsError(
        400,
        cause(
            "search_phase_execution_exception",
            "all shards failed",
            phase="query",
            grouped=True,
            failed_shards=[
                {"shard": 0, "index": index, "node": NODE_ID, "reason": reason}
            ],
            caused_by=reason,
        ),
        root_cause=[reason],
    )


class ItemFailure(Exception):
    """A failed write of one document: a bulk item error, or the answer of a
    single-document request."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error["reason"])
        self.status = status
        self.error = error


# --------------------------------------------------------------------------------------
# filter_path: one generic response filter (also used for _source filtering)
# --------------------------------------------------------------------------------------

_NOTHING = object()


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def wildcard_match(pattern: str, name: str) -> bool:
    """Elasticsearch wildcards: only ``*`` is special."""
    if "*" not in pattern:
        return pattern == name
    return _wildcard(pattern).fullmatch(name) is not None


State = tuple[str, ...]  # the segments of a path pattern still to be matched


@functools.lru_cache(maxsize=4096)
def _advance(states: tuple[State, ...], key: str) -> tuple[State, ...]:
    """The remaining path patterns once ``key`` has been matched by each of them.

    Cached: a bulk answer repeats the same few keys thousands of times."""
    remaining: list[State] = []
    for state in states:
        head, rest = state[0], state[1:]
        if head == "**":
            remaining.append(state)  # "**" swallows this key and may go on
            if not rest:
                remaining.append(())
            elif wildcard_match(rest[0], key):
                remaining.append(rest[1:])  # "**" matched nothing
        elif wildcard_match(head, key):
            remaining.append(rest)
    return tuple(remaining)


def _include(value: Any, states: tuple[State, ...]) -> Any:
    if () in states:
        return value  # a pattern is fully matched: keep the whole value
    if isinstance(value, dict):
        kept = {}
        for key, child in value.items():
            if (remaining := _advance(states, key)) and (
                filtered := _include(child, remaining)
            ) is not _NOTHING:
                kept[key] = filtered
        return kept or _NOTHING
    if isinstance(value, list):
        items = [f for item in value if (f := _include(item, states)) is not _NOTHING]
        return items or _NOTHING
    return _NOTHING


def _exclude(value: Any, states: tuple[State, ...]) -> Any:
    if isinstance(value, dict):
        kept = {}
        for key, child in value.items():
            remaining = _advance(states, key)
            if () not in remaining:
                kept[key] = _exclude(child, remaining) if remaining else child
        return kept
    if isinstance(value, list):
        return [_exclude(item, states) for item in value]
    return value


def filter_paths(value: Any, patterns: Iterable[str]) -> Any:
    """Elasticsearch's response filtering (the ``filter_path`` parameter).

    Each pattern is a dotted path; ``*`` inside a segment matches any characters, a
    ``**`` segment any number of levels, arrays are traversed transparently, and a
    leading ``-`` excludes instead of including.  Like Elasticsearch, objects and arrays
    left empty by the filter disappear (so ``items.*.error`` keeps only failed items).
    """
    includes: list[State] = []
    excludes: list[State] = []
    for pattern in patterns:
        if pattern := pattern.strip():
            target = excludes if pattern.startswith("-") else includes
            target.append(tuple(pattern.removeprefix("-").split(".")))
    if includes:
        value = _include(value, tuple(includes))
        if value is _NOTHING:
            return {}
    if excludes:
        value = _exclude(value, tuple(excludes))
    return value


# --------------------------------------------------------------------------------------
# Values: dates, numbers, geo points, text
# --------------------------------------------------------------------------------------

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})"
    r"(?:[.,](?P<fraction>\d{1,9}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)
_EPOCH_MILLIS = re.compile(r"-?\d+(?:\.\d+)?")
_ISO_FORMATS = {
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_optional_time_nanos",
}
_EPOCH_FORMATS = {"epoch_millis", "epoch_second"}
DEFAULT_DATE_FORMAT = "strict_date_optional_time||epoch_millis"


def _zone(text: str | None) -> dt.tzinfo:
    if text in (None, "Z"):
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_date(value: Any) -> int:
    """Epoch millis of a value in ``strict_date_optional_time||epoch_millis``.

    That is Elasticsearch's default date format: ``yyyy[-MM[-dd['T'HH[:mm[:ss[.S]]]
    [Z|+hh:mm]]]]`` or a number of milliseconds.  Raises ValueError otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(value)
        return int(value)
    if not isinstance(value, str):
        raise ValueError(value)
    if match := _DATE.fullmatch(value):
        parts = match.groupdict()
        fraction = (parts["fraction"] or "0").ljust(6, "0")[:6]
        moment = dt.datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=_zone(parts["zone"]),
        )
        return (moment - EPOCH) // dt.timedelta(milliseconds=1)
    if _EPOCH_MILLIS.fullmatch(value):
        return int(float(value))
    raise ValueError(value)


def format_date(millis: int) -> str:
    """How Elasticsearch prints a date key: ``2024-01-31T00:00:00.000Z``."""
    moment = EPOCH + dt.timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


_CALENDAR_UNITS = {
    "minute": "m",
    "1m": "m",
    "hour": "h",
    "1h": "h",
    "day": "d",
    "1d": "d",
    "week": "w",
    "1w": "w",
    "month": "M",
    "1M": "M",
    "quarter": "q",
    "1q": "q",
    "year": "y",
    "1y": "y",
}
_FIXED_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_MONTHS = {"y": 12, "q": 3, "M": 1}
_UNIT_MILLIS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "H": 3_600_000}
_UNIT_MILLIS |= {"m": 60_000, "s": 1000}


def floor_calendar(millis: int, unit: str) -> int:
    """Start (UTC) of the calendar unit (y q M w d h H m s) that contains ``millis``."""
    moment = EPOCH + dt.timedelta(milliseconds=millis)
    if unit in ("y", "q", "M"):
        month = {"y": 1, "q": 3 * ((moment.month - 1) // 3) + 1}.get(unit, moment.month)
        moment = dt.datetime(moment.year, month, 1, tzinfo=dt.UTC)
    elif unit in ("w", "d"):
        moment = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
        if unit == "w":
            moment -= dt.timedelta(days=moment.weekday())
    else:
        return millis - millis % _UNIT_MILLIS[unit]
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def add_calendar(millis: int, unit: str, amount: int) -> int:
    """``millis`` moved by ``amount`` calendar units (month ends are clamped)."""
    if unit in ("y", "q", "M"):
        moment = EPOCH + dt.timedelta(milliseconds=millis)
        months = moment.year * 12 + moment.month - 1 + amount * _MONTHS[unit]
        year, month = months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        moment = moment.replace(year=year, month=month, day=day)
        return (moment - EPOCH) // dt.timedelta(milliseconds=1)
    return millis + amount * _UNIT_MILLIS[unit]


_DATE_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def parse_date_math(value: Any, *, round_up: bool = False) -> int:
    """A date in a query: a date, ``now`` or ``<date>||``, then ``+1d``, ``/d``...

    ``round_up`` gives the last millisecond of a rounded unit, as Elasticsearch does for
    ``lte``/``gt`` bounds.
    """
    if not isinstance(value, str) or not (value.startswith("now") or "||" in value):
        return parse_date(value)
    if value.startswith("now"):
        millis, expression = int(time.time() * 1000), value[3:]
    else:
        anchor, expression = value.split("||", 1)
        millis = parse_date(anchor)
    position = 0
    while position < len(expression):
        if not (step := _DATE_MATH.match(expression, position)):
            raise ValueError(value)
        sign, amount, unit, rounding = step.groups()
        if rounding:
            millis = floor_calendar(millis, rounding)
            if round_up:
                millis = add_calendar(millis, rounding, 1) - 1
        else:
            millis = add_calendar(
                millis, unit, int(amount) * (-1 if sign == "-" else 1)
            )
        position = step.end()
    return millis


# What a failed conversion of a field value raises (a name, so the formatter keeps
# one form of `except` for every target Python).
UNPARSABLE = (ValueError, TypeError)


class BadValue(ValueError):
    """A value that a field mapping rejects; carries Elasticsearch's inner cause."""

    def __init__(self, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.cause = cause(type_, reason)


def _number(value: Any) -> float | int:
    """A JSON number, or a string holding one (Elasticsearch coerces those)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        token = "START_ARRAY" if isinstance(value, list) else "START_OBJECT"
        if isinstance(value, bool):
            token = "VALUE_TRUE" if value else "VALUE_FALSE"
        raise BadValue(
            "illegal_argument_exception",
            f"Current token ({token}) not numeric, can not use numeric value accessors",
        )
    if not isinstance(value, str):
        return value
    try:
        return int(value.strip())
    except ValueError:
        pass
    try:
        return float(value.strip())
    except ValueError:
        raise BadValue(
            "number_format_exception", f'For input string: "{value}"'
        ) from None


def coerce_integer(value: Any, type_: str) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not math.isfinite(number):
            raise BadValue(
                "illegal_argument_exception",
                f"[{type_}] supports only finite values, but got [{number}]",
            )
        number = int(number)  # Elasticsearch truncates (coerce defaults to true)
    low, high = INTEGER_RANGES[type_]
    if not low <= number <= high:
        raise BadValue(
            "illegal_argument_exception",
            f"Value [{number}] is out of range for "
            f"{'an' if type_ == 'integer' else 'a'} {type_}",
        )
    return number


def coerce_float(value: Any, type_: str) -> float:
    number = float(_number(value))
    if not math.isfinite(number):
        raise BadValue(
            "illegal_argument_exception",
            f"[{type_}] supports only finite values, but got [{number}]",
        )
    return number


def check_date(value: Any, date_format: str) -> None:
    """Raise BadValue unless ``value`` parses in the field's date ``format``.

    Only Elasticsearch's named ISO and epoch formats are checked; a custom Java pattern
    (``yyyy/MM/dd``) is not understood here, so such values are accepted unchecked.
    """
    formats = set(date_format.split("||"))
    if not formats <= _ISO_FORMATS | _EPOCH_FORMATS:
        return
    text = value if isinstance(value, str) else None
    with contextlib.suppress(ValueError, OverflowError):
        if text is not None and formats & _ISO_FORMATS and _DATE.fullmatch(text):
            parse_date(text)
            return
        numeric = text is None or _EPOCH_MILLIS.fullmatch(text)
        if formats & _EPOCH_FORMATS and numeric and not isinstance(value, bool):
            parse_date(value)
            return
    raise BadValue(
        "illegal_argument_exception",
        f"failed to parse date field [{preview(value)}] with format [{date_format}]",
    )


def coerce_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false", ""):
        return value == "true"
    raise BadValue(
        "illegal_argument_exception",
        f"Failed to parse value [{preview(value)}] as only [true] or [false] are "
        "allowed.",
    )


def _geo_number(value: Any, name: str) -> float:
    try:
        return float(_number(value))
    except BadValue:
        raise BadValue(
            "illegal_argument_exception", f"[{name}] must be a number"
        ) from None


def check_geo_point(value: Any, field: str) -> None:
    """Accept the forms Elasticsearch accepts: {"lat", "lon"}, "lat,lon", [lon, lat],
    WKT ``POINT (lon lat)``, GeoJSON, or a geohash; check the ranges."""
    if isinstance(value, dict):
        if str(value.get("type", "")).lower() == "point" and "coordinates" in value:
            lon, lat = (value["coordinates"] + [None, None])[:2]
        else:
            unknown = set(value) - {"lat", "lon"}
            if unknown:
                raise BadValue(
                    "parsing_exception", f"field [{sorted(unknown)[0]}] not supported"
                )
            for name in ("lat", "lon"):
                if name not in value:
                    raise BadValue("parsing_exception", f"field [{name}] missing")
            lat, lon = value["lat"], value["lon"]
    elif isinstance(value, list):
        if not 2 <= len(value) <= 3:
            raise BadValue(
                "parsing_exception",
                "[geo_point] field type does not accept > 3 dimensions",
            )
        lon, lat = value[0], value[1]
    elif isinstance(value, str):
        text = value.strip()
        if point := re.fullmatch(r"(?i)point\s*\(\s*(\S+)\s+(\S+)\s*\)", text):
            lon, lat = point.groups()
        elif "," in text:
            lat, _, lon = text.partition(",")
        elif re.fullmatch(r"[0-9b-hjkmnp-z]{1,12}", text):
            return  # a geohash
        else:
            raise BadValue(
                "illegal_argument_exception",
                f"unsupported symbol [{text[:1]}] in geohash",
            )
    else:
        raise BadValue("parsing_exception", "geo_point expected")
    lat, lon = _geo_number(lat, "lat"), _geo_number(lon, "lon")
    if not -90 <= lat <= 90:
        raise BadValue(
            "illegal_argument_exception", f"illegal latitude value [{lat}] for {field}"
        )
    if not -180 <= lon <= 180:
        raise BadValue(
            "illegal_argument_exception", f"illegal longitude value [{lon}] for {field}"
        )


def tokens(text: str) -> list[str]:
    """The standard analyzer, near enough: lower-cased runs of word characters."""
    return re.findall(r"\w+", text.lower())


def preview(value: Any) -> str:
    """A value as Elasticsearch quotes it in error messages (Java's toString)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={preview(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(preview(v) for v in value) + "]"
    return str(value)


def keyword_value(value: Any) -> str:
    """What a keyword field indexes for a JSON scalar (numbers and booleans coerce)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------
# Mappings
# --------------------------------------------------------------------------------------


class Field(NamedTuple):
    """A mapped field, flattened: its mapping and where its value lives in _source
    (a multi-field such as ``name.keyword`` reads ``name``)."""

    mapping: dict[str, Any]
    source_path: str

    @property
    def type(self) -> str:
        if "type" in self.mapping:
            return self.mapping["type"]
        return "object"


def _mapping_error(reason: str) -> EsError:
    inner = cause("mapper_parsing_exception", reason)
    return EsError(
        400,
        cause(
            "mapper_parsing_exception",
            f"Failed to parse mapping: {reason}",
            caused_by=inner,
        ),
        root_cause=[inner],
    )


def _expand_dots(properties: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": {...}}`` means ``{"a": {"properties": {"b": {...}}}}``."""
    expanded: dict[str, Any] = {}
    for name, entry in properties.items():
        head, _, rest = name.partition(".")
        if rest:
            parent = expanded.setdefault(head, {"properties": {}})
            parent.setdefault("properties", {}).update(_expand_dots({rest: entry}))
        else:
            expanded[name] = entry
    return expanded


def check_properties(properties: Any, prefix: str = "") -> dict[str, Any]:
    """Validate field mappings like Elasticsearch's mapper parsers; return them with
    dotted names expanded."""
    if not isinstance(properties, dict):
        raise _mapping_error(f"Expected map for property [properties] on [{prefix}]")
    properties = _expand_dots(properties)
    for name, entry in properties.items():
        path = prefix + name
        if not isinstance(entry, dict):
            raise _mapping_error(
                f"Expected map for property [fields] on field [{name}] but got a class "
                f"java.lang.{type(entry).__name__.capitalize()}"
            )
        type_ = entry.get("type", "object")
        if not isinstance(type_, str) or type_ not in FIELD_TYPES:
            raise _mapping_error(
                f"No handler for type [{preview(type_)}] declared on field [{name}]"
            )
        if unknown := sorted(set(entry) - FIELD_PARAMS):
            raise _mapping_error(
                f"unknown parameter [{unknown[0]}] on mapper [{path}] of type [{type_}]"
            )
        if "properties" in entry:
            entry["properties"] = check_properties(entry["properties"], path + ".")
        if "fields" in entry:
            check_properties(entry["fields"], path + ".")
    return properties


def check_mappings(mappings: Any) -> dict[str, Any]:
    if not isinstance(mappings, dict):
        raise _mapping_error("Root mapping definition must be an object")
    if unknown := [k for k in mappings if k not in ROOT_MAPPING_PARAMS]:
        listing = ", ".join(f"{k} : {preview(mappings[k])}" for k in unknown)
        raise _mapping_error(
            f"Root mapping definition has unsupported parameters:  [{listing}]"
        )
    mappings = copy.deepcopy(mappings)
    mappings["properties"] = check_properties(mappings.get("properties", {}))
    return mappings


def flatten_mappings(properties: dict[str, Any], prefix: str = "") -> dict[str, Field]:
    """Every mapped path (objects, leaves and multi-fields) -> its :class:`Field`."""
    fields: dict[str, Field] = {}
    for name, entry in properties.items():
        path = prefix + name
        fields[path] = Field(entry, path)
        fields.update(flatten_mappings(entry.get("properties", {}), path + "."))
        for sub, sub_entry in entry.get("fields", {}).items():
            fields[f"{path}.{sub}"] = Field(sub_entry, path)
    return fields


def dynamic_mapping(value: Any) -> dict[str, Any] | None:
    """The mapping Elasticsearch's dynamic mapping gives a new field's first value."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"properties": {}}
    if isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError):
            if _DATE.fullmatch(value) and len(value) >= 10:
                parse_date(value)
                return {"type": "date"}
        return {
            "type": "text",
            "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
        }
    return None


def check_leaf(field: Field, value: Any, name: str) -> None:
    """Raise BadValue when ``value`` cannot be indexed in ``field``."""
    type_ = field.type
    if type_ in STRING_TYPES:
        if isinstance(value, dict | list):
            raise BadValue(
                "illegal_state_exception", "Can't get text on a START_OBJECT"
            )
    elif type_ in INTEGER_RANGES:
        coerce_integer(value, type_)
    elif type_ in FLOAT_TYPES:
        coerce_float(value, type_)
    elif type_ in ("date", "date_nanos"):
        check_date(value, field.mapping.get("format", DEFAULT_DATE_FORMAT))
    elif type_ == "boolean":
        coerce_boolean(value)
    elif type_ == "geo_point":
        check_geo_point(value, name)
    elif type_ == "ip":
        try:
            ipaddress.ip_address(value if isinstance(value, str) else "")
        except ValueError:
            raise BadValue(
                "illegal_argument_exception",
                f"'{preview(value)}' is not an IP string literal.",
            ) from None


def parse_source(raw: bytes) -> dict[str, Any]:
    """A document's JSON; malformed JSON fails the document like Elasticsearch."""
    try:
        source = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"[{exc.lineno}:{exc.colno}]" if hasattr(exc, "lineno") else "[1:1]"
        raise ItemFailure(
            400,
            cause(
                "document_parsing_exception",
                f"{where} failed to parse: {getattr(exc, 'msg', exc)}",
                caused_by=cause("json_parse_exception", str(exc)),
            ),
        ) from None
    if not isinstance(source, dict):
        raise ItemFailure(
            400,
            cause(
                "document_parsing_exception",
                "[1:1] failed to parse: Malformed content, must start with an object",
            ),
        )
    return source


class DocumentMapper:
    """Checks one document against an index's mapping, like Elasticsearch's document
    parser, and works out what dynamic mapping would add for its new fields.

    Nothing is changed while checking: the new fields (``added``) are merged into the
    mapping by the caller only when the whole document is accepted.
    """

    def __init__(
        self, fields: dict[str, Field], root: dict[str, Any], doc_id: str, raw: str
    ):
        self.fields = fields
        self.root = root
        self.doc_id = doc_id
        self.raw = raw
        self.added: dict[str, Field] = {}

    def check(self, source: dict[str, Any]) -> dict[str, Field]:
        self._walk(source, "")
        return self.added

    def _lookup(self, path: str) -> Field | None:
        return self.added.get(path) or self.fields.get(path)

    def _walk(self, obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            parts = key.split(".")  # "a.b": 1 is the same as "a": {"b": 1}
            for depth in range(1, len(parts)):
                parent = prefix + ".".join(parts[:depth])
                field = self._lookup(parent)
                if field is None:
                    self._new_field(parent, {})
                elif field.type not in OBJECT_TYPES:
                    raise self._failure(
                        f"[1:2] Could not dynamically add mapping for field "
                        f"[{prefix + key}]. Existing mapping for [{parent}] must be of "
                        f"type object but found [{field.type}]."
                    )
            self._visit(prefix + key, value)

    def _visit(self, path: str, value: Any) -> None:
        if value is None:
            return
        field = self._lookup(path)
        if isinstance(value, list):
            if (
                field is not None
                and field.type == "geo_point"
                and _is_coordinates(value)
            ):
                self._leaf(path, field, value)  # [lon, lat] is one point
            else:
                for item in value:
                    self._visit(path, item)
            return
        if field is None and (field := self._new_field(path, value)) is None:
            return
        if field.type in OBJECT_TYPES:
            if not isinstance(value, dict):
                raise self._failure(
                    f"[1:2] object mapping for [{path}] tried to parse field "
                    f"[{path.rpartition('.')[2]}] as object, but found a concrete value"
                )
            self._walk(value, path + ".")
        elif isinstance(value, dict) and field.type not in ("geo_point", "flattened"):
            problem = BadValue(
                "illegal_state_exception", "Can't get text on a START_OBJECT"
            )
            raise self._field_failure(path, field.type, value, problem)
        else:
            self._leaf(path, field, value)

    def _leaf(self, path: str, field: Field, value: Any) -> None:
        try:
            check_leaf(field, value, path)
        except BadValue as problem:
            raise self._field_failure(path, field.type, value, problem) from None

    def _dynamic(self, path: str) -> str:
        """The ``dynamic`` setting that applies to a new field at ``path``."""
        parent = path.rpartition(".")[0]
        while parent:
            field = self._lookup(parent)
            if field is not None and "dynamic" in field.mapping:
                return str(field.mapping["dynamic"]).lower()
            parent = parent.rpartition(".")[0]
        return str(self.root.get("dynamic", "true")).lower()

    def _new_field(self, path: str, value: Any) -> Field | None:
        setting = self._dynamic(path)
        if setting == "strict":
            parent, _, name = path.rpartition(".")
            raise ItemFailure(
                400,
                cause(
                    "strict_dynamic_mapping_exception",
                    f"[1:2] mapping set to strict, dynamic introduction of [{name}] "
                    f"within [{parent or '_doc'}] is not allowed",
                ),
            )
        mapping = dynamic_mapping(value)
        if setting in ("false", "runtime") or mapping is None:
            return None  # kept in _source, not indexed
        self.added[path] = field = Field(mapping, path)
        for sub, sub_mapping in mapping.get("fields", {}).items():
            self.added[f"{path}.{sub}"] = Field(sub_mapping, path)
        return field

    def _failure(self, reason: str) -> ItemFailure:
        return ItemFailure(400, cause("document_parsing_exception", reason))

    def _field_failure(
        self, path: str, type_: str, value: Any, problem: BadValue
    ) -> ItemFailure:
        # The column points just past the field's name in the document, close to
        # where Elasticsearch's parser reports it.
        leaf = path.rpartition(".")[2]
        position = self.raw.find(f'"{leaf}"')
        column = position + len(leaf) + 4 if position >= 0 else 1
        return ItemFailure(
            400,
            cause(
                "document_parsing_exception",
                f"[1:{column}] failed to parse field [{path}] of type [{type_}] in "
                f"document with id '{self.doc_id}'. Preview of field's value: "
                f"'{preview(value)}'",
                caused_by=problem.cause,
            ),
        )


def _is_coordinates(value: list[Any]) -> bool:
    return 2 <= len(value) <= 3 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


# --------------------------------------------------------------------------------------
# Indices and documents
# --------------------------------------------------------------------------------------


class Doc(NamedTuple):
    version: int
    seq_no: int
    source: dict[str, Any] | None  # None when the fake keeps no sources


Changes = list[tuple[str, Doc | None]]  # what one request stored (None: deleted)


def _new_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def new_doc_id() -> str:
    """An auto-generated id: 20 URL-safe base64 characters, like Elasticsearch's."""
    return secrets.token_urlsafe(15)


def parse_time_value(value: Any, setting: str) -> float | None:
    """``"1s"``, ``"500ms"``, ``"2m"`` -> seconds; ``"-1"`` -> None (never)."""
    text = str(value)
    if text == "-1":
        return None
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text):
        return float(match[1]) * _FIXED_UNITS[match[2]] / 1000
    raise bad_request(
        "illegal_argument_exception",
        f"failed to parse setting [{setting}] with value [{text}] as a time value: "
        "unit is missing or unrecognized",
    )


def _flat_settings(settings: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(settings, dict):
        raise bad_request("settings_exception", "Failed to load settings from [{}]")
    flat: dict[str, str] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat_settings(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = keyword_value(value)
    return flat


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def check_settings(settings: Any) -> dict[str, str]:
    """Index settings, flattened to ``index.*`` keys with string values."""
    flat = {}
    for key, value in _flat_settings(settings).items():
        key = key if key.startswith("index.") else f"index.{key}"
        known = key in KNOWN_SETTINGS or key.startswith(KNOWN_SETTING_PREFIXES)
        if not known:
            raise bad_request(
                "illegal_argument_exception",
                f"unknown setting [{key}] please check that any required plugins are "
                "installed, or check the breaking changes documentation for removed "
                "settings",
            )
        flat[key] = value
    for key in ("index.number_of_shards", "index.number_of_replicas"):
        if key in flat and not (flat[key].isdigit() and int(flat[key]) >= 0):
            raise bad_request(
                "illegal_argument_exception",
                f"Failed to parse value [{flat[key]}] for setting [{key}]",
            )
    if "index.refresh_interval" in flat:
        parse_time_value(flat["index.refresh_interval"], "index.refresh_interval")
    return flat


@dataclasses.dataclass(eq=False)
class Index:
    """One index: stored documents, the searchable snapshot, and pending changes.

    Elasticsearch makes writes searchable only at the next refresh.  ``docs`` holds
    everything stored (what a GET by id or a retry's 409 sees); ``visible`` is what
    search and count see; ``pending`` holds the changes waiting for a refresh, each
    batch stamped with the time it was written.
    """

    name: str
    mappings: dict[str, Any]
    settings: dict[str, str]
    refresh_interval: float | None
    aliases: dict[str, Any] = dataclasses.field(default_factory=dict)
    uuid: str = dataclasses.field(default_factory=_new_uuid)
    created: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    docs: dict[str, Doc] = dataclasses.field(default_factory=dict)
    visible: dict[str, Doc] = dataclasses.field(default_factory=dict)
    pending: collections.deque[tuple[float, Changes]] = dataclasses.field(
        default_factory=collections.deque
    )
    seq_no: int = -1
    fields: dict[str, Field] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.fields = flatten_mappings(self.mappings["properties"])

    def next_seq_no(self) -> int:
        self.seq_no += 1
        return self.seq_no

    def put(self, doc_id: str, source: dict[str, Any] | None, changes: Changes) -> Doc:
        """Store a document now; it becomes searchable when ``changes`` is published
        and then refreshed."""
        previous = self.docs.get(doc_id)
        self.seq_no += 1
        doc = Doc(previous.version + 1 if previous else 1, self.seq_no, source)
        self.docs[doc_id] = doc
        changes.append((doc_id, doc))
        return doc

    def delete(self, doc_id: str, changes: Changes) -> None:
        del self.docs[doc_id]
        changes.append((doc_id, None))

    def publish(self, changes: Changes) -> None:
        """Queue one request's changes for the next refresh, stamped with the time."""
        if changes:
            self.pending.append((time.monotonic(), changes))

    def refresh(self, written_before: float = math.inf) -> None:
        while self.pending and self.pending[0][0] <= written_before:
            for doc_id, doc in self.pending.popleft()[1]:
                if doc is None:
                    self.visible.pop(doc_id, None)
                else:
                    self.visible[doc_id] = doc

    def catch_up(self) -> None:
        """The periodic refresh, done lazily when someone reads."""
        if self.refresh_interval is not None:
            self.refresh(time.monotonic() - self.refresh_interval)

    def add_fields(self, added: dict[str, Field]) -> None:
        """Merge dynamically mapped fields into the mapping."""
        for path, field in added.items():
            if field.source_path != path:
                continue  # a multi-field: it lives inside its parent's "fields"
            *parents, name = path.split(".")
            properties = self.mappings["properties"]
            for parent in parents:
                properties = properties[parent].setdefault("properties", {})
            properties[name] = field.mapping
        self.fields = flatten_mappings(self.mappings["properties"])

    def mappings_body(self) -> dict[str, Any]:
        """The mappings as GET shows them (no empty ``properties``)."""
        body = copy.deepcopy(self.mappings)
        if not body["properties"]:
            del body["properties"]
        return body

    def settings_body(self) -> dict[str, Any]:
        flat = {
            "index.routing.allocation.include._tier_preference": "data_content",
            "index.number_of_shards": "1",
            "index.provided_name": self.name,
            "index.creation_date": str(self.created),
            "index.number_of_replicas": "1",
            "index.uuid": self.uuid,
            "index.version.created": "8512000",
        }
        return _nest(flat | self.settings)


def check_index_name(name: str) -> None:
    """Elasticsearch's rules for a new index name, with its messages."""
    forbidden = ' "*\\<|,>/?'
    problem = None
    if any(char in name for char in forbidden):
        problem = (
            'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
        )
    elif "#" in name:
        problem = "must not contain '#'"
    elif ":" in name:
        problem = "must not contain ':'"
    elif name.startswith(("_", "-", "+")):
        problem = "must not start with '_', '-', or '+'"
    elif len(name.encode()) > 255:
        problem = f"index name is too long, ({len(name.encode())} > 255)"
    elif name in (".", ".."):
        problem = "must not be '.' or '..'"
    elif name != name.lower():
        problem = "must be lowercase"
    elif not name:
        problem = "must not be empty"
    if problem:
        raise bad_request(
            "invalid_index_name_exception",
            f"Invalid index name [{name}], {problem}",
            index_uuid="_na_",
            index=name,
        )


# --------------------------------------------------------------------------------------
# Reading documents: field values, queries, sorting
# --------------------------------------------------------------------------------------


def source_values(source: Any, parts: list[str]) -> list[Any]:
    """Non-null values at a dotted path; arrays flatten, dotted keys count as paths."""
    if isinstance(source, list):
        return [value for item in source for value in source_values(item, parts)]
    if not parts:
        return [] if source is None else [source]
    if not isinstance(source, dict):
        return []
    values = []
    for end in range(1, len(parts) + 1):
        key = ".".join(parts[:end])
        if key in source:
            values.extend(source_values(source[key], parts[end:]))
    return values


def indexed_values(field: Field, source: dict[str, Any]) -> list[Any]:
    """The comparable values a document has for a field, as its type indexes them:
    strings for keywords (past ignore_above: none), numbers, epoch millis, booleans."""
    values = []
    type_ = field.type
    for raw in source_values(source, field.source_path.split(".")):
        try:
            if type_ in TEXT_TYPES:
                values.append(raw if isinstance(raw, str) else keyword_value(raw))
            elif type_ in STRING_TYPES:
                text = keyword_value(raw)
                if len(text) <= field.mapping.get("ignore_above", math.inf):
                    values.append(text)
            elif type_ in INTEGER_RANGES:
                values.append(coerce_integer(raw, type_))
            elif type_ in FLOAT_TYPES:
                values.append(coerce_float(raw, type_))
            elif type_ in ("date", "date_nanos"):
                values.append(parse_date(raw))
            elif type_ == "boolean":
                values.append(coerce_boolean(raw))
            elif type_ == "ip":
                values.append(ipaddress.ip_address(raw))
        except UNPARSABLE:
            continue
    return values


Predicate = Callable[[str, dict[str, Any]], bool]  # (_id, _source) -> matches


class QueryCompiler:
    """Turns the query DSL into a predicate over ``_source`` for one index.

    Field types come from that index's mapping, so a ``term`` on a keyword compares
    exact strings while on a text field it compares analyzed tokens, as Elasticsearch
    does.
    """

    def __init__(self, index: Index) -> None:
        self.index = index

    def compile(self, query: Any) -> Predicate:
        if not isinstance(query, dict) or len(query) != 1:
            if isinstance(query, dict) and not query:
                raise bad_request(
                    "parsing_exception", "query malformed, empty clause found"
                )
            raise bad_request(
                "parsing_exception",
                "[_na] query malformed, no start_object after query name",
            )
        ((kind, body),) = query.items()
        compiler = getattr(self, f"_q_{kind}", None)
        if compiler is None:
            raise bad_request("parsing_exception", f"unknown query [{kind}]")
        return compiler(body)

    # -- helpers ------------------------------------------------------------------

    def _single_field(self, kind: str, body: Any) -> tuple[str, Any]:
        if not isinstance(body, dict) or not body:
            raise bad_request(
                "parsing_exception", f"[{kind}] query malformed, no start_object"
            )
        names = [k for k in body if k != "boost"]
        if not names:
            raise bad_request("parsing_exception", f"[{kind}] query malformed")
        if len(names) > 1:
            raise bad_request(
                "parsing_exception",
                f"[{kind}] query doesn't support multiple fields, found "
                f"[{names[0]}] and [{names[1]}]",
            )
        return names[0], body[names[0]]

    def _convert(self, field: Field, value: Any, *, round_up: bool = False) -> Any:
        """A query value in the field's terms; bad values fail like Elasticsearch."""
        type_ = field.type
        try:
            if type_ in TEXT_TYPES or type_ in STRING_TYPES:
                return keyword_value(value)
            if type_ in INTEGER_RANGES or type_ in FLOAT_TYPES:
                return _number(value)
            if type_ in ("date", "date_nanos"):
                return parse_date_math(value, round_up=round_up)
            if type_ == "boolean":
                return coerce_boolean(value)
            if type_ == "ip":
                return ipaddress.ip_address(value)
        except (ValueError, TypeError) as exc:
            reason = getattr(exc, "cause", {}).get("reason", str(exc))
            raise search_failure(
                self.index.name,
                cause(
                    "query_shard_exception",
                    f"failed to create query: {reason}",
                    index_uuid=self.index.uuid,
                    index=self.index.name,
                ),
            ) from None
        raise unsupported(f"queries on fields of type [{type_}] are not supported")

    def _values(self, field: Field, source: dict[str, Any], *, analyzed: bool) -> list:
        values = indexed_values(field, source)
        if analyzed and field.type in TEXT_TYPES:
            return [token for value in values for token in tokens(value)]
        return values

    def _field_test(self, name: str, test: Callable[[list], bool]) -> Predicate:
        field = self.index.fields.get(name)
        if field is None or field.type in OBJECT_TYPES:
            return lambda doc_id, source: False  # unmapped: nothing matches
        return lambda doc_id, source: test(self._values(field, source, analyzed=True))

    # -- query types ----------------------------------------------------------------

    def _q_match_all(self, body: Any) -> Predicate:
        return lambda doc_id, source: True

    def _q_match_none(self, body: Any) -> Predicate:
        return lambda doc_id, source: False

    def _q_term(self, body: Any) -> Predicate:
        name, spec = self._single_field("term", body)
        value = spec.get("value") if isinstance(spec, dict) else spec
        field = self.index.fields.get(name)
        if field is None:
            return lambda doc_id, source: False
        wanted = self._convert(field, value)
        return self._field_test(name, lambda values: wanted in values)

    def _q_terms(self, body: Any) -> Predicate:
        name, spec = self._single_field("terms", body)
        if not isinstance(spec, list):
            raise bad_request(
                "parsing_exception", "[terms] query does not support [" + name + "]"
            )
        field = self.index.fields.get(name)
        if field is None:
            return lambda doc_id, source: False
        wanted = {self._convert(field, value) for value in spec}
        return self._field_test(name, lambda values: not wanted.isdisjoint(values))

    def _q_ids(self, body: Any) -> Predicate:
        ids = set(body.get("values", [])) if isinstance(body, dict) else set()
        return lambda doc_id, source: doc_id in ids

    def _q_exists(self, body: Any) -> Predicate:
        if not isinstance(body, dict) or "field" not in body:
            raise bad_request(
                "parsing_exception", "[exists] must be provided with a [field]"
            )
        field = self.index.fields.get(body["field"])
        if field is None:
            return lambda doc_id, source: False
        if field.type in OBJECT_TYPES:
            parts = body["field"].split(".")
            return lambda doc_id, source: bool(source_values(source, parts))
        return lambda doc_id, source: bool(indexed_values(field, source))

    def _q_range(self, body: Any) -> Predicate:
        name, spec = self._single_field("range", body)
        if not isinstance(spec, dict):
            raise bad_request(
                "parsing_exception", f"[range] query malformed for [{name}]"
            )
        allowed = {"gte", "gt", "lte", "lt", "format", "boost", "time_zone", "relation"}
        if unknown := sorted(set(spec) - allowed):
            raise bad_request(
                "parsing_exception", f"[range] query does not support [{unknown[0]}]"
            )
        field = self.index.fields.get(name)
        if field is None:
            return lambda doc_id, source: False
        checks: list[Callable[[Any], bool]] = []
        for op, up in (("gte", False), ("gt", True), ("lte", True), ("lt", False)):
            if op in spec:
                bound = self._convert(field, spec[op], round_up=up)
                checks.append(_comparison(op, bound))
        return self._field_test(
            name,
            lambda values: any(all(check(v) for check in checks) for v in values),
        )

    def _q_match(self, body: Any) -> Predicate:
        name, spec = self._single_field("match", body)
        if isinstance(spec, dict):
            text, operator = spec.get("query"), str(spec.get("operator", "or")).lower()
        else:
            text, operator = spec, "or"
        field = self.index.fields.get(name)
        if field is None:
            return lambda doc_id, source: False
        if field.type not in TEXT_TYPES:
            wanted = self._convert(field, text)
            return self._field_test(name, lambda values: wanted in values)
        words = set(tokens(keyword_value(text)))
        combine = all if operator == "and" else any
        return self._field_test(
            name, lambda values: bool(words) and combine(w in values for w in words)
        )

    def _q_prefix(self, body: Any) -> Predicate:
        name, spec = self._single_field("prefix", body)
        prefix = keyword_value(spec.get("value") if isinstance(spec, dict) else spec)
        return self._field_test(
            name, lambda values: any(str(v).startswith(prefix) for v in values)
        )

    def _q_bool(self, body: Any) -> Predicate:
        if not isinstance(body, dict):
            raise bad_request("parsing_exception", "[bool] query malformed")
        clauses: dict[str, list[Predicate]] = {}
        for occur in ("must", "filter", "should", "must_not"):
            given = body.get(occur, [])
            given = given if isinstance(given, list) else [given]
            clauses[occur] = [self.compile(clause) for clause in given]
        allowed = {*clauses, "minimum_should_match", "boost", "_name"}
        if unknown := sorted(set(body) - allowed):
            raise bad_request(
                "parsing_exception", f"[bool] query does not support [{unknown[0]}]"
            )
        required = clauses["must"] + clauses["filter"]
        should, must_not = clauses["should"], clauses["must_not"]
        minimum = _minimum_should_match(
            body.get("minimum_should_match"), len(should), default=0 if required else 1
        )

        def test(doc_id: str, source: dict[str, Any]) -> bool:
            if not all(clause(doc_id, source) for clause in required):
                return False
            if any(clause(doc_id, source) for clause in must_not):
                return False
            if not should:
                return True
            return sum(clause(doc_id, source) for clause in should) >= minimum

        return test


def _comparison(op: str, bound: Any) -> Callable[[Any], bool]:
    def compare(value: Any) -> bool:
        try:
            if op == "gte":
                return value >= bound
            if op == "gt":
                return value > bound
            if op == "lte":
                return value <= bound
            return value < bound
        except TypeError:
            return False

    return compare


def _minimum_should_match(spec: Any, count: int, *, default: int) -> int:
    if spec is None:
        return default
    text = str(spec).strip()
    if text.endswith("%"):
        wanted = int(count * abs(int(text[:-1])) / 100)
        return count - wanted if text.startswith("-") else wanted
    number = int(text)
    return count + number if number < 0 else number


# --------------------------------------------------------------------------------------
# Aggregations
# --------------------------------------------------------------------------------------

Hit = tuple[Index, str, dict[str, Any]]  # (index, _id, _source)

METRIC_AGGS = ("avg", "min", "max", "sum", "value_count", "cardinality", "stats")
BUCKET_AGGS = ("terms", "date_histogram")


def fielddata_disabled(index: str, field: str) -> dict[str, Any]:
    """Why a text field cannot be aggregated or sorted on (Elasticsearch's words)."""
    return cause(
        "illegal_argument_exception",
        f"Fielddata is disabled on [{field}] in [{index}]. Text fields are not "
        "optimised for operations that require per-document field data like "
        "aggregations and sorting, so these operations are disabled by default. Please "
        "use a keyword field instead. Alternatively, set fielddata=true on "
        f"[{field}] in order to load field data by uninverting the inverted index. "
        "Note that this can use significant memory.",
    )


class Aggregator:
    """Computes ``aggs`` over the matching documents, sub-aggregations included.

    ``searchable`` is every searchable document of the indices: a terms aggregation
    with ``min_doc_count: 0`` also lists the terms of documents that did not match.
    """

    def __init__(self, indices: list[Index], searchable: list[Hit]) -> None:
        self.indices = indices
        self.searchable = searchable

    def run(self, specs: Any, hits: list[Hit]) -> dict[str, Any]:
        if not isinstance(specs, dict):
            raise bad_request(
                "parsing_exception", "Aggregation definition must be an object"
            )
        return {name: self._one(name, spec, hits) for name, spec in specs.items()}

    def _one(self, name: str, spec: Any, hits: list[Hit]) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise bad_request(
                "parsing_exception",
                f"Aggregation definition for [{name}] must be an object",
            )
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if not kinds:
            raise bad_request(
                "parsing_exception", f"Missing definition for aggregation [{name}]"
            )
        if len(kinds) > 1:
            raise bad_request(
                "parsing_exception",
                f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and "
                f"[{kinds[1]}]",
            )
        kind, params = kinds[0], spec[kinds[0]]
        if kind not in METRIC_AGGS + BUCKET_AGGS:
            raise bad_request("parsing_exception", f"Unknown aggregation type [{kind}]")
        if not isinstance(params, dict):
            raise bad_request(
                "parsing_exception",
                f"Expected [START_OBJECT] under [{kind}], but got a "
                f"[VALUE_STRING] in [{name}]",
            )
        if "script" in params:
            raise unsupported("scripts in aggregations are not supported")
        sub = spec.get("aggs", spec.get("aggregations", {}))
        if kind in METRIC_AGGS:
            if sub:
                raise bad_request(
                    "aggregation_initialization_exception",
                    f"Aggregator [{name}] of type [{kind}] cannot accept "
                    "sub-aggregations",
                )
            return self._metric(kind, name, params, hits)
        if kind == "terms":
            return self._terms(name, params, sub, hits)
        return self._date_histogram(name, params, sub, hits)

    # -- field access -------------------------------------------------------------

    def _field_name(self, kind: str, params: dict[str, Any]) -> str:
        if "field" not in params:
            raise bad_request(
                "illegal_argument_exception",
                "Required one of fields [field, script], but none were specified.",
            )
        return params["field"]

    def _check_type(
        self, kind: str, name: str, allowed: Callable[[Field], bool]
    ) -> None:
        for index in self.indices:
            field = index.fields.get(name)
            if field is not None and not allowed(field):
                if field.type in TEXT_TYPES and not field.mapping.get("fielddata"):
                    problem = fielddata_disabled(index.name, name)
                else:
                    problem = cause(
                        "illegal_argument_exception",
                        f"Field [{name}] of type [{field.type}] is not supported for "
                        f"aggregation [{kind}]",
                    )
                raise search_failure(index.name, problem)

    @staticmethod
    def _values(name: str, hit: Hit) -> list[Any]:
        index, _, source = hit
        field = index.fields.get(name)
        if field is None:
            return []
        values = indexed_values(field, source)
        if field.type in TEXT_TYPES:  # fielddata=true: the terms are the tokens
            values = [token for value in values for token in tokens(value)]
        return values

    def _field_type(self, name: str) -> str | None:
        for index in self.indices:
            if name in index.fields:
                return index.fields[name].type
        return None

    # -- metrics ------------------------------------------------------------------

    def _metric(
        self, kind: str, name: str, params: dict[str, Any], hits: list[Hit]
    ) -> dict[str, Any]:
        field = self._field_name(kind, params)
        numeric_only = kind not in ("value_count", "cardinality")

        def allowed(f: Field) -> bool:
            if numeric_only:
                return f.type in NUMERIC_TYPES or f.type in ("date", "boolean")
            return f.type not in TEXT_TYPES or bool(f.mapping.get("fielddata"))

        self._check_type(kind, field, allowed)
        values = [v for hit in hits for v in self._values(field, hit)]
        if "missing" in params:
            missing = (
                params["missing"] if not numeric_only else _number(params["missing"])
            )
            values += [missing for hit in hits if not self._values(field, hit)]
        if kind == "value_count":
            return {"value": len(values)}
        if kind == "cardinality":
            return {"value": len(set(values))}
        numbers = [float(v) for v in values]
        stats = {
            "count": len(numbers),
            "min": min(numbers) if numbers else None,
            "max": max(numbers) if numbers else None,
            "avg": sum(numbers) / len(numbers) if numbers else None,
            "sum": float(sum(numbers)),
        }
        if kind == "stats":
            return stats
        result: dict[str, Any] = {"value": stats[kind]}
        if self._field_type(field) == "date" and result["value"] is not None:
            result["value_as_string"] = format_date(int(result["value"]))
        return result

    # -- buckets ------------------------------------------------------------------

    def _bucket(
        self, key: Any, members: list[Hit], sub: dict[str, Any], field_type: str | None
    ) -> dict[str, Any]:
        bucket: dict[str, Any] = {}
        if field_type in ("date", "date_nanos"):
            bucket = {"key": key, "key_as_string": format_date(key)}
        elif field_type == "boolean":
            bucket = {"key": int(key), "key_as_string": keyword_value(key)}
        elif field_type == "ip":
            bucket = {"key": str(key)}
        else:
            bucket = {"key": key}
        bucket["doc_count"] = len(members)
        bucket.update(self.run(sub, members) if sub else {})
        return bucket

    def _terms(
        self, name: str, params: dict[str, Any], sub: dict[str, Any], hits: list[Hit]
    ) -> dict[str, Any]:
        known = {"field", "size", "order", "min_doc_count", "missing", "shard_size"}
        known |= {"execution_hint", "collect_mode", "show_term_doc_count_error"}
        if unknown := sorted(set(params) - known):
            raise bad_request(
                "x_content_parse_exception", f"[terms] unknown field [{unknown[0]}]"
            )
        field = self._field_name("terms", params)
        self._check_type(
            "terms",
            field,
            lambda f: (
                f.type not in OBJECT_TYPES | {"geo_point"}
                and (f.type not in TEXT_TYPES or bool(f.mapping.get("fielddata")))
            ),
        )
        size = params.get("size", 10)
        if not isinstance(size, int) or size <= 0:
            raise bad_request(
                "illegal_argument_exception",
                f"[size] must be greater than 0. Found [{size}] in [{name}]",
            )
        groups: dict[Any, list[Hit]] = {}
        for hit in hits:
            keys = set(self._values(field, hit))
            if not keys and "missing" in params:
                keys = {params["missing"]}
            for key in keys:
                groups.setdefault(key, []).append(hit)
        if params.get("min_doc_count", 1) == 0:
            for hit in self.searchable:
                for key in self._values(field, hit):
                    groups.setdefault(key, [])
        field_type = self._field_type(field)
        buckets = [
            self._bucket(key, members, sub, field_type)
            for key, members in groups.items()
        ]
        buckets.sort(key=_terms_order(name, params.get("order"), sub))
        shown = buckets[:size]
        return {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(b["doc_count"] for b in buckets[size:]),
            "buckets": shown,
        }

    def _date_histogram(
        self, name: str, params: dict[str, Any], sub: dict[str, Any], hits: list[Hit]
    ) -> dict[str, Any]:
        field = self._field_name("date_histogram", params)
        self._check_type(
            "date_histogram",
            field,
            lambda f: f.type in ("date", "date_nanos") or f.type in NUMERIC_TYPES,
        )
        floor, step = _histogram_interval(params)
        groups: dict[int, list[Hit]] = {}
        for hit in hits:
            for key in {floor(int(v)) for v in self._values(field, hit)}:
                groups.setdefault(key, []).append(hit)
        keys = sorted(groups)
        if keys and params.get("min_doc_count", 0) == 0:
            key, filled = keys[0], []
            while key <= keys[-1]:
                filled.append(key)
                key = step(key)
                if len(filled) > MAX_BUCKETS:
                    raise too_many_buckets()
            keys = filled
        minimum = params.get("min_doc_count", 0)
        buckets = [
            self._bucket(key, groups.get(key, []), sub, "date")
            for key in keys
            if len(groups.get(key, [])) >= minimum
        ]
        return {"buckets": buckets}


def too_many_buckets() -> EsError:
    return EsError(
        400,
        cause(
            "too_many_buckets_exception",
            "Trying to create too many buckets. Must be less than or equal to: "
            f"[{MAX_BUCKETS}] but this number of buckets was exceeded. This limit can "
            "be set by changing the [search.max_buckets] cluster level setting.",
            max_buckets=MAX_BUCKETS,
        ),
    )


def _histogram_interval(
    params: dict[str, Any],
) -> tuple[Callable[[int], int], Callable[[int], int]]:
    """(floor, next bucket) functions for ``calendar_interval``/``fixed_interval``."""
    if "calendar_interval" in params:
        given = str(params["calendar_interval"])
        if given not in _CALENDAR_UNITS:
            raise bad_request(
                "illegal_argument_exception",
                f"The supplied interval [{given}] could not be parsed as a calendar "
                "interval.",
            )
        unit = _CALENDAR_UNITS[given]
        return (lambda m: floor_calendar(m, unit)), (lambda m: add_calendar(m, unit, 1))
    if "fixed_interval" in params:
        given = str(params["fixed_interval"])
        match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", given)
        if not match or int(match[1]) == 0:
            raise bad_request(
                "illegal_argument_exception",
                f"failed to parse setting [date_histogram.fixedInterval] with value "
                f"[{given}] as a time value: unit is missing or unrecognized",
            )
        size = int(match[1]) * _FIXED_UNITS[match[2]]
        return (lambda m: m - m % size), (lambda m: m + size)
    if "interval" in params:
        raise bad_request(
            "x_content_parse_exception", "[date_histogram] unknown field [interval]"
        )
    raise bad_request(
        "illegal_argument_exception",
        "Invalid interval specified, must be non-null and non-empty",
    )


def _terms_order(
    name: str, order: Any, sub: dict[str, Any]
) -> Callable[[dict[str, Any]], tuple]:
    """Sort key for terms buckets; default: count descending, then key ascending."""
    rules = order if isinstance(order, list) else [order or {"_count": "desc"}]
    parsed = []
    for rule in rules:
        if not isinstance(rule, dict) or len(rule) != 1:
            raise bad_request("parsing_exception", f"Invalid terms order in [{name}]")
        ((target, direction),) = rule.items()
        if direction not in ("asc", "desc"):
            raise bad_request(
                "parsing_exception",
                f"Unknown terms order direction [{direction}] in terms aggregation "
                f"[{name}]",
            )
        if target not in ("_count", "_key") and target.split(".")[0] not in sub:
            raise bad_request(
                "aggregation_execution_exception",
                f"Invalid aggregator order path [{target}]. The provided aggregation "
                f"[{target}] either does not exist, or is a pipeline aggregation and "
                "cannot be used to sort the buckets.",
            )
        parsed.append((target, direction == "desc"))
    if not any(target == "_key" for target, _ in parsed):
        parsed.append(("_key", False))  # Elasticsearch's tie-break

    def sort_key(bucket: dict[str, Any]) -> tuple:
        key = []
        for target, descending in parsed:
            if target == "_count":
                value: Any = bucket["doc_count"]
            elif target == "_key":
                value = bucket["key"]
            else:
                agg, _, metric = target.partition(".")
                value = bucket[agg].get(metric or "value")
            key.append(_Sortable(value, descending))
        return tuple(key)

    return sort_key


@functools.total_ordering
class _Sortable:
    """Wraps a value for sorting in either direction, missing values last."""

    __slots__ = ("descending", "value")

    def __init__(self, value: Any, descending: bool) -> None:
        self.value, self.descending = value, descending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Sortable) and self.value == other.value

    def __lt__(self, other: _Sortable) -> bool:
        if self.value is None or other.value is None:
            return other.value is None and self.value is not None
        if self.descending:
            return self.value > other.value
        return self.value < other.value

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fault:
    """A failure injected into one write request; made by the functions below."""

    kind: str  # "status", "drop_before", "drop_after", "delay" or "item_status"
    code: int = 0
    seconds: float = 0.0
    fraction: float = 0.0

    @property
    def name(self) -> str:
        """Its key in ``FaultPlan.injected`` and its rate name in ``chaos``."""
        if self.kind == "status":
            return str(self.code)
        if self.kind == "item_status":
            return f"item_{self.code}"
        return self.kind


def status(code: int) -> Fault:
    """Answer ``code`` without applying the request (429 and 503 in Elasticsearch's
    words, 502 and 504 as a proxy's HTML page, 413 with an empty body)."""
    return Fault("status", code=code)


def drop_before() -> Fault:
    """Close the connection without applying the request or answering."""
    return Fault("drop_before")


def drop_after() -> Fault:
    """Apply the request fully, then close the connection without answering: the
    client has lost an answer to a write that happened."""
    return Fault("drop_after")


def delay(seconds: float) -> Fault:
    """Wait, then handle normally; applied even if the client gave up meanwhile,
    as Elasticsearch does not notice a client that went away."""
    return Fault("delay", seconds=seconds)


def item_status(code: int, fraction: float) -> Fault:
    """_bulk only: ``fraction`` of the items (at least one, picked by the plan's seeded
    random generator) fail with ``code`` and are not applied; the rest are.  (Drawn
    for a single-document write, it is used up without effect.)"""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return Fault("item_status", code=code, fraction=fraction)


CHAOS_NAMES = (
    "429",
    "502",
    "503",
    "504",
    "drop_before",
    "drop_after",
    "delay",
    "item_429",
)


class FaultPlan:
    """Which write requests fail, and how.

    ``next(*faults)`` queues faults for the next write requests, in order.
    ``chaos(seed, **rates)`` makes every later write request draw at most one fault at
    random (reproducibly, from ``seed``), e.g. ``chaos(7, **{"429": 0.1})``.
    Queued faults are served first.  ``injected`` counts what was injected by name
    ("429", "drop_after", ...); for item faults ("item_429") it counts rejected items.
    Safe to use from the test thread while the server runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Fault] = collections.deque()
        self._chaos: list[tuple[float, Fault]] = []
        self._random = random.Random(0)
        self.injected: collections.Counter[str] = collections.Counter()

    def next(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def chaos(
        self,
        seed: int,
        *,
        delay_seconds: float = 0.2,
        item_fraction: float = 0.25,
        **rates: float,
    ) -> None:
        """Random faults; rates by name from ``CHAOS_NAMES``, summing to at most 1.

        ``delay_seconds`` is how long a "delay" lasts, ``item_fraction`` the share of
        items an "item_429" rejects.
        """
        if unknown := sorted(set(rates) - set(CHAOS_NAMES)):
            raise ValueError(f"unknown fault rates {unknown}; known: {CHAOS_NAMES}")
        if (
            any(not 0 <= rate <= 1 for rate in rates.values())
            or sum(rates.values()) > 1
        ):
            raise ValueError(f"rates must be in [0, 1] and sum to at most 1: {rates}")
        faults = {
            "drop_before": drop_before(),
            "drop_after": drop_after(),
            "delay": delay(delay_seconds),
            "item_429": item_status(429, item_fraction),
        }
        with self._lock:
            self._random = random.Random(seed)
            self._chaos = [
                (rates[name], faults.get(name) or status(int(name)))
                for name in CHAOS_NAMES
                if rates.get(name)
            ]

    def clear(self) -> None:
        """Stop injecting (queued and random faults); ``injected`` keeps its counts."""
        with self._lock:
            self._queue.clear()
            self._chaos = []

    def draw(self, *, bulk: bool) -> Fault | None:
        """The fault for the write request arriving now (used by the server).

        An item fault drawn for a single-document write is used up without effect.
        """
        with self._lock:
            fault = self._queue.popleft() if self._queue else self._roll()
            if fault is None or (fault.kind == "item_status" and not bulk):
                return None
            if fault.kind != "item_status":  # item faults count rejected items
                self.injected[fault.name] += 1
            return fault

    def _roll(self) -> Fault | None:
        if not self._chaos:
            return None
        roll = self._random.random()
        for rate, fault in self._chaos:
            if roll < rate:
                return fault
            roll -= rate
        return None

    def reject_items(self, fault: Fault, count: int) -> set[int]:
        """Which of ``count`` bulk items an item fault rejects."""
        with self._lock:
            chosen = max(1, round(fault.fraction * count)) if count else 0
            rejected = set(self._random.sample(range(count), min(chosen, count)))
            self.injected[fault.name] += len(rejected)
            return rejected


def _rejected_execution() -> dict[str, Any]:
    return cause(
        "es_rejected_execution_exception",
        "rejected execution of org.elasticsearch.action.support.replication."
        "TransportWriteAction$1@6a2f3c1d on EsThreadPoolExecutor[name = "
        f"{NODE_NAME}/write, queue capacity = 10000, org.elasticsearch.common.util."
        "concurrent.EsThreadPoolExecutor@3b9a45b3[Running, pool size = 2, active "
        "threads = 2, queued tasks = 10000, completed tasks = 123456]]",
    )


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """A request as received (the body only when the fake keeps sources)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Reply:
    """What to answer: a JSON-able body, or raw text (for proxy-style faults)."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    raw_type: str | None = None  # content type of a raw text body
    from_elasticsearch: bool = True  # send X-Elastic-Product (proxies do not)
    filterable: bool = True  # filter_path applies (Elasticsearch never filters errors)

    @classmethod
    def error(cls, error: EsError) -> Reply:
        return cls(error.status, error.body, error.headers, filterable=False)


_DROP = Reply(0)  # sentinel: close the connection instead of answering


@dataclasses.dataclass
class Call:
    """One request, parsed once and passed to the handlers."""

    method: str
    segments: list[str]
    uri: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    started: float = dataclasses.field(default_factory=time.monotonic)

    def took(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def json(self, parse_type: str = "x_content_parse_exception") -> Any:
        """The body as JSON, or None when there is none."""
        return parse_json(self.body, parse_type) if self.body.strip() else None

    def flag(self, name: str) -> bool:
        return self.query.get(name, "false") in ("", "true")


def parse_json(raw: bytes, type_: str = "x_content_parse_exception") -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"[{exc.lineno}:{exc.colno}] " if hasattr(exc, "lineno") else ""
        message = exc.msg if hasattr(exc, "msg") else str(exc)
        if type_ == "parse_exception":
            inner = cause("json_parse_exception", f"{where}{message}")
            raise EsError(
                400,
                cause(
                    "parse_exception", "Failed to parse content to map", caused_by=inner
                ),
                root_cause=[cause("parse_exception", "Failed to parse content to map")],
            ) from None
        raise bad_request(type_, f"{where}{message}") from None


class Route(NamedTuple):
    pattern: tuple[str, ...]  # literal segments, or ":index" / ":doc_id" placeholders
    methods: frozenset[str]
    handler: str  # method name on FakeElasticsearch
    params: frozenset[str]  # accepted query parameters
    write: bool = False  # faults and latency apply


COMMON_PARAMS = words("pretty human error_trace filter_path")
INDEX_OPTIONS = "allow_no_indices expand_wildcards ignore_unavailable"
HEALTH_PARAMS = """level local master_timeout timeout wait_for_active_shards
    wait_for_events wait_for_nodes wait_for_no_initializing_shards
    wait_for_no_relocating_shards wait_for_status"""
GET_INDEX_PARAMS = f"""{INDEX_OPTIONS} flat_settings include_defaults local
    master_timeout features"""
SEARCH_PARAMS = f"""{INDEX_OPTIONS} allow_partial_search_results
    batched_reduce_size ccs_minimize_roundtrips from ignore_throttled
    max_concurrent_shard_requests preference request_cache rest_total_hits_as_int
    routing search_type seq_no_primary_term size stats terminate_after timeout
    track_scores track_total_hits typed_keys version"""
COUNT_PARAMS = f"{INDEX_OPTIONS} min_score preference routing terminate_after"
WRITE_PARAMS = """if_primary_term if_seq_no op_type pipeline refresh routing timeout
    version version_type wait_for_active_shards require_alias require_data_stream"""
UPDATE_PARAMS = """if_primary_term if_seq_no refresh retry_on_conflict routing
    timeout wait_for_active_shards require_alias _source"""
GET_DOC_PARAMS = """preference realtime refresh routing stored_fields version
    version_type _source _source_includes _source_excludes"""
BULK_PARAMS = """pipeline refresh routing timeout wait_for_active_shards require_alias
    require_data_stream list_executed_pipelines _source _source_includes
    _source_excludes"""


def endpoint(
    methods: str, path: str, handler: str, params: str = "", **kw: Any
) -> Route:
    pattern = tuple(part for part in path.split("/") if part)
    return Route(pattern, words(methods), handler, words(params) | COMMON_PARAMS, **kw)


ROUTES = (
    endpoint("GET", "/", "_info"),
    endpoint("GET", "/_cluster/health", "_health", HEALTH_PARAMS),
    endpoint("GET POST", "/_search", "_search", SEARCH_PARAMS),
    endpoint("GET POST", "/_count", "_count", COUNT_PARAMS),
    endpoint("GET POST", "/_refresh", "_refresh", INDEX_OPTIONS),
    endpoint("POST PUT", "/_bulk", "_bulk", BULK_PARAMS, write=True),
    endpoint("GET", "/:index", "_get_index", GET_INDEX_PARAMS),
    endpoint("PUT", "/:index", "_create_index", "master_timeout timeout"),
    endpoint("DELETE", "/:index", "_delete_index", f"{INDEX_OPTIONS} master_timeout"),
    endpoint("GET", "/:index/_mapping", "_get_mapping", f"{INDEX_OPTIONS} local"),
    endpoint("GET POST", "/:index/_search", "_search", SEARCH_PARAMS),
    endpoint("GET POST", "/:index/_count", "_count", COUNT_PARAMS),
    endpoint("GET POST", "/:index/_refresh", "_refresh", INDEX_OPTIONS),
    endpoint("POST PUT", "/:index/_bulk", "_bulk", BULK_PARAMS, write=True),
    endpoint("POST", "/:index/_doc", "_index_auto_id", WRITE_PARAMS, write=True),
    endpoint(
        "PUT POST", "/:index/_doc/:doc_id", "_index_doc", WRITE_PARAMS, write=True
    ),
    endpoint("DELETE", "/:index/_doc/:doc_id", "_delete_doc", WRITE_PARAMS, write=True),
    endpoint("GET", "/:index/_doc/:doc_id", "_get_doc", GET_DOC_PARAMS),
    endpoint(
        "PUT POST", "/:index/_create/:doc_id", "_create_doc", WRITE_PARAMS, write=True
    ),
    endpoint(
        "POST", "/:index/_update/:doc_id", "_update_doc", UPDATE_PARAMS, write=True
    ),
)


def _specificity(route: Route) -> tuple[bool, ...]:
    return tuple(part.startswith(":") for part in route.pattern)


def match_route(
    method: str, segments: list[str], uri: str
) -> tuple[Route, dict[str, str]]:
    """Find the route like Elasticsearch's RestController.

    Literal path segments win over placeholders (``/_bulk`` is never an index), a path
    that matches but not with this method is a 405 listing the allowed methods, and an
    unknown path is a 400.  HEAD is served by the GET route, without a body.
    """
    candidates = [
        route
        for route in ROUTES
        if len(route.pattern) == len(segments)
        and all(
            part.startswith(":") or part == segment
            for part, segment in zip(route.pattern, segments, strict=True)
        )
    ]
    if not candidates:
        raise EsError(400, f"no handler found for uri [{uri}] and method [{method}]")
    best = min(_specificity(route) for route in candidates)
    candidates = [route for route in candidates if _specificity(route) == best]
    for route in candidates:
        if method in route.methods or (method == "HEAD" and "GET" in route.methods):
            captured = {
                part[1:]: segment
                for part, segment in zip(route.pattern, segments, strict=True)
                if part.startswith(":")
            }
            return route, captured
    allowed = sorted(set().union(*(route.methods for route in candidates)))
    raise EsError(
        405,
        f"Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: "
        f"[{', '.join(allowed)}]",
        headers=[("Allow", ",".join(allowed))],
    )


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    essence, *params = value.split(";")
    parsed = {}
    for param in params:
        name, _, val = param.partition("=")
        parsed[name.strip().lower()] = val.strip().strip('"')
    return essence.strip().lower(), parsed


def check_media_types(call: Call, *, bulk: bool) -> str:
    """Check Accept/Content-Type like Elasticsearch 8; return the response type.

    Plain JSON (and NDJSON for _bulk) is always fine; the versioned
    ``application/vnd.elasticsearch+json; compatible-with=N`` types are accepted for
    N in 7 and 8 only, which is what breaks clients of another major version.
    """
    versions = {}
    for header in ("Accept", "Content-Type"):
        essence, params = _media_type(call.headers.get(header, ""))
        if essence.startswith("application/vnd.elasticsearch+"):
            version = params.get("compatible-with", "8")
            if version not in ("7", "8"):
                raise EsError(
                    400,
                    cause(
                        "media_type_header_exception",
                        "Invalid media-type value on headers [Accept, Content-Type]",
                        caused_by=cause(
                            "status_exception",
                            f"{header} version must be either version 8 or 7, but "
                            f"found {version}. {header}={call.headers[header]}",
                        ),
                    ),
                )
            versions[header] = version
    has_body = bool(call.body)
    if has_body:
        if "Content-Type" not in call.headers:
            raise EsError(406, "Content-Type header is missing")
        essence, _ = _media_type(call.headers["Content-Type"])
        accepted = {"application/json", "application/vnd.elasticsearch+json"}
        if bulk:
            accepted |= {
                "application/x-ndjson",
                "application/vnd.elasticsearch+x-ndjson",
            }
        if essence not in accepted:
            given = call.headers["Content-Type"]
            raise EsError(406, f"Content-Type header [{given}] is not supported")
        if len(versions) == 1 or len(set(versions.values())) > 1:
            accept, content = call.headers.get("Accept"), call.headers["Content-Type"]
            reason = (
                "A compatible version is required on both Content-Type and Accept "
                "headers if either one has requested a compatible version"
                if len(versions) == 1
                else "Content-Type and Accept version requested have to match"
            )
            raise EsError(
                400,
                cause(
                    "media_type_header_exception",
                    "Invalid media-type value on headers [Accept, Content-Type]",
                    caused_by=cause(
                        "status_exception",
                        f"{reason}. Accept={accept}, Content-Type={content}",
                    ),
                ),
            )
    if "Accept" in versions:
        return (
            f"application/vnd.elasticsearch+json;compatible-with={versions['Accept']}"
        )
    return "application/json"


class FakeElasticsearch:
    """In-memory Elasticsearch 8 for tests: real HTTP, real routing, strict checks.

    Observable state for assertions: ``requests`` (every request received),
    ``max_in_flight`` (most requests handled at once), ``documents(index)`` and
    ``count(index)`` (everything stored, refreshed or not).  Knobs: ``faults``
    (:class:`FaultPlan`), ``refuse_credentials`` (401 for everyone), ``latency`` (added
    before answering each write), ``max_content_length`` (bigger bodies get 413).
    ``server_errors`` collects unexpected exceptions of the handlers; :func:`serving`
    raises if there are any, so a bug in the fake cannot pass unnoticed.

    With ``keep_sources=False`` only ids are stored (enough for 409 semantics), sources
    are neither parsed nor validated and request bodies are not recorded: a fast sink.
    """

    def __init__(
        self,
        *,
        user: str = "elastic",
        password: str = "test-password",
        api_key: str | None = "dGVzdC1pZDp0ZXN0LWtleQ==",  # base64("test-id:test-key")
        refresh_interval: float | None = 1.0,  # None: only explicit refresh
        keep_sources: bool = True,
    ) -> None:
        self.user = user
        self.password = password
        self.api_key = api_key
        self.refresh_interval = refresh_interval
        self.keep_sources = keep_sources
        self.faults = FaultPlan()
        self.refuse_credentials = False
        self.latency = 0.0
        self.max_content_length = DEFAULT_MAX_CONTENT_LENGTH
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.server_errors: list[BaseException] = []
        self.cluster_uuid = _new_uuid()
        self._indices: dict[str, Index] = {}
        self._lock = threading.Lock()  # the server thread writes, the test thread reads

    # -- helpers for test assertions and setup ------------------------------------

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """_id -> _source of everything stored in ``index`` (refreshed or not; empty
        sources when sources are not kept; empty when the index does not exist)."""
        with self._lock:
            found = self._indices.get(index)
            docs = dict(found.docs) if found else {}
        return {doc_id: copy.deepcopy(doc.source or {}) for doc_id, doc in docs.items()}

    def count(self, index: str, *, refreshed: bool = False) -> int:
        """How many documents ``index`` stores, refreshed or not (0 if it does not
        exist); with ``refreshed=True``, only those a search would see now."""
        with self._lock:
            found = self._indices.get(index)
            if found is None:
                return 0
            if refreshed:
                found.catch_up()
                return len(found.visible)
            return len(found.docs)

    def create_index(self, index: str, mappings: dict[str, Any] | None = None) -> None:
        """Create an index directly, as ``PUT /<index>`` would.

        ``mappings`` is the mappings object (``{"properties": ...}``); a whole
        create-index body (``{"mappings": ..., "settings": ...}``) is accepted too.
        Raises :class:`EsError` for what Elasticsearch would reject.
        """
        body: dict[str, Any] = {}
        if mappings is not None:
            if set(mappings) and set(mappings) <= {"mappings", "settings", "aliases"}:
                body = mappings
            else:
                body = {"mappings": mappings}
        with self._lock:
            self._create(index, body)

    # -- request pipeline ---------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=2**40)  # the limit is checked per request
        app.router.add_route("*", "/{tail:.*}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Answer one request; in flight from here until written or dropped."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        unanswered = web.Response()  # aiohttp fails to send it, quietly
        try:
            call = self._call(request, await request.read())
        except ConnectionError:
            return unanswered  # the client went away while sending
        try:
            reply = await self._reply(call)
            if reply is _DROP:
                if request.transport is not None:
                    request.transport.close()
                return unanswered
            response = self._render(call, reply)
        except Exception as exc:  # a bug in the fake: make it visible in the test
            self.server_errors.append(exc)
            error = EsError(500, cause("exception", f"fake elasticsearch: {exc!r}"))
            response = self._render(call, Reply.error(error))
        with contextlib.suppress(ConnectionError):
            await response.prepare(request)  # written here, so that the request is
            await response.write_eof()  # in flight until its answer is sent
        return response

    def _call(self, request: web.Request, body: bytes) -> Call:
        # Split the raw path before decoding: an id may contain an encoded "/".
        segments = [
            unquote(part) for part in request.rel_url.raw_path.split("/") if part
        ]
        query = dict(request.rel_url.query)
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                query,
                dict(request.headers),
                body if self.keep_sources else b"",
            )
        )
        return Call(
            method=request.method,
            segments=segments,
            uri=request.rel_url.raw_path_qs,
            path=request.path,
            query=query,
            headers=CIMultiDict(request.headers),
            body=body,
        )

    async def _reply(self, call: Call) -> Reply:
        try:
            return await self._dispatch(call)
        except EsError as error:
            return Reply.error(error)

    async def _dispatch(self, call: Call) -> Reply:
        if len(call.body) > self.max_content_length:
            return Reply(413, b"", raw_type="text/plain", filterable=False)
        self._authenticate(call)
        route, captured = match_route(call.method, call.segments, call.uri)
        content_type = check_media_types(call, bulk=route.handler == "_bulk")
        self._check_params(call, route)
        handler = functools.partial(getattr(self, route.handler), call, **captured)
        if route.write:
            reply = await self._write(handler, call, captured.get("index", "_na_"))
        else:
            reply = handler()
        if reply is not _DROP:
            reply.headers.append(("Content-Type", content_type))
        return reply

    async def _write(
        self, handler: Callable[..., Reply], call: Call, index: str
    ) -> Reply:
        """A write request, with the latency and the fault it draws applied."""
        fault = self.faults.draw(bulk=call.segments[-1] == "_bulk")
        kind = fault.kind if fault else None
        pause = self.latency + (fault.seconds if fault and kind == "delay" else 0)
        if pause:
            await asyncio.sleep(pause)
        if fault and kind == "status":
            return fault_reply(fault.code, index)
        if kind == "drop_before":
            return _DROP
        reply = handler(item_fault=fault) if kind == "item_status" else handler()
        return _DROP if kind == "drop_after" else reply

    def _render(self, call: Call, reply: Reply) -> web.Response:
        headers = CIMultiDict(reply.headers)
        if reply.from_elasticsearch:
            headers["X-Elastic-Product"] = "Elasticsearch"
        if reply.raw_type is not None:
            body = reply.body if isinstance(reply.body, bytes) else reply.body.encode()
            headers["Content-Type"] = reply.raw_type
        else:
            data = reply.body
            if reply.filterable and "filter_path" in call.query:
                data = filter_paths(data, call.query["filter_path"].split(","))
            indent = 2 if call.flag("pretty") else None
            separators = None if indent else (",", ":")
            body = json.dumps(data, indent=indent, separators=separators).encode()
            headers.setdefault("Content-Type", "application/json")
        if call.method == "HEAD":
            body = b""
        return web.Response(status=reply.status, body=body, headers=headers)

    def _authenticate(self, call: Call) -> None:
        """Basic or ApiKey credentials on every request, Elasticsearch's 401s."""
        challenge = [
            ("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'),
            ("WWW-Authenticate", "ApiKey"),
        ]
        scheme, _, credentials = call.headers.get("Authorization", "").partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except ValueError:  # binascii.Error or UnicodeDecodeError
                decoded = ""
            user, _, password = decoded.partition(":")
            valid = (user, password) == (self.user, self.password)
            if valid and not self.refuse_credentials:
                return
            reason = (
                f"unable to authenticate user [{user}] for REST request [{call.path}]"
            )
        elif scheme == "apikey":
            if credentials == self.api_key and not self.refuse_credentials:
                return
            reason = (
                "unable to authenticate with provided credentials and anonymous access "
                "is not allowed for this request"
            )
        else:
            reason = (
                f"missing authentication credentials for REST request [{call.path}]"
            )
        raise EsError(
            401,
            cause(
                "security_exception",
                reason,
                header={"WWW-Authenticate": [value for _, value in challenge]},
            ),
            headers=challenge,
        )

    @staticmethod
    def _check_params(call: Call, route: Route) -> None:
        if unknown := sorted(set(call.query) - route.params):
            plural = "s" if len(unknown) > 1 else ""
            listing = ", ".join(f"[{name}]" for name in unknown)
            raise bad_request(
                "illegal_argument_exception",
                f"request [{call.path}] contains unrecognized "
                f"parameter{plural}: {listing}",
            )

    # -- cluster ------------------------------------------------------------------

    def _info(self, call: Call) -> Reply:
        return Reply(
            200,
            {
                "name": NODE_NAME,
                "cluster_name": CLUSTER_NAME,
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": VERSION_NUMBER,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
                    "build_date": "2024-08-05T10:05:34.233336849Z",
                    "build_snapshot": False,
                    "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0",
                },
                "tagline": "You Know, for Search",
            },
        )

    def _health(self, call: Call) -> Reply:
        with self._lock:
            shards = len(self._indices)
        return Reply(
            200,
            {
                "cluster_name": CLUSTER_NAME,
                "status": "green",
                "timed_out": False,
                "number_of_nodes": 1,
                "number_of_data_nodes": 1,
                "active_primary_shards": shards,
                "active_shards": shards,
                "relocating_shards": 0,
                "initializing_shards": 0,
                "unassigned_shards": 0,
                "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0,
            },
        )

    # -- indices ------------------------------------------------------------------

    def _resolve(self, expression: str | None) -> list[Index]:
        """Indices named by ``a,b``, wildcards (``logs-*``) or ``_all``/none; a name
        that matches no index is a 404, a wildcard that matches none is not."""
        if expression in (None, "_all", "*"):
            return list(self._indices.values())
        found: dict[str, Index] = {}
        for name in expression.split(","):
            if "*" in name:
                found |= {
                    n: i for n, i in self._indices.items() if wildcard_match(name, n)
                }
            elif name in self._indices:
                found[name] = self._indices[name]
            else:
                raise index_not_found(name)
        return list(found.values())

    def _create(self, name: str, body: Any) -> Index:
        check_index_name(name)
        if not isinstance(body, dict):
            raise bad_request("parse_exception", "Failed to parse content to map")
        if unknown := sorted(set(body) - {"mappings", "settings", "aliases"}):
            raise bad_request(
                "parse_exception", f"unknown key [{unknown[0]}] for create index"
            )
        mappings = check_mappings(body.get("mappings", {}))
        settings = check_settings(body.get("settings", {}))
        if name in self._indices:
            existing = self._indices[name]
            raise bad_request(
                "resource_already_exists_exception",
                f"index [{name}/{existing.uuid}] already exists",
                index_uuid=existing.uuid,
                index=name,
            )
        interval = self.refresh_interval
        if "index.refresh_interval" in settings:
            interval = parse_time_value(
                settings["index.refresh_interval"], "index.refresh_interval"
            )
        index = Index(
            name, mappings, settings, interval, aliases=body.get("aliases", {})
        )
        self._indices[name] = index
        return index

    def _create_index(self, call: Call, index: str) -> Reply:
        body = call.json("parse_exception") or {}
        with self._lock:
            self._create(index, body)
        return Reply(
            200, {"acknowledged": True, "shards_acknowledged": True, "index": index}
        )

    def _get_index(self, call: Call, index: str) -> Reply:
        with self._lock:
            found = self._resolve(index)
            body = {
                i.name: {
                    "aliases": copy.deepcopy(i.aliases),
                    "mappings": i.mappings_body(),
                    "settings": i.settings_body(),
                }
                for i in found
            }
        return Reply(200, body)

    def _get_mapping(self, call: Call, index: str) -> Reply:
        with self._lock:
            found = self._resolve(index)
            return Reply(200, {i.name: {"mappings": i.mappings_body()} for i in found})

    def _delete_index(self, call: Call, index: str) -> Reply:
        if "*" in index or index == "_all":
            raise bad_request(
                "illegal_argument_exception",
                "Wildcard expressions or all indices are not allowed",
            )
        with self._lock:
            for found in self._resolve(index):
                del self._indices[found.name]
        return Reply(200, {"acknowledged": True})

    def _refresh(self, call: Call, index: str | None = None) -> Reply:
        with self._lock:
            found = self._resolve(index)
            for each in found:
                each.refresh()
        shards = {"total": 2 * len(found), "successful": len(found), "failed": 0}
        return Reply(200, {"_shards": shards})

    # -- writing documents --------------------------------------------------------

    def _write_index(self, name: str) -> Index:
        """The index a write goes to, created with dynamic mappings when missing
        (Elasticsearch's default ``action.auto_create_index``)."""
        return self._indices.get(name) or self._create(name, {})

    def _apply(
        self,
        index: Index,
        op: str,
        doc_id: str,
        payload: bytes | None,
        changes: Changes,
    ) -> dict[str, Any]:
        """Apply one write (index, create, update or delete) to ``index``.

        Returns the item result (with its ``status``) or raises ItemFailure; what it
        stores is appended to ``changes``, which the caller publishes for refresh.
        """
        current = index.docs.get(doc_id)
        if op == "delete":
            if current is None:
                return _result(index, doc_id, 1, index.next_seq_no(), "not_found", 404)
            index.delete(doc_id, changes)
            version = current.version + 1
            return _result(index, doc_id, version, index.next_seq_no(), "deleted", 200)
        if op == "create" and current is not None:
            raise _item_failure(
                index,
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists (current "
                f"version [{current.version}])",
            )
        source = None
        if op == "update":
            source = self._updated_source(index, doc_id, current, payload or b"")
            if source is _NOOP:
                assert current is not None
                return _result(
                    index, doc_id, current.version, current.seq_no, "noop", 200
                )
        elif self.keep_sources:
            source = parse_source(payload or b"")
        if self.keep_sources:
            raw = (payload or b"").decode(errors="replace")
            mapper = DocumentMapper(index.fields, index.mappings, doc_id, raw)
            if added := mapper.check(source):
                index.add_fields(added)
        doc = index.put(doc_id, source, changes)
        if current is None:
            return _result(index, doc_id, doc.version, doc.seq_no, "created", 201)
        return _result(index, doc_id, doc.version, doc.seq_no, "updated", 200)

    def _updated_source(
        self, index: Index, doc_id: str, current: Doc | None, payload: bytes
    ) -> Any:
        """The document after a partial update: a dict, ``_NOOP`` when nothing
        changes, or None when the fake keeps no sources."""
        request = parse_source(payload) if self.keep_sources else {}
        if "script" in request:
            raise unsupported("update scripts are not supported")
        if self.keep_sources and "doc" not in request and "upsert" not in request:
            raise _item_failure(
                index,
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: script or doc is missing;",
            )
        if current is None:
            if request.get("doc_as_upsert"):
                return request["doc"]
            if "upsert" in request:
                return request["upsert"]
            raise _item_failure(
                index,
                404,
                "document_missing_exception",
                f"[{doc_id}]: document missing",
            )
        if not self.keep_sources:
            return None
        merged = _deep_merge(current.source or {}, request.get("doc", {}))
        if merged == current.source and request.get("detect_noop", True):
            return _NOOP
        return merged

    @staticmethod
    def _refresh_param(call: Call) -> bool:
        value = call.query.get("refresh", "false")
        if value not in ("", "true", "false", "wait_for"):
            raise bad_request(
                "illegal_argument_exception", f"Unknown value for refresh: [{value}]."
            )
        return value != "false"

    def _single_write(
        self, call: Call, index: str, op: str, doc_id: str | None
    ) -> Reply:
        """The single-document APIs: one item, answered with its own status."""
        refresh = self._refresh_param(call)
        payload = None if op == "delete" else self._write_body(call)
        if doc_id is not None:
            check_doc_id(doc_id)
        with self._lock:
            if op == "delete" and index not in self._indices:
                raise index_not_found(index)
            target = self._write_index(index)
            changes: Changes = []
            try:
                result = self._apply(
                    target, op, doc_id or new_doc_id(), payload, changes
                )
            except ItemFailure as failure:
                raise EsError(failure.status, failure.error) from None
            finally:
                target.publish(changes)
            if refresh:
                target.refresh()
        status = result.pop("status")
        if refresh and result["result"] != "noop":
            result["forced_refresh"] = True
        location = f"/{index}/_doc/{result['_id']}"
        return Reply(status, result, [("Location", location)] if status == 201 else [])

    def _write_body(self, call: Call) -> bytes:
        if not call.body.strip():
            raise bad_request("parse_exception", "request body is required")
        return call.body

    @staticmethod
    def _op_type(call: Call, default: str) -> str:
        op_type = call.query.get("op_type", default)
        if op_type not in ("index", "create"):
            raise bad_request(
                "illegal_argument_exception",
                f"opType must be 'create' or 'index', found: [{op_type}]",
            )
        return op_type

    def _index_auto_id(self, call: Call, index: str) -> Reply:
        return self._single_write(call, index, self._op_type(call, "index"), None)

    def _index_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        return self._single_write(call, index, self._op_type(call, "index"), doc_id)

    def _create_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        return self._single_write(call, index, "create", doc_id)

    def _update_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        return self._single_write(call, index, "update", doc_id)

    def _delete_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        return self._single_write(call, index, "delete", doc_id)

    def _get_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        with self._lock:
            target = self._indices.get(index)
            if target is None:
                raise index_not_found(index)
            doc = target.docs.get(doc_id)  # GET by id is real-time: no refresh needed
        if doc is None:
            return Reply(404, {"_index": index, "_id": doc_id, "found": False})
        return Reply(
            200,
            {
                "_index": index,
                "_id": doc_id,
                "_version": doc.version,
                "_seq_no": doc.seq_no,
                "_primary_term": PRIMARY_TERM,
                "found": True,
                "_source": doc.source or {},
            },
        )

    # -- _bulk --------------------------------------------------------------------

    def _bulk(
        self, call: Call, index: str | None = None, item_fault: Fault | None = None
    ) -> Reply:
        """NDJSON bulk: the whole request is validated first, then applied item by
        item; each item succeeds or fails on its own, in request order."""
        refresh = self._refresh_param(call)
        operations = parse_bulk(call.body, index)
        rejected = set()
        if item_fault is not None:
            rejected = self.faults.reject_items(item_fault, len(operations))
        items = []
        touched: dict[str, tuple[Index, Changes]] = {}
        with self._lock:
            for position, (op, meta, payload) in enumerate(operations):
                if position in rejected:
                    outcome = _item_error(meta, 429, _rejected_execution())
                else:
                    outcome = self._bulk_item(op, meta, payload, touched)
                items.append({op: outcome})
            for target, changes in touched.values():
                target.publish(changes)
                if refresh:
                    target.refresh()
        errors = any("error" in outcome for item in items for outcome in item.values())
        return Reply(200, {"took": call.took(), "errors": errors, "items": items})

    def _bulk_item(
        self,
        op: str,
        meta: dict[str, Any],
        payload: bytes | None,
        touched: dict[str, tuple[Index, Changes]],
    ) -> dict[str, Any]:
        name = meta["_index"]
        try:
            if name not in touched:
                if op == "delete" and name not in self._indices:
                    raise index_not_found(name)
                touched[name] = (self._write_index(name), [])
            target, changes = touched[name]
            return self._apply(target, op, meta["_id"], payload, changes)
        except ItemFailure as failure:
            return _item_error(meta, failure.status, failure.error)
        except EsError as error:
            return _item_error(meta, error.status, error.body["error"]["root_cause"][0])

    # -- search -----------------------------------------------------------------

    def _snapshot(self, index: str | None) -> tuple[list[Index], list[Hit]]:
        """The searchable documents of the target indices (after any refresh due)."""
        with self._lock:
            targets = self._resolve(index)
            hits = []
            for target in targets:
                target.catch_up()
                hits += [(target, i, d.source or {}) for i, d in target.visible.items()]
        return targets, hits

    def _count(self, call: Call, index: str | None = None) -> Reply:
        body = call.json() or {}
        if not isinstance(body, dict):
            raise bad_request("parsing_exception", "request body must be an object")
        if unknown := sorted(set(body) - {"query"}):
            raise bad_request(
                "parsing_exception", f"request does not support [{unknown[0]}]"
            )
        targets, hits = self._snapshot(index)
        matched = matching(body.get("query", MATCH_ALL), targets, hits)
        return Reply(200, {"count": len(matched), "_shards": _search_shards(targets)})

    def _search(self, call: Call, index: str | None = None) -> Reply:
        body = search_body(call)
        targets, hits = self._snapshot(index)
        matched = matching(body.get("query", MATCH_ALL), targets, hits)
        hits_section = hits_body(body, matched, targets, call)
        aggs = body.get("aggs", body.get("aggregations"))
        result: dict[str, Any] = {
            "took": call.took(),
            "timed_out": False,
            "_shards": _search_shards(targets),
            "hits": hits_section,
        }
        if aggs:
            result["aggregations"] = Aggregator(targets, hits).run(aggs, matched)
            result["took"] = call.took()
        return Reply(200, result)


MATCH_ALL = {"match_all": {}}
SEARCH_KEYS = words(
    """
    query size from aggs aggregations sort _source track_total_hits timeout
    track_scores version seq_no_primary_term min_score terminate_after
    """
)


def search_body(call: Call) -> dict[str, Any]:
    """The search request: the JSON body with the URL parameters applied over it."""
    body = call.json() or {}
    if not isinstance(body, dict):
        raise bad_request("parsing_exception", "Unknown key for a START_ARRAY in [].")
    if unknown := sorted(set(body) - SEARCH_KEYS):
        raise bad_request(
            "parsing_exception", f"Unknown key for a START_OBJECT in [{unknown[0]}]."
        )
    body |= {name: call.query[name] for name in ("size", "from") if name in call.query}
    for name, default in (("size", 10), ("from", 0)):
        try:
            body[name] = int(body.get(name, default))
        except UNPARSABLE:
            raise bad_request(
                "illegal_argument_exception",
                f"Failed to parse int parameter [{name}] with value [{body[name]}]",
            ) from None
        if body[name] < 0:
            raise bad_request(
                "illegal_argument_exception",
                f"[{name}] parameter cannot be negative, found [{body[name]}]",
            )
    track = call.query.get("track_total_hits", body.get("track_total_hits"))
    if isinstance(track, str):
        track = {"true": True, "false": False}.get(track) or int(track)
    body["track_total_hits"] = track
    return body


def hits_body(
    body: dict[str, Any], matched: list[Hit], targets: list[Index], call: Call
) -> dict[str, Any]:
    """The ``hits`` section: total, max_score and one page of (sorted) hits."""
    size, start = body["size"], body["from"]
    if start + size > MAX_RESULT_WINDOW:
        raise search_failure(
            targets[0].name if targets else "_na_",
            cause(
                "illegal_argument_exception",
                "Result window is too large, from + size must be less than or equal "
                f"to: [{MAX_RESULT_WINDOW}] but was [{start + size}]. See the scroll "
                "api for a more efficient way to request large data sets. This limit "
                "can be set by changing the [index.max_result_window] index level "
                "setting.",
            ),
        )
    ordered, sort_rows = sort_hits(body.get("sort"), matched, targets)
    query = body.get("query", MATCH_ALL)
    score = None if sort_rows is not None else (1.0 if _scores(query) else 0.0)
    page = ordered[start : start + size]
    rows = (
        sort_rows[start : start + size] if sort_rows is not None else [None] * len(page)
    )
    section: dict[str, Any] = {}
    total = _total(len(matched), body["track_total_hits"], call)
    if total is not None:
        section["total"] = total
    section["max_score"] = score if page else None
    section["hits"] = [
        _hit_body(hit, body.get("_source", True), score, row)
        for hit, row in zip(page, rows, strict=True)
    ]
    return section


def matching(query: Any, targets: list[Index], hits: list[Hit]) -> list[Hit]:
    """The hits that match ``query``; compiled per index, as field types may differ."""
    if not targets:  # still reject a malformed query, as Elasticsearch does
        QueryCompiler(Index("_na_", {"properties": {}}, {}, None)).compile(query)
    predicates = {t.name: QueryCompiler(t).compile(query) for t in targets}
    return [hit for hit in hits if predicates[hit[0].name](hit[1], hit[2])]


def _search_shards(targets: list[Index]) -> dict[str, int]:
    count = len(targets)
    return {"total": count, "successful": count, "skipped": 0, "failed": 0}


def _result(
    index: Index, doc_id: str, version: int, seq_no: int, result: str, status: int
) -> dict[str, Any]:
    """A successful write, as a bulk item (the single-document APIs drop status)."""
    return {
        "_index": index.name,
        "_id": doc_id,
        "_version": version,
        "result": result,
        "_shards": NOOP_SHARDS if result == "noop" else WRITE_SHARDS,
        "_seq_no": seq_no,
        "_primary_term": PRIMARY_TERM,
        "status": status,
    }


def _item_failure(index: Index, status: int, type_: str, reason: str) -> ItemFailure:
    return ItemFailure(
        status, cause(type_, reason, index_uuid=index.uuid, shard="0", index=index.name)
    )


def _item_error(meta: dict[str, Any], status: int, error: dict[str, Any]) -> dict:
    """A failed bulk item: no version or seq_no, its status and the error."""
    return {
        "_index": meta["_index"],
        "_id": meta["_id"],
        "status": status,
        "error": error,
    }


_NOOP = object()  # an update that changes nothing


def check_doc_id(doc_id: str) -> None:
    if len(doc_id.encode()) > MAX_ID_BYTES:
        raise bad_request(
            "action_request_validation_exception",
            f"Validation Failed: 1: id [{doc_id}] is too long, must be no longer than "
            f"512 bytes but was: {len(doc_id.encode())};",
        )


BULK_OPS = ("index", "create", "update", "delete")
BULK_METADATA = words(
    """
    _index _id routing pipeline require_alias require_data_stream if_seq_no
    if_primary_term version version_type dynamic_templates retry_on_conflict _source
    op_type list_executed_pipelines
    """
)
BulkOperation = tuple[str, dict[str, Any], bytes | None]  # (op, metadata, source line)
_decode_json = json.JSONDecoder().decode


def parse_bulk(body: bytes, default_index: str | None) -> list[BulkOperation]:
    """Split an NDJSON bulk body into (op, metadata, source line) triples.

    Like Elasticsearch, a malformed action line or a missing index or id fails the
    whole request (400); a bad document only fails its own item, later.  Source lines
    are not parsed here: a sink that keeps no sources never parses them.
    """
    if not body:
        raise bad_request("parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise bad_request(
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        )
    lines = body.split(b"\n")[:-1]
    operations: list[BulkOperation] = []
    problems: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        position += 1
        if not line.strip():
            continue
        op, meta = _bulk_action(line, position, default_index)
        payload = None
        if op != "delete":
            payload = lines[position] if position < len(lines) else b""
            position += 1
            if not payload.strip():
                problems.append("source is missing")
        problems += _bulk_problems(op, meta)
        operations.append((op, meta, payload))
    if not operations:
        problems.append("no requests added")
    if problems:
        listing = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        raise bad_request(
            "action_request_validation_exception", f"Validation Failed: {listing}"
        )
    return operations


def _bulk_action(
    line: bytes, line_no: int, default_index: str | None
) -> tuple[str, dict[str, Any]]:
    """One action line: its op and metadata (index defaulted, id as a string)."""
    try:
        action = _decode_json(line.decode())
    except ValueError:  # also UnicodeDecodeError
        action = parse_json(line)  # raises the error Elasticsearch gives
    malformed = f"Malformed action/metadata line [{line_no}], expected"
    if not isinstance(action, dict) or len(action) != 1:
        raise bad_request(
            "illegal_argument_exception",
            f"{malformed} START_OBJECT or END_OBJECT but found [VALUE_STRING]",
        )
    ((op, meta),) = action.items()
    if op not in BULK_OPS:
        raise bad_request(
            "illegal_argument_exception",
            f"{malformed} field [create], [delete], [index] or [update] but found "
            f"[{op}]",
        )
    if not isinstance(meta, dict):
        raise bad_request(
            "illegal_argument_exception",
            f"{malformed} START_OBJECT but found [VALUE_STRING]",
        )
    if not meta.keys() <= BULK_METADATA:
        raise bad_request(
            "illegal_argument_exception",
            f"Action/metadata line [{line_no}] contains an unknown parameter "
            f"[{min(meta.keys() - BULK_METADATA)}]",
        )
    meta["_index"] = meta.get("_index") or default_index
    if meta.get("_id") is not None:
        meta["_id"] = str(meta["_id"])
    elif op in ("index", "create"):
        meta["_id"] = new_doc_id()
    return op, meta


def _bulk_problems(op: str, meta: dict[str, Any]) -> list[str]:
    """What Elasticsearch's request validation says about one action."""
    problems = []
    if meta["_index"] is None:
        problems.append("index is missing")
    doc_id = meta.get("_id")
    if doc_id is None:
        problems.append("id is missing")
    elif not doc_id:
        problems.append("if _id is specified it must not be empty")
    elif len(doc_id.encode()) > MAX_ID_BYTES:
        problems.append(
            f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
            f"{len(doc_id.encode())}"
        )
    return problems


def _deep_merge(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _scores(query: Any) -> bool:
    """False for queries that only filter (Elasticsearch scores them 0.0)."""
    if isinstance(query, dict) and set(query) == {"bool"}:
        return bool({"must", "should"} & set(query["bool"] or {}))
    return True


def _total(count: int, track: Any, call: Call) -> Any:
    """``hits.total``: exact up to ``track_total_hits`` (10,000 by default), then a
    lower bound; an int with ``rest_total_hits_as_int``; absent when not tracked."""
    if call.flag("rest_total_hits_as_int") and "rest_total_hits_as_int" in call.query:
        return count
    if track is False:
        return None
    limit = math.inf if track is True else DEFAULT_TRACK_TOTAL_HITS
    if isinstance(track, int) and not isinstance(track, bool):
        limit = track
    if count <= limit:
        return {"value": count, "relation": "eq"}
    return {"value": limit, "relation": "gte"}


def _sort_rules(spec: Any, targets: list[Index]) -> list[tuple[str, bool]]:
    """``sort`` as (field, descending) pairs; text fields fail as in Elasticsearch."""
    rules = []
    for rule in spec if isinstance(spec, list) else [spec]:
        if isinstance(rule, str):
            name, order = rule, "desc" if rule == "_score" else "asc"
        elif isinstance(rule, dict) and len(rule) == 1:
            ((name, order),) = rule.items()
            order = order.get("order", "asc") if isinstance(order, dict) else order
        else:
            raise bad_request("parsing_exception", "malformed sort format")
        for index in targets:
            field = index.fields.get(name)
            if (
                field
                and field.type in TEXT_TYPES
                and not field.mapping.get("fielddata")
            ):
                raise search_failure(index.name, fielddata_disabled(index.name, name))
        rules.append((name, order == "desc"))
    return rules


def sort_hits(
    spec: Any, hits: list[Hit], targets: list[Index]
) -> tuple[list[Hit], list[list[Any]] | None]:
    """Hits in ``sort`` order (default: as stored) and, when sorted, each hit's sort
    values in the same order."""
    if spec is None:
        return hits, None
    rules = _sort_rules(spec, targets)
    rows = []
    for index, _, source in hits:
        row = []
        for name, descending in rules:
            field = index.fields.get(name)
            found = indexed_values(field, source) if field else []
            row.append((max(found) if descending else min(found)) if found else None)
            if name in ("_score", "_doc"):
                row[-1] = 1.0 if name == "_score" else 0
        rows.append(row)
    order = sorted(
        range(len(hits)),
        key=lambda i: tuple(
            _Sortable(value, desc)
            for value, (_, desc) in zip(rows[i], rules, strict=True)
        ),
    )
    return [hits[i] for i in order], [rows[i] for i in order]


def _hit_body(
    hit: Hit, source_spec: Any, score: float | None, sort_row: list[Any] | None
) -> dict[str, Any]:
    index, doc_id, source = hit
    body: dict[str, Any] = {"_index": index.name, "_id": doc_id, "_score": score}
    if source_spec is True:
        body["_source"] = source
    elif source_spec:
        if isinstance(source_spec, str):
            source_spec = [source_spec]
        if isinstance(source_spec, dict):
            includes = source_spec.get("includes") or ["**"]
            excludes = ["-" + p for p in source_spec.get("excludes", [])]
            source_spec = [*includes, *excludes]
        body["_source"] = filter_paths(source, source_spec)
    if sort_row is not None:
        body["sort"] = [
            str(v)
            if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address)
            else v
            for v in sort_row
        ]
    return body


def fault_reply(code: int, index: str) -> Reply:
    """What a client sees when a write fails with ``code``: Elasticsearch's own error
    for 429/503, a proxy's HTML (502) or text (504) without X-Elastic-Product, and an
    empty 413 as Elasticsearch's HTTP layer sends for an oversized body."""
    if code == 429:
        return Reply.error(EsError(429, _rejected_execution()))
    if code == 502:
        html = (
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return Reply(502, html, raw_type="text/html", from_elasticsearch=False)
    if code == 504:
        text = "upstream request timeout"  # what an Envoy-style proxy sends
        return Reply(504, text, raw_type="text/plain", from_elasticsearch=False)
    if code == 503:
        reason = (
            f"[{index}][0] primary shard is not active Timeout: [1m], request: "
            f"[BulkShardRequest [[{index}][0]] containing [1] requests]"
        )
        return Reply.error(EsError(503, cause("unavailable_shards_exception", reason)))
    if code == 413:
        return Reply(413, b"", raw_type="text/plain", filterable=False)
    types = {
        400: "illegal_argument_exception",
        401: "security_exception",
        403: "security_exception",
        404: "resource_not_found_exception",
        409: "version_conflict_engine_exception",
    }
    return Reply.error(
        EsError(code, cause(types.get(code, "exception"), f"injected fault [{code}]"))
    )


# --------------------------------------------------------------------------------------
# Serving: a background thread for tests, the foreground for the command line
# --------------------------------------------------------------------------------------


async def start_site(
    fake: FakeElasticsearch,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
) -> tuple[web.AppRunner, str]:
    """Start listening; return the runner (to clean up) and the base URL."""
    # A short shutdown_timeout: a handler still sleeping in a delay fault when the
    # test ends is cancelled instead of holding the test up.
    runner = web.AppRunner(fake.make_app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    return runner, f"{scheme}://{host}:{bound_port}"


class _ServerThread:
    """An event loop of its own in a daemon thread, so synchronous and asynchronous
    tests alike can talk to the server."""

    def __init__(
        self, fake: FakeElasticsearch, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="fake-elasticsearch", daemon=True
        )

    def start(self) -> str:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise RuntimeError("fake Elasticsearch could not start") from self._failure
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() or serving()
            self._failure = exc
            self.fake.server_errors.append(exc)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner, self.url = await start_site(self.fake, "127.0.0.1", 0, self.ssl_context)
        try:
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


@contextlib.contextmanager
def serving(
    fake: FakeElasticsearch, *, ssl_context: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Run the server on 127.0.0.1 (free port) in a background thread with its own event
    loop; yield its base URL ("http://127.0.0.1:PORT" or "https://..."); shut down
    cleanly.  Raises RuntimeError afterwards if a handler failed unexpectedly."""
    server = _ServerThread(fake, ssl_context)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
    if fake.server_errors:
        raise RuntimeError(
            f"fake Elasticsearch failed while handling requests: {fake.server_errors!r}"
        ) from fake.server_errors[0]


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        description="An in-memory Elasticsearch 8 for tests."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--user", default="elastic")
    parser.add_argument("--password", default="test-password")
    parser.add_argument("--api-key", default="dGVzdC1pZDp0ZXN0LWtleQ==")
    parser.add_argument(
        "--refresh-interval", type=float, default=1.0, help="seconds; negative: never"
    )
    parser.add_argument(
        "--no-keep-sources",
        dest="keep_sources",
        action="store_false",
        help="store ids only: a fast sink for benchmarks",
    )
    args = parser.parse_args(argv)
    fake = FakeElasticsearch(
        user=args.user,
        password=args.password,
        api_key=args.api_key or None,
        refresh_interval=args.refresh_interval if args.refresh_interval >= 0 else None,
        keep_sources=args.keep_sources,
    )

    async def serve() -> None:
        runner, url = await start_site(fake, args.host, args.port, None)
        try:
            print(
                f"Fake Elasticsearch {VERSION_NUMBER} at {url} user={fake.user} "
                f"password={fake.password} api_key={fake.api_key} (Ctrl-C stops it)",
                flush=True,
            )
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, most likely
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
