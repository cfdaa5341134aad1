"""An in-memory Elasticsearch 8 for tests: real HTTP, real routing, strict checks.

The tests run without a network or a cluster, yet exercise the real client stack (the
aiohttp connector, timeouts, TLS): this serves HTTP on 127.0.0.1 and answers as
Elasticsearch 8 does, errors included, and rejects what a cluster rejects (a wrong
header, a bad date, a terms aggregation on a text field...).  It implements what the
project uses: anything else gets a 400 "[fake elasticsearch] ... is not supported",
never an answer that ignores part of a request.  Writes can fail on purpose
(:class:`FaultPlan`).  In tests: ``with serving(FakeElasticsearch()) as url: ...``;
in a shell: ``python tests/fake_elasticsearch.py --port 9200``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import copy
import dataclasses
import datetime as dt
import functools
import json
import math
import operator
import random
import re
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote

from aiohttp import web

# GET / of Elasticsearch 8.15.0 (the build's hash and date are made up).
CLUSTER_NAME, NODE_NAME = "fake-elasticsearch", "fake-node"
VERSION = {"number": "8.15.0", "build_flavor": "default", "build_type": "tar"}
VERSION |= {"build_hash": "0" * 40, "build_date": "2024-08-05T10:05:34.233336849Z"}
VERSION |= {"build_snapshot": False, "lucene_version": "9.11.1"}
VERSION |= {"minimum_wire_compatibility_version": "7.17.0"}
VERSION |= {"minimum_index_compatibility_version": "7.0.0"}
API_KEY = "dGVzdC1pZDp0ZXN0LWtleQ=="  # base64("test-id:test-key")
# One primary per index, and a replica that a single node cannot allocate.
WRITE_SHARDS = {"total": 2, "successful": 1, "failed": 0}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The field types of Elasticsearch 8, then those modelled here (mapped or dynamic).
ES_FIELD_TYPES = """aggregate_metric_double alias binary boolean byte completion
    constant_keyword date date_nanos date_range dense_vector double double_range
    flattened float float_range geo_point geo_shape half_float histogram integer
    integer_range ip ip_range join keyword long long_range match_only_text nested object
    percolator point rank_feature rank_features scaled_float search_as_you_type
    semantic_text shape short sparse_vector text token_count unsigned_long version
    wildcard"""
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
NUMERIC_TYPES = {"float", "double", *INTEGER_RANGES}
FIELD_TYPES = {*NUMERIC_TYPES, "keyword", "text", "date", "boolean", "geo_point"}
FIELD_PARAMS = {"type", "properties", "fields", "ignore_above", "fielddata"}
DATE_FORMAT = "strict_date_optional_time||epoch_millis"  # the default, the only one


# -- Errors -------------------------------------------------------------------------
def cause(type_: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An Elasticsearch error object (keys with dots: ``**{"resource.id": x}``)."""
    return {"type": type_, "reason": reason, **extra}


class EsError(Exception):
    """An error answer: a :func:`cause`, answered with its ``root_cause`` as
    Elasticsearch does, or the bare string a few errors are (unknown route...)."""

    def __init__(self, status: int, error: Any, root: Any = None, headers: Any = ()):
        if isinstance(error, dict):
            root = root or [{k: v for k, v in error.items() if k != "caused_by"}]
            error = {"root_cause": root, **error}
        super().__init__(f"[{status}] {error}")
        self.status, self.headers = status, headers
        self.body = {"error": error, "status": status}

    @property
    def reply(self) -> Reply:
        return Reply(self.status, self.body, self.headers)


def bad_request(type_: str, reason: str, **extra: Any) -> EsError:
    return EsError(400, cause(type_, reason, **extra))


def unsupported(what: str) -> EsError:
    """Something Elasticsearch may accept that this fake does not implement."""
    reason = f"[fake elasticsearch] {what} is not supported"
    return bad_request("illegal_argument_exception", reason)


def search_failure(index: str, reason: dict[str, Any]) -> EsError:
    """A query-time failure, which Elasticsearch reports as "all shards failed"."""
    failed = [{"shard": 0, "index": index, "node": "fake-node", "reason": reason}]
    extra = {"phase": "query", "grouped": True, "failed_shards": failed}
    error = cause("search_phase_execution_exception", "all shards failed", **extra)
    return EsError(400, error | {"caused_by": reason}, [reason])


# -- filter_path: one generic response filter ---------------------------------------

Paths = tuple[tuple[str, ...], ...]  # path patterns, as the segments left to match
EMPTY = ({}, [])  # what the filter leaves out


def wildcard(pattern: str, name: str) -> bool:
    """Elasticsearch wildcards: only ``*`` is special."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), name) is not None


@functools.lru_cache(4096)  # a bulk answer repeats the same few keys many times
def _step(paths: Paths, key: str) -> Paths:
    return tuple(path[1:] for path in paths if wildcard(path[0], key))


def filter_paths(value: Any, paths: Paths) -> Any:
    """Elasticsearch's response filtering (the ``filter_path`` parameter): dotted
    paths, ``*`` wildcards, arrays traversed.  Like Elasticsearch, objects and arrays
    left empty disappear: ``items.*.error`` keeps only the failed items of a bulk."""
    if () in paths:
        return value  # a pattern is fully matched: keep the whole value
    if isinstance(value, list):
        return [k for v in value if (k := filter_paths(v, paths)) not in EMPTY]
    if not isinstance(value, dict):
        return {}
    kept = {}
    for key, child in value.items():
        rest = _step(paths, key)
        if rest and (child := filter_paths(child, rest)) not in EMPTY:
            kept[key] = child
    return kept


# -- Values: what a field of each type accepts, and what it indexes ------------------

_DATE = re.compile(  # yyyy[-MM[-dd['T'HH[:mm[:ss[.S]]][Z|+hh:mm]]]]
    r"\d{4}(-\d\d(-\d\d(T\d\d(:\d\d(:\d\d([.,]\d{1,9})?)?)?(Z|[+-]\d\d(:?\d\d)?)?)?)?)?"
)


class BadValue(ValueError):
    """A value that a field rejects; carries Elasticsearch's inner cause."""

    def __init__(self, type_: str, reason: str) -> None:
        super().__init__(reason)
        self.cause = cause(type_, reason)


def preview(value: Any) -> str:
    """A value as Elasticsearch quotes it in messages, and as a keyword indexes it."""
    return value if isinstance(value, str) else json.dumps(value)


