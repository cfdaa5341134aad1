"""The compose path (compose.yaml, trino/) against the package, without Docker."""

from __future__ import annotations

import re
from pathlib import Path

from {{ cookiecutter.project_slug }}.lake import TABLES

ROOT = Path(__file__).resolve().parent.parent
TRINO_TYPES = {
    "VARCHAR": "varchar",
    "BOOLEAN": "boolean",
    "INTEGER": "integer",
    "TIMESTAMP": "timestamp",
}
CREATE = re.compile(
    r"CREATE TABLE IF NOT EXISTS lake\.game\.(\w+) \((.*?)\)\s*"
    r"WITH \(external_location = 'local:///lake/(\w+)', format = 'PARQUET'\);",
    re.DOTALL,
)


def trino_tables() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each table of trino/lake.sql: its folder, and its columns with their types."""
    sql = (ROOT / "trino" / "lake.sql").read_text()
    tables = {}
    for name, body, folder in CREATE.findall(sql):
        columns = [
            tuple(line.strip().rstrip(",").replace('"', "").split())
            for line in body.strip().splitlines()
        ]
        tables[name] = (folder, columns)
    return tables


def test_trino_registers_every_lake_table_with_its_columns_and_folder():
    expected = {
        name: (name, [(column, TRINO_TYPES[kind]) for column, kind in table.columns])
        for name, table in TABLES.items()
    }
    assert trino_tables() == expected


def test_the_trino_catalog_is_the_lake_volume_that_compose_mounts():
    catalog = (ROOT / "trino" / "catalog" / "lake.properties").read_text()
    root = re.search(r"^local\.location=(\S+)$", catalog, re.MULTILINE)[1]
    compose = (ROOT / "compose.yaml").read_text()
    assert f"- lake:{root}/lake\n" in compose  # local:///lake/<table> is under it
    assert "./trino/catalog/lake.properties:/etc/trino/catalog/lake.properties" in (
        compose
    )
