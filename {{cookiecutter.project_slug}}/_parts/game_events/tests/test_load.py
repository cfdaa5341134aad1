"""The load command against servers that answer, fail, stall, or are not there."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web

from {{ cookiecutter.project_slug }}.cli import main

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextmanager
def serving(handler: Handler) -> Iterator[str]:
    """A web server in a thread of its own, answering every request with `handler`;
    gives its URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "message": "fine"})


def test_a_load_reports_rate_latencies_and_statuses(capsys):
    with serving(ok) as url:
        assert main(["load", "--url", url, "-n", "20", "-c", "4", "/"]) == 0
    out = capsys.readouterr().out
    assert "Requests/s:" in out
    assert "Latency:        50% " in out
    assert ", 90% " in out
    assert ", 99% " in out
    assert ", max " in out
    assert "Status 200:     20" in out
    assert "Engine stopped." in out  # the TaskEngine's progress line ended


def test_no_more_than_c_requests_are_in_flight():
    in_flight = peak = 0

    async def counting(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return await ok(request)

    with serving(counting) as url:
        assert main(["load", "--url", url, "-n", "30", "-c", "3", "/"]) == 0
    assert 1 <= peak <= 3


def test_method_and_host_header_are_sent():
    seen: Counter[tuple[str, str]] = Counter()

    async def recording(request: web.Request) -> web.Response:
        seen[request.method, request.headers["Host"]] += 1
        return await ok(request)

    with serving(recording) as url:
        argv = ["load", "--url", url, "-n", "4", "-m", "post", "-H", "game.example"]
        assert main([*argv, "/a", "/b"]) == 0
    assert seen == {("POST", "game.example"): 4}


def test_players_sign_up_log_in_and_take_turns(capsys):
    cookies: Counter[tuple[str, str]] = Counter()
    signed_up: list[str] = []

    async def game(request: web.Request) -> web.Response:
        username = request.query.get("username", "")
        if request.path == "/signup":
            signed_up.append(username)
            return await ok(request)
        if request.path == "/login":
            response = await ok(request)
            response.set_cookie("session", f"token-of-{username}")
            return response
        cookies[request.cookies.get("session", ""), request.path] += 1
        return await ok(request)

    with serving(game) as url:
        argv = ["load", "--url", url, "-n", "12", "-c", "3", "--players", "3"]
        assert main([*argv, "-m", "POST", "/a", "/b", "/c"]) == 0
    assert len(set(signed_up)) == 3
    # Each player sends each path: 3 players x 3 paths, and the first path again.
    expected = Counter(
        {(f"token-of-{name}", p): 1 for name in signed_up for p in ("/a", "/b", "/c")}
    )
    expected.update({(f"token-of-{name}", "/a"): 1 for name in signed_up})
    assert cookies == expected
    assert "3 players" in capsys.readouterr().out


def test_a_refused_signup_stops_the_load_in_one_line(capsys):
    async def exists(request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "message": "exists"}, status=409)

    with serving(exists) as url:
        assert main(["load", "--url", url, "--players", "2", "/"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: POST /signup for player ")
    assert "answered 409" in err
    assert err.count("\n") == 1


def test_a_server_that_is_down_is_one_line_and_exit_1(capsys):
    url = f"http://127.0.0.1:{a_closed_port()}"
    assert main(["load", "--url", url, "-n", "50", "-c", "5", "/"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"error: cannot connect to {url} (Connection refused): is the server "
        "running? start it with: serve\n"
    )
    assert "Traceback" not in captured.err


def test_server_errors_are_reported_and_exit_non_zero(capsys):
    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"ok": False}, status=503)

    with serving(failing) as url:
        assert main(["load", "--url", url, "-n", "5", "/"]) == 1
    captured = capsys.readouterr()
    assert "Status 503:     5" in captured.out
    assert captured.err == (
        "error: 5 answered a server error (5xx): see the server's log\n"
    )


def test_a_server_too_slow_to_answer_is_reported_and_exits_non_zero(capsys):
    async def stalled(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    with serving(stalled) as url:
        argv = ["load", "--url", url, "-n", "4", "-c", "4", "--timeout", "0.05", "/"]
        assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Failed:         4 (timed out)" in captured.out
    assert captured.err == (
        "error: 4 requests got no answer (timed out): see the server's log\n"
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["nopath"], "must start with /"),
        (["-n", "0", "/"], "must be a whole number >= 1"),
        (["-c", "x", "/"], "must be a whole number >= 1"),
        ([], "required"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(capsys, argv, words):
    with pytest.raises(SystemExit) as exited:
        main(["load", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert words in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("url", ["ftp://x", "http://", "127.0.0.1:5000"])
def test_a_bad_url_is_one_line_and_exit_1(capsys, url):
    assert main(["load", "--url", url, "/"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: --url {url!r} is not a server address: use one like "
        "http://127.0.0.1:5000\n"
    )