def to_number(value: Any) -> int | float:
    """A JSON number, or a string holding one (Elasticsearch coerces those)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        reason = f"Current token ({preview(value)}) not numeric"
        raise BadValue("illegal_argument_exception", reason)
    with contextlib.suppress(ValueError):
        return value if isinstance(value, int | float) else int(value)
    try:
        return float(value)
    except ValueError:
        reason = f'For input string: "{value}"'
        raise BadValue("number_format_exception", reason) from None


def parse_date(value: Any) -> int:
    """Epoch millis of a date in the default format, ``strict_date_optional_time||
    epoch_millis`` (UTC unless it says), or of milliseconds, also as a string."""
    if isinstance(value, str) and _DATE.fullmatch(value):
        moment = dt.datetime.fromisoformat(value + "-01-01"[max(0, len(value) - 4) :])
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return (moment - EPOCH) // dt.timedelta(milliseconds=1)
    if not math.isfinite(millis := to_number(value)):
        raise ValueError(value)
    return int(millis)


def check_geo_point(value: Any) -> None:
    """A point as ``{"lat", "lon"}``, ``"lat,lon"`` or ``[lon, lat]``, in range."""
    if isinstance(value, dict) and set(value) == {"lat", "lon"}:
        lat, lon = value["lat"], value["lon"]
    elif isinstance(value, list) and len(value) in (2, 3):
        lon, lat = value[:2]
    elif isinstance(value, str) and "," in value:
        lat, _, lon = value.partition(",")
    else:
        raise BadValue("parsing_exception", "field must be either [lat], [lon]")
    for name, number, limit in (("latitude", lat, 90), ("longitude", lon, 180)):
        if not -limit <= to_number(number) <= limit:
            reason = f"illegal {name} value [{number}]"
            raise BadValue("illegal_argument_exception", reason)


def index_value(type_: str, value: Any) -> Any:
    """``value`` as a field of ``type_`` indexes it (text, a number, epoch millis, a
    boolean); raises BadValue, with Elasticsearch's reason, if the field rejects it."""
    if type_ in ("keyword", "text"):
        if isinstance(value, dict | list):
            reason = "Can't get text on a START_OBJECT"
            raise BadValue("illegal_state_exception", reason)
        return preview(value)  # numbers and booleans are indexed as their text
    if type_ in NUMERIC_TYPES:
        number = to_number(value)
        low, high = INTEGER_RANGES.get(type_, (-math.inf, math.inf))
        if not (math.isfinite(number) and low <= number <= high):
            reason = f"Value [{number}] is out of range for type [{type_}]"
            raise BadValue("illegal_argument_exception", reason)
        return int(number) if type_ in INTEGER_RANGES else float(number)  # coerce
    if type_ == "date":
        try:
            return parse_date(value)
        except ValueError:
            reason = f"failed to parse date field [{preview(value)}] with format "
            raise BadValue("illegal_argument_exception", reason + DATE_FORMAT) from None
    if type_ == "boolean":
        if isinstance(value, bool) or value in ("true", "false", ""):
            return value in (True, "true")
        reason = f"Failed to parse value [{preview(value)}] as only [true] or [false]"
        raise BadValue("illegal_argument_exception", reason + " are allowed.")
    check_geo_point(value)
    return value


# -- Mappings, and checking documents against them -----------------------------------
class Field(NamedTuple):
    """A mapped field: its type, where its value lives in ``_source`` (a multi-field
    such as ``name.keyword`` reads ``name``) and its mapping."""

    type: str
    source_path: str
    mapping: dict[str, Any]


def check_properties(properties: Any) -> None:
    """Check field mappings: real types only, and only what the fake models."""
    if not isinstance(properties, dict):
        raise unsupported(f"the mapping {preview(properties)}")
    for name, entry in properties.items():
        type_ = entry.get("type", "object") if isinstance(entry, dict) else None
        if type_ not in ES_FIELD_TYPES.split():
            reason = (
                f"No handler for type [{preview(type_)}] declared on field [{name}]"
            )
            inner = cause("mapper_parsing_exception", reason)
            error = inner | {"reason": f"Failed to parse mapping: {reason}"}
            raise EsError(400, error | {"caused_by": inner}, [inner])
        extra = sorted(set(entry) - FIELD_PARAMS)
        if type_ not in {*FIELD_TYPES, "object"} or "." in name or extra:
            raise unsupported(f"[{extra[0] if extra else type_}] on field [{name}]")
        check_properties(entry.get("properties", {}))
        check_properties(entry.get("fields", {}))


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, Field]:
    """Every mapped path (objects, leaves and multi-fields) -> its :class:`Field`."""
    fields = {}
    for name, entry in properties.items():
        path = prefix + name
        fields[path] = Field(entry.get("type", "object"), path, entry)
        fields |= flatten(entry.get("properties", {}), path + ".")
        for sub, sub_entry in entry.get("fields", {}).items():
            fields[f"{path}.{sub}"] = Field(sub_entry["type"], path, sub_entry)
    return fields


def dynamic_mapping(value: Any) -> dict[str, Any]:
    """The mapping dynamic mapping gives a new field, from its first value."""
    if isinstance(value, bool | int | float):
        return {"type": {bool: "boolean", int: "long", float: "float"}[type(value)]}
    if isinstance(value, dict):
        return {"properties": {}}
    with contextlib.suppress(ValueError):
        if len(value) >= 10 and parse_date(value) is not None:
            return {"type": "date"}
    keyword = {"type": "keyword", "ignore_above": 256}
    return {"type": "text", "fields": {"keyword": keyword}}


def map_document(
    fields: dict[str, Field], doc_id: str, source: dict[str, Any], raw: str
) -> dict[str, Field]:
    """Check a document like Elasticsearch's parser; return the fields dynamic mapping
    adds for it (the caller adds them once the whole document is accepted)."""
    added: dict[str, Field] = {}

    def walk(prefix: str, obj: dict[str, Any]) -> None:
        for key, value in obj.items():
            if "." in key:
                raise unsupported(f"the dotted field name [{prefix}{key}]")
            visit(prefix + key, value)

    def visit(path: str, value: Any) -> None:
        field = added.get(path) or fields.get(path)
        point = field is not None and field.type == "geo_point"  # [lon, lat] is one
        name = path.rpartition(".")[2]
        if isinstance(value, list) and not (point and len(value) in (2, 3)):
            for item in value:
                visit(path, item)
        elif field is None and value is not None:
            mapping = dynamic_mapping(value)
            added[path] = Field(mapping.get("type", "object"), path, mapping)
            for sub, sub_mapping in mapping.get("fields", {}).items():
                added[f"{path}.{sub}"] = Field(sub_mapping["type"], path, sub_mapping)
            visit(path, value)
        elif field is None or value is None:
            return
        elif field.type == "object" and isinstance(value, dict):
            walk(path + ".", value)
        elif field.type == "object":
            reason = f"[1:2] object mapping for [{path}] tried to parse field [{name}]"
            reason += " as object, but found a concrete value"
            raise bad_request("document_parsing_exception", reason)
        else:
            try:
                index_value(field.type, value)
            except BadValue as problem:
                column = raw.find(f'"{name}"') + len(name) + 4  # near where ES says
                reason = (
                    f"[1:{column}] failed to parse field [{path}] of type "
                    f"[{field.type}] in document with id '{doc_id}'. Preview of "
                    f"field's value: '{preview(value)}'"
                )
                error = cause("document_parsing_exception", reason)
                raise EsError(400, error | {"caused_by": problem.cause}) from None

    walk("", source)
    return added


# -- Indices ------------------------------------------------------------------------
class Doc(NamedTuple):
    version: int
    seq_no: int
    source: dict[str, Any] | None  # None when the fake keeps no sources


