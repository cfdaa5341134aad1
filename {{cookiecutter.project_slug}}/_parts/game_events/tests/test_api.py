"""Every route: its answer, its status, and the one event it emits."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes import FAST_HASH, FakeBroker, logged_in

from {{ cookiecutter.project_slug }}.api import make_app
from {{ cookiecutter.project_slug }}.events import (
    COMMON_FIELDS,
    TYPE_FIELDS,
)
from {{ cookiecutter.project_slug }}.players import (
    CATALOG,
    START_GOLD,
    Game,
)

PASSWORD = "secret-pw"


def only_event(broker: FakeBroker, event_type: str, **expected: Any) -> dict[str, Any]:
    """The one event the last request emitted, checked against `expected`."""
    event = broker.events[-1]
    assert event["event_type"] == event_type
    assert list(event) == [*COMMON_FIELDS, *TYPE_FIELDS[event_type]]
    assert {name: event[name] for name in expected} == expected
    return event


async def post(client: TestClient, path: str, **params: str) -> tuple[int, dict]:
    response = await client.post(path, params=params)
    return response.status, await response.json()


async def test_the_greeting_emits_a_default_event(client, broker):
    response = await client.get("/", headers={"User-Agent": "ab/2.3"})
    assert response.status == 200
    assert (await response.json())["ok"] is True
    event = only_event(
        broker, "default", success=True, reason=None, username=None, user_agent="ab/2.3"
    )
    assert event["host"] == f"127.0.0.1:{client.port}"
    assert event["timestamp"].endswith("Z")


async def test_signup_creates_a_player_with_100_gold(client, broker):
    status, body = await post(client, "/signup", username="ana", password=PASSWORD)
    assert (status, body["ok"]) == (200, True)
    only_event(broker, "signup", success=True, reason=None, username="ana")
    await post(client, "/login", username="ana", password=PASSWORD)
    inventory = await (await client.get("/inventory")).json()
    assert inventory["gold"] == START_GOLD == 100
    assert inventory["items"] == []
    assert inventory["guild"] is None


@pytest.mark.parametrize(
    ("params", "status", "reason", "username"),
    [
        ({"username": "ana"}, 400, "missing_parameter", "ana"),
        ({"password": PASSWORD}, 400, "missing_parameter", None),
        ({"username": "a b", "password": PASSWORD}, 400, "bad_username", "a b"),
        ({"username": "x" * 33, "password": PASSWORD}, 400, "bad_username", "x" * 33),
        ({"username": "ana", "password": "p" * 1025}, 400, "bad_password", "ana"),
    ],
)
async def test_signup_refuses_bad_parameters(
    client, broker, params, status, reason, username
):
    response = await client.post("/signup", params=params)
    assert response.status == status
    assert (await response.json())["ok"] is False
    only_event(broker, "signup", success=False, reason=reason, username=username)


async def test_signup_of_an_existing_player_is_409(client, broker):
    await post(client, "/signup", username="ana", password=PASSWORD)
    status, body = await post(client, "/signup", username="ana", password="other")
    assert (status, body["ok"]) == (409, False)
    only_event(broker, "signup", success=False, reason="player_exists", username="ana")


async def test_signup_takes_a_form_body_too(client, broker):
    body = "username=jos%C3%A9&password=pw"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/signup", data=body, headers=headers)
    assert response.status == 200
    only_event(broker, "signup", success=True, username="josé")


async def test_login_sets_an_http_only_session_cookie(client, broker):
    await post(client, "/signup", username="ana", password=PASSWORD)
    response = await client.post(
        "/login", params={"username": "ana", "password": PASSWORD}
    )
    assert response.status == 200
    cookie = response.cookies["session"]
    assert len(cookie.value) >= 32
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    only_event(broker, "login", success=True, reason=None, username="ana")


@pytest.mark.parametrize(
    ("username", "password", "status", "reason"),
    [
        ("ana", "wrong", 401, "wrong_password"),
        ("bob", PASSWORD, 404, "unknown_player"),
        ("ana", "", 400, "missing_parameter"),
    ],
)
async def test_login_failures(client, broker, username, password, status, reason):
    await post(client, "/signup", username="ana", password=PASSWORD)
    response = await client.post(
        "/login", params={"username": username, "password": password}
    )
    assert response.status == status
    assert "session" not in response.cookies
    only_event(broker, "login", success=False, reason=reason, username=username)


async def test_a_purchase_spends_gold_and_fills_the_inventory(client, broker):
    await logged_in(client)
    status, body = await post(client, "/purchase/sword", quality="rare")
    rare_sword = CATALOG["sword", "rare"]
    assert (status, body["gold"]) == (200, START_GOLD - rare_sword.price)
    only_event(
        broker,
        "purchase",
        success=True,
        reason=None,
        username="ana",
        item_type="sword",
        quality="rare",
        strength=rare_sword.strength,
        price=rare_sword.price,
    )
    inventory = await (await client.get("/inventory")).json()
    assert inventory["gold"] == START_GOLD - rare_sword.price
    assert inventory["items"] == [
        {"item_type": "sword", "quality": "rare", "strength": 30, "count": 1}
    ]


async def test_the_default_quality_is_common(client, broker):
    await logged_in(client)
    assert (await client.post("/purchase/potion")).status == 200
    only_event(
        broker, "purchase", quality="common", price=CATALOG["potion", "common"].price
    )


@pytest.mark.parametrize(
    ("path", "status", "fields"),
    [
        (
            "/purchase/sword?quality=legendary",
            402,
            {"reason": "not_enough_gold", "item_type": "sword", "quality": "legendary"},
        ),
        (
            "/purchase/bow",
            404,
            {
                "reason": "unknown_item",
                "item_type": "bow",
                "strength": None,
                "price": None,
            },
        ),
        (
            "/purchase/axe?quality=shiny",
            400,
            {"reason": "unknown_quality", "quality": "shiny", "price": None},
        ),
    ],
)
async def test_purchase_failures(client, broker, path, status, fields):
    await logged_in(client)
    response = await client.post(path)
    assert response.status == status
    assert (await response.json())["ok"] is False
    only_event(broker, "purchase", success=False, username="ana", **fields)
    assert (await (await client.get("/inventory")).json())["gold"] == START_GOLD


async def test_a_failed_purchase_of_a_known_item_says_its_price(client, broker):
    await logged_in(client)
    await client.post("/purchase/sword?quality=legendary")
    legendary = CATALOG["sword", "legendary"]
    only_event(broker, "purchase", strength=legendary.strength, price=legendary.price)


@pytest.mark.parametrize(
    "path",
    [
        "/purchase/sword",
        "/join_guild?guild=red",
        "/declare_war?target=red",
        "/declare_peace?target=red",
    ],
)
async def test_actions_without_a_session_are_401(client, broker, path):
    response = await client.post(path)
    assert response.status == 401
    assert (await response.json())["ok"] is False
    event = broker.events[-1]
    assert (event["success"], event["reason"], event["username"]) == (
        False,
        "no_session",
        None,
    )


async def test_a_forged_session_is_401(client, broker):
    client.session.cookie_jar.update_cookies({"session": "forged"})
    assert (await client.post("/purchase/sword")).status == 401
    only_event(broker, "purchase", reason="no_session", item_type="sword")
    assert (await client.get("/inventory")).status == 401


async def test_an_expired_session_is_401(broker):
    now = [0.0]
    game = Game(scrypt_n=FAST_HASH, session_seconds=60, clock=lambda: now[0])
    async with TestClient(TestServer(make_app(broker, game))) as client:
        await logged_in(client)
        now[0] = 61.0
        assert (await client.post("/purchase/potion")).status == 401
        only_event(broker, "purchase", reason="expired_session", username=None)
        assert (await client.get("/inventory")).status == 401


async def test_inventory_emits_no_event(client, broker):
    await logged_in(client)
    before = len(broker.events)
    response = await client.get("/inventory")
    assert response.status == 200
    assert (await response.json())["username"] == "ana"
    assert len(broker.events) == before


async def test_inventory_without_a_session_is_401(client, broker):
    response = await client.get("/inventory")
    assert response.status == 401
    assert broker.events == []


async def test_join_guild_founds_then_joins(client, broker):
    await logged_in(client)
    status, body = await post(client, "/join_guild", guild="red")
    assert (status, "founded" in body["message"]) == (200, True)
    only_event(broker, "join_guild", success=True, username="ana", guild_name="red")
    status, _ = await post(client, "/join_guild", guild="red")
    assert status == 409
    only_event(broker, "join_guild", success=False, reason="already_in_guild")
    assert (await (await client.get("/inventory")).json())["guild"] == "red"


@pytest.mark.parametrize(
    ("guild", "reason"), [("", "missing_parameter"), ("no/slash", "bad_guild")]
)
async def test_join_guild_refuses_bad_names(client, broker, guild, reason):
    await logged_in(client)
    status, _ = await post(client, "/join_guild", guild=guild)
    assert status == 400
    only_event(broker, "join_guild", reason=reason, guild_name=guild)


async def two_guilds(client: TestClient, server: Any) -> TestClient:
    """ana in red (this client), and bob in blue (another client, returned)."""
    await logged_in(client, "ana")
    await post(client, "/join_guild", guild="red")
    other = TestClient(server)
    await other.start_server()
    await logged_in(other, "bob")
    await post(other, "/join_guild", guild="blue")
    return other


async def test_war_and_peace(client, broker):
    other = await two_guilds(client, client.server)
    try:
        status, _ = await post(client, "/declare_war", target="blue")
        assert status == 200
        only_event(broker, "declare_war", success=True, guild_name="red", target="blue")
        assert (await post(client, "/declare_war", target="blue"))[0] == 409
        only_event(broker, "declare_war", reason="already_at_war")
        assert (await post(other, "/declare_peace", target="red"))[0] == 200
        only_event(
            broker,
            "declare_peace",
            success=True,
            username="bob",
            guild_name="blue",
            target="red",
        )
        assert (await post(other, "/declare_peace", target="red"))[0] == 409
        only_event(broker, "declare_peace", reason="not_at_war")
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("target", "status", "reason"),
    [
        ("green", 404, "unknown_guild"),
        ("red", 400, "own_guild"),
        ("", 400, "missing_parameter"),
        ("a b", 400, "bad_target"),
    ],
)
async def test_declare_war_refusals(client, broker, target, status, reason):
    await logged_in(client)
    await post(client, "/join_guild", guild="red")
    assert (await post(client, "/declare_war", target=target))[0] == status
    only_event(broker, "declare_war", reason=reason, guild_name="red", target=target)


async def test_only_guild_members_declare_war(client, broker):
    await logged_in(client)
    assert (await post(client, "/declare_war", target="red"))[0] == 403
    only_event(
        broker, "declare_war", reason="not_in_guild", guild_name=None, target="red"
    )


async def test_a_guild_its_last_member_leaves_is_gone_with_its_wars(client, broker):
    other = await two_guilds(client, client.server)
    try:
        await post(client, "/declare_war", target="blue")
        await post(other, "/join_guild", guild="red")  # blue is empty, so gone
        assert (await post(client, "/declare_peace", target="blue"))[0] == 404
    finally:
        await other.close()


@pytest.mark.parametrize(
    "path", ["/signup", "/login", "/purchase/sword", "/join_guild", "/declare_war"]
)
async def test_get_on_an_action_is_405_saying_use_post(client, broker, path):
    response = await client.get(path)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    body = await response.json()
    assert body["ok"] is False
    assert "POST" in body["message"]
    assert broker.events == []


async def test_unknown_routes_are_404_json(client, broker):
    response = await client.get("/nowhere")
    assert response.status == 404
    assert (await response.json())["ok"] is False
    assert broker.events == []


@pytest.mark.parametrize(
    "query",
    [
        "username=%FF%FE&password=x",  # not UTF-8
        "username=" + "a" * 5000 + "&password=x",  # longer than MAX_PARAMETERS
    ],
)
async def test_unreadable_query_strings_are_400_with_an_event(
    client, broker, caplog, query
):
    caplog.set_level(logging.DEBUG)
    response = await client.post(f"/signup?{query}")
    assert response.status == 400
    assert (await response.json())["ok"] is False
    only_event(broker, "signup", success=False, reason="bad_request", username=None)
    assert "Traceback" not in caplog.text


async def test_a_form_body_that_is_not_utf8_is_400(client, broker):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/signup", data=b"username=\xff", headers=headers)
    assert response.status == 400
    only_event(broker, "signup", reason="bad_request")


async def test_a_body_that_is_not_a_form_is_400(client, broker):
    response = await client.post("/signup", json={"username": "ana"})
    assert response.status == 400
    only_event(broker, "signup", reason="bad_request")


async def test_a_request_line_too_long_to_parse_is_refused_in_one_log_line(
    client, broker, caplog
):
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    line = b"POST /signup?password=hunter2&x=" + b"a" * 70_000 + b" HTTP/1.1\r\n"
    writer.write(line + b"Host: x\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert broker.events == []
    assert "Traceback" not in caplog.text
    assert "hunter2" not in caplog.text
    assert "refused a malformed request" in caplog.text


async def test_the_answer_waits_for_the_event(client, broker):
    broker.gate = asyncio.Event()
    answer = asyncio.create_task(client.get("/"))
    await broker.waiting.wait()  # the send has begun and is held
    await asyncio.sleep(0)
    assert not answer.done()
    assert broker.events == []
    broker.gate.set()
    assert (await answer).status == 200
    assert len(broker.events) == 1


async def test_a_held_purchase_spends_no_gold_until_its_event_is_accepted(
    client, broker
):
    await logged_in(client)
    broker.gate = asyncio.Event()
    purchase = asyncio.create_task(client.post("/purchase/potion"))
    await broker.waiting.wait()
    broker.gate.set()
    assert (await purchase).status == 200
    assert (await (await client.get("/inventory")).json())["gold"] < START_GOLD


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/", None),
        ("/signup", {"username": "bob", "password": PASSWORD}),
        ("/purchase/sword", None),
    ],
)
async def test_a_broker_failure_is_503_and_changes_nothing(
    client, broker, caplog, path, params
):
    await logged_in(client)
    broker.fail = True
    before = len(broker.events)
    response = await client.request(
        "GET" if path == "/" else "POST", path, params=params
    )
    assert response.status == 503
    assert (await response.json())["ok"] is False
    assert len(broker.events) == before
    assert "Traceback" not in caplog.text
    broker.fail = False
    assert (await (await client.get("/inventory")).json())["gold"] == START_GOLD
    assert (await post(client, "/login", username="bob", password=PASSWORD))[0] == 404


async def test_no_password_or_session_token_in_any_event_or_log_line(
    client, broker, caplog
):
    caplog.set_level(logging.DEBUG)
    password = "Sup3r-Secret-Pa55"
    params = {"username": "ana", "password": password}
    await client.post("/signup", params=params)
    login = await client.post("/login", params=params)
    token = login.cookies["session"].value
    await client.post("/login", data=params)  # in a form body too
    await client.post("/login", params={"username": "ana", "password": "wrong-pw"})
    await client.post("/purchase/sword")
    await client.get("/inventory")
    text = repr(broker.events) + caplog.text
    for secret in (password, token, "wrong-pw"):
        assert secret not in text
    assert "/login" in caplog.text  # the access log is there, without the query


async def test_concurrent_purchases_never_spend_gold_twice(client, broker, game):
    await logged_in(client)
    price = CATALOG["axe", "common"].price  # 40: two fit in 100 gold, three do not
    answers = await asyncio.gather(*(client.post("/purchase/axe") for _ in range(10)))
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200] * 2 + [402] * 8
    inventory = await (await client.get("/inventory")).json()
    assert inventory["gold"] == START_GOLD - 2 * price
    successes = [
        e for e in broker.events if e["event_type"] == "purchase" and e["success"]
    ]
    assert len(successes) == 2


async def test_every_action_request_emits_exactly_one_event(client, broker):
    requests = [
        ("GET", "/"),
        ("POST", "/signup?username=ana&password=pw"),
        ("POST", "/signup?username=ana&password=pw"),
        ("POST", "/login?username=ana&password=pw"),
        ("POST", "/purchase/shield"),
        ("POST", "/purchase/bow"),
        ("POST", "/join_guild?guild=g"),
        ("POST", "/declare_war?target=h"),
        ("POST", "/declare_peace?target=h"),
    ]
    for number, (method, path) in enumerate(requests, start=1):
        await client.request(method, path)
        assert len(broker.events) == number
    assert len({event["event_id"] for event in broker.events}) == len(requests)
