"""Damage to a JSON file skewless wrote and a user may have edited or cut short: any value replaced by one of
another form, or removed, anywhere in it. Used by the tests of what reads such files back (manifests)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

VALUES = [None, 5, -1, 1.5, True, "x", "", "model.nope", "9999-99-99", "{", "select ((", "1d", "-5d", [], {}, [1],
          {"a": 1}]


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: the keys and indexes leading to it."""
    found = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, inner in items:
        found += places(inner, (*path, key))
    return found


def damaged(value: Any, data: st.DataObject, most: int = 3) -> Any:
    """A copy of `value` with one to `most` places replaced or removed."""
    value = copy.deepcopy(value)
    where = places(value)
    for _ in range(data.draw(st.integers(1, most))):
        *parents, last = data.draw(st.sampled_from(where))
        container = value
        try:
            for key in parents:
                container = container[key]
            if data.draw(st.booleans()) and isinstance(container, dict):
                del container[last]
            else:
                container[last] = data.draw(st.sampled_from(VALUES))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or replaced the way there
    return value
