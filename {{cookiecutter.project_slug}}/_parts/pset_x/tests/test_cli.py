"""The command line end to end, against an Elasticsearch-like server on 127.0.0.1:
the outputs of the spec, and one clear line with the right exit code for every
mistake a user can make."""

import io
import json
from pathlib import Path

import pytest
from conftest import INDEX, PASSWORD, printed_answer, stdin_of
from fake_elasticsearch import delay, drop_after, status

from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)

PROJECT = Path(__file__).resolve().parent.parent
COMMAND = "python -m {{ cookiecutter.project_slug }}"


def run(capsys, monkeypatch, *argv, stdin=""):
    """Run the CLI in-process, `stdin` (text or bytes) on its standard input;
    return (exit code, stdout, stderr)."""
    monkeypatch.setattr("sys.stdin", stdin_of(stdin))
    try:
        code = main(list(argv))
    except SystemExit as leaving:  # argparse leaves this way on usage errors
        code = leaving.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def sample_query(name):
    return (PROJECT / name).read_text()


def test_init_creates_the_index_with_the_event_mapping(cluster, capsys, monkeypatch):
    code, out, _err = run(capsys, monkeypatch, "init")
    assert code == 0
    deleted, status, *answer, done = out.splitlines()
    assert (deleted, status, done) == (
        f"No index '{INDEX}' to delete",
        "Response: 200",
        "Schema generated",
    )
    assert json.loads("\n".join(answer)) == {
        "acknowledged": True,
        "shards_acknowledged": True,
        "index": INDEX,
    }
    created = [r for r in cluster.requests if r.method == "PUT"]
    assert json.loads(created[-1].body) == ElasticLogger.schema


def test_init_says_what_it_deleted(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "25")
    code, out, _ = run(capsys, monkeypatch, "init")
    assert code == 0
    assert out.startswith(f"Deleted index '{INDEX}' and its 25 documents\n")
    assert index.count(INDEX) == 0


def test_generate_stores_the_events_and_ends_with_the_spec_lines(
    index, capsys, monkeypatch
):
    code, out, err = run(capsys, monkeypatch, "generate", "--count", "1000")
    assert code == 0
    assert out.splitlines()[-3:] == [
        "Started: 1000 : Pending: 0000 : Completed: 1000",
        "Engine stopped.",
        "1000 log events generated",
    ]
    assert err == ""
    assert len(index.documents(INDEX)) == 1000
    assert index.max_in_flight <= 10


def test_generate_one_request_per_event_goes_through_the_doc_api(
    index, capsys, monkeypatch
):
    code, out, _ = run(
        capsys, monkeypatch, "generate", "--count", "40", "--batch-size", "1"
    )
    assert code == 0
    assert out.splitlines()[-1] == "40 log events generated"
    writes = [r for r in index.requests if r.method == "PUT" and "/_doc/" in r.path]
    assert len(writes) == 40
    assert all(r.query == {"op_type": "create"} for r in writes)
    assert {r.path.rsplit("/", 1)[1] for r in writes} == set(index.documents(INDEX))
    assert index.max_in_flight <= 10


def test_generated_events_follow_the_timestamp_mask(index, capsys, monkeypatch):
    argv = ["generate", "--count", "200", "--timestamp", "2021-03-?T12:?:?"]
    assert run(capsys, monkeypatch, *argv)[0] == 0
    times = [doc["eventTime"] for doc in index.documents(INDEX).values()]
    assert all(t.startswith("2021-03-") and t[11:13] == "12" for t in times)


def test_generated_events_are_searchable_at_once(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "30")
    answer = answer_to(capsys, monkeypatch, "query1.json")
    assert answer["hits"]["total"]["value"] == 30


def answer_to(capsys, monkeypatch, query_file):
    code, out, _ = run(capsys, monkeypatch, "query", stdin=sample_query(query_file))
    assert code == 0
    return printed_answer(out)


def test_query2_counts_browsers_per_country(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "500")
    answer = answer_to(capsys, monkeypatch, "query2.json")
    assert answer["hits"]["hits"] == []
    countries = answer["aggregations"]["country"]["buckets"]
    assert sum(bucket["doc_count"] for bucket in countries) == 500
    for bucket in countries:
        browsers = bucket["browser"]["buckets"]
        assert sum(b["doc_count"] for b in browsers) == bucket["doc_count"]


def test_query3_lists_the_five_urls_with_most_server_errors(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "500")
    answer = answer_to(capsys, monkeypatch, "query3.json")
    documents = index.documents(INDEX).values()
    errors = [doc for doc in documents if 500 <= doc["responseCode"] <= 599]
    assert answer["hits"]["total"]["value"] == len(errors)
    buckets = answer["aggregations"]["url"]["buckets"]
    assert len(buckets) == 5
    counts = [bucket["doc_count"] for bucket in buckets]
    assert counts == sorted(counts, reverse=True)


