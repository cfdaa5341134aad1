"""What `info` reports: the cluster, its health, the index and its mapping.

The course's monitoring module shows a cluster's info before anything is sent; this
is the same look, through the logger's own requests (so the same settings, retries
and error messages), and one check more: whether the index still has the mapping
the events need. An index made by hand, or by a first event sent before `init`
(Elasticsearch then guesses each field's type), holds text where a keyword is
needed, and the sample queries fail on it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from .errors import IndexNotFound, MappingMismatch, PsetError
from .es_logger import ElasticLogger

HEALTH_WORDS = {
    "green": "every shard is assigned",
    "yellow": "a replica is unassigned (normal on a single node)",
    "red": "a primary shard is unassigned: some documents are unavailable",
}


@dataclasses.dataclass
class Report:
    """What `info` found; `lines()` says it, `problem()` is the error it ends on."""

    cluster: str
    node: str
    engine: str  # like "Elasticsearch 8.15.0"
    health: Mapping[str, Any]
    index: str
    missing: IndexNotFound | None = None  # the index does not exist
    documents: int = 0
    differences: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        status = self.health["status"]
        nodes = self.health.get("number_of_nodes")
        active = self.health.get("active_shards")
        unassigned = self.health.get("unassigned_shards")
        lines = [
            f"Cluster: {self.cluster} (node {self.node})",
            f"Engine: {self.engine}",
            f"Health: {status} ({_count(nodes, 'node')}, "
            f"{_count(active, 'active shard')}, {unassigned} unassigned): "
            f"{HEALTH_WORDS[status]}",
        ]
        if self.missing is not None:
            return [*lines, f"Index: {self.index} does not exist"]
        lines.append(f"Index: {self.index}, {_count(self.documents, 'document')}")
        if self.differences:
            found = "; ".join(self.differences)
            return [*lines, f"Mapping: differs from the event mapping: {found}"]
        return [*lines, "Mapping: the event mapping (ElasticLogger.schema)"]

    def problem(self) -> PsetError | None:
        if self.missing is not None:
            return self.missing
        if self.differences:
            many = len(self.differences)
            return MappingMismatch(
                f"index '{self.index}' does not have the event mapping "
                f"({_count(many, 'difference')}): run `python -m {__package__} init` "
                "to create it again (its documents are lost)"
            )
        return None


async def inspect(es: ElasticLogger) -> Report:
    """Ask the cluster, one request after another: its root, its health, the
    index's count and mapping. Only a missing index is reported, not raised."""
    root = await es.root()
    version = root["version"]
    product = "Elasticsearch"
    if version.get("distribution") == "opensearch":
        product = "OpenSearch"
    elif version.get("build_flavor") == "serverless":
        product = "Elasticsearch Serverless"
    report = Report(
        cluster=str(root.get("cluster_name", "?")),
        node=str(root.get("name", "?")),
        engine=f"{product} {version['number']}",
        health=await es.health(),
        index=es.index,
    )
    try:
        report.documents = await es.count()
        live = await es.mappings()
    except IndexNotFound as missing:
        report.missing = missing
        return report
    report.differences = mapping_differences(live, es.schema["mappings"])
    return report


def mapping_differences(
    live: Mapping[str, Any], expected: Mapping[str, Any]
) -> list[str]:
    """How the live mappings differ from the expected ones, a phrase per field: the
    event fields in their order, then the fields the events do not have."""
    found, wanted = live.get("properties", {}), expected.get("properties", {})
    differences = []
    for name, field in wanted.items():
        if name not in found:
            differences.append(f"{name} is missing")
        elif found[name] != field:
            differences.append(_field_difference(name, found[name], field))
    for name in sorted(set(found) - set(wanted)):
        differences.append(f"{name} ({_type(found[name])}) is not an event field")
    for key in sorted((set(live) | set(expected)) - {"properties"}):
        if live.get(key) != expected.get(key):
            differences.append(f"{key} is {_json(live.get(key))}, not the default")
    return differences


def _field_difference(name: str, found: Any, wanted: Mapping[str, Any]) -> str:
    if _type(found) != _type(wanted):
        return f"{name} is {_type(found)}, not {_type(wanted)}"
    if not isinstance(found, dict):
        return f"{name} is {_json(found)}"
    keys = sorted(k for k in {*found, *wanted} if found.get(k) != wanted.get(k))
    return f"{name} ({_type(found)}) differs in {', '.join(keys)}"


def _type(field: Any) -> str:
    """A field's type; a field of sub-fields has none, it is an object."""
    return str(field.get("type", "object")) if isinstance(field, dict) else "?"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"
