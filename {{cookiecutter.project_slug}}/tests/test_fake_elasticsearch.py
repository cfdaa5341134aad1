"""The fake Elasticsearch answers like Elasticsearch 8 where the other tests rely on it.

Every test talks to the server over real HTTP with a plain aiohttp client, the way the
project's own code does.
"""

import asyncio
import base64
import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
import trustme
from fake_elasticsearch import (
    FakeElasticsearch,
    delay,
    drop_after,
    drop_before,
    filter_paths,
    item_status,
    serving,
    status,
)

BASIC = "Basic " + base64.b64encode(b"elastic:test-password").decode()
API_KEY = "ApiKey dGVzdC1pZDp0ZXN0LWtleQ=="
NDJSON = "application/x-ndjson"
INDEX = "logs"
MAPPINGS = {
    "properties": {
        "browser": {"type": "keyword"},
        "eventTime": {"type": "date"},
        "logID": {"type": "text"},
        "responseCode": {"type": "integer"},
        "ttfb": {"type": "float"},
        "ua_country": {"type": "keyword"},
        "ua_os": {"type": "text"},
        "url": {"type": "keyword"},
        "userId": {"type": "text"},
        "location": {"type": "geo_point"},
    }
}


class Answer(NamedTuple):
    status: int
    body: Any  # decoded JSON, or the text when the answer is not JSON
    headers: Any


class Client:
    """Plain aiohttp requests to the fake, answers decoded; dicts are sent as JSON,
    bytes as NDJSON, unless headers say otherwise (a header set to None is left out)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        auth: str | None = BASIC,
        **options: Any,
    ) -> Answer:
        sent = {"Authorization": auth} if auth else {}
        data = body
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        elif isinstance(body, bytes):
            sent["Content-Type"] = NDJSON
        sent |= headers or {}
        sent = {name: value for name, value in sent.items() if value is not None}
        async with self.session.request(
            method, self.base + path, data=data, headers=sent, **options
        ) as response:
            text = await response.text()
            is_json = response.content_type.endswith("json") and text
            decoded = json.loads(text) if is_json else text
            return Answer(response.status, decoded, response.headers)


def bulk_body(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def event(number: int, **fields: Any) -> dict[str, Any]:
    """A small log event in the project's mapping."""
    return {
        "browser": "Chrome",
        "eventTime": "2024-03-01T10:00:00",
        "logID": f"id-{number}",
        "responseCode": 200,
        "ttfb": 1.5,
        "ua_country": "US",
        "ua_os": "Mac",
        "url": "http://example.com/?url=001",
        "userId": "user001",
        "location": {"lat": 10.5, "lon": 20.25},
    } | fields


@pytest.fixture
def fake():
    """Explicit refreshes only, so tests decide when documents become searchable."""
    return FakeElasticsearch(refresh_interval=None)


@pytest.fixture
def url(fake):
    with serving(fake) as base:
        yield base


@pytest.fixture
async def es(url):
    async with aiohttp.ClientSession() as session:
        yield Client(session, url)


# -- authentication ------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [BASIC, API_KEY])
async def test_basic_and_api_key_credentials_are_accepted(es, credentials):
    answer = await es("GET", "/", auth=credentials)
    assert answer.status == 200
    assert answer.headers["X-Elastic-Product"] == "Elasticsearch"
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body["version"]["number"] == "8.15.0"
    assert answer.body["version"]["build_flavor"] == "default"
    assert answer.body["tagline"] == "You Know, for Search"


async def test_missing_credentials_get_a_401_with_a_challenge(es):
    answer = await es("GET", "/_cluster/health", auth=None)
    assert answer.status == 401
    assert answer.headers.getall("WWW-Authenticate") == [
        'Basic realm="security" charset="UTF-8"',
        "ApiKey",
    ]
    error = answer.body["error"]
    assert (error["type"], answer.body["status"]) == ("security_exception", 401)
    assert error["reason"] == (
        "missing authentication credentials for REST request [/_cluster/health]"
    )
    assert error["root_cause"][0]["type"] == "security_exception"


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        (
            "Basic " + base64.b64encode(b"elastic:wrong").decode(),
            "unable to authenticate user [elastic] for REST request [/]",
        ),
        (
            "ApiKey bm9wZTpub3Bl",
            "unable to authenticate with provided credentials and anonymous access "
            "is not allowed for this request",
        ),
    ],
)
async def test_wrong_credentials_are_refused(es, credentials, reason):
    answer = await es("GET", "/", auth=credentials)
    assert answer.status == 401
    assert answer.body["error"]["reason"] == reason


async def test_refusing_credentials_refuses_the_right_ones_too(es, fake):
    fake.refuse_credentials = True
    for credentials in (BASIC, API_KEY):
        assert (await es("GET", "/", auth=credentials)).status == 401


async def test_a_refused_head_request_has_no_body(es):
    answer = await es("HEAD", f"/{INDEX}", auth=None)
    assert (answer.status, answer.body) == (401, "")


# -- media types and routing ----------------------------------------------------------


@pytest.mark.parametrize("version", ["7", "8"])
async def test_versioned_media_types_of_7_and_8_are_accepted(es, version):
    media = f"application/vnd.elasticsearch+json; compatible-with={version}"
    headers = {"Accept": media, "Content-Type": media}
    answer = await es("POST", "/_search", {}, headers=headers)
    assert answer.status == 200
    assert answer.headers["Content-Type"].endswith(f"compatible-with={version}")


