"""Random input to what the command line parses -- bytes and JSON on the standard
input of `query`, any text as ELASTIC_HOST -- never ends in a traceback or shows a
secret: it gets an answer, or one line on stderr and exit status 1."""

import base64
import json
import math

from conftest import PASSWORD, USER, stdin_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.errors import (
    ConfigError,
)
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

# Bounded, to keep the suite fast; no example database, so nothing is written to disk.
RANDOM_RUNS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HOST_SECRET = "h0st-s3cret"
SECRETS = (
    PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    HOST_SECRET,
)


def run_query(capsys, monkeypatch, stdin):
    """`query` in-process with `stdin` (bytes); returns (exit code, stdout, stderr)
    once it checked that they show an answer or one error, and nothing secret."""
    monkeypatch.setattr("sys.stdin", stdin_of(stdin))
    code = main(["query"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert [secret for secret in SECRETS if secret in out + err] == []
    if code == 0:
        assert out.endswith("Query finished\n")
        assert err == ""
    else:
        assert (code, out) == (1, "")
        assert err.startswith("error: ")
        assert len(err.splitlines()) == 1  # no line break of any kind inside
        assert err.endswith("\n")
    return code, out, err


# Bytes of all kinds, and bytes made of what JSON is made of, which get further in.
JSONISH = '{}[]":,.0123456789eE+-NaInfity truelsn\\\n\t\ufeff\u00e9\u2028'
QUERY_BYTES = st.binary(max_size=300) | st.text(JSONISH, max_size=80).map(str.encode)


@RANDOM_RUNS
@given(stdin=QUERY_BYTES)
def test_random_bytes_on_stdin_get_an_answer_or_one_error_line(
    index, capsys, monkeypatch, stdin
):
    run_query(capsys, monkeypatch, stdin)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def holds_nan_or_infinity(value):
    """Whether a JSON value holds NaN or an infinity somewhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | dict):
        items = value.values() if isinstance(value, dict) else value
        return any(holds_nan_or_infinity(item) for item in items)
    return False


@settings(RANDOM_RUNS, max_examples=100)  # a third of them reach the server
@given(
    value=JSON_VALUES | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
    bom=st.booleans(),
    cut=st.none() | st.integers(min_value=0),
)
def test_random_json_on_stdin_is_sent_only_when_it_is_a_finite_object(
    index, capsys, monkeypatch, value, indent, ascii_only, bom, cut
):
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    data = ("\ufeff" if bom else "").encode() + text.encode()
    truncated = cut is not None and cut < len(data)
    searches = len([r for r in index.requests if r.path.endswith("/_search")])

    code, _, err = run_query(capsys, monkeypatch, data[:cut] if truncated else data)

    sent = len([r for r in index.requests if r.path.endswith("/_search")]) > searches
    if truncated:
        return  # whatever the cut leaves: an answer or one line, checked above
    if holds_nan_or_infinity(value):
        assert "a number Elasticsearch cannot read: write a finite number" in err
    elif not isinstance(value, dict):
        assert "the query on standard input must be a JSON object" in err
    else:  # sent, and answered: a result, or Elasticsearch's own refusal
        assert sent
        assert code == 0 or "Elasticsearch could not run the query (400 " in err
        return
    assert not sent


def host_text(scheme, userinfo, host, port, path, tail):
    return f"{scheme}{userinfo}{host}{port}{path}{tail}"


ANY_TEXT = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")
HOSTS = st.text(ANY_TEXT, max_size=40) | st.builds(
    host_text,
    scheme=st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "", "http:/"]),
    userinfo=st.sampled_from(
        ["", f"{USER}:{HOST_SECRET}@", f"{HOST_SECRET}@", f"u:a/{HOST_SECRET}@"]
    ),
    host=st.sampled_from(
        ["127.0.0.1", "[::1]", "::1", "[::1", "localhost", "bücher.de", "-x-", ""]
    )
    | st.text(ANY_TEXT, max_size=12),
    port=st.sampled_from(["", ":9200", ":0", ":99999", ":x", ":"])
    | st.integers(0, 70_000).map(lambda number: f":{number}"),
    path=st.sampled_from(["", "/", "/es", "/search/es/", "/a b", "/%2F", "/é"]),
    tail=st.sampled_from(["", "?x=1", f"?token={HOST_SECRET}", "#top", "?"]),
)


@RANDOM_RUNS
@given(host=HOSTS)
def test_any_host_is_used_or_refused_in_one_line_without_its_secrets(
    capsys, monkeypatch, host
):
    monkeypatch.setenv("ELASTIC_HOST", host)
    monkeypatch.setenv("ELASTIC_PASSWORD", PASSWORD)

    _, _, err = run_query(capsys, monkeypatch, b"")  # no query: no request is sent

    try:
        endpoint = Settings.load(host=host).host
    except ConfigError:
        assert "ELASTIC_HOST" in err
        return
    assert err.startswith("error: no query on standard input")
    assert Settings.load(host=endpoint).host == endpoint  # the endpoint is stable
    url = Settings.load(host=endpoint).url
    assert url.scheme in ("http", "https")
    assert url.host
    assert (url.user, url.password, url.query_string, url.fragment) == (
        None,
        None,
        "",
        "",
    )
