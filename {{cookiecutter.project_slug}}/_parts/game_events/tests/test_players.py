"""The game's rules, apart from HTTP: prices, passwords, sessions."""

from __future__ import annotations

import asyncio

from fakes import FAST_HASH

from {{ cookiecutter.project_slug }}.players import (
    CATALOG,
    QUALITIES,
    START_GOLD,
    Game,
    Outcome,
)

KINDS = sorted({kind for kind, _ in CATALOG})


async def keep(outcome: Outcome) -> None:
    """A record function that accepts every event."""


def test_every_common_item_costs_less_than_a_new_players_gold():
    assert KINDS == ["axe", "potion", "shield", "sword"]
    for kind in KINDS:
        assert CATALOG[kind, "common"].price < START_GOLD


def test_rarer_is_dearer_and_stronger():
    for kind in KINDS:
        items = [CATALOG[kind, quality] for quality in QUALITIES]
        assert [item.price for item in items] == sorted({i.price for i in items})
        assert [i.strength for i in items] == sorted({i.strength for i in items})


async def test_passwords_are_stored_salted_and_hashed():
    game = Game(scrypt_n=FAST_HASH)
    await game.signup("ana", "same-password", keep)
    await game.signup("bob", "same-password", keep)
    ana, bob = game._players["ana"], game._players["bob"]
    assert b"same-password" not in ana.password_hash
    assert ana.salt != bob.salt
    assert ana.password_hash != bob.password_hash
    assert "same-password" not in repr(ana)


async def test_hashing_runs_beside_the_event_loop():
    """A signup's hash runs in a thread: the loop keeps serving meanwhile."""
    game = Game()  # the real cost
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(tick())
    await game.signup("ana", "a-password", keep)
    ticking.cancel()
    assert ticks > 10


async def test_a_login_makes_a_fresh_token_each_time():
    game = Game(scrypt_n=FAST_HASH)
    await game.signup("ana", "pw", keep)
    first = await game.login("ana", "pw", keep)
    second = await game.login("ana", "pw", keep)
    assert first.session != second.session
    assert first.session not in repr(first)


async def test_concurrent_signups_of_one_name_make_one_player():
    game = Game(scrypt_n=FAST_HASH)
    outcomes = await asyncio.gather(*(game.signup("ana", "pw", keep) for _ in range(5)))
    assert sorted(o.reason or "ok" for o in outcomes) == ["ok"] + ["player_exists"] * 4