async def test_compatible_with_9_is_refused_like_elasticsearch_8_does(es):
    media = "application/vnd.elasticsearch+json; compatible-with=9"
    answer = await es("GET", "/", headers={"Accept": media})
    assert answer.status == 400
    error = answer.body["error"]
    assert error["type"] == "media_type_header_exception"
    assert (
        error["reason"] == "Invalid media-type value on headers [Accept, Content-Type]"
    )
    assert error["caused_by"] == {
        "type": "status_exception",
        "reason": "Accept version must be either version 8 or 7, but found 9. "
        f"Accept={media}",
    }


async def test_a_versioned_accept_needs_a_versioned_content_type(es):
    media = "application/vnd.elasticsearch+json; compatible-with=8"
    answer = await es("POST", "/_search", {}, headers={"Accept": media})
    assert answer.status == 400
    assert answer.body["error"]["caused_by"]["reason"].startswith(
        "A compatible version is required on both Content-Type and Accept headers"
    )


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "Content-Type header is missing"),
        ("text/plain", "Content-Type header [text/plain] is not supported"),
        (NDJSON, f"Content-Type header [{NDJSON}] is not supported"),
    ],
)
async def test_a_body_needs_a_json_content_type(es, content_type, message):
    headers = {"Content-Type": content_type}
    answer = await es(
        "POST", "/_search", b"{}", headers=headers, skip_auto_headers=["Content-Type"]
    )
    assert answer.status == 406
    assert answer.body == {"error": message, "status": 406}


async def test_ndjson_with_a_charset_is_fine_for_bulk(es):
    body = bulk_body({"index": {"_index": INDEX}}, {"a": 1})
    content_type = {"Content-Type": f"{NDJSON}; charset=UTF-8"}
    assert (await es("POST", "/_bulk", body, headers=content_type)).status == 200


async def test_malformed_json_is_a_400_with_a_position(es):
    answer = await es(
        "POST", "/_search", b'{"query": ', headers={"Content-Type": "application/json"}
    )
    assert answer.status == 400
    assert answer.body["error"]["type"] == "x_content_parse_exception"
    assert answer.body["error"]["reason"].startswith("[1:")


async def test_cluster_health_is_green(es):
    answer = await es("GET", "/_cluster/health")
    assert (answer.status, answer.body["status"]) == (200, "green")


async def test_unknown_routes_and_wrong_methods_are_refused_like_elasticsearch(es):
    unknown = await es("GET", "/_nothing/here")
    assert unknown.status == 400
    assert (
        unknown.body["error"]
        == "no handler found for uri [/_nothing/here] and method [GET]"
    )
    wrong = await es("GET", "/_bulk")
    assert wrong.status == 405
    assert wrong.body["error"] == (
        "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]"
    )


async def test_an_unknown_query_parameter_is_refused(es):
    answer = await es("POST", f"/{INDEX}/_doc?refersh=true", {"a": 1})
    assert answer.status == 400
    assert answer.body["error"]["reason"] == (
        f"request [/{INDEX}/_doc] contains unrecognized parameter: [refersh]"
    )


# -- indices ------------------------------------------------------------------------


async def test_an_index_is_created_inspected_and_deleted(es):
    assert (await es("HEAD", f"/{INDEX}")).status == 404
    created = await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    assert created.status == 200
    assert created.body == {
        "acknowledged": True,
        "shards_acknowledged": True,
        "index": INDEX,
    }
    assert (await es("HEAD", f"/{INDEX}")).status == 200
    described = await es("GET", f"/{INDEX}")
    assert described.body[INDEX]["mappings"] == MAPPINGS
    assert described.body[INDEX]["aliases"] == {}
    assert described.body[INDEX]["settings"]["index"]["number_of_shards"] == "1"
    again = await es("PUT", f"/{INDEX}")
    assert again.status == 400
    assert again.body["error"]["type"] == "resource_already_exists_exception"
    assert again.body["error"]["reason"].startswith(f"index [{INDEX}/")
    assert (await es("DELETE", f"/{INDEX}")).body == {"acknowledged": True}
    missing = await es("DELETE", f"/{INDEX}")
    assert missing.status == 404
    error = missing.body["error"]
    assert error["type"] == "index_not_found_exception"
    assert error["reason"] == f"no such index [{INDEX}]"
    assert (error["index"], error["resource.type"], error["resource.id"]) == (
        INDEX,
        "index_or_alias",
        INDEX,
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Logs", "must be lowercase"),
        ("_logs", "must not start with '_', '-', or '+'"),
        ("-logs", "must not start with '_', '-', or '+'"),
        ("lo%23gs", "must not contain '#'"),
        ("lo*gs", "must not contain the following characters"),
    ],
)
async def test_invalid_index_names_are_refused(es, name, problem):
    answer = await es("PUT", f"/{name}")
    name = name.replace("%23", "#")
    assert answer.status == 400
    assert answer.body["error"]["type"] == "invalid_index_name_exception"
    assert answer.body["error"]["reason"].startswith(
        f"Invalid index name [{name}], {problem}"
    )


