"""The game's HTTP API: routes, parameters, statuses, and one event per action.

Each action hands the game a `record` function, which the game calls once, between
deciding and applying the action (players.Game._act); the answer is sent after it
returned, so an answered action always has its event with the broker. If the broker
fails, nothing has changed and the answer is 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from .broker import Broker
from .errors import BrokerError
from .events import make_event
from .players import Game, Outcome, Record

log = logging.getLogger(__name__)

SESSION_COOKIE = "session"
MAX_PARAMETERS = 4096  # bytes of query string, and of form body: names are short
# The longest request line the HTTP parser reads. Up to it, a long query is ours to
# refuse (a JSON 400, with its event); past it, aiohttp's parser refuses the request
# in plain text before any route is found.
MAX_REQUEST_LINE = 65536
FORM = "application/x-www-form-urlencoded"

# The status of each reason an action fails for; success is 200.
STATUSES = {
    "bad_request": 400,
    "missing_parameter": 400,
    "bad_username": 400,
    "bad_password": 400,
    "bad_guild": 400,
    "bad_target": 400,
    "unknown_quality": 400,
    "own_guild": 400,
    "no_session": 401,
    "expired_session": 401,
    "wrong_password": 401,
    "not_enough_gold": 402,
    "not_in_guild": 403,
    "unknown_player": 404,
    "unknown_item": 404,
    "unknown_guild": 404,
    "player_exists": 409,
    "already_in_guild": 409,
    "already_at_war": 409,
    "not_at_war": 409,
}
WELCOME = (
    "welcome: POST /signup?username=U&password=P, POST /login (same parameters), "
    "then POST /purchase/sword?quality=rare, /join_guild?guild=G, "
    "/declare_war?target=G, /declare_peace?target=G, and GET /inventory"
)

# An action: (parameters, session token, record) -> what it did.
Act = Callable[[dict[str, str], str | None, Record], Awaitable[Outcome]]


def make_app(broker: Broker, game: Game | None = None) -> web.Application:
    """The game as a web application; the caller starts and closes `broker`."""
    game = game or Game()
    app = web.Application(
        middlewares=[_json_errors],
        client_max_size=MAX_PARAMETERS,
        handler_args={
            "access_log_class": AccessLogger,
            "logger": log,
            "max_line_size": MAX_REQUEST_LINE,
        },
    )
    actions = _Actions(game)
    # Each action is named after the type of the event it emits.
    for method, path, action in [
        ("GET", "/", actions.default),
        ("POST", "/signup", actions.signup),
        ("POST", "/login", actions.login),
        ("POST", "/purchase/{item}", actions.purchase),
        ("POST", "/join_guild", actions.join_guild),
        ("POST", "/declare_war", actions.declare_war),
        ("POST", "/declare_peace", actions.declare_peace),
    ]:
        handler = partial(_run_action, broker, game, action.__name__, action)
        app.router.add_route(method, path, handler)
    app.router.add_get("/inventory", partial(_inventory, game))
    return app


class _Actions:
    """From a request's parameters to the game's call, for each action."""

    def __init__(self, game: Game) -> None:
        self.game = game

    async def default(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Outcome:
        outcome = Outcome(None, WELCOME)
        await record(outcome)
        return outcome

    def signup(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        username, password = params.get("username", ""), params.get("password", "")
        return self.game.signup(username, password, record)

    def login(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        username, password = params.get("username", ""), params.get("password", "")
        return self.game.login(username, password, record)

    def purchase(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        quality = params.get("quality", "common")
        return self.game.purchase(token, params["item"], quality, record)

    def join_guild(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        return self.game.join_guild(token, params.get("guild", ""), record)

    def declare_war(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        return self.game.declare_war(token, params.get("target", ""), record)

    def declare_peace(
        self, params: dict[str, str], token: str | None, record: Record
    ) -> Awaitable[Outcome]:
        return self.game.declare_peace(token, params.get("target", ""), record)


async def _inventory(game: Game, request: web.Request) -> web.Response:
    outcome = game.inventory(request.cookies.get(SESSION_COOKIE))
    return _answer(outcome, username=outcome.username)


async def _run_action(
    broker: Broker, game: Game, event_type: str, action: Act, request: web.Request
) -> web.Response:
    """Run one action request: its event recorded, then its answer."""

    async def record(outcome: Outcome) -> None:
        await broker.send(
            make_event(
                event_type,
                success=outcome.success,
                reason=outcome.reason,
                username=outcome.username,
                host=_text(request.headers.get("Host", "")),
                user_agent=_text(request.headers.get("User-Agent", "")),
                fields=outcome.fields,
            )
        )

    try:
        try:
            params = {**await _parameters(request), **request.match_info}
        except _Unreadable as error:
            outcome = Outcome("bad_request", str(error))
            await record(outcome)
        else:
            outcome = await action(params, request.cookies.get(SESSION_COOKIE), record)
    except BrokerError as error:
        log.warning("%s not recorded, answered 503: %s", event_type, error)
        return _json(503, "the game cannot record actions right now: try again soon")
    response = _answer(outcome)
    if outcome.session is not None:
        response.set_cookie(
            SESSION_COOKIE,
            outcome.session,
            max_age=int(game.session_seconds),
            path="/",
            httponly=True,  # no script on a page can read it
            samesite="Lax",  # no other site's form can post with it
        )
    return response


class _Unreadable(Exception):
    """The request's parameters cannot be read: the message says why."""


