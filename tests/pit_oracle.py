"""The point-in-time join's brute-force oracle and random data, shared by test_pit.py (every formulation on
DuckDB) and the adapter conformance suite (each engine's own formulations)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import strategies as st

BASE = datetime(2026, 1, 1)
STAMP = st.builds(lambda m, u: BASE + timedelta(minutes=m, microseconds=u), st.integers(0, 20), st.sampled_from([0, 1]))
FEATURE_ROW = st.tuples(
    st.one_of(st.none(), st.integers(0, 3)),             # k
    STAMP,                                               # ts
    st.one_of(st.none(), STAMP),                         # created
    st.one_of(st.none(), st.integers(-2, 2)),            # v1
    st.one_of(st.none(), st.sampled_from(["a", "b"])),   # v2
)
OTHER_ROW = st.tuples(st.integers(0, 2), STAMP, st.one_of(st.none(), st.floats(-1, 1, allow_nan=False)))
SPINE_ROW = st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2),
                      st.one_of(st.none(),  # a spine row without a time gets NULL features
                                st.builds(lambda m, u: BASE + timedelta(minutes=m, microseconds=u),
                                          st.integers(-2, 25), st.sampled_from([0, 1, 999999]))))
DURATION = st.one_of(st.none(), st.builds(lambda m, u: timedelta(minutes=m, microseconds=u),
                                          st.integers(0, 10), st.sampled_from([0, 1])))


def oracle(spine, features, others, ttl, delay, as_known):
    out = []
    for k, k2, t in spine:
        row = []
        candidates = [
            f for f in features
            if k is not None and t is not None and f[0] == k and f[1] + (delay or timedelta()) <= t
            and (not as_known or (f[2] is not None and f[2] <= t))
        ]
        best = max(candidates, key=lambda f: (f[1], *((v is not None, v) for v in f[2:])), default=None)
        if best is None or (ttl is not None and best[1] < t - ttl):
            row += [None, None]
        else:
            row += [best[3], best[4]]
        other = [o for o in others if t is not None and o[0] == k2 and o[1] <= t]
        best_other = max(other, key=lambda o: (o[1], o[2] is not None, o[2]), default=None)
        row.append(None if best_other is None else best_other[2])
        out.append((k, k2, t, *row))
    return out
