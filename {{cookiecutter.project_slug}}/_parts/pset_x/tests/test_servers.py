"""What answers at ELASTIC_HOST: Elasticsearch, OpenSearch, a cluster behind a reverse
proxy, or the wrong thing (a web page, Kibana, a broken answer), which every command
names in one line, with the host, instead of reading it."""

import contextlib

import pytest
from aiohttp import web
from conftest import INDEX, Impostor, printed_answer, stdin_of
from fake_elasticsearch import FakeElasticsearch, serving
from yarl import URL

from {{ cookiecutter.project_slug }}.cli import main

COMMANDS = {
    "init": ["init"],
    "generate": ["generate", "--count", "5"],
    "query": ["query"],
    "info": ["info"],
    "get": ["get", "some-id"],
}
HINT = "is ELASTIC_HOST the Elasticsearch endpoint, not Kibana?"
PAGE = "<html><body><h1>Welcome to nginx!</h1></body></html>"
KIBANA_404 = '{"statusCode":404,"error":"Not Found","message":"Not Found"}'


def run(capsys, monkeypatch, argv, stdin="{}"):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr("sys.stdin", stdin_of(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def point_at(monkeypatch, cluster):
    """Serve a server of the test's own and point ELASTIC_HOST at it (the other
    settings stay the cluster's); returns its URL."""
    with contextlib.ExitStack() as stack:

        def serve(server):
            url = stack.enter_context(serving(server))
            monkeypatch.setenv("ELASTIC_HOST", url)
            return url

        yield serve


WRONG_THINGS = {
    "a web page": (
        (200, "text/html", PAGE),
        "answered 200 with text/html, not Elasticsearch JSON: " + HINT,
    ),
    "an empty body": (
        (200, "application/json"),
        "answered 200 with an empty body, not Elasticsearch JSON: " + HINT,
    ),
    "truncated JSON": (
        (200, "application/json", '{"count": 3, "hits": {"total": {"val'),
        "answered 200 with JSON cut short, not Elasticsearch JSON: " + HINT,
    ),
    "a 404 page": (
        (404, "text/html", "<h1>Not Found</h1>"),
        "answered 404 with text/html, not Elasticsearch JSON: " + HINT,
    ),
    "Kibana": (
        (404, "application/json", KIBANA_404, {"kbn-name": "kibana"}),
        "is Kibana, not Elasticsearch: set ELASTIC_HOST to the Elasticsearch "
        "endpoint (on Elastic Cloud, Copy endpoint next to Elasticsearch)",
    ),
    "a redirect": (
        (301, "text/html", PAGE, {"Location": "https://127.0.0.1:9243/"}),
        "answered 301, a redirect to https://127.0.0.1:9243/: set ELASTIC_HOST to "
        "the address where Elasticsearch answers itself",
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("wrong", WRONG_THINGS)
def test_a_server_that_is_not_elasticsearch_is_named_in_one_line(
    point_at, capsys, monkeypatch, wrong, command
):
    answer, said = WRONG_THINGS[wrong]
    impostor = Impostor(*answer)
    url = point_at(impostor)

    code, out, err = run(capsys, monkeypatch, COMMANDS[command])

    assert code == 1
    assert err == f"error: the server at {url} {said}\n"
    assert "nginx" not in out
    assert "Response:" not in out  # nothing of the answer is printed as a result
    assert len(impostor.requests) <= 2  # the request, and GET / perhaps: no retries


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("init", '"count" missing or not a number'),
        ("generate", 'no "version" of Elasticsearch or OpenSearch'),
        ("query", '"hits" missing or not an object'),
        ("info", 'no "version" of Elasticsearch or OpenSearch'),
        ("get", '"found" missing or not true'),
    ],
)
def test_json_of_another_service_is_named_with_what_it_lacks(
    point_at, capsys, monkeypatch, command, problem
):
    url = point_at(Impostor(200, "application/json", '{"status": "ok"}'))

    code, _, err = run(capsys, monkeypatch, COMMANDS[command])

    assert code == 1
    assert err == (
        f"error: the server at {url} answered 200 with JSON that Elasticsearch "
        f"would not send ({problem}): {HINT}\n"
    )


class OpenSearchLike(FakeElasticsearch):
    """The fake as OpenSearch answers: no X-Elastic-Product header, and its own name
    in the version that GET / gives."""

    def _render(self, call, reply):
        response = super()._render(call, reply)
        del response.headers["X-Elastic-Product"]
        return response

    def _info(self, call):
        info = super()._info(call)
        version = {"distribution": "opensearch", "number": "2.19.0"}
        tagline = "The OpenSearch Project: https://opensearch.org/"
        return info._replace(body=info.body | {"version": version, "tagline": tagline})


def test_opensearch_without_the_product_header_serves_every_command(
    point_at, capsys, monkeypatch
):
    opensearch = OpenSearchLike()
    point_at(opensearch)

    for argv in (
        ["init"],
        ["generate", "--count", "50"],
        ["generate", "--count", "5", "--batch-size", "1"],
    ):
        code, _, err = run(capsys, monkeypatch, argv)
        assert (code, err) == (0, ""), argv
    code, out, err = run(capsys, monkeypatch, ["query"], stdin='{"size": 0}')

    assert (code, err) == (0, "")
    assert printed_answer(out)["hits"]["total"]["value"] == 55
    # GET / is asked only when an answer does not say where it comes from: once for
    # each run of generate, whose first request (HEAD) has no body
    assert [r.method for r in opensearch.requests if r.path == "/"] == ["GET"] * 2


def test_info_names_opensearch_and_get_reads_an_event_from_it(
    point_at, capsys, monkeypatch
):
    opensearch = OpenSearchLike()
    point_at(opensearch)
    run(capsys, monkeypatch, ["init"])
    run(capsys, monkeypatch, ["generate", "--count", "3", "--batch-size", "1"])
    log_id = next(iter(opensearch.documents(INDEX)))

    code, out, err = run(capsys, monkeypatch, ["info"])
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == "Engine: OpenSearch 2.19.0"
    assert out.splitlines()[-1] == "Mapping: the event mapping (ElasticLogger.schema)"

    code, out, err = run(capsys, monkeypatch, ["get", log_id])
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == f'  "logID": "{log_id}",'

    code, out, err = run(capsys, monkeypatch, ["get", "no-such-id"])
    assert (code, out) == (1, "")
    assert err.startswith(f"error: index '{INDEX}' holds no event with logID ")


@pytest.mark.parametrize("command", ["generate", "query", "get"])
def test_a_missing_index_on_opensearch_is_a_missing_index(
    point_at, capsys, monkeypatch, command
):
    point_at(OpenSearchLike())

    code, _, err = run(capsys, monkeypatch, COMMANDS[command])

    assert code == 1
    assert err.startswith(f"error: index '{INDEX}' does not exist: run `python -m ")


PREFIX = "/search/es"


class BehindProxy(FakeElasticsearch):
    """The fake behind a reverse proxy that serves it under PREFIX/ and answers
    anything else with a 404 page of its own."""

    async def serve(self, request):
        if not request.raw_path.startswith(PREFIX + "/"):
            return web.Response(status=404, text=PAGE, content_type="text/html")
        inner = URL(request.raw_path.removeprefix(PREFIX), encoded=True)
        return await super().serve(request.clone(rel_url=inner))


def test_a_cluster_behind_a_reverse_proxy_is_reached_under_its_path(
    point_at, capsys, monkeypatch
):
    behind = BehindProxy()
    url = point_at(behind)
    monkeypatch.setenv("ELASTIC_HOST", url + PREFIX + "/")

    for argv in (
        ["init"],
        ["generate", "--count", "30"],
        ["generate", "--batch-size", "1"],  # one document id in each path
    ):
        code, _, err = run(capsys, monkeypatch, argv)
        assert (code, err) == (0, ""), argv
    code, out, _ = run(capsys, monkeypatch, ["query"], stdin='{"size": 0}')

    assert code == 0
    assert printed_answer(out)["hits"]["total"]["value"] == 31
    assert len(behind.documents(INDEX)) == 31


class OpenSearchBehindProxy(BehindProxy, OpenSearchLike):
    """OpenSearch under PREFIX/: a missing index shows only by asking PREFIX/ itself."""


def test_the_root_of_a_cluster_behind_a_proxy_is_asked_under_its_path(
    point_at, capsys, monkeypatch
):
    url = point_at(OpenSearchBehindProxy())
    monkeypatch.setenv("ELASTIC_HOST", url + PREFIX)

    code, _, err = run(capsys, monkeypatch, COMMANDS["generate"])

    assert code == 1
    assert err.startswith(f"error: index '{INDEX}' does not exist: run `python -m ")
