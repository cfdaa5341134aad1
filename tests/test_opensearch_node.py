"""The OpenSearch harness gives tests a real node, and CI cannot quietly skip it."""

import json
import urllib.request
from urllib.parse import urlsplit

from opensearch_node import ENGINE, running_node
from ports import accepts_connections


def request(method: str, url: str, document: dict | None = None) -> tuple[int, dict]:
    """Send a request, with a JSON document if given; returns the status and answer."""
    data = None if document is None else json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    sent = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(sent, timeout=30) as answer:
        return answer.status, json.load(answer)


# First, so that its node and the session's do not start at once on a small runner.
def test_node_keeps_data_in_its_folder_and_stops_on_exit(tmp_path):
    ENGINE.require_available()
    with running_node(tmp_path) as node:
        request("PUT", f"{node.url}/harness-data/_doc/1?refresh=true", {"n": 1})
        assert node.home.parent == tmp_path
        assert any(path.is_file() for path in node.data.rglob("*"))
    assert node.process.returncode in {0, 143}  # it closed itself, nothing killed it
    assert not accepts_connections(urlsplit(node.url).netloc)
    assert not node.home.exists()


def test_node_is_opensearch_2_19(opensearch):
    _, root = request("GET", opensearch.url)
    assert root["version"]["distribution"] == "opensearch"
    assert root["version"]["number"].startswith("2.19.")


def test_cluster_health_is_yellow_or_green(opensearch):
    _, health = request("GET", f"{opensearch.url}/_cluster/health")
    assert health["status"] in {"yellow", "green"}


def test_created_document_is_counted(opensearch):
    index = f"{opensearch.url}/harness-count"
    status, created = request(
        "PUT", f"{index}/_doc/1?op_type=create&refresh=true", {"path": "/index.html"}
    )
    assert (status, created["result"]) == (201, "created")
    _, counted = request("GET", f"{index}/_count")
    assert counted["count"] == 1
