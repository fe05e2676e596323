"""Which warehouse types an online model may hold: the online format keeps each value exactly or refuses it."""

from __future__ import annotations

import re

# Warehouse types the online format cannot hold exactly, and the cast that makes each servable. Refused for online
# models when the compiler knows the type, and again from the warehouse's own types after each build.
_REFUSED_ONLINE = [
    (re.compile(r"^TIMESTAMP_NS$|^TIMESTAMP\(9\)$"), "nanoseconds: the online format keeps microseconds",
     "CAST(... AS TIMESTAMP)"),
    (re.compile(r"^INTERVAL"), "an interval (months, days and microseconds) has no online form yet",
     "a number, e.g. epoch(...) for seconds"),
    (re.compile(r"^(BLOB|BYTEA|BIT)"), "bytes have no online form", "CAST(... AS VARCHAR) or a hash"),
    (re.compile(r"(\[\]$|\[\d+\]$|^STRUCT|^MAP|^UNION|^LIST)"), "nested values have no online form",
     "one column per field"),
]


def online_type_problem(column: str, kind: str | None) -> str | None:
    """Why a column of this warehouse type cannot be served online (with the cast that fixes it), or None."""
    if not kind:
        return None
    for pattern, why, cast in _REFUSED_ONLINE:
        if pattern.search(kind.upper()):
            return f"column {column!r} is {kind}: {why}; select {cast} instead"
    return None