async def test_an_unknown_field_type_is_a_mapper_parsing_exception(es):
    mappings = {"properties": {"ttfb": {"type": "floaty"}}}
    answer = await es("PUT", f"/{INDEX}", {"mappings": mappings})
    assert answer.status == 400
    assert answer.body["error"]["root_cause"][0] == {
        "type": "mapper_parsing_exception",
        "reason": "No handler for type [floaty] declared on field [ttfb]",
    }


# -- single documents ---------------------------------------------------------------


async def test_a_create_only_write_of_an_existing_id_is_a_409(es):
    first = await es("PUT", f"/{INDEX}/_doc/a1?op_type=create", event(1))
    assert first.status == 201
    assert first.headers["Location"] == f"/{INDEX}/_doc/a1"
    assert {k: first.body[k] for k in ("_index", "_id", "_version", "result")} == {
        "_index": INDEX,
        "_id": "a1",
        "_version": 1,
        "result": "created",
    }
    assert (first.body["_seq_no"], first.body["_primary_term"]) == (0, 1)
    for path in (f"/{INDEX}/_doc/a1?op_type=create", f"/{INDEX}/_create/a1"):
        again = await es("PUT", path, event(1))
        assert again.status == 409
        assert again.body["error"]["type"] == "version_conflict_engine_exception"
        assert again.body["error"]["reason"] == (
            "[a1]: version conflict, document already exists (current version [1])"
        )


async def test_indexing_an_existing_id_overwrites_it_with_a_new_version(es, fake):
    await es("PUT", f"/{INDEX}/_doc/a1", event(1))
    second = await es("PUT", f"/{INDEX}/_doc/a1", event(1, browser="Edge"))
    assert (second.status, second.body["result"], second.body["_version"]) == (
        200,
        "updated",
        2,
    )
    assert fake.documents(INDEX)["a1"]["browser"] == "Edge"


async def test_auto_generated_ids_look_like_elasticsearch_ids(es, fake):
    answer = await es("POST", f"/{INDEX}/_doc", event(1))
    assert answer.status == 201
    assert len(answer.body["_id"]) == 20
    assert set(fake.documents(INDEX)) == {answer.body["_id"]}


async def test_a_write_to_a_missing_index_creates_it_with_dynamic_mappings(es):
    doc = {"word": "hi", "count": 3, "ratio": 0.5, "ok": True, "when": "2024-01-01"}
    await es("POST", f"/{INDEX}/_doc", doc | {"inner": {"n": 1}})
    properties = (await es("GET", f"/{INDEX}")).body[INDEX]["mappings"]["properties"]
    assert properties["word"] == {
        "type": "text",
        "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
    }
    assert [properties[f]["type"] for f in ("count", "ratio", "ok", "when")] == [
        "long",
        "float",
        "boolean",
        "date",
    ]
    assert properties["inner"] == {"properties": {"n": {"type": "long"}}}


async def test_a_strict_mapping_refuses_unknown_fields(es):
    mappings = {"dynamic": "strict", "properties": {"url": {"type": "keyword"}}}
    await es("PUT", f"/{INDEX}", {"mappings": mappings})
    answer = await es("POST", f"/{INDEX}/_doc", {"url": "u", "extra": 1})
    assert answer.status == 400
    assert answer.body["error"]["type"] == "strict_dynamic_mapping_exception"


async def test_a_document_is_read_back_by_id_without_a_refresh(es):
    await es("PUT", f"/{INDEX}/_doc/a1", event(1))
    found = await es("GET", f"/{INDEX}/_doc/a1")
    assert (found.status, found.body["found"], found.body["_source"]) == (
        200,
        True,
        event(1),
    )
    missing = await es("GET", f"/{INDEX}/_doc/nope")
    assert (missing.status, missing.body["found"]) == (404, False)


async def test_updates_merge_into_the_stored_document(es, fake):
    await es("PUT", f"/{INDEX}/_doc/a1", {"browser": "IE", "inner": {"a": 1}})
    merged = await es("POST", f"/{INDEX}/_update/a1", {"doc": {"inner": {"b": 2}}})
    assert (merged.status, merged.body["result"], merged.body["_version"]) == (
        200,
        "updated",
        2,
    )
    same = await es("POST", f"/{INDEX}/_update/a1", {"doc": {"browser": "IE"}})
    assert same.body["result"] == "noop"
    body = bulk_body(
        {"update": {"_id": "a1"}},
        {"doc": {"browser": "Edge"}},
        {"update": {"_id": "new"}},
        {"doc": {"browser": "Edge"}},
        {"update": {"_id": "upserted"}},
        {"doc": {"browser": "Edge"}, "doc_as_upsert": True},
    )
    items = (await es("POST", f"/{INDEX}/_bulk", body)).body["items"]
    assert [item["update"]["status"] for item in items] == [200, 404, 201]
    assert items[1]["update"]["error"]["type"] == "document_missing_exception"
    assert fake.documents(INDEX) == {
        "a1": {"browser": "Edge", "inner": {"a": 1, "b": 2}},
        "upserted": {"browser": "Edge"},
    }


