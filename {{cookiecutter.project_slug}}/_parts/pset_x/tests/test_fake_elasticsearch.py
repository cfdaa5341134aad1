"""The fake answers like Elasticsearch 8 over real HTTP and refuses what it lacks; the
project's own tests exercise faults, TLS and sample queries, these the details."""

import asyncio
import base64
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from fake_elasticsearch import FakeElasticsearch, serving, status

BASIC = "Basic " + base64.b64encode(b"elastic:test-password").decode()
API_KEY = "ApiKey dGVzdC1pZDp0ZXN0LWtleQ=="
NDJSON = "application/x-ndjson"
VERSIONED = "application/vnd.elasticsearch+json; compatible-with="
INDEX = "logs"
TYPES = {"browser": "keyword", "eventTime": "date", "logID": "text", "url": "keyword"}
TYPES |= {"responseCode": "integer", "ttfb": "float", "ua_country": "keyword"}
TYPES |= {"ua_os": "text", "location": "geo_point"}
MAPPINGS = {"properties": {name: {"type": type_} for name, type_ in TYPES.items()}}


class Answer(NamedTuple):
    status: int
    body: Any  # decoded JSON, or the text when the answer is not JSON
    headers: Any

    def error(self, status: int) -> Any:
        assert self.status == status, self.body
        return self.body["error"]


class Client(NamedTuple):
    """Requests: dicts are sent as JSON, bytes as NDJSON, unless headers say not."""

    session: aiohttp.ClientSession
    base: str

    async def __call__(self, method, path, body=None, headers=None, auth=BASIC, **kw):
        data = json.dumps(body).encode() if isinstance(body, dict | list) else body
        kind = NDJSON if isinstance(body, bytes) else "application/json"
        sent = {"Authorization": auth, "Content-Type": kind if data else None}
        sent = {k: v for k, v in (sent | (headers or {})).items() if v is not None}
        kw |= {"data": data, "headers": sent, "skip_auto_headers": ["Content-Type"]}
        async with self.session.request(method, self.base + path, **kw) as answer:
            text = await answer.text()
            is_json = answer.content_type.endswith("json") and text
            body = json.loads(text) if is_json else text
            return Answer(answer.status, body, answer.headers)


