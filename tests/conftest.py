"""Shared fixtures: small throw-away projects, and a copy of the example project."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"

BASE_FILES = {
    "skewless_project.yml": """\
        name: mini
        version: "1"
        defaults:
          materialized: feature_table
    """,
    "profiles.yml": """\
        mini:
          target: dev
          outputs:
            dev:
              type: duckdb
              path: target/mini.duckdb
              schema: features
    """,
    "entities.yml": """\
        entities:
          - name: user
            join_keys: [user_id]
          - name: merchant
            join_keys: [merchant_id]
    """,
    "sources.yml": """\
        sources:
          - name: app
            schema: raw
            tables:
              - name: events
                file: data/events.csv
                timestamp: event_ts
                columns: [user_id, merchant_id, amount, event_ts]
    """,
    "data/events.csv": """\
        user_id,merchant_id,amount,event_ts
        1,10,5.0,2026-01-01 10:00:00
        1,11,7.5,2026-01-02 10:00:00
        2,10,3.0,2026-01-02 11:00:00
        2,10,4.0,2026-01-05 09:00:00
    """,
    "models/user_amounts.sql": """\
        {{ config(entity='user', timestamp='event_ts', ttl='30d', online=true) }}
        select user_id, event_ts, sum(amount) over (partition by user_id order by event_ts) as user__amount_sum__all
        from {{ source('app', 'events') }}
    """,
}

MakeProject = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write a small project: the base files, changed or removed (value None) by `files`."""

    def make(files: dict[str, str | None] | None = None, name: str = "mini") -> Path:
        root = tmp_path / name
        merged = {**BASE_FILES, **(files or {})}
        for relative, text in merged.items():
            if text is None:
                continue
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return make


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """The example project, copied without its target/ folder."""
    root = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    return root
