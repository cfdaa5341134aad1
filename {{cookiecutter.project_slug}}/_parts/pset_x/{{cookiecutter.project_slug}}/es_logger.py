"""The HTTP side of talking to Elasticsearch: one method per REST call.

This module sends requests with aiohttp, each through the run's Retrier (retry.py
decides how long to keep trying), and turns error answers into exceptions whose
message says what to do. Batching and the account of events live in ingest.py.

No answer is read before it is checked: it must come from Elasticsearch (or
OpenSearch, which speaks the same API) and hold what the caller reads. An answer
that does not show where it comes from -- no X-Elastic-Product header, no
Elasticsearch error body -- is checked against the root endpoint, GET /, which
tells a missing index from a server that is not Elasticsearch at all.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import ssl
import time
from collections.abc import Mapping
from functools import partial
from types import TracebackType
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

import aiohttp
from yarl import URL

from . import __version__
from .errors import (
    RETRYABLE_STATUSES,
    AuthError,
    ConnectionFailed,
    DocumentNotFound,
    ElasticError,
    IndexNotFound,
    NotElasticsearch,
    TLSFailed,
)
from .log_event import MAPPINGS
from .retry import Retrier
from .settings import Settings

JSON = "application/json"
NDJSON = "application/x-ndjson"
# Only what the ingester reads back from _bulk: the answer shrinks about tenfold.
BULK_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"
# Statuses a proxy in front of the cluster answers itself (or Elasticsearch before it
# names itself): taken as they are, whatever their body.
TAKEN_AS_THEY_ARE = frozenset({401, 403, 413, *RETRYABLE_STATUSES})
# What OpenSSL says when an https request reaches a port that speaks plain http
# (OpenSSL 3.2 and later: "record layer failure").
PLAIN_HTTP_SIGNS = ("wrong version number", "record layer failure")
# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
NAME_MISMATCH = frozenset({62, 64})
KIBANA_HEADER = "kbn-name"  # on every answer of Kibana
NOT_ELASTICSEARCH_HINT = "is ELASTIC_HOST the Elasticsearch endpoint, not Kibana?"


class Response(NamedTuple):
    """An answer from Elasticsearch: its status and its JSON object (for a HEAD,
    which has no body, empty text)."""

    status: int
    body: Any


class _Call(NamedTuple):
    """One HTTP request to make, with what it does in words for error messages."""

    method: str
    url: URL
    doing: str  # like "read the index", for "could not read the index"
    body: bytes | None = None
    content_type: str = JSON
    params: Mapping[str, str] | None = None


class _Answer(NamedTuple):
    """An HTTP answer as it came, before anything trusts it to be Elasticsearch's."""

    status: int
    headers: Mapping[str, str]  # case-insensitive, as aiohttp gives them
    body: Any  # the parsed JSON, or the text
    looks: str  # "JSON" once parsed, else how it looks: "text/html", "an empty body"

    @property
    def product(self) -> str | None:
        return self.headers.get("X-Elastic-Product")


