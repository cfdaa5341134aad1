"""The command line against a real Elasticsearch: init, generate, the sample queries,
info and get.

These tests run only when ELASTIC_HOST is set in the environment (the CI workflow
starts a cluster and sets it); otherwise they are skipped. They never read .env,
which points at your own cluster, and never touch your index: each test writes to a
throw-away index of its own and deletes it at the end. To run them against a cluster
of yours, for example the one compose.yaml starts:

    export ELASTIC_HOST=http://localhost:9200 ELASTIC_PASSWORD=...
    python -m pytest -m integration

They run the command line in-process and check what it did by asking the cluster
directly, with urllib: what the cluster stored, not what the project's client says.
Elasticsearch 8 and OpenSearch 2 (which speaks the Elasticsearch 7.10 API) both pass.
"""

import contextlib
import datetime as dt
import io
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import INDEX, printed_answer, stdin_of

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

PROJECT = Path(__file__).resolve().parent.parent
FIELDS = set(ElasticLogger.schema["mappings"]["properties"])
# The events the sample queries run on. 10,000 is also the most one search returns
# (index.max_result_window), so a single search reads back every one of them.
LOADED = 10_000

# Read at import, before conftest.py's autouse fixture clears ELASTIC_* for each test.
# ELASTIC_INDEX is left out: the tests choose their own index.
CLUSTER = {
    name: value
    for name, value in os.environ.items()
    if name.startswith("ELASTIC_") and name != "ELASTIC_INDEX"
}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CLUSTER.get("ELASTIC_HOST", "").strip(),
        reason="set ELASTIC_HOST (and credentials) to run the integration tests "
        "against a real Elasticsearch",
    ),
]


def call(method, path, body=None):
    """Ask the cluster with urllib, not the project's client; return the JSON answer.

    OpenSearch without its security plugin accepts any credentials; Elasticsearch 8
    checks them, so these requests carry the same ones as the command line.
    """
    settings = Settings.load(environ=CLUSTER, dotenv=os.devnull)  # no .env
    headers = {"Content-Type": "application/json"}
    if settings.authorization:
        headers["Authorization"] = settings.authorization
    request = urllib.request.Request(
        settings.host + path,
        method=method,
        headers=headers,
        data=None if body is None else json.dumps(body).encode(),
    )
    context = ssl.create_default_context(cafile=settings.ca_certs)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        error.add_note(f"{method} {path}: {error.read().decode(errors='replace')}")
        raise


def count(index, query=None):
    """How many documents of the index match the query (all of them without one)."""
    return call("POST", f"/{index}/_count", {"query": query} if query else {})["count"]


def search(index, body):
    return call("POST", f"/{index}/_search", body)


def aggregate(index, aggregation):
    """The result of one aggregation over every document of the index."""
    answer = search(index, {"size": 0, "aggs": {"result": aggregation}})
    return answer["aggregations"]["result"]


def documents(index):
    """Every document of an index of at most 10,000, as {_id: _source}."""
    hits = search(index, {"size": LOADED, "sort": ["_doc"]})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def new_index():
    return f"{INDEX}-it-{secrets.token_hex(4)}"


def delete_index(name):
    try:
        call("DELETE", f"/{name}")
    except urllib.error.HTTPError as error:
        if error.code != 404:  # 404: the test never created it
            raise


def point_at(monkeypatch, index):
    """The environment the command line reads: the real cluster, that index."""
    for variable in [name for name in os.environ if name.startswith("ELASTIC_")]:
        monkeypatch.delenv(variable)
    for variable, value in CLUSTER.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("ELASTIC_INDEX", index)


def cli(*argv, stdin=""):
    """Run the command line in-process; it must succeed. Returns its stdout."""
    code, out, err = cli_run(*argv, stdin=stdin)
    assert code == 0, f"exit code {code}\n{out}{err}"
    return out


def cli_run(*argv, stdin=""):
    """Run the command line in-process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr("sys.stdin", stdin_of(stdin))
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def index(monkeypatch):
    """A new index name, with the environment pointing at the real cluster and it."""
    name = new_index()
    point_at(monkeypatch, name)
    yield name
    delete_index(name)


class Loaded(NamedTuple):
    index: str
    generated: str  # what `generate` printed


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One index as `init` then `generate --count 10000` leave it, for the tests that
    only read it: generating 10,000 events once keeps this file quick."""
    name = new_index()
    try:
        # Before the per-test fixtures: no .env and no ELASTIC_* but the cluster's.
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(tmp_path_factory.mktemp("loaded"))
            point_at(patch, name)
            cli("init")
            generated = cli("generate", "--count", str(LOADED))
        yield Loaded(name, generated)
    finally:
        delete_index(name)


@pytest.fixture(scope="module")
def stored(loaded):
    """Every document of the loaded index, as {_id: _source}."""
    return documents(loaded.index)


