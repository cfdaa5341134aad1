"""ApacheBench-style load on the game: N requests, at most C in flight.

The TaskEngine holds the limit (its slots) and draws the progress line; this module
says what each request is, and counts what came back. With players, each is signed up
and logged in first, and the requests take turns among their sessions.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from .errors import InputError, PsetError
from .task_engine import TaskEngine

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Plan:
    """What to send: `requests` requests to `paths` in turn, by `players` players."""

    url: URL
    paths: Sequence[str]
    requests: int = 1
    method: str = "GET"
    host_header: str | None = None
    players: int = 0
    timeout: float = 30.0


def checked_url(text: str) -> URL:
    """The server's address: http(s)://host[:port], nothing after it."""
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise InputError(
            f"--url {text!r} is not a server address: use one like "
            "http://127.0.0.1:5000"
        )
    return url


class Load:
    """Runs a plan through a TaskEngine, and accounts for every request."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.sessions: list[str | None] = [None]  # one per player; None: no cookie
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()  # no answer, by why
        self.latencies: list[float] = []  # seconds, of the answered requests
        self.elapsed = 0.0

    async def drive(self, engine: TaskEngine) -> None:
        """Enrol the players, then send the requests, at most max_tasks at once."""
        plan = self.plan
        connector = aiohttp.TCPConnector(limit=engine.max_tasks)
        timeout = aiohttp.ClientTimeout(total=plan.timeout)
        # No cookie jar: each request carries its player's cookie, and only that.
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            if plan.players:
                self.sessions = [None] * plan.players
                prefix = f"load-{secrets.token_hex(3)}"
                for number in range(plan.players):
                    await engine.start_task(self._enrol, http, number, prefix)
                await engine.run_until_complete()
            started = time.perf_counter()
            players = len(self.sessions)
            for number in range(plan.requests):
                # The players take turns, and each goes through the paths in order.
                session = self.sessions[number % players]
                path = plan.paths[number // players % len(plan.paths)]
                await engine.start_task(self._request, http, plan.method, path, session)
            await engine.run_until_complete()
            self.elapsed = time.perf_counter() - started

    async def _enrol(
        self, http: aiohttp.ClientSession, number: int, prefix: str
    ) -> None:
        """Sign up and log in one player, and keep its session."""
        params = {"username": f"{prefix}-{number}", "password": secrets.token_urlsafe()}
        for action in ("/signup", "/login"):
            async with await self._send(http, "POST", action, None, params) as answer:
                if answer.status != 200:
                    raise PsetError(
                        f"POST {action} for player {params['username']} answered "
                        f"{answer.status}: {await answer.text()}"
                    )
                cookie = answer.cookies.get("session")
        if cookie is None:
            raise PsetError("POST /login answered 200 but set no session cookie")
        self.sessions[number] = cookie.value

    async def _request(
        self, http: aiohttp.ClientSession, method: str, path: str, session: str | None
    ) -> None:
        """One request of the run, timed. An answer that never came is counted;
        a server that cannot be reached at all stops the run (PsetError)."""
        began = time.perf_counter()
        try:
            async with await self._send(http, method, path, session) as answer:
                await answer.read()
        except TimeoutError:
            self.failures["timed out"] += 1
        except aiohttp.ClientError as error:
            self.failures[type(error).__name__] += 1
        else:
            self.latencies.append(time.perf_counter() - began)
            self.statuses[answer.status] += 1

    async def _send(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        session: str | None,
        params: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {}
        if self.plan.host_header:
            headers["Host"] = self.plan.host_header
        if session is not None:
            headers["Cookie"] = f"session={session}"
        url = str(self.plan.url).rstrip("/") + path
        try:
            return await http.request(method, url, params=params, headers=headers)
        except aiohttp.ClientConnectorError as error:
            code = error.os_error.errno
            why = os.strerror(code) if code else str(error)
            raise PsetError(
                f"cannot connect to {self.plan.url} ({why}): is the server running? "
                "start it with: serve"
            ) from None

    def report(self) -> str:
        """The summary ApacheBench prints: rate, latencies, statuses."""
        plan = self.plan
        answered = len(self.latencies)
        lines = [
            f"Requests:       {answered + sum(self.failures.values())} "
            f"({plan.method} {', '.join(plan.paths)}), "
            f"{plan.players or 'no'} players",
            f"Time taken:     {self.elapsed:.3f} s",
            f"Requests/s:     {answered / self.elapsed if self.elapsed else 0:,.1f}",
        ]
        if answered:
            ordered = sorted(self.latencies)
            points = [
                f"{p}% {_ms(ordered[math.ceil(p / 100 * answered) - 1])}"
                for p in PERCENTILES
            ]
            lines.append(f"Latency:        {', '.join(points)}, max {_ms(ordered[-1])}")
        lines += [
            f"Status {status}:     {count}"
            for status, count in sorted(self.statuses.items())
        ]
        lines += [
            f"Failed:         {count} ({why})" for why, count in self.failures.items()
        ]
        return "\n".join(lines)

    def check(self) -> None:
        """Raise if the server failed any request: no answer, or a 5xx one."""
        failed = sum(self.failures.values())
        errors = sum(n for status, n in self.statuses.items() if status >= 500)
        problems = []
        if failed:
            whys = ", ".join(self.failures)
            problems.append(f"{failed} requests got no answer ({whys})")
        if errors:
            problems.append(f"{errors} answered a server error (5xx)")
        if problems:
            raise PsetError(" and ".join(problems) + ": see the server's log")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