def bulk_body(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def event(number: int, **fields: Any) -> dict[str, Any]:
    event = {"browser": "Chrome", "eventTime": "2024-03-01T10:00:00", "url": "u"}
    event |= {"logID": f"id-{number}", "responseCode": 200, "ttfb": 1.5}
    event |= {"ua_country": "US", "ua_os": "Mac", "location": {"lat": 1, "lon": 2}}
    return event | fields


@pytest.fixture
def fake():
    """Explicit refreshes only, so tests decide when documents become searchable."""
    return FakeElasticsearch(refresh_interval=None)


@pytest.fixture
async def es(fake):
    with serving(fake) as url:
        async with aiohttp.ClientSession() as session:
            yield Client(session, url)


MALFORMED_BULKS = [
    (b'{"index": {}}\n{}', "The bulk request must be terminated by a newline"),
    (bulk_body({"index": {}}, {}), "Validation Failed: 1: index is missing;"),
    (bulk_body({"delete": {"_id": "a"}}), "[fake elasticsearch] the bulk action"),
]
REFUSED_INDICES = [
    ("Logs", {}, "Invalid index name [Logs], must be lowercase"),
    ("_logs", {}, "Invalid index name [_logs], must not start with '_', '-', or '+'"),
    ("lo%23gs", {}, "Invalid index name [lo#gs], must not contain '#'"),
    (INDEX, {"f": {"type": "floaty"}}, "No handler for type [floaty] declared on"),
    (INDEX, {"f": {"type": "ip"}}, "[fake elasticsearch] [ip] on field [f] is not"),
]


class TestRequests:
    @pytest.mark.parametrize(
        ("auth", "reason"),
        [
            (BASIC, None),
            (None, "missing authentication credentials for REST request [/]"),
            ("Basic ZWxhc3RpYzp3cm9uZw==", "unable to authenticate user [elastic]"),
            ("ApiKey bm9wZTpub3Bl", "unable to authenticate with provided credentials"),
        ],
    )
    async def test_credentials_are_checked(self, es, fake, auth, reason):
        answer = await es("GET", "/", auth=auth)
        assert answer.headers["X-Elastic-Product"] == "Elasticsearch"
        if reason is None:
            assert answer.body["version"]["number"] == "8.15.0"
            fake.refuse_credentials = True  # then the right ones are refused too
            answer, reason = await es("GET", "/", auth=auth), "unable to authenticate"
        error = answer.error(401)
        assert error["type"] == error["root_cause"][0]["type"] == "security_exception"
        assert error["reason"].startswith(reason)
        challenges = ['Basic realm="security" charset="UTF-8"', "ApiKey"]
        assert answer.headers.getall("WWW-Authenticate") == challenges

    @pytest.mark.parametrize(
        ("path", "content_type", "message"),
        [
            ("/_search", None, "Content-Type header is missing"),
            ("/_search", "text/plain", "Content-Type header [text/plain] is not"),
            ("/_bulk", f"{NDJSON}; charset=UTF-8", None),
            ("/_search", f"{VERSIONED}7", None),
            ("/_search", f"{VERSIONED}9", "Accept version must be either version 8"),
        ],
    )
    async def test_media_types_of_es_8(self, es, path, content_type, message):
        body = bulk_body({"index": {"_index": INDEX}}, {}) if "bulk" in path else b"{}"
        headers = {"Content-Type": content_type}
        versioned = {"Accept": content_type} if "compat" in str(content_type) else {}
        answer = await es("POST", path, body, headers | versioned)
        if message is None:
            assert answer.status == 200, answer.body
            expected = content_type if versioned else "application/json"
            assert answer.headers["Content-Type"] == expected.replace(" ", "")
        elif versioned:
            error = answer.error(400)
            assert error["type"] == "media_type_header_exception"
            assert error["caused_by"]["reason"].startswith(message)
        else:
            assert answer.error(406).startswith(message)

    async def test_bodies_routes_and_parameters_are_checked(self, es):
        json_type = {"Content-Type": "application/json"}
        malformed = await es("POST", "/_search", b'{"query": ', json_type)
        assert malformed.error(400)["reason"].startswith("[1:11] ")
        unknown = (await es("GET", "/_nothing/here")).error(400)
        assert unknown == "no handler found for uri [/_nothing/here] and method [GET]"
        wrong = await es("GET", "/_bulk")
        assert wrong.error(405).endswith("and method [GET], allowed: [POST, PUT]")
        typo = (await es("POST", f"/{INDEX}/_doc?refersh=true", {"a": 1})).error(400)
        assert typo["reason"].startswith("[fake elasticsearch] the parameter [refersh]")
        for body, reason in MALFORMED_BULKS:
            error = (await es("POST", "/_bulk", body)).error(400)
            assert error["reason"].startswith(reason)


class TestMonitoring:
    async def test_the_root_gives_the_cluster_node_and_version_of_es_8(self, es):
        root = (await es("GET", "/")).body
        keys = ["name", "cluster_name", "cluster_uuid", "version", "tagline"]
        assert list(root) == keys
        assert root["name"] == "fake-node"
        assert root["cluster_name"] == "fake-elasticsearch"
        assert list(root["version"]) == [
            "number",
            "build_flavor",
            "build_type",
            "build_hash",
            "build_date",
            "build_snapshot",
            "lucene_version",
            "minimum_wire_compatibility_version",
            "minimum_index_compatibility_version",
        ]
        assert root["tagline"] == "You Know, for Search"
        assert (await es("GET", "/")).body["cluster_uuid"] == root["cluster_uuid"]

    async def test_health_is_green_until_an_index_has_an_unassigned_replica(self, es):
        empty = (await es("GET", "/_cluster/health")).body
        assert empty == {
            "cluster_name": "fake-elasticsearch",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": 0,
            "active_shards": 0,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }
        await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
        health = (await es("GET", "/_cluster/health")).body
        assert (health["status"], health["active_shards"]) == ("yellow", 1)
        assert health["unassigned_shards"] == 1
        assert health["active_shards_percent_as_number"] == 50.0
        wrong = await es("POST", "/_cluster/health")
        assert wrong.error(405).endswith("allowed: [GET]")

    async def test_a_count_sees_what_a_search_sees(self, es, fake):
        await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
        await es("PUT", f"/{INDEX}/_doc/a1", event(1))
        assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 0
        await es("POST", f"/{INDEX}/_refresh")
        counted = (await es("GET", f"/{INDEX}/_count")).body
        shards = {"total": 1, "successful": 1, "failed": 0}
        assert counted == {"count": 1, "_shards": shards}
        missing = (await es("GET", "/nothing/_count")).error(404)
        assert missing["type"] == "index_not_found_exception"

    async def test_a_document_is_got_by_id_at_once_without_a_refresh(self, es, fake):
        await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
        await es("PUT", f"/{INDEX}/_doc/a%2F1", event(1))
        got = await es("GET", f"/{INDEX}/_doc/a%2F1")
        assert (got.status, got.headers["X-Elastic-Product"]) == (200, "Elasticsearch")
        assert got.body == {
            "_index": INDEX,
            "_id": "a/1",
            "_version": 1,
            "_seq_no": 0,
            "_primary_term": 1,
            "found": True,
            "_source": event(1),
        }
        assert (await es("HEAD", f"/{INDEX}/_doc/a%2F1")).status == 200
        missing = await es("GET", f"/{INDEX}/_doc/a2")
        assert missing.status == 404
        assert missing.body == {"_index": INDEX, "_id": "a2", "found": False}
        no_index = (await es("GET", "/nothing/_doc/a1")).error(404)
        assert no_index["type"] == "index_not_found_exception"


class TestWrites:
    async def test_an_index_is_created_inspected_and_deleted_if_valid(self, es):
        assert (await es("HEAD", f"/{INDEX}")).status == 404
        made = (await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})).body
        assert made == dict(acknowledged=True, shards_acknowledged=True, index=INDEX)
        assert (await es("HEAD", f"/{INDEX}")).status == 200
        described = (await es("GET", f"/{INDEX}")).body[INDEX]
        assert (described["mappings"], described["aliases"]) == (MAPPINGS, {})
        assert described["settings"]["index"]["number_of_shards"] == "1"
        mapping = (await es("GET", f"/{INDEX}/_mapping")).body
        assert mapping == {INDEX: {"mappings": MAPPINGS}}
        again = await es("PUT", f"/{INDEX}")
        assert again.error(400)["type"] == "resource_already_exists_exception"
        assert (await es("DELETE", f"/{INDEX}")).body == {"acknowledged": True}
        error = (await es("DELETE", f"/{INDEX}")).error(404)
        assert (error["type"], error["index"]) == ("index_not_found_exception", INDEX)
        assert error["reason"] == "no such index [logs]"
        assert error["resource.type"] == "index_or_alias"
        for name, properties, reason in REFUSED_INDICES:
            body = {"mappings": {"properties": properties}}
            error = (await es("PUT", f"/{name}", body)).error(400)
            assert error["root_cause"][0]["reason"].startswith(reason)

    async def test_writes_create_overwrite_and_refuse_to_create_twice(self, es, fake):
        first = await es("PUT", f"/{INDEX}/_doc/a1?op_type=create", event(1))
        assert (first.status, first.headers["Location"]) == (201, f"/{INDEX}/_doc/a1")
        assert (first.body["result"], first.body["_seq_no"]) == ("created", 0)
        for path in (f"/{INDEX}/_doc/a1?op_type=create", f"/{INDEX}/_create/a1"):
            error = (await es("PUT", path, event(1))).error(409)
            assert error["type"] == "version_conflict_engine_exception"
            assert error["reason"] == (
                "[a1]: version conflict, document already exists (current version [1])"
            )
        again = (await es("PUT", f"/{INDEX}/_doc/a1", event(1, browser="Edge"))).body
        assert (again["result"], again["_version"]) == ("updated", 2)
        auto = (await es("POST", f"/{INDEX}/_doc", event(2))).body["_id"]
        assert len(auto) == 20
        assert fake.documents(INDEX) == {"a1": event(1, browser="Edge"), auto: event(2)}
        # The index did not exist: it was created with dynamic mappings.
        mapped = (await es("GET", f"/{INDEX}")).body[INDEX]["mappings"]["properties"]
        keyword = {"keyword": {"type": "keyword", "ignore_above": 256}}
        assert mapped["browser"] == {"type": "text", "fields": keyword}
        assert mapped["eventTime"] == {"type": "date"}

    @pytest.mark.parametrize(
        ("field", "value", "type_"),
        [
            ("location", [-71.3, 41.1], None),
            ("eventTime", 1709288400000, None),
            ("eventTime", "2024-03-01 10:00:00", "date"),
            ("responseCode", 2**40, "integer"),
            ("location", {"lat": 91, "lon": 0}, "geo_point"),
            ("browser", {"name": "Chrome"}, "keyword"),
        ],
    )
    async def test_values_are_checked(self, es, fake, field, value, type_):
        await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
        answer = await es("PUT", f"/{INDEX}/_doc/x", event(1, **{field: value}))
        if type_ is None:
            assert answer.status == 201, answer.body
            return
        error = answer.error(400)
        assert error["type"] == "document_parsing_exception"
        expected = f"failed to parse field [{field}] of type [{type_}] in document with"
        assert expected in error["reason"]
        assert ("caused_by" in error, fake.count(INDEX)) == (True, 0)

    async def test_bulk_items_answer_in_order_each_with_its_status(self, es, fake):
        await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
        body = bulk_body(
            *({"create": {"_id": "a"}}, event(1)) * 2,
            *({"index": {}}, event(2)),
            *({"create": {"_id": "c", "_index": "other"}}, {"x": 1}),
            *({"index": {"_id": "d"}}, event(4, responseCode="oops")),
        )
        answer = await es("POST", f"/{INDEX}/_bulk", body)
        assert (answer.status, answer.body["errors"]) == (200, True)
        items = [item for entry in answer.body["items"] for item in entry.items()]
        statuses = [("create", 201), ("create", 409), ("index", 201), ("create", 201)]
        assert [(op, i["status"]) for op, i in items] == [*statuses, ("index", 400)]
        assert items[1][1]["error"]["type"] == "version_conflict_engine_exception"
        assert items[3][1]["_index"] == "other"
        assert items[4][1]["error"]["type"] == "document_parsing_exception"
        assert set(fake.documents(INDEX)) == {"a", items[2][1]["_id"]}
        path = f"/{INDEX}/_bulk?filter_path=errors,items.*.error.type"
        trimmed = (await es("POST", path, bulk_body({"index": {}}, {"x": 1}))).body
        assert trimmed == {"errors": False}  # objects left empty disappear, as in ES

    async def test_documents_are_searchable_only_after_a_refresh(self, es, fake):
        await es("POST", f"/{INDEX}/_bulk", bulk_body({"index": {}}, event(1)))
        assert fake.count(INDEX) == 1  # stored...
        assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 0  # ...not found
        refreshed = await es("POST", f"/{INDEX}/_refresh?filter_path=_shards.t*")
        assert refreshed.body == {"_shards": {"total": 2}}
        assert (await es("GET", f"/{INDEX}/_count")).body["count"] == 1
        periodic = FakeElasticsearch(refresh_interval=0.05)
        periodic.create_index(INDEX, MAPPINGS)
        with serving(periodic) as url:
            async with aiohttp.ClientSession() as session:
                await Client(session, url)("POST", f"/{INDEX}/_doc", event(1))
        assert periodic.count(INDEX, refreshed=True) == 0
        await asyncio.sleep(0.1)
        assert periodic.count(INDEX, refreshed=True) == 1