@pytest.fixture
def sample_query(loaded, monkeypatch):
    """Run a sample query file of the project through the CLI on the loaded index."""
    point_at(monkeypatch, loaded.index)

    def run(name):
        return printed_answer(cli("query", stdin=(PROJECT / name).read_text()))

    return run


@pytest.fixture
def on_loaded(loaded, monkeypatch):
    """The environment pointing at the loaded index."""
    point_at(monkeypatch, loaded.index)
    return loaded


def test_init_creates_an_empty_index_with_the_event_mapping(index):
    out = cli("init")

    lines = out.splitlines()
    assert lines[0] == f"No index '{index}' to delete"
    assert lines[-1] == "Schema generated"
    mapping = call("GET", f"/{index}/_mapping")[index]["mappings"]
    assert mapping == ElasticLogger.schema["mappings"]
    assert count(index) == 0


def test_init_again_empties_the_index_and_says_how_many_documents_went(index):
    cli("init")
    cli("generate", "--count", "25")
    assert count(index) == 25

    out = cli("init")

    assert out.splitlines()[0] == f"Deleted index '{index}' and its 25 documents"
    assert count(index) == 0
    mapping = call("GET", f"/{index}/_mapping")[index]["mappings"]
    assert mapping == ElasticLogger.schema["mappings"]


def test_generate_stores_every_event_once_under_its_log_id(loaded, stored):
    assert loaded.generated.splitlines()[-1] == "10000 log events generated"
    assert count(loaded.index) == LOADED
    assert len(stored) == LOADED
    # An id of the cluster's choosing would mean a retry could store a second copy.
    assert [i for i, event in stored.items() if i != event["logID"]] == []
    assert all(set(event) == FIELDS for event in stored.values())


def test_generate_one_request_per_event_stores_every_event(index):
    cli("init")

    out = cli("generate", "--count", "50", "--batch-size", "1")

    assert out.splitlines()[-1] == "50 log events generated"
    assert count(index) == 50
    events = documents(index)
    assert len(events) == 50
    assert all(doc_id == event["logID"] for doc_id, event in events.items())


def test_query1_matches_every_event(sample_query, stored):
    answer = sample_query("query1.json")

    assert answer["hits"]["total"] == {"value": LOADED, "relation": "eq"}
    hits = answer["hits"]["hits"]
    assert len(hits) == 10  # the default page
    assert all(hit["_source"] == stored[hit["_id"]] for hit in hits)


def test_query2_counts_browsers_within_each_country(sample_query, stored):
    answer = sample_query("query2.json")

    assert answer["hits"]["hits"] == []  # size 0
    countries = answer["aggregations"]["country"]
    # Ten countries, and a terms aggregation shows ten buckets: none left over.
    assert countries["sum_other_doc_count"] == 0
    assert _counts(countries) == Counter(e["ua_country"] for e in stored.values())
    assert len(countries["buckets"]) == 10
    _assert_most_first(countries)
    for country in countries["buckets"]:
        browsers = country["browser"]
        assert browsers["sum_other_doc_count"] == 0
        assert _counts(browsers) == Counter(
            e["browser"] for e in stored.values() if e["ua_country"] == country["key"]
        )
        assert len(browsers["buckets"]) == 5
        assert sum(_counts(browsers).values()) == country["doc_count"]
        _assert_most_first(browsers)


def test_query3_finds_the_five_urls_with_most_server_errors(sample_query, stored):
    answer = sample_query("query3.json")

    server_errors = Counter(
        e["url"] for e in stored.values() if 500 <= e["responseCode"] <= 599
    )
    total = sum(server_errors.values())
    assert 0 < total < LOADED
    assert answer["hits"]["total"] == {"value": total, "relation": "eq"}
    urls = answer["aggregations"]["url"]
    assert len(urls["buckets"]) == 5
    for bucket in urls["buckets"]:  # each count is of that URL's server errors only
        assert bucket["doc_count"] == server_errors[bucket["key"]]
    top_five = sorted(server_errors.values(), reverse=True)[:5]
    assert [bucket["doc_count"] for bucket in urls["buckets"]] == top_five
    assert sum(top_five) + urls["sum_other_doc_count"] == total


def test_timestamp_mask_events_are_stored_as_dates(index):
    cli("init")

    cli("generate", "--count", "300", "--timestamp", "2021-03-?T12:?:?")

    noon_hours_of_march = {
        "range": {
            "eventTime": {"gte": "2021-03-01T12:00:00", "lte": "2021-03-31T12:59:59"}
        }
    }
    assert count(index, noon_hours_of_march) == 300
    # Per hour, as the cluster reads the dates: a date_histogram refuses text.
    hourly = {"field": "eventTime", "calendar_interval": "hour", "min_doc_count": 1}
    hours = aggregate(index, {"date_histogram": hourly})
    per_hour = {bucket["key"]: bucket["doc_count"] for bucket in hours["buckets"]}
    expected = Counter(
        _epoch_millis(event["eventTime"][:13] + ":00:00")
        for event in documents(index).values()
    )
    assert per_hour == expected
    assert len(per_hour) > 1  # several days, all at 12:xx
    assert all(_year_month_hour(key) == (2021, 3, 12) for key in per_hour)


