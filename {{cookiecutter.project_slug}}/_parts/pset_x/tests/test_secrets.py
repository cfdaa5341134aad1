"""No secret in anything the command line prints, whatever the settings hold.

Every error path the command line has is run with credentials configured (and some
with credentials where they do not belong), and all it printed is searched for them:
the password, the API key and its secret half, the Basic token they make.
"""

import asyncio
import base64
import os
import ssl
import traceback

import pytest
import trustme
from conftest import PASSWORD, USER, Impostor, stdin_of
from fake_elasticsearch import API_KEY, FakeElasticsearch, serving

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.errors import (
    PsetError,
)
from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)

WRONG_KEY = base64.b64encode(b"wrong-id:wrong-secret-half").decode()


def secrets_in(environ):
    """Each secret the settings hold, in every form it could leak in."""
    found = set()
    if password := environ.get("ELASTIC_PASSWORD"):
        pair = f"{environ.get('ELASTIC_USERID', USER)}:{password}"
        pair = pair.encode(errors="surrogateescape")  # as read from the environment
        found |= {password, base64.b64encode(pair).decode()}
    if key := environ.get("ELASTIC_API_KEY"):
        pair = key if ":" in key else base64.b64decode(key).decode()
        found |= {key, pair.partition(":")[2]}
    host = environ.get("ELASTIC_HOST", "")
    if "@" in host:  # user:password@ in the host
        found.add(host.rpartition("@")[0].partition("://")[2].partition(":")[2])
    if "=" in host:  # a token in the query of the host
        found.add(host.rpartition("=")[2])
    return {secret for secret in found if secret}


