"""The command line: its usage, its one-line errors, and the path from events to
answers (serve's events, landed, queried)."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from {{ cookiecutter.project_slug }} import __version__
from {{ cookiecutter.project_slug }}.broker import (
    LocalBroker,
)
from {{ cookiecutter.project_slug }}.cli import main
from {{ cookiecutter.project_slug }}.events import (
    make_event,
)


@pytest.fixture
def lake_env(tmp_path, monkeypatch):
    """EVENTS_DIR and LAKE_DIR in a folder of their own, with no .env around."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVENTS_DIR", str(tmp_path / "events"))
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    return tmp_path


def write_events(directory, count: int) -> None:
    async def write() -> None:
        broker = LocalBroker(directory)
        await broker.start()
        for _ in range(count):
            fields = {
                "item_type": "sword",
                "quality": "rare",
                "strength": 30,
                "price": 90,
            }
            event = make_event(
                "purchase",
                success=True,
                reason=None,
                username="ana",
                host="h",
                user_agent="u",
                fields=fields,
            )
            await broker.send(event)
        await broker.close()

    asyncio.run(write())


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == __version__


@pytest.mark.parametrize(
    "argv",
    [[], ["nothing"], ["serve", "--port", "0"], ["serve", "--port", "70000"]],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_on_windows_it_says_to_use_wsl(monkeypatch, capsys):
    monkeypatch.setattr("sys.platform", "win32")
    assert main(["land"]) == 1
    err = capsys.readouterr().err
    assert err == "error: this project runs on Linux and macOS; on Windows, use WSL\n"


def test_a_bad_setting_is_one_line_and_exit_1(lake_env, monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_TOPIC", "no spaces")
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: KAFKA_TOPIC 'no spaces' is not a Kafka topic name")
    assert err.count("\n") == 1


def test_land_then_query_from_the_argument_and_from_stdin(
    lake_env, monkeypatch, capsys
):
    write_events(lake_env / "events", 3)
    assert main(["land"]) == 0
    assert "landed 3 rows" in capsys.readouterr().out
    assert main(["land"]) == 0  # again: nothing new
    assert "landed 0 rows" in capsys.readouterr().out

    sql = "SELECT count(*) AS n, sum(price) AS gold FROM purchases"
    assert main(["query", sql, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3, "gold": 270}]

    monkeypatch.setattr("sys.stdin", io.StringIO(sql))
    assert main(["query", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n,gold", "3,270"]


def test_a_failing_query_is_one_line_and_exit_1(lake_env, capsys):
    assert main(["query", "SELECT nothing FROM nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
