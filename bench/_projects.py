"""The one-model skewless project the online and training-set benchmarks share."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

FEATURES = ["f1", "f2", "f3", "f4", "f5"]


def user_features_project(folder: Path, name: str, parquet: Path, config: str, project_extra: str = "") -> Path:
    """A project whose model `user_features` reads a parquet of (user_id, event_ts, created_ts, f1..f5)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "models").mkdir(parents=True)
    (folder / "skewless_project.yml").write_text(f"name: {name}\nprofile: {name}\n{project_extra}")
    target = f"{{type: duckdb, path: target/{name}.duckdb, schema: features}}"
    (folder / "profiles.yml").write_text(f"{name}:\n  target: dev\n  outputs:\n    dev: {target}\n")
    (folder / "entities.yml").write_text("entities:\n  - name: user\n    join_keys: [user_id]\n")
    columns = ", ".join(f"{{name: {c}, type: DOUBLE}}" for c in FEATURES)
    (folder / "sources.yml").write_text(textwrap.dedent(f"""\
        sources:
          - name: bench
            tables:
              - name: features
                file: {parquet}
                timestamp: event_ts
                columns: [{{name: user_id, type: BIGINT}}, {{name: event_ts, type: TIMESTAMP}},
                          {{name: created_ts, type: TIMESTAMP}}, {columns}]
    """))
    (folder / "models" / "user_features.sql").write_text(
        f"{{{{ config(entity='user', timestamp='event_ts', created_timestamp='created_ts', {config}) }}}}\n"
        "select user_id, event_ts, created_ts, " + ", ".join(f"{f} as user__{f}" for f in FEATURES)
        + "\nfrom {{ source('bench', 'features') }}\n")
    return folder
