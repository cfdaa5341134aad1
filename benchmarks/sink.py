"""A fast Elasticsearch 8 stand-in that stores nothing but the ids it was sent.

The benchmark needs a server that answers the way Elasticsearch 8 does for what the
contenders send, and that costs as little CPU as possible, so that the clients' own
cost is what gets measured. It keeps only each index's set of document ids: enough to
prove that every run stored exactly the events it asked for, and no duplicates.

    python benchmarks/sink.py [--port 0] [--index NAME ...]

It prints `listening on http://127.0.0.1:PORT` once ready. `GET /_bench/stats` reports
what arrived since the last `POST /_bench/reset`. Not for the package's tests: the
baked project has its own, strict stand-in.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import itertools
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

from aiohttp import web

VERSION = "8.15.0"
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}  # the official client checks it
SHARDS = {"total": 2, "successful": 1, "failed": 0}
MEDIA_TYPES = {
    "json",
    "x-ndjson",
    "vnd.elasticsearch+json",
    "vnd.elasticsearch+x-ndjson",
}
_COMPATIBLE = re.compile(r"compatible-with=(\d+)")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EsError(Exception):
    """An error answer in Elasticsearch's shape: status, type and reason."""

    def __init__(self, status: int, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.error_type, self.reason = status, error_type, reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.error_type, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


@dataclass
class Store:
    """Document ids per index, and counters the benchmark checks after each run."""

    indices: dict[str, set[str]] = field(default_factory=dict)
    created: int = 0
    duplicates: int = 0
    requests: int = 0
    seq_no: int = 0
    cpu_at_reset: float = field(default_factory=time.process_time)

    def reset(self) -> None:
        for ids in self.indices.values():
            ids.clear()
        self.created = self.duplicates = self.requests = 0
        self.cpu_at_reset = time.process_time()

    def stats(self) -> dict[str, Any]:
        return {
            "documents": sum(len(ids) for ids in self.indices.values()),
            "created": self.created,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "cpu_s": time.process_time() - self.cpu_at_reset,
        }

    def record(self, ids: set[str], doc_id: str, op: str) -> tuple[str, int]:
        """Record one write to an index's ids; returns what happened (created,
        updated or conflict) and its sequence number."""
        if doc_id not in ids:
            ids.add(doc_id)
            self.created += 1
            happened = "created"
        elif op == "create":
            self.duplicates += 1
            return "conflict", self.seq_no
        else:
            happened = "updated"
        self.seq_no += 1
        return happened, self.seq_no

    def ids(self, index: str) -> set[str]:
        """The index's ids; writing to a missing index creates it, as ES does."""
        ids = self.indices.get(index)
        if ids is None:
            ids = self.indices[index] = set()
        return ids


# What a write answers, by what happened: an item of `_bulk`, or the body of a single
# write. The %(...)s fields are filled per write; `select` and `_template` below apply
# filter_path to these shapes once per distinct filter, not once per item.
def _written(result: str, version: int, status: int) -> dict[str, Any]:
    return {
        "_index": "%(index)s",
        "_id": "%(id)s",
        "_version": version,  # no versions are kept: an update says 2
        "result": result,
        "_shards": SHARDS,
        "_seq_no": "%(seq_no)d",
        "_primary_term": 1,
        "status": status,
    }


SHAPES: dict[str, dict[str, Any]] = {
    "created": _written("created", 1, 201),
    "updated": _written("updated", 2, 200),
    "conflict": {
        "_index": "%(index)s",
        "_id": "%(id)s",
        "status": 409,
        "error": {
            "type": "version_conflict_engine_exception",
            "reason": "[%(id_text)s]: version conflict, document already exists "
            "(current version [1])",
            "index": "%(index_text)s",
        },
    },
}

_DROPPED = object()


def select(value: Any, patterns: list[tuple[str, ...]]) -> Any:
    """What filter_path keeps of `value`: patterns are dotted names split on the dots,
    `*` a wildcard; lists are walked through, as Elasticsearch does."""
    if any(not pattern for pattern in patterns):  # a pattern ended here: keep it all
        return value
    if isinstance(value, list):
        kept = [select(item, patterns) for item in value]
        kept = [item for item in kept if item is not _DROPPED]
        return kept or _DROPPED
    if not isinstance(value, dict):
        return _DROPPED
    selected = {}
    for key, child in value.items():
        rest = [p[1:] for p in patterns if fnmatch.fnmatchcase(key, p[0])]
        if rest and (kept := select(child, rest)) is not _DROPPED:
            selected[key] = kept
    return selected or _DROPPED


def parse_filter(filter_path: str | None) -> list[tuple[str, ...]] | None:
    if not filter_path:
        return None
    return [tuple(part.split(".")) for part in filter_path.split(",") if part]


def _template(shape: Any) -> str:
    """JSON with %-placeholders: `"%(id)s"` becomes `%(id)s`, filled pre-escaped."""
    text = json.dumps(shape, separators=(",", ":"))
    return re.sub(r'"(%\((?:index|id|seq_no|took|errors)\)[sd])"', r"\1", text)


@dataclass(frozen=True)
class BulkAnswer:
    """How `_bulk` answers are written under one filter_path: each item is then a
    single %-format, which keeps the sink far faster than its clients."""

    head: str  # the envelope, with %(items)s where the item list goes
    # (op, happened) -> (item template or "" if filtered out, whether it has fields)
    items: dict[tuple[str, str], tuple[str, bool]]


@lru_cache(maxsize=16)
def bulk_answer(filter_path: str | None) -> BulkAnswer:
    """The templates for one filter_path, worked out once on sample shapes."""
    patterns = parse_filter(filter_path)

    def kept(shape: dict[str, Any]) -> Any:
        found = shape if patterns is None else select(shape, patterns)
        return {} if found is _DROPPED else found

    items = {}
    for op, (happened, shape) in itertools.product(("index", "create"), SHAPES.items()):
        item = kept({"items": [{op: shape}]})
        template = _template(item["items"][0]) if item else ""
        items[op, happened] = (template, "%(" in template)
    envelope = kept({"took": "%(took)d", "errors": "%(errors)s"})
    if any(template for template, _ in items.values()):
        envelope["items"] = "%(items)s"
    head = _template(envelope).replace('"%(items)s"', "[%(items)s]")
    return BulkAnswer(head, items)


@lru_cache(maxsize=16)
def write_answer(happened: str, filter_path: str | None) -> tuple[str, int]:
    """The answer template of a single-document write, and its HTTP status."""
    shape = dict(SHAPES[happened])
    status = shape.pop("status")  # a single write answers it as the HTTP status
    patterns = parse_filter(filter_path)
    if patterns is not None:
        shape = select(shape, patterns)
        shape = {} if shape is _DROPPED else shape
    return _template(shape), status


def _check_media_type(header: str) -> None:
    """Refuse a body Elasticsearch 8 would refuse: JSON or NDJSON, compatible-with
    7 or 8 (what the official 8.x client sends) at most."""
    kind, _, params = header.partition(";")
    subtype = kind.strip().lower().removeprefix("application/")
    compatible = _COMPATIBLE.search(params)
    if subtype not in MEDIA_TYPES or (compatible and compatible[1] not in ("7", "8")):
        raise EsError(
            406,
            "media_type_header_exception",
            f"Content-Type header [{header}] is not supported",
        )


def _actions(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The (op, metadata) of each action line; source lines are counted, not parsed.

    Every op this sink takes (index, create) has a source line, so actions are the
    even lines; all are parsed in one json.loads, which is what keeps the sink well
    ahead of its clients. A line out of step fails the shape check.
    """
    lines = body.split(b"\n")
    if lines.pop():  # Elasticsearch requires the final newline
        raise EsError(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        )
    if len(lines) % 2:
        raise EsError(400, "action_request_validation_exception", "source is missing")
    try:
        parsed = json.loads(b"[%s]" % b",".join(lines[::2]))
        actions = [pair for action in parsed for pair in action.items()]
    except (ValueError, AttributeError) as error:
        raise EsError(400, "x_content_parse_exception", str(error)) from None
    shapes = {(op, type(meta)) for op, meta in actions}
    one_each = len(actions) == len(parsed) == len(lines) // 2  # one per line
    if not one_each or not shapes <= {("index", dict), ("create", dict)}:
        raise EsError(
            400, "illegal_argument_exception", "each action must be index or create"
        )
    return actions


class Sink:
    """The routes, over one Store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cluster_uuid = uuid.uuid4().hex

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.elasticsearch_manners])
        app.router.add_get("/", self.info)
        app.router.add_get("/_bench/stats", self.stats)
        app.router.add_post("/_bench/reset", self.reset)
        app.router.add_post("/_bulk", self.bulk)
        app.router.add_put("/_bulk", self.bulk)
        app.router.add_route("HEAD", "/{index}", self.head_index)
        app.router.add_post("/{index}/_bulk", self.bulk)
        app.router.add_put("/{index}/_bulk", self.bulk)
        app.router.add_post("/{index}/_doc", self.write)
        app.router.add_put("/{index}/_doc/{id}", self.write)
        app.router.add_post("/{index}/_doc/{id}", self.write)
        app.router.add_post("/{index}/_refresh", self.refresh)
        return app

    @web.middleware
    async def elasticsearch_manners(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Every answer carries the product header; errors come in ES's JSON shape."""
        self.store.requests += 1
        try:
            if request.body_exists:
                _check_media_type(request.headers.get("Content-Type", ""))
            response = await handler(request)
        except EsError as error:
            response = self.json(error.body(), status=error.status)
        except web.HTTPException as error:  # no such route
            body = EsError(error.status, "illegal_argument_exception", error.reason)
            response = self.json(body.body(), status=error.status)
        response.headers.update(PRODUCT)
        return response

    @staticmethod
    def json(body: Any, status: int = 200) -> web.Response:
        return web.Response(
            text=json.dumps(body, separators=(",", ":")),
            status=status,
            content_type="application/json",
        )

    async def info(self, request: web.Request) -> web.Response:
        return self.json(
            {
                "name": "benchmark-sink",
                "cluster_name": "benchmark",
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0",
                },
                "tagline": "You Know, for Search",
            }
        )

    async def stats(self, request: web.Request) -> web.Response:
        return self.json(self.store.stats())

    async def reset(self, request: web.Request) -> web.Response:
        self.store.reset()
        return self.json({"acknowledged": True})

    async def head_index(self, request: web.Request) -> web.Response:
        found = request.match_info["index"] in self.store.indices
        return web.Response(status=200 if found else 404)

    async def refresh(self, request: web.Request) -> web.Response:
        return self.json({"_shards": SHARDS})

    async def write(self, request: web.Request) -> web.Response:
        """POST /<index>/_doc (new id), PUT /<index>/_doc/<id>[?op_type=create]."""
        index = request.match_info["index"]
        body = await request.read()
        if not body.strip():
            raise EsError(400, "parse_exception", "request body is required")
        doc_id = request.match_info.get("id") or uuid.uuid4().hex
        op = request.query.get("op_type", "index")
        happened, seq_no = self.store.record(self.store.ids(index), doc_id, op)
        if happened == "conflict":
            error = SHAPES["conflict"]["error"]
            raise EsError(409, error["type"], error["reason"] % {"id_text": doc_id})
        template, status = write_answer(happened, request.query.get("filter_path"))
        text = template % self._values(index, doc_id, seq_no)
        return web.Response(text=text, status=status, content_type="application/json")

    async def bulk(self, request: web.Request) -> web.Response:
        """NDJSON actions in, one item per action out, in request order."""
        started = time.perf_counter()
        default_index = request.match_info.get("index")
        answer = bulk_answer(request.query.get("filter_path"))
        items = []
        errors = False
        ids, ids_of = set(), ""  # the ids of the index the last action wrote to
        for op, meta in _actions(await request.read()):
            index = meta.get("_index") or default_index
            if index != ids_of:
                if not index:
                    raise EsError(
                        400, "action_request_validation_exception", "index is missing"
                    )
                ids, ids_of = self.store.ids(index), index
            doc_id = meta.get("_id") or uuid.uuid4().hex
            happened, seq_no = self.store.record(ids, doc_id, op)
            errors = errors or happened == "conflict"
            template, formatted = answer.items[op, happened]
            if formatted:
                items.append(template % self._values(index, doc_id, seq_no))
            elif template:
                items.append(template)
        took = int((time.perf_counter() - started) * 1000)
        text = answer.head % {
            "took": took,
            "errors": "true" if errors else "false",
            "items": ",".join(items),
        }
        return web.Response(text=text, content_type="application/json")

    @staticmethod
    def _values(index: str, doc_id: str, seq_no: int) -> dict[str, Any]:
        quoted_index, quoted_id = encode_basestring(index), encode_basestring(doc_id)
        return {
            "index": quoted_index,
            "index_text": quoted_index[1:-1],
            "id": quoted_id,
            "id_text": quoted_id[1:-1],
            "seq_no": seq_no,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--index", action="append", default=[], help="an index that exists at start"
    )
    args = parser.parse_args()
    store = Store()
    for index in args.index:
        store.ids(index)
    asyncio.run(serve(Sink(store), args.host, args.port))


async def serve(sink: Sink, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then say what was received since the reset."""
    runner = web.AppRunner(sink.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"listening on http://{host}:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        print(f"sink: {json.dumps(sink.store.stats())}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
