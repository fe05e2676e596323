"""Window features online equal the training set at the same instant: tiles written by `run` and merged at read
time slide with the clock (hop boundaries ±1 µs, gaps without events, past the longest window), for every
aggregation, typed as offline."""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_window_agg import FEATURES, HOP, SCHEMA, _write_project
from window_oracle import expected_rows, same

from skewless import FeatureStore
from skewless.online.reader import OnlineReader

HOUR = 3_600_000_000
# In the future: Redis expires a key at its last tile's end + retention, on its own clock.
BASE = datetime.now(timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0) + timedelta(days=30)
BASE_US = int((BASE - datetime(1970, 1, 1)) / timedelta(microseconds=1))
_names = itertools.count()


def _instant(us: int) -> datetime:
    return BASE + timedelta(microseconds=us - BASE_US)


_offsets = st.one_of(st.integers(0, 26 * HOUR),
                     st.builds(lambda k, d: k * HOP + d, st.integers(0, 310), st.sampled_from([-1, 0, 1])))


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    events = []
    for _ in range(draw(st.integers(0, 40))):
        ts = BASE_US + draw(_offsets)
        events.append({
            "key": draw(st.integers(1, 3)), "ts": ts, "created": ts,
            "amount": draw(st.one_of(st.none(), st.integers(-5, 5), st.integers(-(2**40), 2**40))),
            "price": draw(st.one_of(st.none(), st.sampled_from([0.25, -1.5, 3.0, 1024.75, math.nan]))),
            "merchant_id": draw(st.one_of(st.none(), st.integers(1, 4))),
        })
    written = max([e["ts"] for e in events], default=BASE_US) + draw(st.sampled_from([0, 1, HOP, 3 * HOUR]))
    # Reads at and after the write: at hop boundaries ±1 µs, within the hour, days later (past every window).
    later = draw(st.lists(st.one_of(
        st.integers(0, 3 * HOUR),
        st.builds(lambda k, d: (written // HOP + k) * HOP + d - written, st.integers(1, 30),
                  st.sampled_from([-1, 0, 1])),
        st.sampled_from([13 * HOUR, 14 * HOUR, 40 * HOUR]),
    ), min_size=1, max_size=4))
    return {"events": events, "written": written, "reads": sorted({written + max(d, 0) for d in later})}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_online_windows_equal_the_training_set(history: dict[str, Any], redis_url: str | None) -> None:
    name = f"online_windows_{next(_names)}"
    root = Path(tempfile.mkdtemp(prefix=name))
    try:
        _write_project(root, name)
        (root / "data").mkdir()
        rows = [{"user_id": e["key"], "event_ts": _instant(e["ts"]), "created_ts": _instant(e["created"]),
                 "amount": e["amount"], "price": e["price"], "merchant_id": e["merchant_id"]}
                for e in history["events"]]
        pq.write_table(pa.Table.from_pylist(rows, SCHEMA), root / "data" / "events.parquet")
        names = [f[0] for f in FEATURES]
        users = [1, 2, 3, 4]  # user 4 has no events
        with FeatureStore(root) as store:
            assert store.run(online=False).ok
            store.online_writer(now=_instant(history["written"])).write(["user_windows"])
            reader = OnlineReader(store.serving_catalog(), store.online_store)
            for at in history["reads"]:
                online = reader.read([{"user_id": u} for u in users], names, now=_instant(at))
                spine = pa.table({"user_id": pa.array(users, pa.int64()),
                                  "at": pa.array([_instant(at)] * len(users), pa.timestamp("us"))})
                offline = store.get_historical_features(spine, names, timestamp="at").to_arrow().to_pydict()
                want = expected_rows(history["events"], [(u, at) for u in users], FEATURES, HOP)
                for feature in names:
                    for index, user in enumerate(users):
                        got, training = online[feature][index], offline[feature][index]
                        assert same(got, training), (feature, user, at, got, training)
                        assert same(got, want[index][feature]), (feature, user, at, got, want[index][feature])
    finally:
        shutil.rmtree(root, ignore_errors=True)