def test_help_explains_each_command(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--help")
    assert code == 0
    for command in ("generate", "init", "query", "info", "get"):
        assert command in out
    code, out, _ = run(capsys, monkeypatch, "init", "--help")
    assert "Delete the index" in out
    code, out, _ = run(capsys, monkeypatch, "info", "--help")
    assert "Show the cluster's name, version and health" in out
    code, out, _ = run(capsys, monkeypatch, "get", "--help")
    assert "Print the event stored under LOGID" in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["generate", "--count", "0"], "argument --count: must be a whole number >= 1"),
        (["generate", "--count", "-5"], "argument --count: must be a whole number"),
        (["generate", "--count", "many"], "argument --count: must be a whole number"),
        (
            ["generate", "--timestamp", "2020-13-01T00:00:00"],
            "month 13 is out of range",
        ),
        (["generate", "--timestamp", "today"], "timestamp mask 'today' is malformed"),
        (["generate", "--batch-size", "0"], "argument --batch-size"),
        (["generate", "--timeout", "0"], "argument --timeout: must be a number"),
        (["init", "--retry-for", "-1"], "argument --retry-for: must be a number >= 0"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, monkeypatch, argv, complaint):
    code, out, err = run(capsys, monkeypatch, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert complaint in err


def one_error_line(capsys, monkeypatch, *argv, stdin=""):
    code, out, err = run(capsys, monkeypatch, *argv, stdin=stdin)
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert PASSWORD not in out + err
    return err


def test_a_missing_host_is_explained(capsys, monkeypatch):
    err = one_error_line(capsys, monkeypatch, "init")
    assert "ELASTIC_HOST is not set" in err
    assert ".env" in err


def test_a_host_that_is_not_a_url_is_explained(capsys, monkeypatch):
    monkeypatch.setenv("ELASTIC_HOST", "my-cluster:9200")
    err = one_error_line(capsys, monkeypatch, "generate")
    assert "ELASTIC_HOST 'my-cluster:9200' is not a URL" in err


def test_refused_credentials_name_the_user_but_never_the_password(
    index, capsys, monkeypatch
):
    index.refuse_credentials = True
    err = one_error_line(capsys, monkeypatch, "generate", "--count", "10")
    assert "refused the credentials (user 'elastic')" in err


def test_a_refused_api_key_is_named_by_its_id_only(index, capsys, monkeypatch):
    monkeypatch.setenv(
        "ELASTIC_API_KEY", "d3JvbmctaWQ6d3Jvbmcta2V5"
    )  # wrong-id:wrong-key
    err = one_error_line(capsys, monkeypatch, "query", stdin="{}")
    assert "refused the credentials (API key id 'wrong-id')" in err
    assert "wrong-key" not in err


def test_an_unreachable_host_is_explained(capsys, monkeypatch, unused_port):
    monkeypatch.setenv("ELASTIC_HOST", f"http://127.0.0.1:{unused_port}")
    err = one_error_line(capsys, monkeypatch, "generate", "--count", "5")
    assert f"cannot reach http://127.0.0.1:{unused_port}" in err
    assert "check ELASTIC_HOST" in err


def test_generate_into_a_missing_index_suggests_init(cluster, capsys, monkeypatch):
    err = one_error_line(capsys, monkeypatch, "generate", "--count", "5")
    assert f"index '{INDEX}' does not exist: run `{COMMAND} init` first" in err
    assert cluster.count(INDEX) == 0


def test_query_on_a_missing_index_suggests_init(cluster, capsys, monkeypatch):
    err = one_error_line(capsys, monkeypatch, "query", stdin="{}")
    assert f"run `{COMMAND} init` first" in err


def test_info_shows_the_cluster_the_index_and_its_mapping(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "30")

    code, out, err = run(capsys, monkeypatch, "info")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Cluster: fake-elasticsearch (node fake-node)",
        "Engine: Elasticsearch 8.15.0",
        "Health: yellow (1 node, 1 active shard, 1 unassigned): a replica is "
        "unassigned (normal on a single node)",
        f"Index: {INDEX}, 30 documents",
        "Mapping: the event mapping (ElasticLogger.schema)",
    ]
    asked = [(r.method, r.path) for r in index.requests[-4:]]
    assert asked == [
        ("GET", "/"),
        ("GET", "/_cluster/health"),
        ("GET", f"/{INDEX}/_count"),
        ("GET", f"/{INDEX}/_mapping"),
    ]