@pytest.fixture(scope="module")
def strangers():
    """Servers a wrong ELASTIC_HOST may reach: a cluster with a certificate nobody
    vouches for, a web page, Kibana. Their URLs, by name."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    page = Impostor(200, "text/html", "<html>nginx</html>")
    kibana = Impostor(404, "application/json", "{}", {"kbn-name": "kibana"})
    with (
        serving(FakeElasticsearch(), ssl_context=context) as tls_url,
        serving(page) as page_url,
        serving(kibana) as kibana_url,
    ):
        yield {"tls_url": tls_url, "page_url": page_url, "kibana_url": kibana_url}


@pytest.fixture
def world(monkeypatch, index, es_url, unused_port, strangers):
    """The fake cluster, its index created and the environment pointing at it, and
    the strangers, and a port nobody listens on."""
    unused_url = f"http://127.0.0.1:{unused_port}"
    cluster = {"es": index, "es_url": es_url, "unused_url": unused_url}
    return strangers | cluster | {"set": monkeypatch.setenv}


def with_host(host):
    return lambda w: w["set"]("ELASTIC_HOST", host.format(**w))


def with_env(name, value):
    return lambda w: w["set"](name, value)


def refusing(w):
    w["es"].refuse_credentials = True


def slow(w):
    w["es"].latency = 1.0


def busy(w):
    w["es"].faults.chaos(seed=1, every_request=True, **{"503": 1.0})


def bad_mapping(w):
    w["es"].create_index("other", {"properties": {"eventTime": {"type": "boolean"}}})
    w["set"]("ELASTIC_INDEX", "other")


def junk_ca_file(w):
    with open("junk.crt", "w") as junk:
        junk.write("junk\n")
    w["set"]("ELASTIC_CA_CERTS", "junk.crt")


# Every error path: how to set it up, the command, its standard input.
ERROR_PATHS = {
    "credentials inside ELASTIC_HOST": (
        with_host(f"http://{USER}:{PASSWORD}@127.0.0.1:9200"),
        ["init"],
        "",
    ),
    "credentials inside a malformed ELASTIC_HOST": (
        with_host(f"http://{USER}:{PASSWORD}@[::1"),
        ["query"],
        "{}",
    ),
    "a password with a / inside ELASTIC_HOST": (
        with_host(f"http://{USER}:pass/{PASSWORD}@127.0.0.1:9200"),
        ["generate"],
        "",
    ),
    "a token in the query of ELASTIC_HOST": (
        with_host("{es_url}/?api_key=" + API_KEY),
        ["init"],
        "",
    ),
    "an unreachable host": (with_host("{unused_url}"), ["generate"], ""),
    "refused credentials": (refusing, ["generate"], ""),
    "refused credentials at init": (refusing, ["init"], ""),
    "a refused API key": (with_env("ELASTIC_API_KEY", WRONG_KEY), ["query"], "{}"),
    "an API key that is not base64": (
        with_env("ELASTIC_API_KEY", "wrong-id:wrong-secret-half"),
        ["init"],
        "",
    ),
    "a password that is not UTF-8": (
        with_env("ELASTIC_PASSWORD", PASSWORD + "\udcff"),
        ["init"],
        "",
    ),
    "a missing index": (with_env("ELASTIC_INDEX", "missing"), ["query"], "{}"),
    "an index name Elasticsearch refuses": (
        with_env("ELASTIC_INDEX", "Bad"),
        ["init"],
        "",
    ),
    "a web page": (with_host("{page_url}"), ["init"], ""),
    "Kibana": (with_host("{kibana_url}"), ["query"], "{}"),
    "a certificate nobody vouches for": (with_host("{tls_url}"), ["init"], ""),
    "a CA file that holds no certificate": (junk_ca_file, ["init"], ""),
    "https to a plain http port": (
        lambda w: w["set"]("ELASTIC_HOST", w["es_url"].replace("http:", "https:")),
        ["generate"],
        "",
    ),
    "a timeout": (
        slow,
        ["generate", "--count", "5", "--timeout", "0.2", "--retry-for", "0"],
        "",
    ),
    "a cluster that stays busy": (busy, ["init", "--retry-for", "0.05"], ""),
    "events the cluster rejects": (bad_mapping, ["generate", "--count", "5"], ""),
    "a query that is not JSON": (None, ["query"], '{"size": NaN'),
    "a query Elasticsearch rejects": (None, ["query"], '{"query": {"mtch": {}}}'),
    "a usage error": (None, ["generate", "--count", "0"], ""),
}


@pytest.mark.parametrize("path", ERROR_PATHS)
def test_no_error_path_prints_a_secret(world, capsys, monkeypatch, fast_retries, path):
    setup, argv, stdin = ERROR_PATHS[path]
    if setup is not None:
        setup(world)
    monkeypatch.setattr("sys.stdin", stdin_of(stdin))
    try:
        code = main(argv)
    except SystemExit as leaving:  # argparse
        code = leaving.code
    out, err = capsys.readouterr()

    assert code in (1, 2), out + err
    assert "Traceback" not in out + err
    secrets = secrets_in(os.environ)
    assert secrets  # the path runs with credentials configured
    assert [s for s in secrets if s in out + err] == [], out + err


@pytest.mark.parametrize(
    "settings",
    [
        {"host": "{unused_url}"},
        {"host": "{tls_url}"},
        {"host": "{page_url}"},
        {"host": "{kibana_url}"},
        {"host": "{es_url}", "pw": "wrong-" + PASSWORD},
        {"host": "{es_url}", "api_key": WRONG_KEY},
        {"host": f"http://{USER}:{PASSWORD}@127.0.0.1:9200"},
    ],
)
def test_no_exception_nor_repr_holds_a_secret(world, settings):
    """Not only the printed line: the exception with all that caused it, as a
    traceback shows it, and the repr of the settings."""
    settings = {"user": USER, "pw": PASSWORD} | {
        name: value.format(**world) for name, value in settings.items()
    }
    secrets = {PASSWORD, settings["pw"], "wrong-secret-half", WRONG_KEY}
    shown = []

    async def query(logger):
        async with logger:
            await logger.query({})

    def attempt():
        logger = ElasticLogger(**settings)
        shown.append(repr(logger.settings))
        asyncio.run(query(logger))

    with pytest.raises(PsetError) as failed:
        attempt()
    shown.append("".join(traceback.format_exception(failed.value)))

    assert [s for s in secrets if any(s in text for text in shown)] == []
