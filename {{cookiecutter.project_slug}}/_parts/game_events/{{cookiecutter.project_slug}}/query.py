"""SQL over the lake: DuckDB in memory, one view per table over its Parquet files.

Nothing is copied or loaded: each view reads `LAKE_DIR/<table>/*.parquet` when a
query runs, whichever engine wrote the files. A table with no file yet is still a view
with its columns and no rows, so the sample queries work on an empty lake.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from .errors import InputError
from .lake import TABLES, Table, sql_string
from .settings import Settings

FORMATS = ("table", "csv", "json")


def run_query(
    settings: Settings,
    sql: str,
    *,
    output_format: str = "table",
    out: TextIO = sys.stdout,
) -> None:
    """Run SQL over the lake's tables and print its result in the format asked."""
    if output_format not in FORMATS:
        raise InputError(
            f"unknown format {output_format!r}: use one of {', '.join(FORMATS)}"
        )
    if not sql.strip():
        raise InputError("no SQL given: pass it as an argument or on standard input")
    with duckdb.connect(":memory:") as connection:
        for table in TABLES.values():
            connection.execute(_view(settings.lake_dir / table.name, table))
        try:
            result = connection.execute(sql)
            columns = [column[0] for column in result.description or []]
            rows = result.fetchall() if columns else []
        except duckdb.Error as error:
            message = str(error).strip().splitlines()[0]
            raise InputError(f"the query failed: {message}") from None
    if columns:
        WRITERS[output_format](columns, rows, out)


def _view(folder: Path, table: Table) -> str:
    """The statement creating a table's view: its files, or no rows of its types."""
    name = f'"{table.name}"'
    if any(folder.glob("*.parquet")):
        files = sql_string(f"{folder}/*.parquet")
        # union_by_name: files written before a column was added still read.
        read = f"read_parquet({files}, union_by_name=true)"
        return f"CREATE VIEW {name} AS SELECT * FROM {read}"
    columns = ", ".join(
        f'CAST(NULL AS {kind}) AS "{col}"' for col, kind in table.columns
    )
    return f"CREATE VIEW {name} AS SELECT {columns} WHERE false"


def _write_table(
    columns: Sequence[str], rows: list[tuple[Any, ...]], out: TextIO
) -> None:
    """Columns padded to their widest cell, numbers right-aligned, NULL shown."""
    cells = [[_text(value, "NULL") for value in row] for row in rows]
    widths = [
        max([len(column), *(len(row[index]) for row in cells)])
        for index, column in enumerate(columns)
    ]
    numeric = [
        any(_is_number(row[index]) for row in rows)
        and all(_is_number(row[index]) for row in rows if row[index] is not None)
        for index in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return " | ".join(padded).rstrip()

    out.write(line(columns) + "\n")
    out.write("-+-".join("-" * width for width in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def _write_csv(
    columns: Sequence[str], rows: list[tuple[Any, ...]], out: TextIO
) -> None:
    """RFC 4180 CSV with a header; NULL is an empty field."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(value, "") for value in row] for row in rows)


def _write_json(
    columns: Sequence[str], rows: list[tuple[Any, ...]], out: TextIO
) -> None:
    """A JSON array of objects, one per row; times in ISO 8601."""
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    json.dump(records, out, default=_json_value, ensure_ascii=False, indent=1)
    out.write("\n")


WRITERS = {"table": _write_table, "csv": _write_csv, "json": _write_json}


def _text(value: Any, null: str) -> str:
    """A cell as text: times as `2026-12-02 14:36:34.123456`, as SQL prints them."""
    return null if value is None else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _json_value(value: Any) -> Any:
    """What json cannot write by itself: times, decimals, and the like."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