def test_info_on_a_missing_index_says_to_run_init(cluster, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "info")

    assert code == 1
    assert out.splitlines()[2:] == [
        "Health: green (1 node, 0 active shards, 0 unassigned): every shard is "
        "assigned",
        f"Index: {INDEX} does not exist",
    ]
    assert err == f"error: index '{INDEX}' does not exist: run `{COMMAND} init` first\n"


def test_info_names_each_field_whose_mapping_differs(cluster, capsys, monkeypatch):
    properties = dict(ElasticLogger.schema["mappings"]["properties"])
    properties["browser"] = {"type": "text"}
    properties["ua_os"] = {"type": "text", "fields": {"raw": {"type": "keyword"}}}
    del properties["location"]
    properties["referrer"] = {"type": "keyword"}
    cluster.create_index(INDEX, {"properties": properties})

    code, out, err = run(capsys, monkeypatch, "info")

    assert code == 1
    assert out.splitlines()[-1] == (
        "Mapping: differs from the event mapping: browser is text, not keyword; "
        "ua_os (text) differs in fields; location is missing; referrer (keyword) is "
        "not an event field"
    )
    assert err == (
        f"error: index '{INDEX}' does not have the event mapping (4 differences): "
        f"run `{COMMAND} init` to create it again (its documents are lost)\n"
    )


def test_info_rides_out_a_busy_cluster(index, capsys, monkeypatch, fast_retries):
    index.faults.every_request = True
    index.faults.next(status(429), status(503), delay(0), status(429))

    code, out, err = run(capsys, monkeypatch, "info")

    assert code == 0, err
    assert out.splitlines()[-1] == "Mapping: the event mapping (ElasticLogger.schema)"
    assert err.count("retrying in ") == 3


def test_get_prints_the_stored_event_as_indented_json(index, capsys, monkeypatch):
    run(capsys, monkeypatch, "generate", "--count", "5")
    log_id, event = next(iter(index.documents(INDEX).items()))

    code, out, err = run(capsys, monkeypatch, "get", log_id)

    assert (code, err) == (0, "")
    assert out == json.dumps(event, indent=2) + "\n"
    assert json.loads(out)["logID"] == log_id


def test_get_of_an_id_the_index_lacks_is_one_line(index, capsys, monkeypatch):
    err = one_error_line(capsys, monkeypatch, "get", "no/such-id")
    assert err == (
        f"error: index '{INDEX}' holds no event with logID 'no/such-id': check the "
        "id (a query prints some)\n"
    )
    assert index.requests[-1].uri == f"/{INDEX}/_doc/no%2Fsuch-id"


def test_get_on_a_missing_index_suggests_init(cluster, capsys, monkeypatch):
    err = one_error_line(capsys, monkeypatch, "get", "some-id")
    assert f"index '{INDEX}' does not exist: run `{COMMAND} init` first" in err


@pytest.mark.parametrize(
    ("stdin", "complaint"),
    [
        ('{"size": 0,\n "aggs": }', "not valid JSON: Expecting value at line 2 column"),
        ("[1, 2]", "must be a JSON object"),
        ("", "no query on standard input"),
        (
            b'{"size": 0,\n "q": "\xff"}',
            "the query on standard input is not UTF-8 (byte 0xff at line 2 column 8): "
            "save the file as UTF-8",
        ),
        (
            "{}".encode("utf-16"),
            "the query on standard input is UTF-16, not UTF-8: save the file as UTF-8",
        ),
        (
            '{"size": NaN}',
            "the query on standard input holds NaN at line 1 column 10, a number "
            "Elasticsearch cannot read: write a finite number",
        ),
        (
            '{"a": "NaN inside a string", "b": -Infinity}',
            "holds -Infinity at line 1 column 35, a number Elasticsearch cannot read",
        ),
        ('{\n  "size": 1e999\n}', "holds 1e999 at line 2 column 11, a number"),
        ('{"size": ' + "9" * 5000 + "}", "holds 99999999999999999... at line 1"),
        ("[" * 100_000, "the query on standard input is nested too deeply to be read"),
    ],
)
def test_a_bad_query_on_stdin_is_explained(
    index, capsys, monkeypatch, stdin, complaint
):
    assert complaint in one_error_line(capsys, monkeypatch, "query", stdin=stdin)
    assert [r.path for r in index.requests if r.path.endswith("/_search")] == []


def test_a_query_may_start_with_a_byte_order_mark(index, capsys, monkeypatch):
    stdin = "\ufeff" + sample_query("query2.json")
    code, out, _ = run(capsys, monkeypatch, "query", stdin=stdin)
    assert code == 0
    assert "aggregations" in printed_answer(out)


