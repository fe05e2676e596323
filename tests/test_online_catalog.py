"""online/catalog.py: the serving catalog read from target/manifest.json, a file that may have been edited or cut
short: any damage gives the catalog or a SkewlessError, never another exception (the feature server then keeps
serving the catalog it has)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_damage import damaged

from skewless import FeatureStore
from skewless.core.errors import SkewlessError
from skewless.online.catalog import ServingCatalog


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("catalog") / "project"
    shutil.copytree(Path(__file__).resolve().parent.parent / "example_project", root,
                    ignore=shutil.ignore_patterns("target", "__pycache__"))
    with FeatureStore(root) as store:
        store.compile()
    return json.loads((root / "target" / "manifest.json").read_text())  # type: ignore[no-any-return]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_damaged_manifest_is_a_clear_error_never_an_internal_one(manifest: dict[str, Any],
                                                                   data: st.DataObject) -> None:
    try:
        ServingCatalog.from_manifest(damaged(manifest, data, most=2))
    except SkewlessError as error:
        assert "manifest" in str(error), error