class ElasticLogger:
    """A connection to one Elasticsearch index.

    Build it anywhere; the aiohttp session opens on first use, inside the running event
    loop (aiohttp requires one), and `close()` (or `async with`) releases it.
    """

    schema: ClassVar[dict[str, Any]] = {"mappings": MAPPINGS}  # from LogEvent's fields

    def __init__(
        self,
        host: str | None = None,
        index: str | None = None,
        user: str | None = None,
        pw: str | None = None,
        *,
        api_key: str | None = None,
        ca_certs: str | None = None,
        cloud_id: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        retrier: Retrier | None = None,
    ) -> None:
        """Arguments override ELASTIC_* from the environment and ./.env; `retrier`
        says how long to keep retrying (by default, retry.RetryPolicy's)."""
        self.settings = Settings.load(
            host=host,
            index=index,
            user=user,
            password=pw,
            api_key=api_key,
            ca_certs=ca_certs,
            cloud_id=cloud_id,
        )
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self.max_connections = max_connections
        self.retrier = retrier or Retrier()
        self._base = self.settings.url
        self._session: aiohttp.ClientSession | None = None
        self._answered = False  # has the cluster ever answered this logger?
        self._engine_known = False  # has GET / shown Elasticsearch or OpenSearch?

    @property
    def index(self) -> str:
        return self.settings.index

    async def __call__(self, event: Mapping[str, Any]) -> Response:
        """Store one event under its logID, create-only: a retry cannot duplicate it.

        An event without a logID gets an id from Elasticsearch, so it is sent once
        and never retried: a retry after a lost answer would store a second copy.
        """
        body = json.dumps(event).encode()
        if "logID" not in event:
            return await self._request(
                "POST",
                self._url("_doc"),
                body,
                doing="store the event",
                retry=False,
            )
        return await self._request(
            "PUT",
            self._url("_doc", str(event["logID"])),
            body,
            params={"op_type": "create"},
            doing="store the event",
            events=1,
        )

    async def bulk(self, ndjson: bytes) -> Response:
        """Send one `_bulk` body, once; the answer holds `errors` and each item's
        status. The ingester retries a batch itself, whole or by refused item."""
        response = await self._request(
            "POST",
            self._url("_bulk"),
            ndjson,
            content_type=NDJSON,
            params={"filter_path": BULK_FILTER},
            doing="store the events",
            retry=False,
        )
        if problem := _bulk_problem(response.body, sent=ndjson.count(b"\n") // 2):
            raise self._unexpected(response.status, problem)
        return response

    async def check_index(self) -> None:
        """Fail fast on a wrong host, a server that is not Elasticsearch, refused
        credentials or a missing index."""
        await self._request("HEAD", self._url(), doing="read the index")

    async def init_schema(self) -> Response:
        """Delete the index if present (saying what went), create it with `schema`.

        Each step is retried, so an answer lost after the cluster applied the step
        is met again: the retried delete finds no index, the retried create finds
        the index our own create made. Both are success, once the mapping is ours.
        """
        try:
            documents = await self.count()
        except IndexNotFound:
            print(f"No index '{self.index}' to delete")
        else:
            with contextlib.suppress(IndexNotFound):  # deleted by a lost attempt
                await self._request("DELETE", self._url(), doing="delete the index")
            plural = "s" * (documents != 1)
            print(f"Deleted index '{self.index}' and its {documents} document{plural}")
        try:
            response = await self._request(
                "PUT",
                self._url(),
                json.dumps(self.schema).encode(),
                doing="create the index",
            )
        except ElasticError as error:
            if error.error_type != "resource_already_exists_exception":
                raise
            response = await self._created_by_a_lost_attempt()
        _print_response(response)
        return response

    async def _created_by_a_lost_attempt(self) -> Response:
        """The answer to a create met by "already exists": the index's mapping,
        provided it is the event mapping (then the index is the one we created)."""
        response = await self._mapping_response()
        if self._mappings_of(response) != self.schema["mappings"]:
            raise ElasticError(
                f"index '{self.index}' was created meanwhile by someone else, with "
                f"another mapping: run `python -m {__package__} init` again",
                status=400,
                error_type="resource_already_exists_exception",
            )
        print(f"Index '{self.index}' exists already, with the event mapping")
        return response

    async def query(self, query: Mapping[str, Any]) -> Response:
        """Run a query DSL object against the index and print the answer."""
        response = await self._request(
            "POST",
            self._url("_search"),
            json.dumps(query).encode(),
            doing="run the query",
        )
        self._field(response, "hits", dict)
        _print_response(response)
        return response

    async def count(self) -> int:
        """How many documents the index holds (those refreshed, that a search sees)."""
        response = await self._request(
            "GET", self._url("_count"), doing="read the index"
        )
        return self._field(response, "count", int)

    async def mappings(self) -> dict[str, Any]:
        """The index's live mappings, `{"properties": ...}`, to compare with
        `schema["mappings"]`."""
        return self._mappings_of(await self._mapping_response())

    async def get(self, log_id: str) -> dict[str, Any]:
        """The stored event of that logID (its `_source`); DocumentNotFound if the
        index holds none. Realtime: an event is found before any refresh."""
        response = await self._request(
            "GET", self._url("_doc", log_id), doing="read the event"
        )
        if response.body.get("found") is not True:
            raise self._unexpected(response.status, '"found" missing or not true')
        return self._field(response, "_source", dict)

    async def root(self) -> dict[str, Any]:
        """The cluster's root endpoint, GET /: its name, the node's, the version.
        Needs the monitor cluster privilege."""
        response = await self._request(
            "GET", self._base.joinpath(""), doing="read the cluster's root"
        )
        version = response.body.get("version")
        if not isinstance(version, dict) or not isinstance(version.get("number"), str):
            problem = 'no "version" of Elasticsearch or OpenSearch'
            raise self._unexpected(response.status, problem)
        return response.body

    async def health(self) -> dict[str, Any]:
        """The cluster's health, GET /_cluster/health: status green, yellow or red,
        nodes and shards. Needs the monitor cluster privilege."""
        response = await self._request(
            "GET",
            self._base.joinpath("_cluster", "health"),
            doing="read the cluster's health",
        )
        if response.body.get("status") not in ("green", "yellow", "red"):
            problem = '"status" missing or not green, yellow or red'
            raise self._unexpected(response.status, problem)
        return response.body

    async def refresh(self) -> Response:
        """Make everything stored so far searchable (otherwise it takes up to 1 s)."""
        return await self._request(
            "POST", self._url("_refresh"), doing="refresh the index"
        )

    async def _mapping_response(self) -> Response:
        return await self._request(
            "GET", self._url("_mapping"), doing="read the mapping"
        )

    def _mappings_of(self, response: Response) -> dict[str, Any]:
        """The mappings in a GET /<index>/_mapping answer, keyed by the index's name
        (or by the index an alias points to)."""
        indices = list(response.body.values())
        if len(indices) != 1 or not isinstance(indices[0], dict):
            raise self._unexpected(response.status, "not the mapping of one index")
        mappings = indices[0].get("mappings")
        if not isinstance(mappings, dict):
            raise self._unexpected(response.status, '"mappings" missing')
        return mappings

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ElasticLogger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"Accept": JSON, "User-Agent": f"{__package__}/{__version__}"}
            if self.settings.authorization:
                headers["Authorization"] = self.settings.authorization
            ssl_context: ssl.SSLContext | bool = True  # verify certificates
            if self.settings.ca_certs:
                ssl_context = ssl.create_default_context(cafile=self.settings.ca_certs)
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=self.timeout,
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, ssl=ssl_context
                ),
            )
        return self._session

    def _url(self, *segments: str) -> URL:
        """The URL of the index, or of one of its endpoints. Each segment is encoded
        on its own, so that a / in a document id stays part of the id."""
        encoded = (quote(part, safe="") for part in (self.index, *segments))
        return self._base.joinpath(*encoded, encoded=True)

    async def _request(
        self,
        method: str,
        url: URL,
        body: bytes | None = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        doing: str,
        retry: bool = True,
        events: int = 0,
    ) -> Response:
        """One REST call, retried by the run's Retrier unless `retry` is off;
        `doing` names the action in error messages, `events` counts those it carries."""
        exchange = partial(
            self._exchange, _Call(method, url, doing, body, content_type, params)
        )
        if not retry:
            return await exchange()
        return await self.retrier.call(exchange, events=events)

    async def _exchange(self, call: _Call) -> Response:
        """One HTTP request and its answer, checked to come from Elasticsearch, or
        the exception that explains why not."""
        answer = await self._send(call)
        if _unproven(answer, call.method):
            await self._check_engine()
        if answer.status >= 400:
            error = self._error(answer, call.doing)
            error.retry_after = _retry_after(answer.headers.get("Retry-After"))
            raise error
        if call.method != "HEAD" and not isinstance(answer.body, dict):
            raise self._not_elasticsearch(answer)
        return Response(answer.status, answer.body)

    async def _send(self, call: _Call) -> _Answer:
        """Send one request and return its answer; raise when none came, or when
        it comes from Kibana or redirects (Elasticsearch never redirects)."""
        headers = None if call.body is None else {"Content-Type": call.content_type}
        host = self.settings.host
        try:
            async with self._open_session().request(
                call.method,
                call.url,
                data=call.body,
                params=call.params,
                headers=headers,
                allow_redirects=False,
            ) as response:
                parsed = _parse(await response.read(), response)
                answer = _Answer(response.status, response.headers, *parsed)
        except aiohttp.ClientSSLError as error:
            raise self._tls_failure(error) from error
        except TimeoutError as error:
            raise ConnectionFailed(
                f"{host} did not answer in time ({self._timeouts()}) while trying to "
                f"{call.doing}: check the cluster's health, or raise --timeout",
                brief="timed out",
            ) from error
        except aiohttp.ClientError as error:
            # Refused before the cluster ever answered: most likely a wrong
            # ELASTIC_HOST, which waiting cannot fix. Later, a node restarting.
            never_answered = isinstance(error, aiohttp.ClientConnectorError) and (
                not self._answered
            )
            raise ConnectionFailed(
                f"cannot reach {host} to {call.doing} ({_describe(error)}): check "
                "ELASTIC_HOST and that the cluster is running",
                brief=_brief(error),
                retryable=not never_answered,
            ) from error
        self._answered = True
        if KIBANA_HEADER in answer.headers:
            raise NotElasticsearch(
                f"the server at {host} is Kibana, not Elasticsearch: set ELASTIC_HOST "
                "to the Elasticsearch endpoint (on Elastic Cloud, Copy endpoint next "
                "to Elasticsearch)"
            )
        if 300 <= answer.status < 400:
            target = _redirect_target(call.url, answer.headers.get("Location", ""))
            raise NotElasticsearch(
                f"the server at {host} answered {answer.status}, a redirect to "
                f"{target}: set ELASTIC_HOST to the address where Elasticsearch "
                "answers itself"
            )
        return answer

    async def _check_engine(self) -> None:
        """Make sure, once, that Elasticsearch or OpenSearch answers at ELASTIC_HOST,
        by asking its root endpoint; raise NotElasticsearch if not."""
        if self._engine_known:
            return
        call = _Call("GET", self._base.joinpath(""), "read the cluster's root")
        root = await self._send(call)
        if root.status == 401 or root.status in RETRYABLE_STATUSES:
            raise self._error(root, call.doing)  # refused credentials, or busy: say so
        if root.status >= 400 and not _is_error_body(root.body):
            raise self._not_elasticsearch(root, "an error without its error body")
        # An error body of Elasticsearch's is enough: a 403 says that the credentials
        # lack the monitor privilege GET / needs, on Elasticsearch all the same.
        if root.status < 400 and not _is_root_answer(root):
            problem = 'no "version" of Elasticsearch or OpenSearch'
            raise self._not_elasticsearch(root, problem)
        self._engine_known = True

    def _field(self, response: Response, name: str, kind: type[int | dict]) -> Any:
        """`response.body[name]`, once it is sure to be a `kind` (a number or an
        object: JSON's true is no count)."""
        value = response.body.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            words = "a number" if kind is int else "an object"
            raise self._unexpected(response.status, f'"{name}" missing or not {words}')
        return value

    def _not_elasticsearch(
        self, answer: _Answer, problem: str = "not an object"
    ) -> NotElasticsearch:
        """An answer that is no Elasticsearch JSON: no JSON at all, or JSON with
        `problem`."""
        if answer.looks == "JSON":
            return self._unexpected(answer.status, problem)
        return NotElasticsearch(
            f"the server at {self.settings.host} answered {answer.status} with "
            f"{answer.looks}, not Elasticsearch JSON: {NOT_ELASTICSEARCH_HINT}"
        )

    def _unexpected(self, status: int, problem: str) -> NotElasticsearch:
        """JSON that Elasticsearch would not send, `problem` saying what is wrong."""
        return NotElasticsearch(
            f"the server at {self.settings.host} answered {status} with JSON that "
            f"Elasticsearch would not send ({problem}): {NOT_ELASTICSEARCH_HINT}"
        )

    def _tls_failure(self, error: aiohttp.ClientSSLError) -> TLSFailed:
        """Each TLS failure with its own fix: a certificate nobody vouches for, a
        certificate for another name, or a port that does not speak TLS at all."""
        host, ca_file = self.settings.host, self.settings.ca_certs
        if isinstance(error, aiohttp.ClientConnectorCertificateError):
            cause = error.certificate_error
            why = getattr(cause, "verify_message", "") or str(cause)
            if getattr(cause, "verify_code", None) in NAME_MISMATCH:
                return TLSFailed(
                    f"the TLS certificate of {host} is not valid for the name "
                    f"{self._base.host!r} ({why}): use in ELASTIC_HOST a host name "
                    "the certificate was issued for (the endpoint exactly as the "
                    "cluster shows it)"
                )
            if ca_file:
                return TLSFailed(
                    f"the TLS certificate of {host} could not be verified with "
                    f"ELASTIC_CA_CERTS {ca_file!r} ({why}): point ELASTIC_CA_CERTS to "
                    "the CA file of this cluster (config/certs/http_ca.crt)"
                )
            return TLSFailed(
                f"the TLS certificate of {host} could not be verified ({why}): for a "
                "local cluster with its own certificate, set ELASTIC_CA_CERTS to its "
                "CA file (config/certs/http_ca.crt)"
            )
        cause = error.os_error  # the ssl.SSLError
        if any(sign in str(cause).lower() for sign in PLAIN_HTTP_SIGNS):
            return TLSFailed(
                f"{host} answered in plain HTTP, not TLS ({_ssl_reason(cause)}): start "
                "ELASTIC_HOST with http:// instead, or use the port where the cluster "
                "speaks https"
            )
        return TLSFailed(
            f"the TLS handshake with {host} failed ({_ssl_reason(cause)}): check that "
            "ELASTIC_HOST is the https endpoint of the cluster"
        )

    def _error(self, answer: _Answer, doing: str) -> ElasticError:
        """The exception for an error answer, its message saying what to do."""
        status, settings = answer.status, self.settings
        error_type, reason = _error_parts(answer)
        if status == 401:
            if settings.authorization is None:
                message = (
                    f"{settings.host} requires credentials: set ELASTIC_PASSWORD (with "
                    "ELASTIC_USERID) or ELASTIC_API_KEY in .env"
                )
            else:
                message = (
                    f"{settings.host} refused the credentials "
                    f"({settings.credentials}): check ELASTIC_USERID and "
                    "ELASTIC_PASSWORD, or ELASTIC_API_KEY, in .env"
                )
            return AuthError(message, status=status, error_type=error_type)
        if status == 403:
            return AuthError(
                f"{settings.credentials} may not {doing} on index '{self.index}' "
                f"({error_type}: {reason}): use credentials with that privilege",
                status=status,
                error_type=error_type,
            )
        if status == 404 and _is_missing_document(answer.body):
            return DocumentNotFound(
                f"index '{self.index}' holds no event with logID "
                f"'{answer.body['_id']}': check the id (a query prints some)",
                status=status,
                error_type="not_found",
            )
        if status == 404 and error_type in ("index_not_found_exception", ""):
            return IndexNotFound(
                f"index '{self.index}' does not exist: "
                f"run `python -m {__package__} init` first",
                status=status,
                error_type=error_type,
            )
        detail = f"{error_type}: {reason}" if error_type else reason
        return ElasticError(
            f"Elasticsearch could not {doing} ({status} {detail})",
            status=status,
            error_type=error_type,
        )

    def _timeouts(self) -> str:
        return f"connect {self.timeout.connect:g} s, total {self.timeout.total:g} s"