DATASET = [  # ids 1 to 8
    event(1, browser="Chrome", ua_country="US", responseCode=200, ttfb=1.0),
    event(2, browser="Chrome", ua_country="US", responseCode=501, ttfb=2.0),
    event(3, browser="Safari", ua_country="US", responseCode=503, ttfb=3.0),
    event(4, browser="Safari", ua_country="DE", responseCode=200, ttfb=4.0),
    event(5, browser="Edge", ua_country="DE", responseCode=404, ttfb=5.0),
    event(6, browser="Chrome", ua_country="FR", responseCode=507, ttfb=6.0),
    event(7, browser="IE", ua_country="FR", responseCode=200, ua_os="Linux"),
    event(8, ua_country="CN", responseCode=201, eventTime="2024-03-02"),
]
CHROME_NOT_501 = {"must": {"term": {"browser": "Chrome"}}}
CHROME_NOT_501 |= {"must_not": [{"term": {"responseCode": 501}}]}
CHROME_NOT_501 |= {"filter": [{"range": {"responseCode": {"gte": 200}}}]}
TWO_OF = [{"term": {"ua_country": "DE"}}, {"term": {"browser": "Edge"}}]
TWO_OF += [{"term": {"responseCode": 404}}]


@pytest.fixture
async def search(es):
    """The dataset, indexed and refreshed; search(body) -> the answer."""
    await es("PUT", f"/{INDEX}", {"mappings": MAPPINGS})
    lines = [{"create": {"_id": str(n)}} for n in range(1, 9)]
    lines = [line for pair in zip(lines, DATASET, strict=True) for line in pair]
    answer = await es("POST", f"/{INDEX}/_bulk?refresh=true", bulk_body(*lines))
    assert answer.body["errors"] is False

    async def run(body, path=f"/{INDEX}/_search", status=200):
        answer = await es("POST", path, body)
        assert answer.status == status, answer.body
        return answer.body

    return run


