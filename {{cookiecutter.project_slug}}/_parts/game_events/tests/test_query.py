"""SQL over the lake: views per table, output formats, the sample queries."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from lake_samples import make_settings, sample_event, write_events, write_segment

from {{ cookiecutter.project_slug }}.errors import (
    InputError,
)
from {{ cookiecutter.project_slug }}.landing import land
from {{ cookiecutter.project_slug }}.query import run_query
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
)

QUERIES = Path(__file__).resolve().parent.parent / "queries"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def landed(settings: Settings) -> Settings:
    """A lake with a few players' purchases, guilds and failures."""
    events = [
        sample_event("purchase", username="ada", price=40, strength=12),
        sample_event("purchase", username="ada", item_type="axe", price=70),
        sample_event("purchase", username="bob", price=30, strength=8),
        sample_event("join_guild", username="ada", guild_name="knights"),
        sample_event("join_guild", username="bob", guild_name="knights"),
        sample_event("join_guild", username="bob", guild_name="dragons"),
        sample_event("default", username=None),
    ]
    events[2] |= {"success": False, "reason": "not_enough_gold"}
    write_events(settings.events_dir, events)
    write_segment(settings.events_dir, [b"garbage"])
    land(settings, progress=None)
    return settings


def query(settings: Settings, sql: str, output_format: str = "table") -> str:
    out = io.StringIO()
    run_query(settings, sql, output_format=output_format, out=out)
    return out.getvalue()


def rows_of(settings: Settings, sql: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(query(settings, sql, "csv"))))


def test_an_empty_lake_has_every_table_with_its_columns(settings: Settings) -> None:
    assert query(settings, "SELECT event_id, price FROM purchases") == (
        "event_id | price\n---------+------\n(0 rows)\n"
    )
    columns = rows_of(settings, "DESCRIBE purchases")
    assert [(row["column_name"], row["column_type"]) for row in columns][-3:] == [
        ("strength", "INTEGER"),
        ("price", "INTEGER"),
        ("landed_at", "TIMESTAMP"),
    ]


def test_the_table_format_aligns_columns_and_right_aligns_numbers(
    landed: Settings,
) -> None:
    sql = "SELECT username, price FROM purchases ORDER BY price"
    assert query(landed, sql) == (
        "username | price\n"
        "---------+------\n"
        "bob      |    30\n"
        "ada      |    40\n"
        "ada      |    70\n"
        "(3 rows)\n"
    )


def test_nulls_in_each_format(landed: Settings) -> None:
    sql = "SELECT username, 1 AS n FROM visits"
    assert query(landed, sql).splitlines()[2] == "NULL     | 1"
    assert query(landed, sql, "csv") == "username,n\n,1\n"
    assert json.loads(query(landed, sql, "json")) == [{"username": None, "n": 1}]


def test_json_gives_times_in_iso_8601(landed: Settings) -> None:
    (row,) = json.loads(query(landed, "SELECT timestamp FROM visits", "json"))
    assert row["timestamp"][10] == "T"


@pytest.mark.parametrize("path", sorted(QUERIES.glob("*.sql")), ids=lambda p: p.name)
def test_every_sample_query_says_what_it_shows_and_runs(
    landed: Settings, path: Path
) -> None:
    sql = path.read_text(encoding="utf-8")
    assert sql.startswith("-- ")
    assert "\n" in sql
    assert query(landed, sql).endswith((" row)\n", " rows)\n"))


def sample(name: str) -> str:
    (path,) = QUERIES.glob(f"*_{name}.sql")
    return path.read_text(encoding="utf-8")


def test_the_sample_queries_answer_their_questions(landed: Settings) -> None:
    tables = [row["table_name"] for row in rows_of(landed, sample("tables"))]
    assert tables == ["accounts", "guild_events", "purchases", "quarantine", "visits"]
    buyers = rows_of(landed, sample("top_buyers"))
    assert [(row["username"], row["gold_spent"]) for row in buyers] == [("ada", "110")]
    failures = rows_of(landed, sample("failures_by_reason"))
    assert [(row["reason"], row["failures"]) for row in failures] == [
        ("not_enough_gold", "1")
    ]
    guilds = rows_of(landed, sample("guilds_by_members"))
    assert [(row["guild_name"], row["members"]) for row in guilds] == [
        ("dragons", "1"),
        ("knights", "1"),
    ]
    (swords,) = rows_of(landed, sample("sword_strength"))
    assert (swords["average_strength"], swords["swords"]) == ("12.0", "1")
    assert len(rows_of(landed, sample("first_ten_purchases"))) == 3


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "the query failed: Parser Error: syntax error"),
        ("SELECT * FROM nowhere", "the query failed: Catalog Error"),
        ("  ", "no SQL given"),
    ],
)
def test_bad_sql_is_one_line_error(settings: Settings, sql: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        query(settings, sql)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_an_unknown_format_is_refused(settings: Settings) -> None:
    with pytest.raises(InputError, match="unknown format 'xml'"):
        query(settings, "SELECT 1", "xml")