def _parse(raw: bytes, response: aiohttp.ClientResponse) -> tuple[Any, str]:
    """An answer's body, parsed if it is JSON, and how it looks (see _Answer)."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return text, "an empty body"
    if "Content-Type" not in response.headers:
        return text, "a body without a content type"
    if not response.content_type.endswith("json"):
        return text, response.content_type
    try:
        return json.loads(text), "JSON"
    except json.JSONDecodeError as error:  # cut short: it ends where it fails
        at_end = error.pos >= len(text.rstrip())
        cut_short = at_end or error.msg.startswith("Unterminated string")
        return text, "JSON cut short" if cut_short else "invalid JSON"
    except ValueError:  # a number of more digits than Python converts
        return text, "invalid JSON"
    except RecursionError:  # nested deeper than Python reads
        return text, "invalid JSON"


def _unproven(answer: _Answer, method: str) -> bool:
    """Whether nothing in the answer shows that Elasticsearch sent it, although
    reading it needs that: an error without Elasticsearch's error body, or a HEAD,
    which has no body at all. The JSON of a success is checked where it is read."""
    if answer.product or _is_error_body(answer.body):
        return False
    if answer.status in TAKEN_AS_THEY_ARE:
        return False
    return answer.status >= 400 or method == "HEAD"


def _is_error_body(body: Any) -> bool:
    """Elasticsearch's error body: {"error": {...} or "...", "status": 404}."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("error"), dict | str)
        and isinstance(body.get("status"), int)
    )


