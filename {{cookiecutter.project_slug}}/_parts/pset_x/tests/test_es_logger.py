"""ElasticLogger on the wire: what a real Elasticsearch 8 requires of each request."""

import asyncio
import base64
import json
import ssl

import pytest
import trustme
from conftest import INDEX, PASSWORD, USER
from fake_elasticsearch import serving

from {{ cookiecutter.project_slug }}.errors import (
    ConnectionFailed,
    TLSFailed,
)
from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
    Response,
)
from {{ cookiecutter.project_slug }}.log_event import (
    LogEvent,
)
from {{ cookiecutter.project_slug }}.retry import (
    Retrier,
    RetryPolicy,
)


def call(logger, method, *args):
    """Run one logger call in its own event loop, closing the session after."""

    async def scenario():
        async with logger:
            return await getattr(logger, method)(*args)

    return asyncio.run(scenario())


def last_request(cluster, method):
    return [r for r in cluster.requests if r.method == method][-1]


def test_the_logger_is_built_outside_a_loop_and_serves_one_run_after_another(index):
    logger = ElasticLogger()  # no loop runs here: the session opens on first use
    assert call(logger, "refresh").status == 200
    assert call(logger, "refresh").status == 200  # a new loop, a new session


def test_one_event_is_written_create_only_under_its_log_id(index):
    event = LogEvent.random_event()
    response = call(ElasticLogger(), "__call__", event.as_dict())
    assert response == Response(201, response.body)
    assert response.body["result"] == "created"
    request = last_request(index, "PUT")
    assert request.path == f"/{INDEX}/_doc/{event.logID}"
    assert request.query == {"op_type": "create"}
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == event.as_dict()
    assert index.documents(INDEX) == {event.logID: event.as_dict()}


def test_requests_use_plain_json_media_types_and_basic_auth(index):
    call(ElasticLogger(), "query", {})
    request = last_request(index, "POST")
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert "compatible-with" not in json.dumps(dict(request.headers))


def test_an_api_key_is_sent_as_an_apikey_header(index, monkeypatch):
    monkeypatch.setenv("ELASTIC_API_KEY", index.api_key)
    call(ElasticLogger(), "query", {})
    assert last_request(index, "POST").headers["Authorization"] == (
        f"ApiKey {index.api_key}"
    )


def test_a_bulk_body_is_ndjson_of_create_actions_ending_in_a_newline(index):
    body = b'{"create":{"_id":"a1"}}\n{"browser":"IE"}\n'
    response = call(ElasticLogger(), "bulk", body)
    assert response.status == 200
    assert response.body == {"errors": False, "items": [{"create": {"status": 201}}]}
    request = last_request(index, "POST")
    assert request.path == f"/{INDEX}/_bulk"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert "items.*.status" in request.query["filter_path"]


def test_init_schema_replaces_the_index_and_prints_the_answer(index, capsys):
    index.create_index("unrelated")
    response = call(ElasticLogger(), "init_schema")
    assert response.status == 200
    out = capsys.readouterr().out
    assert out.startswith(
        f"Deleted index '{INDEX}' and its 0 documents\nResponse: 200\n"
    )
    methods = [(r.method, r.path) for r in index.requests]
    assert methods[-2:] == [("DELETE", f"/{INDEX}"), ("PUT", f"/{INDEX}")]
    assert json.loads(last_request(index, "PUT").body) == ElasticLogger.schema
    assert index.count("unrelated") == 0  # other indices are left alone


def test_a_request_that_takes_too_long_times_out_with_a_clear_message(index):
    index.latency = 1.0
    event = LogEvent.random_event().as_dict()
    logger = ElasticLogger(timeout=0.2, retrier=Retrier(RetryPolicy(retry_for=0)))
    with pytest.raises(ConnectionFailed, match=r"did not answer in time \(connect"):
        call(logger, "__call__", event)


@pytest.fixture(scope="module")
def authority():
    return trustme.CA()


@pytest.fixture
def tls_url(fake_es, authority):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with serving(fake_es, ssl_context=context) as url:
        yield url


def test_certificates_are_verified_by_default(tls_url):
    logger = ElasticLogger(host=tls_url, user=USER, pw=PASSWORD)
    with pytest.raises(TLSFailed, match="set ELASTIC_CA_CERTS to its CA file"):
        call(logger, "query", {})


def test_a_ca_file_lets_a_cluster_with_its_own_certificate_in(
    tls_url, authority, fake_es, tmp_path
):
    fake_es.create_index(INDEX)
    ca_file = tmp_path / "http_ca.crt"
    authority.cert_pem.write_to_path(str(ca_file))
    logger = ElasticLogger(host=tls_url, user=USER, pw=PASSWORD, ca_certs=str(ca_file))
    assert call(logger, "query", {}).status == 200


def tls_failure(host, ca_file=None):
    """The message of the TLSFailed that one query to `host` raises."""
    logger = ElasticLogger(host=host, user=USER, pw=PASSWORD, ca_certs=ca_file)
    with pytest.raises(TLSFailed) as failed:
        call(logger, "query", {})
    assert not failed.value.retryable
    return str(failed.value)


def test_a_certificate_nobody_vouches_for_asks_for_the_ca_file(tls_url):
    assert tls_failure(tls_url) == (
        f"the TLS certificate of {tls_url} could not be verified (unable to get "
        "local issuer certificate): for a local cluster with its own certificate, "
        "set ELASTIC_CA_CERTS to its CA file (config/certs/http_ca.crt)"
    )


def test_a_ca_file_of_another_cluster_is_named_as_the_problem(tls_url):
    trustme.CA().cert_pem.write_to_path("other_ca.crt")
    assert tls_failure(tls_url, "other_ca.crt") == (
        f"the TLS certificate of {tls_url} could not be verified with "
        "ELASTIC_CA_CERTS 'other_ca.crt' (unable to get local issuer certificate): "
        "point ELASTIC_CA_CERTS to the CA file of this cluster "
        "(config/certs/http_ca.crt)"
    )


def test_a_certificate_for_another_name_asks_for_the_name_it_is_for(tls_url, authority):
    authority.cert_pem.write_to_path("http_ca.crt")
    host = tls_url.replace("127.0.0.1", "localhost")  # the certificate: 127.0.0.1
    assert tls_failure(host, "http_ca.crt") == (
        f"the TLS certificate of {host} is not valid for the name 'localhost' "
        "(Hostname mismatch, certificate is not valid for 'localhost'.): use in "
        "ELASTIC_HOST a host name the certificate was issued for (the endpoint "
        "exactly as the cluster shows it)"
    )


def test_https_to_a_plain_http_port_says_to_use_http(es_url):
    host = es_url.replace("http://", "https://")
    message = tls_failure(host)
    assert message.startswith(f"{host} answered in plain HTTP, not TLS (")
    assert message.endswith(
        "): start ELASTIC_HOST with http:// instead, or use the port where the "
        "cluster speaks https"
    )


def test_a_document_id_holding_a_slash_stays_one_path_segment(index):
    event = LogEvent.random_event().as_dict() | {"logID": "2026/06/a%b c"}
    assert call(ElasticLogger(), "__call__", event).status == 201
    request = last_request(index, "PUT")
    assert request.uri.startswith(f"/{INDEX}/_doc/2026%2F06%2Fa%25b%20c?")
    assert list(index.documents(INDEX)) == ["2026/06/a%b c"]
