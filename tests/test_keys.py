"""Join key values brought to their key's type before they become online keys (online/keys.py)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from skewless.core.errors import SkewlessError
from skewless.online.format import entity_key, key_text
from skewless.online.keys import typed_keys


@pytest.mark.parametrize(("kind", "sent", "stored"), [
    ("BIGINT", ["42", 42, 42.0, " 7 ", None], [42, 42, 42, 7, None]),
    ("VARCHAR", ["007", 7, None], ["007", "7", None]),
    ("BOOLEAN", [True, "false"], [True, False]),
    ("DATE", ["2026-01-02", datetime(2026, 1, 2, 5)], [date(2026, 1, 2), date(2026, 1, 2)]),
    ("TIMESTAMP", ["2026-01-02 03:04:05", "2026-01-02T03:04:05"], [datetime(2026, 1, 2, 3, 4, 5)] * 2),
    (None, ["a", 1, True], ["a", 1, True]),
])
def test_values_become_the_keys_type(kind, sent, stored):
    assert typed_keys(sent, kind, "k") == stored


@pytest.mark.parametrize(("kind", "value"), [
    ("BIGINT", True), ("BIGINT", "abc"), ("BIGINT", 2**64), ("BIGINT", 1.5), ("VARCHAR", False),
    ("VARCHAR", 1.5), ("BOOLEAN", 1), ("DATE", "2026-13-45"), ("TIMESTAMP", 3), (None, {"a": 1}), (None, [1]),
    (None, float("nan")),
])
def test_values_of_another_type_are_refused_naming_the_column(kind, value):
    with pytest.raises(SkewlessError, match=r"join key 'user_id': .* is not a"):
        typed_keys([value], kind, "user_id")


@pytest.mark.parametrize("kind", ["VARCHAR", "BIGINT", "DATE", None])
def test_text_that_is_not_utf8_is_refused_naming_the_column(kind):
    """A lone surrogate (bytes that were not UTF-8, as Python keeps them) can be no online key: refused, named."""
    with pytest.raises(SkewlessError, match=r"join key 'user_id': '\\udcff' is not UTF-8 text"):
        typed_keys(["\udcff"], kind, "user_id")


def test_a_null_key_is_no_entity_and_never_the_text_none():
    assert key_text(None) != key_text("None")
    assert entity_key("p", "user", [None]) != entity_key("p", "user", ["None"])
    assert key_text("%00null") != key_text(None)  # a real '%' is escaped