async def _parameters(request: web.Request) -> dict[str, str]:
    """The query string's parameters, and a form body's over them. Both are read
    strictly: a long one or one that is not UTF-8 is refused, not guessed at."""
    query = request.raw_path.partition("?")[2]
    params = _decoded(query.encode(errors="surrogateescape"), "query string")
    if request.body_exists:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Unreadable(
                f"the body is longer than {MAX_PARAMETERS} bytes"
            ) from None
        if body and request.content_type != FORM:
            raise _Unreadable(
                f"send parameters in the query string or as a {FORM} body, "
                f"not {request.content_type}"
            )
        params.update(_decoded(body, "form body"))
    return params


def _decoded(encoded: bytes, where: str) -> dict[str, str]:
    if len(encoded) > MAX_PARAMETERS:
        raise _Unreadable(f"the {where} is longer than {MAX_PARAMETERS} bytes")
    try:
        text = encoded.decode()  # a form body may hold UTF-8 unencoded
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeError:
        raise _Unreadable(f"the {where} is not UTF-8") from None
    return dict(pairs)


def _text(header: str) -> str:
    """A header as text an event can hold: bytes that were not UTF-8 become '?'."""
    return header.encode(errors="replace").decode()


def _answer(outcome: Outcome, **extra: Any) -> web.Response:
    status = 200 if outcome.success else STATUSES[outcome.reason or ""]
    return _json(status, outcome.message, **extra, **outcome.answer)


def _json(status: int, message: str, **extra: Any) -> web.Response:
    body = {"ok": status < 400, "message": message, **extra}
    return web.json_response(body, status=status)


@web.middleware
async def _json_errors(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """What the router refuses (unknown route, wrong method) answered in JSON too.

    These requests reach no action, so they emit no event."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as error:
        allowed = ", ".join(sorted(error.allowed_methods))
        message = f"{request.method} {request.path} is not allowed: use {allowed}"
        if "POST" in error.allowed_methods:
            message += " (an action: curl -X POST, ab -m POST)"
        response = _json(405, message)
        response.headers["Allow"] = allowed
        return response
    except web.HTTPNotFound:
        return _json(404, f"no route {request.path}: GET / lists the routes")
    except web.HTTPException as error:
        return _json(error.status, error.reason)
    except Exception:
        log.exception("bug: %s %s failed", request.method, request.path)
        return _json(500, "the game failed: see the server's log")


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string: it may hold a password."""

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        self.logger.info(
            "%s %s %s %d %.1f ms",
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )


class _OneLineRefusals(logging.Filter):
    """A request the HTTP parser refused (malformed, or a request line longer than
    MAX_REQUEST_LINE) is the client's mistake, not ours: one line, without the
    traceback, and without the request, which may hold a password."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "refused a malformed request (%s %s)"
            record.args = (error.code, type(error).__name__)
            record.exc_info = None
        return True


log.addFilter(_OneLineRefusals())