# -- mapping validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eventTime", "2024-03-01"),
        ("eventTime", "2024-03-01T10:20"),
        ("eventTime", "2024-03-01T10:20:30.123Z"),
        ("eventTime", "2024-03-01T10:20:30+02:00"),
        ("eventTime", 1709288400000),
        ("responseCode", "404"),
        ("responseCode", 4.0),
        ("ttfb", "2.5"),
        ("location", "41.1,-71.3"),
        ("location", [-71.3, 41.1]),
        ("ua_country", 44),
    ],
)
async def test_values_elasticsearch_accepts_are_stored(es, field, value):
    await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    answer = await es("POST", f"/{INDEX}/_doc", event(1, **{field: value}))
    assert answer.status == 201, answer.body


@pytest.mark.parametrize(
    ("field", "value", "type_"),
    [
        ("eventTime", "2024-13-01T10:00:00", "date"),
        ("eventTime", "01/03/2024", "date"),
        ("eventTime", "2024-03-01 10:00:00", "date"),
        ("responseCode", "two hundred", "integer"),
        ("responseCode", 2**40, "integer"),
        ("ttfb", "fast", "float"),
        ("location", {"lat": 91, "lon": 0}, "geo_point"),
        ("location", {"lat": 0, "lon": -181}, "geo_point"),
        ("location", {"lat": 0}, "geo_point"),
        ("browser", {"name": "Chrome"}, "keyword"),
    ],
)
async def test_values_elasticsearch_rejects_fail_with_a_document_parsing_exception(
    es, fake, field, value, type_
):
    await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    answer = await es("PUT", f"/{INDEX}/_doc/bad", event(1, **{field: value}))
    assert answer.status == 400
    error = answer.body["error"]
    assert error["type"] == "document_parsing_exception"
    assert (
        f"failed to parse field [{field}] of type [{type_}] in document with id 'bad'"
        in (error["reason"])
    )
    assert "caused_by" in error
    assert fake.count(INDEX) == 0


# -- bulk ---------------------------------------------------------------------------


async def test_bulk_items_answer_in_request_order_each_with_its_status(es, fake):
    await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    body = bulk_body(
        {"create": {"_id": "a"}},
        event(1),
        {"create": {"_id": "a"}},
        event(1),
        {"index": {}},
        event(2),
        {"create": {"_id": "c", "_index": "other"}},
        {"x": 1},
        {"index": {"_id": "d"}},
        event(4, responseCode="oops"),
        {"delete": {"_id": "a"}},
        {"delete": {"_id": "zz"}},
    )
    answer = await es("POST", f"/{INDEX}/_bulk", body)
    assert answer.status == 200
    assert answer.body["errors"] is True
    assert isinstance(answer.body["took"], int)
    items = answer.body["items"]
    assert [(op, item["status"]) for entry in items for op, item in entry.items()] == [
        ("create", 201),
        ("create", 409),
        ("index", 201),
        ("create", 201),
        ("index", 400),
        ("delete", 200),
        ("delete", 404),
    ]
    assert items[0]["create"]["result"] == "created"
    assert items[1]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert items[3]["create"]["_index"] == "other"
    assert items[4]["index"]["error"]["type"] == "document_parsing_exception"
    assert (items[5]["delete"]["result"], items[6]["delete"]["result"]) == (
        "deleted",
        "not_found",
    )
    assert set(fake.documents(INDEX)) == {items[2]["index"]["_id"]}


async def test_a_bulk_body_must_end_with_a_newline(es, fake):
    body = bulk_body({"index": {"_index": INDEX}}, {"a": 1})[:-1]
    answer = await es("POST", "/_bulk", body)
    assert answer.status == 400
    assert answer.body["error"]["type"] == "illegal_argument_exception"
    assert answer.body["error"]["reason"] == (
        "The bulk request must be terminated by a newline [\\n]"
    )
    assert fake.count(INDEX) == 0


async def test_a_bulk_action_without_an_index_fails_the_whole_request(es, fake):
    body = bulk_body({"index": {"_index": INDEX}}, {"a": 1}, {"index": {}}, {"a": 2})
    answer = await es("POST", "/_bulk", body)
    assert answer.status == 400
    assert answer.body["error"]["type"] == "action_request_validation_exception"
    assert answer.body["error"]["reason"] == "Validation Failed: 1: index is missing;"
    assert fake.count(INDEX) == 0


async def test_filter_path_trims_the_bulk_answer(es):
    body = bulk_body(
        {"create": {"_id": "a"}}, {"x": 1}, {"create": {"_id": "a"}}, {"x": 1}
    )
    path = f"/{INDEX}/_bulk?filter_path=errors,items.*.status,items.*.error.type"
    answer = await es("POST", path, body)
    assert answer.body == {
        "errors": True,
        "items": [
            {"create": {"status": 201}},
            {
                "create": {
                    "status": 409,
                    "error": {"type": "version_conflict_engine_exception"},
                }
            },
        ],
    }
    only_errors = await es("POST", f"/{INDEX}/_bulk?filter_path=items.*.error", body)
    assert len(only_errors.body["items"]) == 2  # both are conflicts now
    clean = bulk_body({"index": {"_id": "b"}}, {"x": 1})
    none_failed = await es("POST", f"/{INDEX}/_bulk?filter_path=items.*.error", clean)
    assert none_failed.body == {}