def ids(result):
    return sorted(int(hit["_id"]) for hit in result["hits"]["hits"])


def buckets(aggregation):
    return [(b["key"], b["doc_count"]) for b in aggregation["buckets"]]


class TestSearch:
    async def test_a_search_returns_a_page_of_hits_with_their_sources(self, search):
        result = await search({})
        assert result["hits"]["total"] == {"value": 8, "relation": "eq"}
        assert (result["timed_out"], result["hits"]["max_score"]) == (False, 1.0)
        first = {"_index": INDEX, "_id": "1", "_score": 1.0, "_source": DATASET[0]}
        assert result["hits"]["hits"][0] == first
        assert ids(await search({"size": 3, "from": 6})) == [7, 8]
        us = {"query": {"term": {"ua_country": "US"}}}
        assert (await search(us, f"/{INDEX}/_count"))["count"] == 3
        await search({"browser": "Chrome"}, "/other/_doc?refresh=true", status=201)
        # "browser" is a keyword in one index and text in the other: match fits both
        chrome = {"query": {"match": {"browser": "Chrome"}}}
        everywhere = await search(chrome, "/_search")
        assert everywhere["hits"]["total"]["value"] == 5

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"term": {"browser": {"value": "safari"}}}, []),
            ({"terms": {"ua_country": ["DE", "FR"]}}, [4, 5, 6, 7]),
            ({"range": {"responseCode": {"gte": 500, "lte": 599}}}, [2, 3, 6]),
            ({"range": {"eventTime": {"gte": "2024-03-02"}}}, [8]),
            ({"match": {"ua_os": "LINUX"}}, [7]),
            ({"match": {"ua_os": {"query": "linux mac", "operator": "and"}}}, []),
            ({"term": {"ua_os": "linux"}}, [7]),
            ({"exists": {"field": "location"}}, [1, 2, 3, 4, 5, 6, 7, 8]),
            ({"bool": CHROME_NOT_501}, [1, 6, 8]),
            ({"bool": {"should": TWO_OF, "minimum_should_match": 2}}, [5]),
        ],
    )
    async def test_queries_select_like_elasticsearch(self, search, query, expected):
        assert ids(await search({"query": query, "size": 20})) == expected

    async def test_aggregations_terms_nested_ordered_sized_and_metrics(self, search):
        browser = {"terms": {"field": "browser"}}
        country = {"terms": {"field": "ua_country"}, "aggs": {"b": browser}}
        result = await search({"size": 0, "aggs": {"b": browser, "c": country}})
        assert (result["hits"]["hits"], result["hits"]["max_score"]) == ([], None)
        browsers = result["aggregations"]["b"]
        expected = [("Chrome", 4), ("Safari", 2), ("Edge", 1), ("IE", 1)]
        assert buckets(browsers) == expected
        countries = result["aggregations"]["c"]["buckets"]
        assert [(c["key"], buckets(c["b"])) for c in countries] == [
            ("US", [("Chrome", 2), ("Safari", 1)]),
            ("DE", [("Edge", 1), ("Safari", 1)]),
            ("FR", [("Chrome", 1), ("IE", 1)]),
            ("CN", [("Chrome", 1)]),
        ]
        aggs = {"c": {"terms": {"field": "ua_country", "order": [{"_key": "desc"}]}}}
        result = await search({"size": 0, "aggs": aggs})
        keys = [key for key, _ in buckets(result["aggregations"]["c"])]
        assert keys == ["US", "FR", "DE", "CN"]
        terms = {"field": "responseCode", "size": 1, "order": {"_count": "desc"}}
        fields = {"avg": "ttfb", "min": "responseCode", "max": "ttfb", "sum": "ttfb"}
        fields |= {"value_count": "browser", "cardinality": "browser"}
        aggs = {name: {name: {"field": field}} for name, field in fields.items()}
        query = {"range": {"responseCode": {"gte": 200, "lte": 299}}}
        body = {"size": 0, "query": query, "aggs": aggs | {"codes": {"terms": terms}}}
        result = await search(body)
        assert result["hits"]["total"]["value"] == 4
        codes = result["aggregations"].pop("codes")
        assert (buckets(codes), codes["sum_other_doc_count"]) == ([(200, 3)], 1)
        metrics = {name: v["value"] for name, v in result["aggregations"].items()}
        numbers = {"avg": 2.0, "min": 200.0, "max": 4.0, "sum": 8.0}
        assert metrics == numbers | {"value_count": 4, "cardinality": 3}

    @pytest.mark.parametrize(
        "body",
        [
            {"sort": ["ttfb"]},
            {"query": {"range": {"eventTime": {"lt": "now-1d"}}}},
            {"aggs": {"d": {"date_histogram": {"field": "eventTime"}}}},
            {"aggs": {"t": {"terms": {"field": "browser", "order": {"m": "desc"}}}}},
            {"query": {"prefix": {"browser": "Ch"}}},
        ],
    )
    async def test_what_the_fake_does_not_implement_fails_loudly(self, search, body):
        error = (await search(body, status=400))["error"]
        assert error["reason"].startswith("[fake elasticsearch]")

    async def test_a_query_elasticsearch_does_not_know_is_unknown(self, search):
        error = (await search({"query": {"mtch": {}}}, status=400))["error"]
        assert (error["type"], error["reason"]) == (
            "parsing_exception",
            "unknown query [mtch]",
        )


