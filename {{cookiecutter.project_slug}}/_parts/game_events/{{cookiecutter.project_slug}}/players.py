"""Player state: accounts, sessions, gold, inventory and guilds, kept in memory.

Every action goes the same three steps, in `Game._act`: decide (is it allowed, and
what would it change), record (send its event, and wait until the broker has it),
apply (make the change). A change is made only once its event is safe, so a player
is never answered, and the game never changed, for an action that left no event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

START_GOLD = 100
SESSION_SECONDS = 24 * 3600
# scrypt's cost: 2**14 with r=8 takes 16 MiB and tens of milliseconds per hash, which
# is nothing for one login and a wall for anyone guessing passwords by the million.
SCRYPT_N = 2**14
MAX_PASSWORD = 1024  # characters; more only makes the hash slower
NAME = re.compile(r"[\w.-]{1,32}")  # a player's or a guild's name
NAME_RULE = "1 to 32 letters, digits, '_', '.' or '-'"


@dataclass(frozen=True)
class Item:
    item_type: str
    quality: str
    price: int  # gold
    strength: int


# Each quality multiplies an item's price and strength: rarer is dearer and stronger,
# and every common item costs less than a new player's gold.
QUALITIES = {"common": 1, "rare": 3, "epic": 8, "legendary": 20}
_BASES = {"sword": (30, 10), "axe": (40, 12), "shield": (25, 8), "potion": (10, 3)}
CATALOG: dict[tuple[str, str], Item] = {
    (kind, quality): Item(kind, quality, price * times, strength * times)
    for kind, (price, strength) in _BASES.items()
    for quality, times in QUALITIES.items()
}


@dataclass
class Outcome:
    """What an action did: `reason` is None on success, else a short code (the
    event's reason). `fields` go into the event, `answer` only to the player."""

    reason: str | None
    message: str
    username: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    session: str | None = field(default=None, repr=False)  # a login's new token

    @property
    def success(self) -> bool:
        return self.reason is None


# Sends an outcome's event; returns once the broker has it, raises if it cannot.
Record = Callable[[Outcome], Awaitable[None]]
Decision = tuple[Outcome, Callable[[], None] | None]  # and the change, if any


def refused(
    reason: str, message: str, username: str | None = None, **fields: Any
) -> Decision:
    return Outcome(reason, message, username, fields), None


@dataclass
class Player:
    username: str
    salt: bytes = field(repr=False)
    password_hash: bytes = field(repr=False)
    gold: int = START_GOLD
    items: Counter[Item] = field(default_factory=Counter)
    guild: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


@dataclass(frozen=True)
class Session:
    username: str
    expires: float  # on the game's clock


class Game:
    """All players, their sessions and their guilds."""

    def __init__(
        self,
        *,
        scrypt_n: int = SCRYPT_N,
        session_seconds: float = SESSION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scrypt_n = scrypt_n
        self.session_seconds = session_seconds
        self.clock = clock
        self._players: dict[str, Player] = {}
        self._sessions: dict[str, Session] = {}
        self._guilds: dict[str, set[str]] = {}  # name -> its members' names
        self._wars: set[frozenset[str]] = set()  # pairs of guilds at war
        self._accounts = asyncio.Lock()  # a name is signed up once
        self._guild_state = asyncio.Lock()  # memberships and wars

    async def _act(
        self,
        lock: AbstractAsyncContextManager[Any],
        decide: Callable[[], Decision],
        record: Record,
    ) -> Outcome:
        """Decide, record, apply, all under `lock`.

        Recording awaits the broker, and other requests run meanwhile: two purchases
        by one player could both decide that the gold suffices, then both spend it.
        Holding the lock from the decision to the change serialises the actions
        that share state (one player's purchases, all guild changes), while other
        players' actions go on beside them.
        """
        async with lock:
            outcome, change = decide()
            await record(outcome)  # if this raises, nothing has changed
            if change is not None:
                change()
        return outcome

    async def signup(self, username: str, password: str, record: Record) -> Outcome:
        """A new player with START_GOLD gold."""
        salt = secrets.token_bytes(16)
        problem = _credentials_problem(username, password)
        # Hashed first, outside any lock: the slow part runs beside other signups.
        digest = b"" if problem else await self._hash(password, salt)

        def decide() -> Decision:
            if problem:
                return problem
            if username in self._players:
                return refused("player_exists", f"{username} exists: log in", username)
            player = Player(username, salt, digest)
            welcome = f"welcome, {username}: you have {START_GOLD} gold, now log in"
            return Outcome(None, welcome, username), partial(
                self._players.__setitem__, username, player
            )

        return await self._act(self._accounts, decide, record)

    async def login(self, username: str, password: str, record: Record) -> Outcome:
        """A new session for the player; its token goes only into the cookie."""
        problem = _credentials_problem(username, password)
        player = None if problem else self._players.get(username)
        matches = player is not None and hmac.compare_digest(
            await self._hash(password, player.salt), player.password_hash
        )

        def decide() -> Decision:
            if problem:
                return problem
            if player is None:
                return refused("unknown_player", f"no player {username}", username)
            if not matches:
                return refused("wrong_password", "wrong password", username)
            token = secrets.token_urlsafe(32)
            outcome = Outcome(None, f"welcome back, {username}", username)
            outcome.session = token
            session = Session(username, self.clock() + self.session_seconds)
            return outcome, partial(self._sessions.__setitem__, token, session)

        # No lock: a login changes nothing another request decides on.
        return await self._act(nullcontext(), decide, record)

    async def purchase(
        self, token: str | None, item_type: str, quality: str, record: Record
    ) -> Outcome:
        """Spend gold on an item; one player's purchases take turns (see _act)."""
        asked = {"item_type": item_type, "quality": quality}
        player = self._logged_in(token)

        def decide() -> Decision:
            if isinstance(player, str):
                return refused(player, SESSION_MESSAGES[player], **asked)
            name = player.username
            if item_type not in _BASES:
                return refused("unknown_item", f"no item {item_type!r}", name, **asked)
            if quality not in QUALITIES:
                qualities = ", ".join(QUALITIES)
                message = f"no quality {quality!r}: choose one of {qualities}"
                return refused("unknown_quality", message, name, **asked)
            item = CATALOG[item_type, quality]
            bought = {**asked, "strength": item.strength, "price": item.price}
            if player.gold < item.price:
                message = (
                    f"a {quality} {item_type} costs {item.price} gold: "
                    f"you have {player.gold}"
                )
                return refused("not_enough_gold", message, name, **bought)
            left = player.gold - item.price

            def buy() -> None:
                player.gold -= item.price
                player.items[item] += 1

            message = f"you bought a {quality} {item_type} for {item.price} gold"
            return Outcome(None, message, name, bought, {"gold": left}), buy

        lock = player.lock if isinstance(player, Player) else nullcontext()
        return await self._act(lock, decide, record)

    async def join_guild(
        self, token: str | None, guild: str, record: Record
    ) -> Outcome:
        """Join guild `guild`, founding it if it has no members; a player is in one
        guild at most, and a guild its last member leaves is gone, wars and all."""
        player = self._logged_in(token)

        def decide() -> Decision:
            if isinstance(player, str):
                return refused(player, SESSION_MESSAGES[player], guild_name=guild)
            name = player.username
            if problem := _name_problem("guild", guild, name, guild_name=guild):
                return problem
            if player.guild == guild:
                message = f"you are in {guild} already"
                return refused("already_in_guild", message, name, guild_name=guild)
            founded = guild not in self._guilds
            verb = "founded" if founded else "joined"
            outcome = Outcome(None, f"you {verb} {guild}", name, {"guild_name": guild})
            return outcome, partial(self._move, player, guild)

        return await self._act(self._guild_state, decide, record)

    async def declare_war(
        self, token: str | None, target: str, record: Record
    ) -> Outcome:
        """The player's guild goes to war with guild `target`."""
        return await self._guild_relation(token, target, record, war=True)

    async def declare_peace(
        self, token: str | None, target: str, record: Record
    ) -> Outcome:
        """The player's guild makes peace with guild `target`, if they are at war."""
        return await self._guild_relation(token, target, record, war=False)

    async def _guild_relation(
        self, token: str | None, target: str, record: Record, *, war: bool
    ) -> Outcome:
        player = self._logged_in(token)

        def decide() -> Decision:
            if isinstance(player, str):
                message = SESSION_MESSAGES[player]
                return refused(player, message, guild_name=None, target=target)
            name, own = player.username, player.guild
            asked = {"guild_name": own, "target": target}
            if problem := _name_problem("target", target, name, **asked):
                return problem
            if own is None:
                message = "only guild members can: join a guild first"
                return refused("not_in_guild", message, name, **asked)
            if target not in self._guilds:
                return refused("unknown_guild", f"no guild {target}", name, **asked)
            if target == own:
                return refused("own_guild", "that is your own guild", name, **asked)
            pair = frozenset((own, target))
            if war and pair in self._wars:
                message = f"{own} is at war with {target} already"
                return refused("already_at_war", message, name, **asked)
            if not war and pair not in self._wars:
                message = f"{own} is not at war with {target}"
                return refused("not_at_war", message, name, **asked)
            change = self._wars.add if war else self._wars.discard
            message = f"{own} is at {'war' if war else 'peace'} with {target}"
            return Outcome(None, message, name, asked), partial(change, pair)

        return await self._act(self._guild_state, decide, record)

    def inventory(self, token: str | None) -> Outcome:
        """The player's gold, items and guild: a question, not an action, so no
        event records it."""
        player = self._logged_in(token)
        if isinstance(player, str):
            return refused(player, SESSION_MESSAGES[player])[0]
        items = [
            {
                "item_type": item.item_type,
                "quality": item.quality,
                "strength": item.strength,
                "count": count,
            }
            for item, count in sorted(player.items.items(), key=_catalog_order)
        ]
        answer = {"gold": player.gold, "guild": player.guild, "items": items}
        message = f"{player.username} has {player.gold} gold"
        return Outcome(None, message, player.username, answer=answer)

    def _logged_in(self, token: str | None) -> Player | str:
        """The session's player, or why there is none: no_session, expired_session."""
        session = self._sessions.get(token) if token else None
        if session is None:
            return "no_session"
        if self.clock() >= session.expires:
            del self._sessions[token]
            return "expired_session"
        return self._players[session.username]

    def _move(self, player: Player, guild: str) -> None:
        if player.guild is not None:
            members = self._guilds[player.guild]
            members.discard(player.username)
            if not members:
                del self._guilds[player.guild]
                self._wars = {pair for pair in self._wars if player.guild not in pair}
        self._guilds.setdefault(guild, set()).add(player.username)
        player.guild = guild

    async def _hash(self, password: str, salt: bytes) -> bytes:
        """scrypt, in a thread: tens of milliseconds of CPU that would otherwise
        stop every other request."""
        return await asyncio.to_thread(
            hashlib.scrypt,
            password.encode(),
            salt=salt,
            n=self.scrypt_n,
            r=8,
            p=1,
            maxmem=2**26,
            dklen=32,
        )


SESSION_MESSAGES = {
    "no_session": "log in first: POST /login?username=U&password=P",
    "expired_session": "your session has expired: log in again",
}


_CATALOG_ORDER = {item: place for place, item in enumerate(CATALOG.values())}


def _catalog_order(entry: tuple[Item, int]) -> int:
    return _CATALOG_ORDER[entry[0]]


def _credentials_problem(username: str, password: str) -> Decision | None:
    if not username or not password:
        message = "needs a username and a password: ?username=U&password=P"
        return refused("missing_parameter", message, username or None)
    if problem := _name_problem("username", username, username):
        return problem
    if len(password) > MAX_PASSWORD:
        message = f"a password has at most {MAX_PASSWORD} characters"
        return refused("bad_password", message, username)
    return None


def _name_problem(
    parameter: str, value: str, username: str | None, **fields: Any
) -> Decision | None:
    """A missing or malformed name: a username, a guild or a target."""
    if not value:
        message = f"needs {parameter}: ?{parameter}=NAME"
        return refused("missing_parameter", message, username, **fields)
    if not NAME.fullmatch(value):
        message = f"{parameter} must be {NAME_RULE}"
        return refused(f"bad_{parameter}", message, username, **fields)
    return None