def test_filter_paths_matches_wildcards_arrays_and_exclusions():
    data = {
        "took": 3,
        "hits": {"total": {"value": 2}, "hits": [{"_id": "a", "x": 1}, {"_id": "b"}]},
        "nodes": {"n1": {"host": "h1", "ip": "i1"}, "n2": {"host": "h2"}},
    }
    assert filter_paths(data, ["took", "hits.hits._id"]) == {
        "took": 3,
        "hits": {"hits": [{"_id": "a"}, {"_id": "b"}]},
    }
    assert filter_paths(data, ["nodes.*.ho*"]) == {
        "nodes": {"n1": {"host": "h1"}, "n2": {"host": "h2"}}
    }
    assert filter_paths(data, ["**.value"]) == {"hits": {"total": {"value": 2}}}
    assert filter_paths(data, ["-hits", "-nodes.*.ip"]) == {
        "took": 3,
        "nodes": {"n1": {"host": "h1"}, "n2": {"host": "h2"}},
    }
    assert filter_paths(data, ["absent"]) == {}


async def test_filter_path_works_on_any_endpoint(es):
    answer = await es("GET", "/?filter_path=version.number")
    assert answer.body == {"version": {"number": "8.15.0"}}


# -- refresh ------------------------------------------------------------------------


async def test_documents_are_searchable_only_after_a_refresh(es, fake):
    await es("POST", f"/{INDEX}/_bulk", bulk_body({"index": {}}, event(1)))
    assert fake.count(INDEX) == 1  # stored...
    assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 0  # ...not searchable
    refreshed = await es("POST", f"/{INDEX}/_refresh")
    assert refreshed.body == {"_shards": {"total": 2, "successful": 1, "failed": 0}}
    assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 1


async def test_refresh_true_makes_a_write_searchable_at_once(es):
    await es("POST", f"/{INDEX}/_doc?refresh=true", event(1))
    assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 1


async def test_the_refresh_interval_makes_writes_searchable_after_a_while():
    fake = FakeElasticsearch(refresh_interval=0.05)
    with serving(fake) as url:
        async with aiohttp.ClientSession() as session:
            es = Client(session, url)
            await es("POST", f"/{INDEX}/_doc", event(1))
            assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 0
            await asyncio.sleep(0.1)
            assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 1


# -- search and aggregations --------------------------------------------------------

DATASET = [
    event(1, browser="Chrome", ua_country="US", responseCode=200, ttfb=1.0),
    event(2, browser="Chrome", ua_country="US", responseCode=501, ttfb=2.0),
    event(3, browser="Safari", ua_country="US", responseCode=503, ttfb=3.0),
    event(4, browser="Safari", ua_country="DE", responseCode=200, ttfb=4.0),
    event(5, browser="Edge", ua_country="DE", responseCode=404, ttfb=5.0),
    event(6, browser="Chrome", ua_country="FR", responseCode=507, ttfb=6.0),
    event(7, browser="IE", ua_country="FR", responseCode=200, ua_os="Linux"),
    event(
        8, browser="Chrome", ua_country="CN", responseCode=201, eventTime="2024-03-02"
    ),
]


@pytest.fixture
async def loaded(es):
    """The dataset, indexed under ids 1..8 and refreshed."""
    await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    lines = []
    for number, doc in enumerate(DATASET, 1):
        lines += [{"create": {"_id": str(number)}}, doc]
    answer = await es("POST", f"/{INDEX}/_bulk?refresh=true", bulk_body(*lines))
    assert answer.body["errors"] is False
    return es


async def search(es, body, index=INDEX):
    answer = await es("POST", f"/{index}/_search", body)
    assert answer.status == 200, answer.body
    return answer.body


def ids(result):
    return sorted(int(hit["_id"]) for hit in result["hits"]["hits"])


def buckets(aggregation):
    return [(b["key"], b["doc_count"]) for b in aggregation["buckets"]]


async def test_an_empty_search_returns_ten_hits_with_their_sources(loaded):
    result = await search(loaded, {})
    assert result["timed_out"] is False
    assert result["hits"]["total"] == {"value": 8, "relation": "eq"}
    assert result["hits"]["max_score"] == 1.0
    assert ids(result) == list(range(1, 9))
    first = result["hits"]["hits"][0]
    assert first == {"_index": INDEX, "_id": "1", "_score": 1.0, "_source": DATASET[0]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"match_all": {}}, [1, 2, 3, 4, 5, 6, 7, 8]),
        ({"term": {"browser": "Safari"}}, [3, 4]),
        ({"term": {"browser": "safari"}}, []),
        ({"terms": {"ua_country": ["DE", "FR"]}}, [4, 5, 6, 7]),
        ({"range": {"responseCode": {"gte": 500, "lte": 599}}}, [2, 3, 6]),
        ({"range": {"ttfb": {"gt": 2, "lt": 5}}}, [3, 4]),
        ({"range": {"eventTime": {"gte": "2024-03-02"}}}, [8]),
        ({"range": {"eventTime": {"gt": "2024-03-01||/d"}}}, [8]),
        ({"range": {"eventTime": {"lt": "now-1d"}}}, [1, 2, 3, 4, 5, 6, 7, 8]),
        ({"ids": {"values": ["2", "5"]}}, [2, 5]),
        ({"prefix": {"url": "http://example.com/"}}, [1, 2, 3, 4, 5, 6, 7, 8]),
        ({"match": {"ua_os": "LINUX"}}, [7]),
        ({"term": {"ua_os": "linux"}}, [7]),
        ({"match": {"browser": "Edge"}}, [5]),
        ({"exists": {"field": "ttfb"}}, [1, 2, 3, 4, 5, 6, 7, 8]),
        ({"exists": {"field": "nothing"}}, []),
        (
            {
                "bool": {
                    "must": [{"term": {"browser": "Chrome"}}],
                    "must_not": [{"term": {"responseCode": 501}}],
                    "filter": [{"range": {"responseCode": {"gte": 200}}}],
                }
            },
            [1, 6, 8],
        ),
        (
            {
                "bool": {
                    "should": [
                        {"term": {"ua_country": "DE"}},
                        {"term": {"browser": "Edge"}},
                        {"term": {"responseCode": 404}},
                    ],
                    "minimum_should_match": 2,
                }
            },
            [5],
        ),
    ],
)
async def test_queries_select_the_documents_elasticsearch_would(
    loaded, query, expected
):
    assert ids(await search(loaded, {"query": query, "size": 20})) == expected


