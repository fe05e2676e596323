"""`skewless init`: a small working project (DuckDB file, embedded Redis) with a generated seed file."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from skewless.core.errors import ProjectError

_FILES = {
    "skewless_project.yml": """\
name: {name}
version: "0.1"
profile: {name}
model-paths: [models]
macro-paths: [macros]
online_store:
  type: redis        # no url: an embedded Redis under target/ serves local development
defaults:
  materialized: feature_table
""",
    "profiles.yml": """\
{name}:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: target/{name}.duckdb
      schema: features
""",
    "entities.yml": """\
entities:
  - name: user
    join_keys: [user_id]
    description: A customer.
""",
    "sources.yml": """\
sources:
  - name: app
    schema: raw
    tables:
      - name: orders
        file: data/orders.csv
        timestamp: event_ts
        columns:
          - {{name: order_id, type: BIGINT}}
          - {{name: user_id, type: BIGINT}}
          - {{name: amount, type: DOUBLE}}
          - {{name: event_ts, type: TIMESTAMP}}
""",
    "models/user_orders.sql": """\
{{{{ config(entity='user', timestamp='event_ts', ttl='30d', online=true, owner='me') }}}}

select
    user_id,
    event_ts,
    count(*) {{{{ rolling_window('user_id', 'event_ts', '7d') }}}} as user__order_count__7d,
    sum(amount) {{{{ rolling_window('user_id', 'event_ts', '30d') }}}} as user__order_amount__30d
from {{{{ source('app', 'orders') }}}}
""",
    "models/schema.yml": """\
models:
  - name: user_orders
    description: Order counts and amounts per user, as of each order.
""",
    "macros/.gitkeep": "",
    ".gitignore": "target/\n",
}


def scaffold(directory: Path, name: str | None = None) -> Path:
    """Write a new project; refuse to touch a folder that already holds one."""
    directory = directory.resolve()
    name = name or directory.name.replace("-", "_")
    if not name.isidentifier():
        raise ProjectError(f"{name!r} is not a valid project name", hint="use letters, digits and underscores")
    if (directory / "skewless_project.yml").exists():
        raise ProjectError(f"{directory} already holds a skewless project")
    for relative, template in _FILES.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name), encoding="utf-8")
    _write_orders(directory / "data" / "orders.csv")
    return directory


def _write_orders(path: Path, rows: int = 2000) -> None:
    rng = random.Random(42)
    # The 90 days before now (UTC): with ttl='30d', `skewless get` right after `init` and `run` shows values.
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    start = now - timedelta(days=90)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "user_id", "amount", "event_ts"])
        for order_id in range(1, rows + 1):
            ts = start + timedelta(seconds=rng.randint(0, 90 * 86400 - 1))
            writer.writerow([order_id, rng.randint(1, 100), round(rng.uniform(5, 300), 2), ts.isoformat(sep=" ")])