class TestServer:
    @pytest.mark.parametrize(
        ("code", "error_type", "content_type"),
        [
            (429, "es_rejected_execution_exception", "application/json"),
            (503, "unavailable_shards_exception", "application/json"),
            (502, None, "text/html"),
            (504, None, "text/plain"),
        ],
    )
    async def test_a_status_fault(self, es, fake, code, error_type, content_type):
        fake.faults.next(status(code))
        assert (await es("GET", "/")).status == 200  # faults are for writes only
        answer = await es("POST", f"/{INDEX}/_bulk", bulk_body({"index": {}}, event(1)))
        assert answer.status == code
        assert answer.headers["Content-Type"].split(";")[0] == content_type
        assert ("X-Elastic-Product" in answer.headers) is (error_type is not None)
        assert error_type is None or answer.body["error"]["type"] == error_type
        assert (fake.count(INDEX), fake.faults.injected) == (0, {str(code): 1})
        assert (await es("POST", f"/{INDEX}/_doc", event(1))).status == 201  # used up

    async def test_a_dropped_answer_is_in_flight_until_the_write_is_applied(self, fake):
        fake.latency = 0.1  # added to every write
        fake.faults.chaos(seed=3, drop_after=1)
        with serving(fake) as url:
            async with aiohttp.ClientSession() as session:
                es = Client(session, url)
                writes = [es("POST", "/x/_doc", event(n)) for n in range(12)]
                answers = await asyncio.gather(*writes, return_exceptions=True)
        assert all(isinstance(a, aiohttp.ServerDisconnectedError) for a in answers)
        assert (fake.max_in_flight, fake.count("x")) == (12, 12)
        assert fake.faults.injected == {"drop_after": 12}

    async def test_every_request_is_recorded_unless_the_fake_is_a_sink(self, es, fake):
        await es("PUT", f"/{INDEX}/_doc/a", {"x": 1})
        request = fake.requests[-1]
        assert (request.method, request.path) == ("PUT", "/logs/_doc/a")
        assert (request.headers["Authorization"], request.json()) == (BASIC, {"x": 1})
        sink = FakeElasticsearch(keep_sources=False)  # stores ids only, checks nothing
        body = bulk_body({"create": {"_id": "a"}}, {"not": "checked"})
        with serving(sink) as url:
            async with aiohttp.ClientSession() as session:
                await Client(session, url)("POST", f"/{INDEX}/_bulk", body)
                answer = await Client(session, url)("POST", f"/{INDEX}/_bulk", body)
        assert answer.body["items"][0]["create"]["status"] == 409
        assert (sink.documents(INDEX), sink.requests[-1].body) == ({"a": {}}, b"")

    def test_the_module_runs_as_a_command_and_stops_quietly_on_ctrl_c(self):
        script = Path(__file__).with_name("fake_elasticsearch.py")
        options = ["--port", "0", "--user", "u", "--password", "p"]
        command = [sys.executable, script, *options]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        with subprocess.Popen(command, **pipes) as server:
            line = server.stdout.readline()
            url = line.split(" at ")[1].split()[0]
            auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
            request = urllib.request.Request(url, headers=auth)
            with urllib.request.urlopen(request) as info:
                assert info.status == 200
            server.send_signal(signal.SIGINT)  # what Ctrl-C sends
            _, errors = server.communicate(timeout=10)
        assert "user=u password=p" in line
        assert (server.returncode, errors) == (0, "")