async def test_size_from_and_count(loaded):
    page = await search(loaded, {"size": 3, "from": 6})
    assert ids(page) == [7, 8]
    assert page["hits"]["total"]["value"] == 8
    counted = await loaded(
        "POST", f"/{INDEX}/_count", {"query": {"term": {"ua_country": "US"}}}
    )
    assert counted.body["count"] == 3


async def test_sorted_hits_carry_their_sort_values(loaded):
    body = {"sort": [{"responseCode": "desc"}, "ttfb"], "size": 3, "_source": ["url"]}
    result = await search(loaded, body)
    assert [hit["sort"] for hit in result["hits"]["hits"]] == [
        [507, 6.0],
        [503, 3.0],
        [501, 2.0],
    ]
    assert result["hits"]["max_score"] is None
    assert result["hits"]["hits"][0]["_source"] == {"url": DATASET[5]["url"]}
    on_text = await loaded("POST", f"/{INDEX}/_search", {"sort": ["ua_os"]})
    assert on_text.status == 400


async def test_terms_buckets_are_ordered_by_count_then_key(loaded):
    result = await search(
        loaded, {"size": 0, "aggs": {"b": {"terms": {"field": "browser"}}}}
    )
    assert result["hits"]["hits"] == []
    assert result["hits"]["max_score"] is None
    aggregation = result["aggregations"]["b"]
    assert buckets(aggregation) == [
        ("Chrome", 4),
        ("Safari", 2),
        ("Edge", 1),
        ("IE", 1),
    ]
    assert aggregation["doc_count_error_upper_bound"] == 0
    assert aggregation["sum_other_doc_count"] == 0


async def test_nested_terms_aggregations_split_each_bucket(loaded):
    query = {
        "size": 0,
        "aggs": {
            "country": {
                "terms": {"field": "ua_country"},
                "aggs": {"browser": {"terms": {"field": "browser"}}},
            }
        },
    }
    countries = (await search(loaded, query))["aggregations"]["country"]["buckets"]
    assert [(c["key"], buckets(c["browser"])) for c in countries] == [
        ("US", [("Chrome", 2), ("Safari", 1)]),
        ("DE", [("Edge", 1), ("Safari", 1)]),
        ("FR", [("Chrome", 1), ("IE", 1)]),
        ("CN", [("Chrome", 1)]),
    ]


async def test_a_range_query_with_a_sized_terms_aggregation(loaded):
    query = {
        "size": 0,
        "query": {"range": {"responseCode": {"gte": 200, "lte": 299}}},
        "aggs": {
            "codes": {
                "terms": {
                    "field": "responseCode",
                    "size": 1,
                    "order": {"_count": "desc"},
                }
            }
        },
    }
    result = await search(loaded, query)
    assert result["hits"]["total"]["value"] == 4
    codes = result["aggregations"]["codes"]
    assert buckets(codes) == [(200, 3)]  # integer keys stay numbers
    assert codes["sum_other_doc_count"] == 1


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"_key": "asc"}, ["CN", "DE", "FR", "US"]),
        ({"_key": "desc"}, ["US", "FR", "DE", "CN"]),
        ({"_count": "asc"}, ["CN", "DE", "FR", "US"]),
        ({"slowest": "desc"}, ["FR", "DE", "US", "CN"]),
    ],
)
async def test_terms_order_by_key_count_or_a_metric(loaded, order, expected):
    aggs = {
        "c": {
            "terms": {"field": "ua_country", "order": order},
            "aggs": {"slowest": {"max": {"field": "ttfb"}}},
        }
    }
    result = await search(loaded, {"size": 0, "aggs": aggs})
    assert [key for key, _ in buckets(result["aggregations"]["c"])] == expected