@dataclasses.dataclass(eq=False)
class Index:
    """One index.  Writes become searchable only at the next refresh: ``docs`` holds
    everything stored (what a create's 409 sees), ``visible`` what a search sees, and
    ``pending`` the writes waiting for a refresh, stamped with their time."""

    name: str
    properties: dict[str, Any]  # the mapping, grown by dynamic mapping
    uuid: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(16))
    docs: dict[str, Doc] = dataclasses.field(default_factory=dict)
    visible: dict[str, Doc] = dataclasses.field(default_factory=dict)
    pending: collections.deque[Any] = dataclasses.field(
        default_factory=collections.deque
    )
    seq_no: int = -1

    def __post_init__(self) -> None:
        self.fields = flatten(self.properties)

    def put(self, doc_id: str, source: dict[str, Any] | None) -> Doc:
        """Store a document now; it becomes searchable at the next refresh."""
        previous, self.seq_no = self.docs.get(doc_id), self.seq_no + 1
        version = previous.version + 1 if previous else 1
        self.docs[doc_id] = doc = Doc(version, self.seq_no, source)
        self.pending.append((time.monotonic(), doc_id, doc))
        return doc

    def refresh(self, written_before: float = math.inf) -> Index:
        while self.pending and self.pending[0][0] <= written_before:
            _, doc_id, doc = self.pending.popleft()
            self.visible[doc_id] = doc
        return self

    def add_fields(self, added: dict[str, Field]) -> None:
        """Merge dynamically mapped fields (multi-fields are in their parent's)."""
        for path, field in added.items():
            if field.source_path != path:
                continue
            *parents, name = path.split(".")
            properties = self.properties
            for parent in parents:
                properties = properties[parent].setdefault("properties", {})
            properties[name] = field.mapping
        self.fields = flatten(self.properties)

    def body(self, keys: list[str] | None = None) -> dict[str, Any]:
        """The index as ``GET /<index>`` shows it (or just ``keys`` of it)."""
        settings = {"number_of_shards": "1", "number_of_replicas": "1"}
        settings |= {"provided_name": self.name, "uuid": self.uuid}
        mappings = (
            {"properties": copy.deepcopy(self.properties)} if self.properties else {}
        )
        body = {"aliases": {}, "mappings": mappings, "settings": {"index": settings}}
        return {key: body[key] for key in keys or body}


# Elasticsearch's rules for a new index name, in the order it checks them.
INDEX_NAME_RULES: dict[str, Callable[[str], bool]] = {
    'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]': (
        lambda name: any(char in name for char in ' "*\\<|,>/?')
    ),
    "must not contain '#'": lambda name: "#" in name,
    "must not contain ':'": lambda name: ":" in name,
    "must not start with '_', '-', or '+'": lambda name: name[:1] in ("_", "-", "+"),
    "index name is too long": lambda name: len(name.encode()) > 255,
    "must not be '.' or '..'": lambda name: name in (".", ".."),
    "must be lowercase": lambda name: name != name.lower(),
}

# -- Search: queries and aggregations ------------------------------------------------

Hit = tuple[Index, str, dict[str, Any]]  # (index, _id, _source)
Predicate = Callable[[dict[str, Any]], bool]  # does this _source match?


def field_values(field: Field, source: Any, parts: list[str] | None = None) -> list:
    """What a document indexes in ``field``: its values as the type indexes them (text
    as its tokens, keywords past ``ignore_above`` left out); arrays flatten."""
    parts = field.source_path.split(".") if parts is None else parts
    if isinstance(source, list):
        return [v for item in source for v in field_values(field, item, parts)]
    if parts:
        inner = source.get(parts[0]) if isinstance(source, dict) else None
        return [] if inner is None else field_values(field, inner, parts[1:])
    if field.type in ("object", "geo_point"):
        return [source]  # for exists only: neither is queried by value
    with contextlib.suppress(BadValue):  # only a sink that keeps no sources has them
        value = index_value(field.type, source)
        if field.type == "text":
            return re.findall(r"\w+", value.lower())  # the standard analyzer, roughly
        limit = field.mapping.get("ignore_above", math.inf)
        return [value] if field.type != "keyword" or len(value) <= limit else []
    return []


RANGE = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
# Real Elasticsearch queries this fake does not implement: saying "unknown query"
# about them would teach something false.
OTHER_QUERIES = {
    *("ids", "prefix", "wildcard", "regexp", "fuzzy", "match_phrase", "multi_match"),
    *("query_string", "simple_query_string", "nested", "geo_distance", "dis_max"),
    *("geo_bounding_box", "function_score", "constant_score", "boosting", "script"),
}
OCCURS = ("must", "filter", "should", "must_not")  # the clauses of a bool query
OPTIONS = {"range": set(RANGE), "match": {"query", "operator"}}
OPTIONS["bool"] = {*OCCURS, "minimum_should_match"}


def compile_query(query: Any, index: Index) -> Predicate:
    """The query DSL as a predicate over ``_source``, with this index's field types (a
    ``term`` compares exact keywords but analyzed text, as Elasticsearch does)."""
    if not isinstance(query, dict) or len(query) != 1:
        raise bad_request("parsing_exception", "query malformed, must be one clause")
    ((kind, body),) = query.items()
    if kind == "match_all":
        return lambda source: True
    if kind in OTHER_QUERIES:
        raise unsupported(f"the [{kind}] query")
    if kind not in ("term", "terms", "range", "match", "exists", "bool"):
        raise bad_request("parsing_exception", f"unknown query [{kind}]")
    if kind == "exists":  # {"field": name} -> {name: {}}, like the other queries
        field = body.get("field") if isinstance(body, dict) else None
        body = {field: {}} if isinstance(field, str) else {}
    body = {"": body} if kind == "bool" else body
    names = [name for name in body if name != "boost"] if isinstance(body, dict) else []
    if len(names) != 1:
        raise bad_request("parsing_exception", f"[{kind}] query malformed, no field")
    name, spec = names[0], body[names[0]]
    if not isinstance(spec, dict) or kind == "terms":  # the short forms
        spec = {"query" if kind == "match" else "value": spec}
    if kind == "match" and "query" not in spec:
        raise bad_request("parsing_exception", "[match] requires query value")
    if unknown := sorted(set(spec) - OPTIONS.get(kind, {"value"}) - {"boost"}):
        raise unsupported(f"[{unknown[0]}] in a [{kind}] query")
    if kind == "bool":
        return _bool_query(spec, index)
    if (field := index.fields.get(name)) is None:
        return lambda source: False  # unmapped: nothing matches
    if kind == "exists":
        return lambda source: bool(field_values(field, source))
    if kind == "match" and field.type == "text":
        words = set(re.findall(r"\w+", preview(spec["query"]).lower()))
        combine = all if str(spec.get("operator")).lower() == "and" else any
        return lambda source: (
            bool(words)
            and combine(word in field_values(field, source) for word in words)
        )
    values = {
        op: _query_value(index, field, v) for op, v in spec.items() if op in RANGE
    }
    if kind == "range":
        return lambda source: any(
            all(RANGE[op](value, bound) for op, bound in values.items())
            for value in field_values(field, source)
        )
    given = spec.get("value", spec.get("query"))
    if kind == "terms" and not isinstance(given, list):
        raise bad_request("parsing_exception", "[terms] query needs an array of terms")
    wanted = {
        _query_value(index, field, v) for v in (given if kind == "terms" else [given])
    }
    return lambda source: not wanted.isdisjoint(field_values(field, source))


def _query_value(index: Index, field: Field, value: Any) -> Any:
    """A query value as the field indexes it; a bad one fails like Elasticsearch."""
    if field.type in ("object", "geo_point"):
        raise unsupported(f"this query on a field of type [{field.type}]")
    if field.type == "date" and ("now" in str(value) or "||" in str(value)):
        raise unsupported(f"the date math in [{value}]")
    try:
        return index_value(field.type, value)
    except BadValue as problem:
        reason = f"failed to create query: {problem.cause['reason']}"
        error = cause("query_shard_exception", reason, index=index.name)
        raise search_failure(index.name, error) from None


def _bool_query(body: dict[str, Any], index: Index) -> Predicate:
    clauses: dict[str, list[Predicate]] = {}
    for occur in OCCURS:
        given = body.get(occur, [])
        given = given if isinstance(given, list) else [given]
        clauses[occur] = [compile_query(clause, index) for clause in given]
    required = clauses["must"] + clauses["filter"]
    should, must_not = clauses["should"], clauses["must_not"]
    minimum = body.get("minimum_should_match", 0 if required else 1)
    if not isinstance(minimum, int):
        raise unsupported(f"minimum_should_match [{minimum}] other than a number")
    minimum += len(should) if minimum < 0 else 0
    return lambda source: (
        all(clause(source) for clause in required)
        and not any(clause(source) for clause in must_not)
        and (not should or sum(clause(source) for clause in should) >= minimum)
    )