def test_a_query_is_read_as_utf8_whatever_the_locale_says(index, capsys, monkeypatch):
    query = {"query": {"term": {"ua_country": "Ünïcödé"}}}
    monkeypatch.setattr(
        "sys.stdin",
        io.TextIOWrapper(io.BytesIO(json.dumps(query).encode()), encoding="latin-1"),
    )
    assert main(["query"]) == 0
    searched = [r for r in index.requests if r.path.endswith("/_search")]
    assert searched[-1].json() == query


def test_a_query_elasticsearch_rejects_shows_its_reason(index, capsys, monkeypatch):
    stdin = '{"query": {"mtch": {"browser": "IE"}}}'
    err = one_error_line(capsys, monkeypatch, "query", stdin=stdin)
    assert (
        "could not run the query (400 parsing_exception: unknown query [mtch])" in err
    )


def test_aggregating_a_text_field_shows_why_it_fails(index, capsys, monkeypatch):
    stdin = '{"size": 0, "aggs": {"os": {"terms": {"field": "ua_os"}}}}'
    err = one_error_line(capsys, monkeypatch, "query", stdin=stdin)
    assert "Fielddata is disabled on [ua_os]" in err


def test_events_the_cluster_rejects_are_counted_and_exit_1(
    cluster, capsys, monkeypatch
):
    cluster.create_index(INDEX, {"properties": {"eventTime": {"type": "boolean"}}})
    code, out, _ = run(capsys, monkeypatch, "generate", "--count", "20")
    assert code == 1
    assert out.splitlines()[-1].startswith(
        "0 of 20 log events generated; 20 failed: Elasticsearch rejected an event "
        "(400 document_parsing_exception: "
    )


# The faults a busy trial cluster shows, on every request: index checks, init's
# steps, the writes and the refresh.
BUSY_CLUSTER = {"429": 0.10, "503": 0.03, "drop_before": 0.02, "drop_after": 0.02}


@pytest.mark.parametrize("seed", range(20))
def test_init_and_generate_ride_out_a_busy_flaky_cluster(
    cluster, capsys, monkeypatch, fast_retries, seed
):
    cluster.faults.chaos(seed=seed, every_request=True, **BUSY_CLUSTER)

    code, out, err = run(capsys, monkeypatch, "init")
    assert (code, out.splitlines()[-1]) == (0, "Schema generated"), err
    argv = ["generate", "--count", "3000", "--batch-size", "250"]
    code, out, err = run(capsys, monkeypatch, *argv)

    assert (code, out.splitlines()[-1]) == (0, "3000 log events generated"), err
    assert len(cluster.documents(INDEX)) == 3000
    assert cluster.max_in_flight <= 10


def test_init_whose_answers_are_lost_after_each_step_still_succeeds(
    index, capsys, monkeypatch, fast_retries
):
    run(capsys, monkeypatch, "generate", "--count", "25")
    index.faults.every_request = True
    # _count, then the delete and the create are applied but their answers lost;
    # each is sent again (by aiohttp itself: both methods are idempotent)
    index.faults.next(delay(0), drop_after(), delay(0), drop_after())

    code, out, err = run(capsys, monkeypatch, "init")

    assert code == 0, err
    assert out.startswith(f"Deleted index '{INDEX}' and its 25 documents\n")
    assert f"Index '{INDEX}' exists already, with the event mapping" in out
    assert out.splitlines()[-1] == "Schema generated"
    assert index.count(INDEX) == 0


def test_init_refuses_an_index_someone_else_created_with_another_mapping(
    cluster, capsys, monkeypatch
):
    cluster.create_index(INDEX)
    delete = cluster._delete_index

    def delete_then_another_client_creates(call, index):
        reply = delete(call, index)
        cluster.create_index(index, {"properties": {"browser": {"type": "text"}}})
        return reply

    monkeypatch.setattr(cluster, "_delete_index", delete_then_another_client_creates)
    err = one_error_line(capsys, monkeypatch, "init")
    assert "was created meanwhile by someone else, with another mapping" in err


def test_a_refresh_that_keeps_failing_is_a_warning_after_a_complete_run(
    index, capsys, monkeypatch, fast_retries
):
    index.faults.every_request = True
    index.faults.next(delay(0), delay(0), *[status(503)] * 1000)  # HEAD, _bulk, ...

    argv = ["generate", "--count", "100", "--retry-for", "0.05"]
    code, out, err = run(capsys, monkeypatch, *argv)

    assert code == 0
    assert out.splitlines()[-1] == "100 log events generated"
    assert err == (
        "warning: the index could not be refreshed (503 unavailable): the events are "
        "stored all the same, and searchable after the cluster's next automatic "
        "refresh (about 1 s)\n"
    )
    assert len(index.documents(INDEX)) == 100
