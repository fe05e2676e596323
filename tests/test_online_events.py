"""online/events.py: what a producer pushes becomes stream fields that are UTF-8 text and read back, by the
consumer's fast parser and by the full check alike, as the same typed values; anything else is an EventError."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.online.events import EventError, from_fields, parser, to_text

COLUMNS = {"k": "BIGINT", "x": "DOUBLE", "d": "DECIMAL(10,2)", "b": "BOOLEAN", "t": "TIMESTAMP", "day": "DATE",
           "s": "VARCHAR"}

_any_text = st.text(st.characters(blacklist_categories=()), max_size=8) | st.sampled_from(["\udcff", "a\ud800"])
_any = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _any_text | st.datetimes()
        | st.dates() | st.decimals(allow_nan=True))
_fitting = {  # values of each column's type, as Python values and as text
    "k": st.integers(-(2**63), 2**63 - 1) | st.sampled_from(["1", " 2 ", "-0"]),
    "x": st.floats() | st.sampled_from(["1.5", "nan", "-inf", "1e308"]),
    "d": st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**7, min_value=-(10**7)),
    "b": st.booleans() | st.sampled_from(["true", "FALSE"]),
    "t": st.datetimes() | st.sampled_from(["2026-11-27T10:00:00Z", "2026-11-27 10:00:00+05:30"]),
    "day": st.dates() | st.sampled_from(["2026-11-27"]),
    "s": _any_text,
}
_rows = st.fixed_dictionaries({}, optional={c: fitting | _any for c, fitting in _fitting.items()})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=500, deadline=None)
@given(row=_rows)
def test_pushed_values_read_back_as_the_same_typed_values(row: dict[str, Any]) -> None:
    try:
        fields = to_text(row, COLUMNS, "s")
    except EventError:
        return
    for value in fields.values():
        value.encode()  # what Redis is sent: UTF-8 (found: a lone surrogate passed as text and failed in the client)
    fast, full = parser(COLUMNS, "s")(fields), from_fields(fields, COLUMNS, "s")
    assert all(_same(fast[c], full[c]) for c in COLUMNS), (fast, full)
    assert to_text({c: v for c, v in full.items() if v is not None}, COLUMNS, "s") == fields