METRICS: dict[str, Callable[[list[Any]], Any]] = {
    "avg": lambda values: sum(values) / len(values) if values else None,
    "min": lambda values: min(values, default=None),
    "max": lambda values: max(values, default=None),
    "sum": lambda values: float(sum(values)),
    "value_count": len,
    "cardinality": lambda values: len(set(values)),
}
NUMERIC_METRICS = {"avg", "min", "max", "sum"}  # of numbers only
TERMS_ORDERS = [{t: d} for t in ("_count", "_key") for d in ("asc", "desc")]


def aggregate(specs: Any, hits: list[Hit], targets: list[Index]) -> dict[str, Any]:
    """``aggs`` over the matching hits: metrics, and terms buckets (ordered, the first
    ``size`` shown) with their own sub-aggregations."""
    results = {}
    for name, spec in specs.items() if isinstance(specs, dict) else [("", specs)]:
        spec = spec if isinstance(spec, dict) else {"": spec}
        sub = spec.get("aggs", spec.get("aggregations"))
        kinds = [kind for kind in spec if kind not in ("aggs", "aggregations")]
        kind, params = (kinds[0], spec[kinds[0]]) if len(kinds) == 1 else ("", None)
        allowed = {"field", "size", "order"} if kind == "terms" else {"field"}
        if kind not in ("terms", *METRICS) or not isinstance(params, dict):
            raise unsupported(f"the aggregation {preview(spec)}")
        if set(params) - allowed or not isinstance(params.get("field"), str):
            raise unsupported(f"[{kind}] aggregation parameters {preview(params)}")
        if sub and kind != "terms":
            reason = f"Aggregator [{name}] of type [{kind}] cannot accept sub-aggs"
            raise bad_request("aggregation_initialization_exception", reason)
        _check_aggregated(kind, params["field"], targets)
        pairs = [(index.fields.get(params["field"]), src) for index, _, src in hits]
        values = [field_values(field, src) if field else [] for field, src in pairs]
        if kind in METRICS:
            flat = [value for found in values for value in found]
            flat = [float(value) for value in flat] if kind in NUMERIC_METRICS else flat
            results[name] = {"value": METRICS[kind](flat)}
            continue
        size, order = params.get("size", 10), params.get("order", {"_count": "desc"})
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            reason = f"[size] must be greater than 0. Found [{size}] in [{name}]"
            raise bad_request("illegal_argument_exception", reason)
        groups: dict[Any, list[Hit]] = {}
        for hit, found in zip(hits, values, strict=True):
            for key in set(found):
                groups.setdefault(key, []).append(hit)
        buckets = [
            {"key": key, "doc_count": len(group)} for key, group in groups.items()
        ]
        for rule in reversed([*(order if isinstance(order, list) else [order]), {}]):
            if rule and rule not in TERMS_ORDERS:
                raise unsupported(f"the terms order {preview(rule)}")
            ((target, direction),) = (rule or {"_key": "asc"}).items()  # ties: by key
            by = operator.itemgetter("doc_count" if target == "_count" else "key")
            buckets.sort(key=by, reverse=direction == "desc")  # stable: last rule first
        for bucket in buckets[:size]:
            bucket |= aggregate(sub, groups[bucket["key"]], targets) if sub else {}
        others = sum(bucket["doc_count"] for bucket in buckets[size:])
        shown = {"sum_other_doc_count": others, "buckets": buckets[:size]}
        results[name] = {"doc_count_error_upper_bound": 0} | shown
    return results


def _check_aggregated(kind: str, name: str, targets: list[Index]) -> None:
    """Elasticsearch's error for a field that cannot be aggregated."""
    types = set()
    for index in targets:
        if (field := index.fields.get(name)) is None:
            continue  # unmapped here: no values
        if field.type == "text" and not field.mapping.get("fielddata"):
            reason = (
                f"Fielddata is disabled on [{name}] in [{index.name}]. Text fields are "
                "not optimised for operations that require per-document field data "
                "like aggregations and sorting, so these operations are disabled by "
                "default. Please use a keyword field instead. Alternatively, set "
                f"fielddata=true on [{name}] in order to load field data by "
                "uninverting the inverted index. Note that this can use significant "
                "memory."
            )
        elif field.type in ("date", "boolean"):
            raise unsupported(f"aggregating [{field.type}] fields")
        elif field.type in ("object", "geo_point") or (
            kind in NUMERIC_METRICS and field.type in ("keyword", "text")
        ):
            reason = f"Field [{name}] of type [{field.type}] is not supported for "
            reason += f"aggregation [{kind}]"
        else:
            types.add(field.type)
            continue
        raise search_failure(index.name, cause("illegal_argument_exception", reason))
    if len(types) > 1:  # keys of different types would not sort together
        raise unsupported(f"aggregating [{name}], mapped as {sorted(types)}")


def search(
    call: Call, targets: list[Index], hits: list[Hit], count: bool = False
) -> dict:
    """The answer to a search (or a count): one page of hits in stored order, every
    hit of a query scoring 1.0 and of a filter 0.0, the total, the aggregations."""
    body = call.json() or {}
    allowed = {"query"} if count else {"query", "size", "from", "aggs", "aggregations"}
    if not isinstance(body, dict) or set(body) - allowed:
        raise unsupported(f"this {'count' if count else 'search'} body {preview(body)}")
    query = body.get("query", {"match_all": {}})
    tests = {index.name: compile_query(query, index) for index in targets}
    compile_query(query, Index("_na_", {}))  # a bad query fails even with no index
    matched = [hit for hit in hits if tests[hit[0].name](hit[2])]
    shards = {"total": len(targets), "successful": len(targets), "failed": 0}
    if count:
        return {"count": len(matched), "_shards": shards}
    start = call.query.get("from", body.get("from", 0))
    size = call.query.get("size", body.get("size", 10))
    if not all(isinstance(n, int | str) and str(n).isdigit() for n in (start, size)):
        reason = f"[from] and [size] must be non-negative integers: {start}, {size}"
        raise bad_request("illegal_argument_exception", reason)
    page = matched[int(start) : int(start) + int(size)]
    filters = set(query) == {"bool"} and not {"must", "should"} & set(query["bool"])
    score = 0.0 if filters else 1.0
    found = [dict(_index=i.name, _id=d, _score=score, _source=s) for i, d, s in page]
    total = {"value": len(matched), "relation": "eq"}
    section = {"total": total, "max_score": score if page else None, "hits": found}
    answer = {"timed_out": False, "_shards": shards, "hits": section}
    if aggs := body.get("aggs", body.get("aggregations")):
        answer["aggregations"] = aggregate(aggs, matched, targets)
    return answer


