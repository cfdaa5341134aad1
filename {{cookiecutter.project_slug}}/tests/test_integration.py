"""The command line against a real Elasticsearch: init, generate, the sample queries.

These tests run only when ELASTIC_HOST is set in the environment (the CI workflow
starts a cluster and sets it); otherwise they are skipped. They never read .env,
which points at your own cluster, and never touch your index: each test writes to a
throw-away index of its own and deletes it at the end. To run them against a cluster
of yours, for example the one compose.yaml starts:

    export ELASTIC_HOST=http://localhost:9200 ELASTIC_PASSWORD=...
    python -m pytest -m integration
"""

import io
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import INDEX, printed_answer

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.es_logger import ElasticLogger
from {{ cookiecutter.project_slug }}.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent

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
    """Ask the cluster with urllib, not the project's client; return the JSON answer."""
    settings = Settings.load()
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
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        return json.load(answer)


@pytest.fixture
def index(monkeypatch):
    """A new index name, with the environment pointing at the real cluster and it."""
    name = f"{INDEX}-it-{secrets.token_hex(4)}"
    for variable, value in CLUSTER.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("ELASTIC_INDEX", name)
    yield name
    try:
        call("DELETE", f"/{name}")
    except urllib.error.HTTPError as error:
        if error.code != 404:  # 404: the test never created it
            raise


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the command line in-process: cli(*argv, stdin="") -> (exit code, stdout)."""

    def run(*argv, stdin=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert code == 0, f"exit code {code}\n{out}{err}"
        return out

    return run


@pytest.fixture
def loaded(index, cli):
    """The index as `init` then `generate --count 1000` leave it."""
    cli("init")
    assert cli("generate", "--count", "1000").splitlines()[-1] == (
        "1000 log events generated"
    )
    return index


def query(cli, name):
    """The answer to the sample query in the file `name`, as the CLI prints it."""
    return printed_answer(cli("query", stdin=(PROJECT / name).read_text()))


def count(index, search=None):
    return call("POST", f"/{index}/_count", search or {})["count"]


def test_init_creates_an_empty_index_with_the_event_mapping(index, cli):
    out = cli("init")

    assert out.splitlines()[-1] == "Schema generated"
    mapping = call("GET", f"/{index}/_mapping")[index]["mappings"]
    assert mapping == ElasticLogger.schema["mappings"]
    assert count(index) == 0


def test_generate_stores_every_event(loaded):
    assert count(loaded) == 1000


def test_generate_one_request_per_event_stores_every_event(index, cli):
    cli("init")

    out = cli("generate", "--count", "50", "--batch-size", "1")

    assert out.splitlines()[-1] == "50 log events generated"
    assert count(index) == 50


def test_query1_matches_every_event(loaded, cli):
    answer = query(cli, "query1.json")

    assert answer["hits"]["total"] == {"value": 1000, "relation": "eq"}


def test_query2_counts_browsers_within_each_country(loaded, cli):
    answer = query(cli, "query2.json")

    assert answer["hits"]["hits"] == []
    countries = answer["aggregations"]["country"]
    buckets = countries["buckets"]
    assert len(buckets) > 1
    assert sum(b["doc_count"] for b in buckets) + countries["sum_other_doc_count"] == (
        1000
    )
    for country in buckets:
        browsers = country["browser"]
        in_country = sum(b["doc_count"] for b in browsers["buckets"])
        assert in_country + browsers["sum_other_doc_count"] == country["doc_count"]


def test_query3_finds_the_five_urls_with_most_server_errors(loaded, cli):
    answer = query(cli, "query3.json")

    server_error = {"range": {"responseCode": {"gte": 500, "lte": 599}}}
    server_errors = count(loaded, {"query": server_error})
    assert 0 < server_errors < 1000
    assert answer["hits"]["total"]["value"] == server_errors
    buckets = answer["aggregations"]["url"]["buckets"]
    assert 1 <= len(buckets) <= 5
    counts = [bucket["doc_count"] for bucket in buckets]
    assert counts == sorted(counts, reverse=True)
    for bucket in buckets:  # each count is of that URL's server errors only
        of_url = {"bool": {"filter": [server_error, {"term": {"url": bucket["key"]}}]}}
        assert count(loaded, {"query": of_url}) == bucket["doc_count"]