async def test_metric_aggregations(loaded):
    aggs = {
        name: {name: {"field": field}}
        for name, field in [
            ("avg", "ttfb"),
            ("min", "responseCode"),
            ("max", "responseCode"),
            ("sum", "ttfb"),
            ("value_count", "browser"),
            ("cardinality", "browser"),
        ]
    }
    result = (await search(loaded, {"size": 0, "aggs": aggs}))["aggregations"]
    assert {name: value["value"] for name, value in result.items()} == {
        "avg": 3.0,
        "min": 200.0,
        "max": 507.0,
        "sum": 24.0,
        "value_count": 8,
        "cardinality": 4,
    }


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (
            {"calendar_interval": "day"},
            [("2024-03-01T00:00:00.000Z", 7), ("2024-03-02T00:00:00.000Z", 1)],
        ),
        ({"calendar_interval": "month"}, [("2024-03-01T00:00:00.000Z", 8)]),
        (
            {"fixed_interval": "12h"},
            [
                ("2024-03-01T00:00:00.000Z", 7),
                ("2024-03-01T12:00:00.000Z", 0),
                ("2024-03-02T00:00:00.000Z", 1),
            ],
        ),
    ],
)
async def test_date_histograms_bucket_by_interval_and_fill_gaps(
    loaded, interval, expected
):
    aggs = {"days": {"date_histogram": {"field": "eventTime"} | interval}}
    result = await search(loaded, {"size": 0, "aggs": aggs})
    days = result["aggregations"]["days"]["buckets"]
    assert [(d["key_as_string"], d["doc_count"]) for d in days] == expected


async def test_a_terms_aggregation_on_a_text_field_is_refused(loaded):
    body = {"size": 0, "aggs": {"os": {"terms": {"field": "ua_os"}}}}
    answer = await loaded("POST", f"/{INDEX}/_search", body)
    assert answer.status == 400
    cause = answer.body["error"]["root_cause"][0]
    assert cause["type"] == "illegal_argument_exception"
    assert cause["reason"].startswith(
        f"Fielddata is disabled on [ua_os] in [{INDEX}]. Text fields are not optimised"
    )


async def test_an_unknown_query_type_is_a_parsing_exception(loaded):
    answer = await loaded("POST", f"/{INDEX}/_search", {"query": {"fuzzyish": {}}})
    assert answer.status == 400
    assert answer.body["error"]["type"] == "parsing_exception"
    assert answer.body["error"]["reason"] == "unknown query [fuzzyish]"


async def test_searching_a_missing_index_is_a_404(es):
    answer = await es("POST", "/nothing/_search", {})
    assert answer.status == 404
    assert answer.body["error"]["type"] == "index_not_found_exception"


async def test_search_without_an_index_covers_all_indices(loaded):
    await loaded("POST", "/other/_doc?refresh=true", {"browser": "Chrome"})
    # "browser" is a keyword in one index and text in the other: match fits both
    result = await search(loaded, {"query": {"match": {"browser": "Chrome"}}}, index="")
    assert result["hits"]["total"]["value"] == 5


# -- faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type", "content_type", "from_elasticsearch"),
    [
        (429, "es_rejected_execution_exception", "application/json", True),
        (503, "unavailable_shards_exception", "application/json", True),
        (502, None, "text/html", False),
        (504, None, "text/plain", False),
    ],
)
async def test_a_status_fault_answers_without_storing(
    es, fake, code, error_type, content_type, from_elasticsearch
):
    fake.faults.next(status(code))
    answer = await es("POST", f"/{INDEX}/_bulk", bulk_body({"index": {}}, event(1)))
    assert answer.status == code
    assert answer.headers["Content-Type"].startswith(content_type)
    assert ("X-Elastic-Product" in answer.headers) is from_elasticsearch
    if error_type:
        assert answer.body["error"]["type"] == error_type
    if code == 429:
        assert " on EsThreadPoolExecutor[" in answer.body["error"]["reason"]
    assert fake.count(INDEX) == 0
    assert fake.faults.injected == {str(code): 1}
    assert (await es("POST", f"/{INDEX}/_doc", event(1))).status == 201  # used up


async def test_dropped_before_the_write_nothing_is_stored(es, fake):
    fake.faults.next(drop_before())
    with pytest.raises(aiohttp.ClientConnectionError):
        await es("POST", f"/{INDEX}/_doc", event(1))
    assert fake.count(INDEX) == 0


async def test_dropped_after_the_write_the_document_is_stored(es, fake):
    fake.faults.next(drop_after())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await es(
            "POST", f"/{INDEX}/_bulk", bulk_body({"create": {"_id": "a"}}, event(1))
        )
    assert set(fake.documents(INDEX)) == {"a"}
    retry = await es(
        "POST", f"/{INDEX}/_bulk", bulk_body({"create": {"_id": "a"}}, event(1))
    )
    assert retry.body["items"][0]["create"]["status"] == 409  # the retry is safe


async def test_a_delayed_write_is_stored_even_when_the_client_gave_up(es, fake):
    fake.faults.next(delay(0.3))
    with pytest.raises(asyncio.TimeoutError):
        await es(
            "POST",
            f"/{INDEX}/_doc",
            event(1),
            timeout=aiohttp.ClientTimeout(total=0.05),
        )
    for _ in range(100):  # the handler is still sleeping: wait for it to write
        if fake.count(INDEX):
            break
        await asyncio.sleep(0.02)
    assert fake.count(INDEX) == 1


async def test_item_faults_reject_a_fraction_of_a_bulk_and_store_the_rest(es, fake):
    fake.faults.next(item_status(429, 0.3))
    lines = []
    for number in range(10):
        lines += [{"create": {"_id": str(number)}}, event(number)]
    answer = await es("POST", f"/{INDEX}/_bulk", bulk_body(*lines))
    assert (answer.status, answer.body["errors"]) == (200, True)
    rejected = [
        item["create"]["_id"]
        for item in answer.body["items"]
        if item["create"]["status"] == 429
    ]
    assert len(rejected) == 3
    errors = [
        i["create"]["error"]["type"]
        for i in answer.body["items"]
        if "error" in i["create"]
    ]
    assert errors == ["es_rejected_execution_exception"] * 3
    assert set(fake.documents(INDEX)) == {str(n) for n in range(10)} - set(rejected)
    assert fake.faults.injected == {"item_429": 3}


