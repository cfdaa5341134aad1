"""Shared fixtures: a game API on a test server, its events kept in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes import FAST_HASH, FakeBroker

from {{ cookiecutter.project_slug }}.api import make_app
from {{ cookiecutter.project_slug }}.players import Game


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def game() -> Game:
    return Game(scrypt_n=FAST_HASH)


@pytest.fixture
async def client(broker: FakeBroker, game: Game) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(broker, game))) as client:
        yield client
