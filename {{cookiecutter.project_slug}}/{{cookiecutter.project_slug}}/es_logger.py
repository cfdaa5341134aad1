"""The HTTP side of talking to Elasticsearch: one method per REST call.

This module sends requests with aiohttp, each through the run's Retrier (retry.py
decides how long to keep trying), and turns error answers into exceptions whose
message says what to do. Batching and the account of events live in ingest.py.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Mapping
from functools import partial
from types import TracebackType
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

import aiohttp

from . import __version__
from .errors import (
    AuthError,
    ConnectionFailed,
    ElasticError,
    IndexNotFound,
    TLSFailed,
)
from .retry import Retrier
from .settings import Settings

JSON = "application/json"
NDJSON = "application/x-ndjson"
# Only what the ingester reads back from _bulk: the answer shrinks about tenfold.
BULK_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


class Response(NamedTuple):
    """An answer from Elasticsearch: its status and its parsed JSON (or text) body."""

    status: int
    body: Any


class ElasticLogger:
    """A connection to one Elasticsearch index.

    Build it anywhere; the aiohttp session opens on first use, inside the running event
    loop (aiohttp requires one), and `close()` (or `async with`) releases it.
    """

    schema: ClassVar[dict[str, Any]] = {
        "mappings": {
            "properties": {
                "browser": {"type": "keyword"},
                "eventTime": {"type": "date"},
                "logID": {"type": "text"},
                "responseCode": {"type": "integer"},
                "ttfb": {"type": "float"},
                "ua_country": {"type": "keyword"},
                "ua_os": {"type": "text"},
                "url": {"type": "keyword"},
                "userId": {"type": "text"},
                "location": {"type": "geo_point"},
            }
        }
    }

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
        self._index_path = "/" + quote(self.settings.index, safe="")
        self._session: aiohttp.ClientSession | None = None
        self._answered = False  # has the cluster ever answered this logger?

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
                f"{self._index_path}/_doc",
                body,
                doing="store the event",
                retry=False,
            )
        doc_id = quote(str(event["logID"]), safe="")
        return await self._request(
            "PUT",
            f"{self._index_path}/_doc/{doc_id}",
            body,
            params={"op_type": "create"},
            doing="store the event",
            events=1,
        )

    async def bulk(self, ndjson: bytes, *, events: int = 1) -> Response:
        """Send one `_bulk` body of `events` events; the answer holds `errors` and
        each item's status (items refused one by one are the caller's to retry)."""
        return await self._request(
            "POST",
            f"{self._index_path}/_bulk",
            ndjson,
            content_type=NDJSON,
            params={"filter_path": BULK_FILTER},
            doing="store the events",
            events=events,
            renews=False,  # the ingester renews when items are stored
        )

    async def check_index(self) -> None:
        """Fail fast on a wrong host, refused credentials or a missing index."""
        await self._request("HEAD", self._index_path, doing="read the index")

    async def init_schema(self) -> Response:
        """Delete the index if present (saying what went), create it with `schema`.

        Each step is retried, so an answer lost after the cluster applied the step
        is met again: the retried delete finds no index, the retried create finds
        the index our own create made. Both are success, once the mapping is ours.
        """
        try:
            counted = await self._request(
                "GET", f"{self._index_path}/_count", doing="read the index"
            )
        except IndexNotFound:
            print(f"No index '{self.index}' to delete")
        else:
            with contextlib.suppress(IndexNotFound):  # deleted by a lost attempt
                await self._request(
                    "DELETE", self._index_path, doing="delete the index"
                )
            documents = counted.body["count"]
            plural = "s" * (documents != 1)
            print(f"Deleted index '{self.index}' and its {documents} document{plural}")
        try:
            response = await self._request(
                "PUT",
                self._index_path,
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
        response = await self._request(
            "GET", f"{self._index_path}/_mapping", doing="read the mapping"
        )
        (mapping,) = response.body.values()
        if mapping.get("mappings") != self.schema["mappings"]:
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
            f"{self._index_path}/_search",
            json.dumps(query).encode(),
            doing="run the query",
        )
        _print_response(response)
        return response

    async def refresh(self) -> Response:
        """Make everything stored so far searchable (otherwise it takes up to 1 s)."""
        return await self._request(
            "POST", f"{self._index_path}/_refresh", doing="refresh the index"
        )

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

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
        doing: str,
        retry: bool = True,
        events: int = 0,
        renews: bool = True,
    ) -> Response:
        """One REST call, retried by the run's Retrier unless `retry` is off;
        `doing` names the action in error messages, `events` counts those it carries."""
        exchange = partial(
            self._exchange, method, path, body, content_type, params, doing
        )
        if not retry:
            return await exchange()
        return await self.retrier.call(exchange, events=events, renews=renews)

    async def _exchange(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str,
        params: Mapping[str, str] | None,
        doing: str,
    ) -> Response:
        """One HTTP request and its answer, or the exception that explains why not."""
        headers = {"Content-Type": content_type} if body is not None else None
        host = self.settings.host
        try:
            async with self._open_session().request(
                method, host + path, data=body, params=params, headers=headers
            ) as answer:
                status, raw = answer.status, await answer.read()
                is_json = answer.content_type.endswith("json")
        except aiohttp.ClientSSLError as error:
            raise TLSFailed(
                f"the TLS certificate of {host} could not be verified ({error}): for a "
                "local cluster with its own certificate, set ELASTIC_CA_CERTS to its "
                "CA file (config/certs/http_ca.crt)"
            ) from error
        except TimeoutError as error:
            raise ConnectionFailed(
                f"{host} did not answer in time ({self._timeouts()}) while trying to "
                f"{doing}: check the cluster's health, or raise --timeout",
                brief="timed out",
            ) from error
        except aiohttp.ClientError as error:
            # Refused before the cluster ever answered: most likely a wrong
            # ELASTIC_HOST, which waiting cannot fix. Later, a node restarting.
            never_answered = isinstance(error, aiohttp.ClientConnectorError) and (
                not self._answered
            )
            raise ConnectionFailed(
                f"cannot reach {host} to {doing} ({_describe(error)}): check "
                "ELASTIC_HOST and that the cluster is running",
                brief=_brief(error),
                retryable=not never_answered,
            ) from error
        self._answered = True
        payload = _decode(raw, is_json)
        if status >= 400:
            raise self._error(status, payload, doing)
        return Response(status, payload)

    def _error(self, status: int, body: Any, doing: str) -> ElasticError:
        error_type, reason = _error_parts(body)
        settings = self.settings
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


def _decode(raw: bytes, is_json: bool) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if is_json and text:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def _error_parts(body: Any) -> tuple[str, str]:
    """(type, reason) of an error answer, preferring the root cause ES reports."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        cause = (error.get("root_cause") or [error])[0]
        return str(cause.get("type", "")), str(cause.get("reason", ""))
    if error:
        return "", str(error)
    return "", " ".join(str(body).split())[:200] or "no details"


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
