"""What a DuckDB warehouse holds, to compare before and after something that must not change it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb


def warehouse_state(database: Path) -> dict[str, Any]:
    """Every table and view of a DuckDB file: its kind, columns and a hash of its rows."""
    state: dict[str, Any] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        relations = connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables order by all").fetchall()
        for schema, name, kind in relations:
            relation = f'"{schema}"."{name}"'
            columns = connection.execute(f"describe {relation}").fetchall()
            digest = connection.execute(f"select count(*), sum(hash(t)::hugeint) from {relation} t").fetchone()
            state[f"{schema}.{name}"] = (kind, [tuple(c[:2]) for c in columns], digest)
    return state