def _is_missing_document(body: Any) -> bool:
    """What a get of a missing document answers, with a 404: {"_index": ..., "_id":
    ..., "found": false}, no error body."""
    return (
        isinstance(body, dict)
        and body.get("found") is False
        and isinstance(body.get("_id"), str)
    )


def _is_root_answer(root: _Answer) -> bool:
    """What GET / answers on Elasticsearch (which names itself in a header, or, from
    before 7.14, in its tagline) and on OpenSearch (which names itself in the
    version)."""
    version = root.body.get("version") if isinstance(root.body, dict) else None
    if not isinstance(version, dict) or not isinstance(version.get("number"), str):
        return False
    return (
        root.product == "Elasticsearch"
        or version.get("distribution") == "opensearch"
        or root.body.get("tagline") == "You Know, for Search"
    )


def _bulk_problem(body: dict[str, Any], *, sent: int) -> str | None:
    """What keeps a `_bulk` answer from being read item by item, or None. Its items
    are only read when some failed."""
    if not isinstance(body.get("errors"), bool):
        return '"errors" missing or not true or false'
    if not body["errors"]:
        return None
    items = body.get("items")
    if not isinstance(items, list) or len(items) != sent:
        return f'"items" does not list the {sent} items sent'
    for item in items:  # {"create": {"status": 201}}
        results = list(item.values()) if isinstance(item, dict) else []
        result = results[0] if len(results) == 1 else None
        if not (
            isinstance(result, dict)
            and isinstance(result.get("status"), int)
            and isinstance(result.get("error", {}), dict)
        ):
            return "an item without its status"
    return None


