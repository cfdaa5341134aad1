"""Shared fixtures: an Elasticsearch-like server on 127.0.0.1, and an isolated
environment so that a real .env or ELASTIC_* variable never reaches a test."""

import io
import json
import os
import socket

import pytest
from aiohttp import web
from fake_elasticsearch import FakeElasticsearch, serving

from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)
from {{ cookiecutter.project_slug }}.retry import (
    RetryPolicy,
)

INDEX = "{{ cookiecutter.project_slug }}"
USER = "elastic"
PASSWORD = "test-password"


def printed_answer(out):
    """The JSON answer in what `query` prints: `Response: 200`, it, `Query finished`."""
    head, _, rest = out.partition("\n")
    body, _, tail = rest.rpartition("Query finished\n")
    assert (head, tail) == ("Response: 200", "")
    return json.loads(body)


def stdin_of(data):
    """A standard input holding `data` (text or bytes) with the bytes underneath,
    as the real one has: `query` reads sys.stdin.buffer."""
    raw = data if isinstance(data, bytes) else data.encode()
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")


class Impostor:
    """A server that gives every request the same answer, whatever it asks: what a
    wrong ELASTIC_HOST may point at. `serving` runs it as it runs the fake."""

    def __init__(self, status, content_type, body="", headers=()):
        self.answer = status, content_type, body.encode(), dict(headers)
        self.requests = []  # "METHOD /path" of each
        self.server_errors = []

    async def serve(self, request):
        self.requests.append(f"{request.method} {request.path}")
        status, content_type, body, headers = self.answer
        return web.Response(
            status=status, body=body, content_type=content_type, headers=headers
        )


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No ELASTIC_* from the developer's shell, and no .env from the project folder."""
    for name in list(os.environ):
        if name.startswith("ELASTIC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fast_retries(monkeypatch):
    """Backoff of a millisecond at most, for commands run against a faulty cluster."""
    monkeypatch.setattr(
        RetryPolicy, "delay", lambda self, attempt, retry_after=None: 0.001
    )


@pytest.fixture
def unused_port():
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_es():
    return FakeElasticsearch(user=USER, password=PASSWORD)


@pytest.fixture
def es_url(fake_es):
    with serving(fake_es) as url:
        yield url


@pytest.fixture
def cluster(monkeypatch, fake_es, es_url):
    """The environment a student's .env gives, pointing at the fake cluster."""
    monkeypatch.setenv("ELASTIC_HOST", es_url)
    monkeypatch.setenv("ELASTIC_USERID", USER)
    monkeypatch.setenv("ELASTIC_PASSWORD", PASSWORD)
    monkeypatch.setenv("ELASTIC_INDEX", INDEX)
    return fake_es


@pytest.fixture
def index(cluster):
    """The cluster with the index created, as `init` leaves it."""
    cluster.create_index(INDEX, ElasticLogger.schema["mappings"])
    return cluster
