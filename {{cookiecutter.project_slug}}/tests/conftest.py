"""Shared fixtures: an Elasticsearch-like server on 127.0.0.1, and an isolated
environment so that a real .env or ELASTIC_* variable never reaches a test."""

import json
import os
import socket

import pytest
from fake_elasticsearch import FakeElasticsearch, serving

from {{ cookiecutter.project_slug }}.es_logger import ElasticLogger
from {{ cookiecutter.project_slug }}.retry import RetryPolicy

INDEX = "{{ cookiecutter.project_slug }}"
USER = "elastic"
PASSWORD = "test-password"


def printed_answer(out):
    """The JSON answer in what `query` prints: `Response: 200`, it, `Query finished`."""
    head, _, rest = out.partition("\n")
    body, _, tail = rest.rpartition("Query finished\n")
    assert (head, tail) == ("Response: 200", "")
    return json.loads(body)


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
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.001)


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