def test_geo_points_are_stored_as_locations(loaded, stored):
    whole_world = {
        "geo_bounding_box": {
            "location": {
                "top_left": {"lat": 90, "lon": -180},
                "bottom_right": {"lat": -90, "lon": 180},
            }
        }
    }
    assert count(loaded.index, whole_world) == LOADED
    # Part of the world, edges between the 5-decimal points: lat and lon read right.
    north, south, west, east = 45.000005, -30.000005, -90.000005, 60.000005
    box = {
        "geo_bounding_box": {
            "location": {
                "top_left": {"lat": north, "lon": west},
                "bottom_right": {"lat": south, "lon": east},
            }
        }
    }
    inside = [
        e
        for e in stored.values()
        if south < e["location"]["lat"] < north and west < e["location"]["lon"] < east
    ]
    assert 0 < len(inside) < LOADED
    assert count(loaded.index, box) == len(inside)
    # geo_centroid, not geo_bounds: OpenSearch 2.3+ moved geo_bounds to its geo
    # module, which an embedded node may lack; geo_centroid is in every engine.
    centre = aggregate(loaded.index, {"geo_centroid": {"field": "location"}})
    assert centre["count"] == LOADED
    for axis, limit in (("lat", 90), ("lon", 180)):
        mean = sum(e["location"][axis] for e in stored.values()) / LOADED
        assert -limit <= centre["location"][axis] <= limit
        assert centre["location"][axis] == pytest.approx(mean, abs=1e-5)


def test_info_describes_the_cluster_and_the_loaded_index(on_loaded):
    root = call("GET", "/")

    out = cli("info")

    lines = out.splitlines()
    assert lines[0] == f"Cluster: {root['cluster_name']} (node {root['name']})"
    product = "OpenSearch" if root["version"].get("distribution") else "Elasticsearch"
    assert lines[1] == f"Engine: {product} {root['version']['number']}"
    status = call("GET", "/_cluster/health")["status"]
    assert lines[2].startswith(f"Health: {status} (")
    assert lines[3:] == [
        f"Index: {on_loaded.index}, {LOADED} documents",
        "Mapping: the event mapping (ElasticLogger.schema)",
    ]


def test_info_on_a_missing_index_says_to_run_init(index):
    code, out, err = cli_run("info")

    assert code == 1
    assert out.splitlines()[-1] == f"Index: {index} does not exist"
    assert err.count("\n") == 1
    assert err.startswith(f"error: index '{index}' does not exist: run `python -m ")
    assert err.endswith(" init` first\n")


def test_info_names_the_fields_a_guessed_mapping_got_wrong(index):
    # An event stored before `init`: the cluster creates the index and guesses
    # each field's type from the value (text and long, where keyword and integer
    # are wanted).
    event = {"browser": "Chrome", "responseCode": 200, "referrer": "x"}
    call("PUT", f"/{index}/_doc/1?refresh=true", event)

    code, out, err = cli_run("info")

    assert code == 1
    assert out.splitlines()[-2] == f"Index: {index}, 1 document"
    differences = out.splitlines()[-1].removeprefix(
        "Mapping: differs from the event mapping: "
    )
    assert differences.split("; ") == [
        "logID is missing",
        "eventTime is missing",
        "url is missing",
        "ua_country is missing",
        "userId is missing",
        "browser is text, not keyword",
        "ua_os is missing",
        "responseCode is long, not integer",
        "ttfb is missing",
        "location is missing",
        "referrer (text) is not an event field",
    ]
    assert err.count("\n") == 1
    assert f"index '{index}' does not have the event mapping (11 differences)" in err


def test_get_prints_a_stored_event_as_the_cluster_holds_it(on_loaded, stored):
    log_id = sorted(stored)[0]

    out = cli("get", log_id)

    assert json.loads(out) == stored[log_id]
    assert out.startswith('{\n  "logID": ')  # indented, the fields in stored order


def test_get_of_an_id_the_index_lacks_fails_in_one_line(on_loaded):
    code, out, err = cli_run("get", "no-such-id")

    assert (code, out) == (1, "")
    assert err == (
        f"error: index '{on_loaded.index}' holds no event with logID 'no-such-id': "
        "check the id (a query prints some)\n"
    )


def _counts(terms):
    """A terms aggregation's buckets as a Counter of key -> doc_count."""
    return Counter({bucket["key"]: bucket["doc_count"] for bucket in terms["buckets"]})


def _assert_most_first(terms):
    counts = [bucket["doc_count"] for bucket in terms["buckets"]]
    assert counts == sorted(counts, reverse=True)


def _epoch_millis(timestamp):
    """Milliseconds since 1970 of a time without a zone, which the cluster reads as
    UTC."""
    moment = dt.datetime.fromisoformat(timestamp).replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _year_month_hour(millis):
    moment = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    return moment.year, moment.month, moment.hour