# -- _bulk bodies -------------------------------------------------------------------
def parse_bulk(body: bytes, default_index: str | None) -> list[tuple[str, dict, bytes]]:
    """(op, metadata, source line) triples.  As in Elasticsearch, a malformed action
    or a missing index fails the whole request, a bad document only its own item,
    later: source lines are not parsed here (a sink never parses them)."""
    if not body.endswith(b"\n"):
        reason = "The bulk request must be terminated by a newline [\\n]"
        raise bad_request("illegal_argument_exception", reason)
    lines = body.split(b"\n")[:-1]
    operations, problems, position = [], [], 0
    while position < len(lines):
        line, position = lines[position], position + 1
        if not line.strip():
            continue
        try:  # a bulk body may have many thousand lines: decode them fast
            action = FAST_JSON(line.decode())
        except ValueError:
            action = parse_json(line)  # the error Elasticsearch gives
        one = isinstance(action, dict) and len(action) == 1
        ((op, meta),) = action.items() if one else {None: None}.items()
        if op in ("update", "delete"):
            raise unsupported(f"the bulk action [{op}]")
        if op not in ("index", "create") or not isinstance(meta, dict):
            reason = f"Malformed action/metadata line [{position}], found [{op}]"
            raise bad_request("illegal_argument_exception", reason)
        if unknown := sorted(set(meta) - {"_index", "_id"}):
            raise unsupported(f"[{unknown[0]}] in a bulk action")
        doc_id = secrets.token_urlsafe(15) if meta.get("_id") is None else meta["_id"]
        index = meta.get("_index") or default_index
        meta = {"_index": None if index is None else str(index), "_id": str(doc_id)}
        payload = lines[position] if position < len(lines) else b""
        position += 1
        problems += ["source is missing"] if not payload.strip() else []
        problems += ["index is missing"] if meta["_index"] is None else []
        problems += ["if _id is specified it must not be empty"] if doc_id == "" else []
        operations.append((op, meta, payload))
    problems = problems if operations else ["no requests added"]
    if problems:
        listing = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        reason = f"Validation Failed: {listing}"
        raise bad_request("action_request_validation_exception", reason)
    return operations


FAST_JSON = json.JSONDecoder().decode


def parse_json(raw: bytes, type_: str = "x_content_parse_exception") -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError
        where = f"[{exc.lineno}:{exc.colno}] " if hasattr(exc, "lineno") else ""
        raise bad_request(type_, where + getattr(exc, "msg", str(exc))) from None


# -- Faults -------------------------------------------------------------------------
class Fault(NamedTuple):
    """A failure injected into one write request; made by the functions below."""

    kind: str  # "status", "drop_before", "drop_after", "delay" or "item_status"
    code: int = 0
    seconds: float = 0.0
    fraction: float = 0.0
    retry_after: str | None = None  # a status fault's Retry-After header

    @property
    def name(self) -> str:
        """Its key in ``FaultPlan.injected`` and its rate name in ``chaos``."""
        names = {"status": str(self.code), "item_status": f"item_{self.code}"}
        return names.get(self.kind, self.kind)


def status(code: int, retry_after: str | None = None) -> Fault:
    """Answer ``code`` without applying the request: 429 and 503 in Elasticsearch's
    words, 502 and 504 as a proxy's HTML or text, 413 with an empty body; with
    ``retry_after``, a Retry-After header (not on 502, 504 and 413)."""
    return Fault("status", code=code, retry_after=retry_after)


def drop_before() -> Fault:
    """Close the connection without applying the request or answering."""
    return Fault("drop_before")


def drop_after() -> Fault:
    """Apply the request, then close the connection: the answer to a write is lost."""
    return Fault("drop_after")


def delay(seconds: float) -> Fault:
    """Wait, then handle normally, even if the client gave up meanwhile (as
    Elasticsearch does not notice that a client went away)."""
    return Fault("delay", seconds=seconds)