async def test_faults_apply_to_writes_only(es, fake):
    fake.faults.next(status(503))
    assert (await es("GET", "/_cluster/health")).status == 200
    assert (await es("POST", "/_search", {})).status == 200
    assert (await es("POST", f"/{INDEX}/_doc", event(1))).status == 503


async def statuses_under_chaos(seed: int) -> list[int]:
    fake = FakeElasticsearch()
    fake.faults.chaos(seed=seed, **{"429": 0.3, "503": 0.2, "drop_before": 0.1})
    outcomes = []
    with serving(fake) as url:
        async with aiohttp.ClientSession() as session:
            es = Client(session, url)
            for number in range(30):
                try:
                    answer = await es("POST", f"/{INDEX}/_doc", event(number))
                    outcomes.append(answer.status)
                except aiohttp.ClientConnectionError:
                    outcomes.append(0)
    assert sum(fake.faults.injected.values()) == sum(s != 201 for s in outcomes)
    assert fake.count(INDEX) == outcomes.count(201)
    return outcomes


async def test_chaos_is_reproducible_from_its_seed():
    first = await statuses_under_chaos(seed=7)
    assert set(first) == {0, 201, 429, 503}
    assert await statuses_under_chaos(seed=7) == first
    assert await statuses_under_chaos(seed=8) != first


def test_chaos_refuses_unknown_faults_and_impossible_rates():
    fake = FakeElasticsearch()
    with pytest.raises(ValueError, match="unknown fault rates"):
        fake.faults.chaos(seed=1, **{"418": 0.1})
    with pytest.raises(ValueError, match="sum to at most 1"):
        fake.faults.chaos(seed=1, **{"429": 0.7, "503": 0.7})


async def test_latency_delays_writes(es, fake):
    fake.latency = 0.1
    started = time.monotonic()
    await es("POST", f"/{INDEX}/_doc", event(1))
    assert time.monotonic() - started >= 0.1


async def test_a_body_over_the_size_limit_is_a_413(es, fake):
    fake.max_content_length = 100
    body = bulk_body(*[{"index": {}}, event(1)] * 3)
    assert (await es("POST", f"/{INDEX}/_bulk", body)).status == 413
    assert fake.count(INDEX) == 0


# -- concurrency, TLS, recording, command line --------------------------------------


@pytest.mark.parametrize(("limit", "expected"), [(4, 4), (20, 12)])
async def test_max_in_flight_counts_requests_handled_at_once(
    fake, url, limit, expected
):
    fake.latency = 0.1
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        es = Client(session, url)
        answers = await asyncio.gather(
            *(es("POST", f"/{INDEX}/_doc", event(n)) for n in range(12))
        )
    assert {a.status for a in answers} == {201}
    assert fake.max_in_flight == expected


@pytest.fixture(scope="module")
def authority():
    return trustme.CA()


async def test_tls_serves_https_to_clients_that_trust_its_ca(fake, authority):
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    with serving(fake, ssl_context=server_context) as url:
        assert url.startswith("https://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            es = Client(session, url)
            assert (await es("GET", "/", ssl=client_context)).status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await es("GET", "/")


async def test_every_request_is_recorded(es, fake):
    await es("PUT", f"/{INDEX}/_doc/a?refresh=true", {"x": 1})
    request = fake.requests[-1]
    assert (request.method, request.path, request.query) == (
        "PUT",
        f"/{INDEX}/_doc/a",
        {"refresh": "true"},
    )
    assert request.headers["Authorization"] == BASIC
    assert request.json() == {"x": 1}


async def test_without_sources_the_fake_is_a_sink_that_still_knows_ids():
    fake = FakeElasticsearch(keep_sources=False)
    with serving(fake) as url:
        async with aiohttp.ClientSession() as session:
            es = Client(session, url)
            body = bulk_body({"create": {"_id": "a"}}, {"not": "checked"})
            await es("POST", f"/{INDEX}/_bulk", body)
            answer = await es("POST", f"/{INDEX}/_bulk", body)
    assert answer.body["items"][0]["create"]["status"] == 409
    assert fake.documents(INDEX) == {"a": {}}
    assert fake.requests[-1].body == b""


def test_the_module_runs_as_a_command_and_stops_quietly_on_ctrl_c():
    script = Path(__file__).with_name("fake_elasticsearch.py")
    command = [
        sys.executable,
        str(script),
        "--port",
        "0",
        "--user",
        "u",
        "--password",
        "p",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        line = server.stdout.readline()
        url = line.split(" at ")[1].split()[0]

        async def info():
            async with aiohttp.ClientSession() as session:
                auth = "Basic " + base64.b64encode(b"u:p").decode()
                return await Client(session, url)("GET", "/", auth=auth)

        assert asyncio.run(info()).status == 200
        server.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, errors = server.communicate(timeout=10)
    assert "user=u password=p" in line
    assert server.returncode == 0
    assert errors == ""