def _redirect_target(url: URL, location: str) -> str:
    """Where a redirect points, without credentials or a query."""
    try:
        target = url.join(URL(location))
    except ValueError:
        return "nowhere readable"
    return str(target.with_user(None).with_query(None).with_fragment(None))


def _ssl_reason(error: BaseException) -> str:
    """OpenSSL's name for a failure, like WRONG_VERSION_NUMBER, or its message."""
    return getattr(error, "reason", None) or str(error)


def _retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header asks to wait: a number, or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except ValueError:  # not an HTTP date either
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _error_parts(answer: _Answer) -> tuple[str, str]:
    """(type, reason) of an error answer, preferring the root cause ES reports, each
    on one line."""
    body = answer.body
    error = body.get("error") if _is_error_body(body) else None
    if isinstance(error, dict):
        roots = error.get("root_cause")
        cause = roots[0] if isinstance(roots, list) and roots else error
        cause = cause if isinstance(cause, dict) else error
        return _one_line(cause.get("type", "")), _one_line(cause.get("reason", ""))
    if error:
        return "", _one_line(error)
    return "", _one_line(body)[:200] or "no details"


def _one_line(value: Any) -> str:
    """Server text fit for a one-line message: whitespace, newlines included, as
    single spaces."""
    return " ".join(str(value).split())


def _describe(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the connection closed before an answer"
    return str(error) or type(error).__name__


def _brief(error: aiohttp.ClientError) -> str:
    """A lost connection in a few words, for the progress line."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "connection lost"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "answer cut short"
    return type(error).__name__


def _print_response(response: Response) -> None:
    print(f"Response: {response.status}")
    print(json.dumps(response.body, indent=2))