def item_status(code: int, fraction: float) -> Fault:
    """_bulk only: ``fraction`` of the items (at least one, drawn from the plan's seed)
    fail with ``code`` and are not applied (on a single-document write: no effect)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return Fault("item_status", code=code, fraction=fraction)


CHAOS_NAMES = ("429", "502", "503", "504", "drop_before", "drop_after", "delay")
CHAOS_NAMES += ("item_429",)


class FaultPlan:
    """Which write requests fail, and how (safe to use while the server runs).

    ``next(*faults)`` queues faults for the next writes, in order; then ``chaos(seed,
    **rates)`` makes each write draw at most one fault at random, reproducibly, e.g.
    ``chaos(7, **{"429": 0.1})``; with ``every_request=True``, every request draws
    (index checks, init's steps, refreshes and searches too).  ``injected`` counts
    them by name ("429", "drop_after"...; for "item_429", the rejected items).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Fault] = collections.deque()
        self._chaos: list[tuple[float, Fault]] = []
        self._random = random.Random(0)
        self.every_request = False
        self.injected: collections.Counter[str] = collections.Counter()

    def next(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def chaos(
        self,
        seed: int,
        *,
        delay_seconds=0.2,
        item_fraction=0.25,
        every_request=False,
        **rates,
    ):
        """Random faults, rates by name from ``CHAOS_NAMES`` summing to at most 1; a
        "delay" lasts ``delay_seconds``, an "item_429" rejects ``item_fraction``."""
        if unknown := sorted(set(rates) - set(CHAOS_NAMES)):
            raise ValueError(f"unknown fault rates {unknown}; known: {CHAOS_NAMES}")
        if not all(0 <= r <= 1 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError(f"rates must be in [0, 1] and sum to at most 1: {rates}")
        faults = dict(drop_before=drop_before(), drop_after=drop_after())
        faults |= dict(delay=delay(delay_seconds))
        faults |= dict(item_429=item_status(429, item_fraction))
        with self._lock:
            self._random = random.Random(seed)
            self.every_request = every_request
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
            self.every_request = False

    def draw(self, *, bulk: bool) -> Fault | None:
        """The fault for the write request arriving now (used by the server)."""
        with self._lock:
            fault = self._queue.popleft() if self._queue else None
            roll = self._random.random() if fault is None and self._chaos else 1.0
            for rate, candidate in self._chaos if fault is None else ():
                if roll < rate:
                    fault = candidate
                    break
                roll -= rate
            if fault is None or (fault.kind == "item_status" and not bulk):
                return None
            if fault.kind != "item_status":  # item faults count rejected items
                self.injected[fault.name] += 1
            return fault

    def reject_items(self, fault: Fault, count: int) -> set[int]:
        """Which of ``count`` bulk items an item fault rejects."""
        with self._lock:
            chosen = min(count, max(1, round(fault.fraction * count)))
            rejected = set(self._random.sample(range(count), chosen))
            self.injected[fault.name] += len(rejected)
            return rejected


def injected_error(code: int, index: str) -> EsError:
    """Elasticsearch's error for an injected status, of a request or a bulk item."""
    if code == 429:
        reason = (
            "rejected execution of TransportWriteAction$1@6a2f3c1d on EsThreadPoolExec"
            "utor[name = fake-node/write, queue capacity = 10000, active threads = 2]"
        )
        return EsError(429, cause("es_rejected_execution_exception", reason))
    if code == 503:
        reason = (
            f"[{index}][0] primary shard is not active Timeout: [1m], request: "
            f"[BulkShardRequest [[{index}][0]] containing [1] requests]"
        )
        return EsError(503, cause("unavailable_shards_exception", reason))
    return EsError(code, cause("exception", f"injected fault [{code}]"))


# Proxies in front of a cluster answer 502 and 504 themselves, without
# X-Elastic-Product; Elasticsearch's HTTP layer answers an oversized body with 413.
RAW_FAULTS = {
    502: ("text/html", "<html><head><title>502 Bad Gateway</title></head></html>"),
    504: ("text/plain", "upstream request timeout"),
    413: ("text/plain", ""),
}


# -- The server ---------------------------------------------------------------------
@dataclasses.dataclass
class RecordedRequest:
    """A request as received (its body only when the fake keeps sources), and what
    the server works out about it while answering."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any  # case-insensitive, as received
    body: bytes
    uri: str = ""
    segments: list[str] = dataclasses.field(default_factory=list)
    answer_type: str = "application/json"
    filter: Paths = ()
    started: float = dataclasses.field(default_factory=time.monotonic)

    def json(self) -> Any:
        """The body as JSON (None when there is none), failing like Elasticsearch."""
        return parse_json(self.body) if self.body.strip() else None

    def took(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


Call = RecordedRequest  # what handlers call the request they answer


class Reply(NamedTuple):
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


# Each path, its handler for each method (HEAD is served by GET), and the parameters
# each handler honours besides pretty and filter_path.
ROUTES = {
    "/": {"GET": "_info"},
    "/_cluster/health": {"GET": "_health"},
    "/:index": {"GET": "_get_index", "PUT": "_put_index", "DELETE": "_delete_index"},
    "/:index/_mapping": {"GET": "_get_index"},
    "/:index/_doc": {"POST": "_index_doc"},
    "/:index/_doc/:doc_id": {
        "GET": "_get_doc",
        "PUT": "_index_doc",
        "POST": "_index_doc",
    },
    "/:index/_create/:doc_id": {"PUT": "_index_doc", "POST": "_index_doc"},
}
for _name in ("_search", "_count", "_refresh", "_bulk"):
    _methods = ("PUT", "POST") if _name == "_bulk" else ("GET", "POST")
    _handler = "_search" if _name == "_count" else _name
    ROUTES[f"/{_name}"] = ROUTES[f"/:index/{_name}"] = dict.fromkeys(_methods, _handler)
PARAMS = {"_search": {"size", "from"}, "_bulk": {"refresh"}}
PARAMS |= {"_index_doc": {"refresh", "op_type"}}
WRITES = {"_bulk", "_index_doc"}  # faults and latency apply


def match_route(call: Call) -> tuple[str, dict[str, str]]:
    """The handler and path captures, like Elasticsearch's router: ``/_bulk`` is never
    an index, a known path with another method is a 405, an unknown path a 400."""
    found = []
    for pattern, handlers in ROUTES.items():
        parts = pattern.split("/")[1:] if pattern != "/" else []
        if len(parts) == len(call.segments) and all(
            p[0] == ":" or p == s for p, s in zip(parts, call.segments, strict=True)
        ):
            found.append((sum(p[0] == ":" for p in parts), parts, handlers))
    where = f"uri [{call.uri}] and method [{call.method}]"
    if not found:
        raise EsError(400, f"no handler found for {where}")
    _, parts, handlers = min(found, key=operator.itemgetter(0))
    if (handler := handlers.get(call.method.replace("HEAD", "GET"))) is None:
        allowed = ", ".join(sorted(handlers))
        message = f"Incorrect HTTP method for {where}, allowed: [{allowed}]"
        raise EsError(405, message, headers=(("Allow", allowed.replace(" ", "")),))
    captured = zip(parts, call.segments, strict=True)
    return handler, {part[1:]: segment for part, segment in captured if part[0] == ":"}


def check_media_types(call: Call, *, bulk: bool) -> str:
    """Check Accept and Content-Type like Elasticsearch 8; return the answer's type.
    JSON (NDJSON for _bulk) is fine, and so is ``application/vnd.elasticsearch+json;
    compatible-with=N`` for N = 7 or 8: that refuses clients of another major version.
    """
    answer_type = "application/json"
    for header in ("Accept", "Content-Type"):
        value = call.headers.get(header, "")
        if not value.lower().startswith("application/vnd.elasticsearch+"):
            continue
        version = (re.findall(r"compatible-with=\W*(\w*)", value) or ["8"])[0]
        if version not in ("7", "8"):
            reason = f"{header} version must be either version 8 or 7, but found "
            problem = cause("status_exception", f"{reason}{version}. {header}={value}")
            error = "Invalid media-type value on headers [Accept, Content-Type]"
            raise bad_request("media_type_header_exception", error, caused_by=problem)
        if header == "Accept":
            answer_type = f"{value.partition(';')[0].strip()};compatible-with={version}"
    if call.body:
        if (given := call.headers.get("Content-Type")) is None:
            raise EsError(406, "Content-Type header is missing")
        essence = given.split(";")[0].strip().lower().replace("vnd.elasticsearch+", "")
        if essence not in ["application/json"] + ["application/x-ndjson"] * bulk:
            raise EsError(406, f"Content-Type header [{given}] is not supported")
    return answer_type


class FakeElasticsearch:
    """The server's state.  For assertions: ``requests`` (every request received),
    ``max_in_flight`` (most handled at once), ``documents(index)`` and ``count(index)``.
    Knobs: ``faults``, ``refuse_credentials`` (401 for all), ``latency`` (added to each
    write).  ``server_errors`` holds the handlers' crashes: :func:`serving` raises if
    there are any.  ``keep_sources=False`` stores ids only (enough for 409s), checks and
    records no bodies: a fast sink.
    """

    def __init__(
        self,
        *,
        user: str = "elastic",
        password: str = "test-password",
        api_key: str | None = API_KEY,
        refresh_interval: float | None = 1.0,  # None: only explicit refresh
        keep_sources: bool = True,
    ) -> None:
        self.user, self.password, self.api_key = user, password, api_key
        self.refresh_interval, self.keep_sources = refresh_interval, keep_sources
        self.faults = FaultPlan()
        self.refuse_credentials, self.latency = False, 0.0
        self.requests: list[RecordedRequest] = []
        self.in_flight = self.max_in_flight = 0
        self.server_errors: list[BaseException] = []
        self._indices: dict[str, Index] = {}
        self.cluster_uuid = secrets.token_urlsafe(16)
        self._lock = threading.Lock()  # the server thread writes, the test thread reads

    # -- helpers for test assertions and setup ------------------------------------

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """_id -> _source of everything stored in ``index``, refreshed or not (empty
        sources when sources are not kept; nothing when the index does not exist)."""
        with self._lock:
            docs = dict(self._indices[index].docs) if index in self._indices else {}
        return {doc_id: copy.deepcopy(doc.source or {}) for doc_id, doc in docs.items()}

    def count(self, index: str, *, refreshed: bool = False) -> int:
        """How many documents ``index`` stores, refreshed or not (0 if it does not
        exist); with ``refreshed=True``, only those a search would see now."""
        with self._lock:
            if (found := self._indices.get(index)) is None:
                return 0
            return len(self._catch_up(found).visible if refreshed else found.docs)

    def create_index(self, index: str, mappings: dict[str, Any] | None = None) -> None:
        """Create an index as ``PUT /<index>`` would; ``mappings`` is the mappings
        (``{"properties": ...}``) or a whole create-index body.  Raises EsError."""
        body = mappings or {}
        body = body if set(body) <= {"mappings", "settings"} else {"mappings": body}
        with self._lock:
            self._create(index, body)

    # -- request pipeline ---------------------------------------------------------

    async def serve(self, request: web.Request) -> web.StreamResponse:
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
            body = await request.read()
        except ConnectionError:
            return unanswered  # the client went away while sending
        url, headers = request.rel_url, request.headers
        call = Call(request.method, request.path, dict(url.query), headers, body)
        # Split the raw path before decoding: an id may contain an encoded "/".
        call.segments = [unquote(part) for part in url.raw_path.split("/") if part]
        call.uri = url.raw_path_qs
        self.requests.append(call)
        try:
            try:
                response = await self._dispatch(call)
            except EsError as error:
                response = self._render(call, error.reply)
            if response is None:  # a dropped connection
                if request.transport is not None:
                    request.transport.close()
                return unanswered
        except Exception as exc:  # a bug in the fake: make it visible in the test
            self.server_errors.append(exc)
            error = EsError(500, cause("exception", f"fake elasticsearch: {exc!r}"))
            response = self._render(call, error.reply)
        finally:
            call.body = body if self.keep_sources else b""
        with contextlib.suppress(ConnectionError):
            await response.prepare(request)  # written here, so that the request is
            await response.write_eof()  # in flight until its answer is sent
        return response

    async def _dispatch(self, call: Call) -> web.Response | None:
        """Check and route a request, apply a write's latency and fault, answer."""
        self._authenticate(call)
        handler, captured = match_route(call)
        call.answer_type = check_media_types(call, bulk=handler == "_bulk")
        allowed = PARAMS.get(handler, set()) | {"pretty", "filter_path"}
        if unknown := sorted(set(call.query) - allowed):
            raise unsupported(f"the parameter [{unknown[0]}] of [{call.path}]")
        patterns = call.query.get("filter_path", "").replace(" ", "").split(",")
        call.filter = tuple(tuple(p.split(".")) for p in patterns if p)
        if any(path[0].startswith(("-", "**")) for path in call.filter):
            raise unsupported("filter_path with exclusions or [**]")
        answer = functools.partial(getattr(self, handler), call, **captured)
        if handler not in WRITES and not self.faults.every_request:
            return self._render(call, answer())
        fault = self.faults.draw(bulk=handler == "_bulk")
        if pause := self.latency + (fault.seconds if fault else 0):
            await asyncio.sleep(pause)
        kind = fault.kind if fault else None
        if fault and kind == "status" and fault.code in RAW_FAULTS:
            content_type, text = RAW_FAULTS[fault.code]
            headers = {"Content-Type": content_type}
            if fault.code == 413:
                headers["X-Elastic-Product"] = "Elasticsearch"
            return web.Response(status=fault.code, text=text, headers=headers)
        if fault and kind == "status":
            error = injected_error(fault.code, captured.get("index", "_na_"))
            if fault.retry_after is not None:
                error.headers = (("Retry-After", fault.retry_after),)
            raise error
        if kind == "drop_before":
            return None
        reply = answer(item_fault=fault) if kind == "item_status" else answer()
        return None if kind == "drop_after" else self._render(call, reply)

    def _render(self, call: Call, reply: Reply) -> web.Response:
        data = reply.body
        if call.filter and reply.status < 400:  # errors are never filtered
            data = filter_paths(data, call.filter)
        indent = 2 if "pretty" in call.query else None
        raw = json.dumps(data, indent=indent, separators=(",", ": " if indent else ":"))
        headers = [*reply.headers, ("X-Elastic-Product", "Elasticsearch")]
        headers.append(("Content-Type", call.answer_type))
        body = b"" if call.method == "HEAD" else raw.encode()
        return web.Response(status=reply.status, body=body, headers=headers)

    def _authenticate(self, call: Call) -> None:
        """Basic or ApiKey credentials on every request, Elasticsearch's 401s."""
        scheme, _, credentials = call.headers.get("Authorization", "").partition(" ")
        valid, path = False, call.path
        reason = f"missing authentication credentials for REST request [{path}]"
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):  # binascii.Error, UnicodeDecodeError
                credentials = base64.b64decode(credentials, validate=True).decode()
            user, _, password = credentials.partition(":")
            valid = (user, password) == (self.user, self.password)
            reason = f"unable to authenticate user [{user}] for REST request [{path}]"
        elif scheme.lower() == "apikey":
            valid = credentials.strip() == self.api_key
            reason = "unable to authenticate with provided credentials and anonymous "
            reason += "access is not allowed for this request"
        if valid and not self.refuse_credentials:
            return
        challenges = ['Basic realm="security" charset="UTF-8"', "ApiKey"]
        headers = tuple(("WWW-Authenticate", challenge) for challenge in challenges)
        header = {"WWW-Authenticate": challenges}
        error = cause("security_exception", reason, header=header)
        raise EsError(401, error, headers=headers)

    # -- cluster and indices ------------------------------------------------------

    def _info(self, call: Call) -> Reply:
        tagline = "You Know, for Search"
        body = {"name": NODE_NAME, "cluster_name": CLUSTER_NAME}
        body |= {"cluster_uuid": self.cluster_uuid, "version": VERSION}
        return Reply(200, body | {"tagline": tagline})

    def _health(self, call: Call) -> Reply:
        """One node, each index one primary (active) and one replica, which that
        node cannot hold (unassigned): yellow once there is an index, as on a
        single-node Elasticsearch."""
        with self._lock:
            indices = len(self._indices)
        shards = {"active_primary_shards": indices, "active_shards": indices}
        shards |= {"relocating_shards": 0, "initializing_shards": 0}
        shards |= {"unassigned_shards": indices, "delayed_unassigned_shards": 0}
        colour = "yellow" if indices else "green"
        body = {"cluster_name": CLUSTER_NAME, "status": colour}
        body |= {"timed_out": False, "number_of_nodes": 1, "number_of_data_nodes": 1}
        body |= shards | {"number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0}
        body |= {"task_max_waiting_in_queue_millis": 0}
        percent = 100.0 * indices / (2 * indices) if indices else 100.0
        return Reply(200, body | {"active_shards_percent_as_number": percent})

    def _resolve(self, expression: str | None) -> list[Index]:
        """Indices named by ``a,b``, wildcards (``logs-*``) or ``_all``/none; a name
        that matches no index is a 404, a wildcard that matches none is not."""
        found: dict[str, Index] = {}
        for name in ["*"] if expression in (None, "_all") else expression.split(","):
            if name not in self._indices and "*" not in name:
                reason = f"no such index [{name}]"
                extra = {"resource.type": "index_or_alias", "resource.id": name}
                error = cause("index_not_found_exception", reason, **extra, index=name)
                raise EsError(404, error)
            found |= {n: i for n, i in self._indices.items() if wildcard(name, n)}
        return list(found.values())

    def _catch_up(self, index: Index) -> Index:
        """The periodic refresh, done lazily when someone reads."""
        if self.refresh_interval is None:
            return index
        return index.refresh(time.monotonic() - self.refresh_interval)

    def _create(self, name: str, body: Any) -> Index:
        for problem, broken in INDEX_NAME_RULES.items():
            if broken(name):
                reason = f"Invalid index name [{name}], {problem}"
                raise bad_request("invalid_index_name_exception", reason, index=name)
        mappings = body.get("mappings", {}) if isinstance(body, dict) else None
        keys = {*body, *mappings} if isinstance(mappings, dict) else {None}
        if not keys <= {"mappings", "properties"}:  # settings, aliases, dynamic...
            raise unsupported(f"the create-index body {preview(body)}")
        properties = copy.deepcopy(mappings.get("properties", {}))
        check_properties(properties)
        if existing := self._indices.get(name):
            reason = f"index [{name}/{existing.uuid}] already exists"
            raise bad_request("resource_already_exists_exception", reason, index=name)
        self._indices[name] = Index(name, properties)
        return self._indices[name]

    def _put_index(self, call: Call, index: str) -> Reply:
        body = parse_json(call.body, "parse_exception") if call.body.strip() else {}
        with self._lock:
            self._create(index, body)
        answer = {"acknowledged": True, "shards_acknowledged": True, "index": index}
        return Reply(200, answer)

    def _get_index(self, call: Call, index: str) -> Reply:
        """``GET /<index>``, or only its mappings for ``GET /<index>/_mapping``."""
        keys = ["mappings"] if call.segments[-1] == "_mapping" else None
        with self._lock:
            return Reply(200, {i.name: i.body(keys) for i in self._resolve(index)})

    def _delete_index(self, call: Call, index: str) -> Reply:
        if "*" in index or index == "_all":
            raise unsupported("deleting indices by wildcard")
        with self._lock:
            for found in self._resolve(index):
                del self._indices[found.name]
        return Reply(200, {"acknowledged": True})

    def _refresh(self, call: Call, index: str | None = None) -> Reply:
        with self._lock:
            found = [each.refresh() for each in self._resolve(index)]
        shards = {"total": 2 * len(found), "successful": len(found), "failed": 0}
        return Reply(200, {"_shards": shards})

    # -- documents ----------------------------------------------------------------

    def _apply(self, name: str, op: str, doc_id: str, payload: bytes) -> dict[str, Any]:
        """Write one document into index ``name`` (created with dynamic mappings when
        missing, as by default); return the item's result and status, or raise."""
        index = self._indices.get(name) or self._create(name, {})
        current = index.docs.get(doc_id)
        if op == "create" and current is not None:
            reason = f"[{doc_id}]: version conflict, document already exists (current "
            reason += f"version [{current.version}])"
            extra = {"index_uuid": index.uuid, "shard": "0", "index": name}
            error = cause("version_conflict_engine_exception", reason, **extra)
            raise EsError(409, error)
        source = None
        if self.keep_sources:
            source = parse_json(payload, "document_parsing_exception")
            if not isinstance(source, dict):
                reason = "Malformed content, must start with an object"
                raise bad_request("document_parsing_exception", reason)
            raw = payload.decode(errors="replace")
            if added := map_document(index.fields, doc_id, source, raw):
                index.add_fields(added)
        doc = index.put(doc_id, source)
        result = {"_index": name, "_id": doc_id, "_version": doc.version}
        result["result"] = "updated" if current else "created"
        result |= {"_shards": WRITE_SHARDS, "_seq_no": doc.seq_no, "_primary_term": 1}
        return result | {"status": 200 if current else 201}

    def _index_doc(self, call: Call, index: str, doc_id: str = "") -> Reply:
        """The single-document APIs: one write, answered with its own status.  An
        auto-generated id has 20 URL-safe base64 characters, like Elasticsearch's."""
        refresh, doc_id = _refresh_param(call), doc_id or secrets.token_urlsafe(15)
        op = "create" if call.segments[1] == "_create" else call.query.get("op_type")
        if (op := op or "index") not in ("index", "create"):
            reason = f"opType must be 'create' or 'index', found: [{op}]"
            raise bad_request("illegal_argument_exception", reason)
        with self._lock:
            result = self._apply(index, op, doc_id, call.body)
            if refresh:
                self._indices[index].refresh()
        status = result.pop("status")
        result |= {"forced_refresh": True} if refresh else {}
        location = (("Location", f"/{index}/_doc/{result['_id']}"),)
        return Reply(status, result, location if status == 201 else ())

    def _get_doc(self, call: Call, index: str, doc_id: str) -> Reply:
        """The get API: realtime (a document is found before any refresh); a missing
        document is a 404 without an error body, a missing index the usual 404."""
        if "*" in index or "," in index or index == "_all":
            raise unsupported("getting a document from several indices")
        with self._lock:
            found = self._resolve(index)[0].docs.get(doc_id)
        answer = {"_index": index, "_id": doc_id}
        if found is None:
            return Reply(404, answer | {"found": False})
        answer |= {"_version": found.version, "_seq_no": found.seq_no}
        answer |= {"_primary_term": 1, "found": True}
        return Reply(200, answer | {"_source": copy.deepcopy(found.source or {})})

    def _bulk(self, call: Call, index=None, item_fault=None) -> Reply:
        """NDJSON bulk: the whole request is checked first, then applied item by item;
        each item succeeds or fails on its own, in request order."""
        refresh = _refresh_param(call)
        operations = parse_bulk(call.body, index)
        rejected = set()
        if item_fault is not None:
            rejected = self.faults.reject_items(item_fault, len(operations))
        items = []
        with self._lock:
            for position, (op, meta, payload) in enumerate(operations):
                try:
                    if position in rejected:
                        raise injected_error(item_fault.code, meta["_index"])
                    result = self._apply(meta["_index"], op, meta["_id"], payload)
                except EsError as exc:
                    error = exc.body["error"]
                    error = {k: v for k, v in error.items() if k != "root_cause"}
                    result = meta | {"status": exc.status, "error": error}
                items.append({op: result})
            touched = {meta["_index"] for _, meta, _ in operations} if refresh else ()
            for written in self._indices.keys() & touched:
                self._indices[written].refresh()
        errors = any("error" in result for item in items for result in item.values())
        return Reply(200, {"took": call.took(), "errors": errors, "items": items})

    # -- search -------------------------------------------------------------------

    def _snapshot(self, index: str | None) -> tuple[list[Index], list[Hit]]:
        """The searchable documents of the target indices (after any refresh due)."""
        with self._lock:
            targets = [self._catch_up(target) for target in self._resolve(index)]
            visible = [(t, i, d) for t in targets for i, d in t.visible.items()]
        return targets, [(t, i, d.source or {}) for t, i, d in visible]

    def _search(self, call: Call, index: str | None = None) -> Reply:
        if count := call.segments[-1] == "_count":
            return Reply(200, search(call, *self._snapshot(index), count=count))
        return Reply(200, {"took": call.took()} | search(call, *self._snapshot(index)))


def _refresh_param(call: Call) -> bool:
    value = call.query.get("refresh", "false")
    if value not in ("", "true", "false", "wait_for"):
        reason = f"Unknown value for refresh: [{value}]."
        raise bad_request("illegal_argument_exception", reason)
    return value != "false"


# -- Serving: a background thread for tests, the foreground for the command line -----
@contextlib.contextmanager
def serving(
    fake: FakeElasticsearch,
    *,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    port: int = 0,  # a free one
) -> Iterator[str]:
    """Serve in a background thread with its own event loop, so that synchronous and
    asynchronous tests alike can use it; yield the base URL ("http://127.0.0.1:PORT"
    or "https://..."); shut down cleanly.  Raises RuntimeError if the server could not
    start, or afterwards if a handler failed unexpectedly."""
    ready, started = threading.Event(), {}

    async def serve() -> None:
        app = web.Application(client_max_size=2**40)  # no limit on bodies
        app.router.add_route("*", "/{tail:.*}", fake.serve)
        # A short shutdown_timeout: a handler still sleeping in a delay fault when the
        # test ends is cancelled instead of holding the test up.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
            scheme = "https" if ssl_context else "http"
            started["url"] = f"{scheme}://{host}:{runner.addresses[0][1]}"
            started["stop"] = asyncio.Event()
            started["loop"] = asyncio.get_running_loop()
            ready.set()
            await started["stop"].wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported below
            fake.server_errors.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="fake-elasticsearch", daemon=True)
    thread.start()
    ready.wait()
    try:
        if "stop" not in started:
            raise RuntimeError(f"cannot serve on {host}:{port}: {fake.server_errors}")
        yield started["url"]
    finally:
        if "stop" in started:
            started["loop"].call_soon_threadsafe(started["stop"].set)
        thread.join()
    if fake.server_errors:
        message = f"fake Elasticsearch failed: {fake.server_errors!r}"
        raise RuntimeError(message) from fake.server_errors[0]


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="An in-memory Elasticsearch 8.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--user", default="elastic")
    parser.add_argument("--password", default="test-password")
    parser.add_argument("--no-keep-sources", dest="keep_sources", action="store_false")
    args = parser.parse_args(argv)
    fake = FakeElasticsearch(user=args.user, password=args.password)
    fake.keep_sources = args.keep_sources  # False: a fast sink, for benchmarks
    try:
        with serving(fake, host=args.host, port=args.port) as url:
            credentials = f"user={fake.user} password={fake.password}"
            print(f"Fake Elasticsearch at {url} {credentials} api_key={fake.api_key}")
            print("Ctrl-C stops it", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:  # the port is taken, most likely
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
