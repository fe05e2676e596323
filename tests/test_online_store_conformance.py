"""The online store conformance suite: what every OnlineStore must do, run once per store configuration.

A store joins by adding its settings to STORES; the writer, the reader and the server rely on nothing else.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skewless.core.errors import AdapterError, ProjectError
from skewless.online import format as fmt
from skewless.online.store import ONLINE_STORES, OnlineStore, open_online_store
from skewless.online.tile_updates import value_update

STORES = ["redis-server", "redis-embedded", "redis-cluster"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str | None) -> Iterator[OnlineStore]:
    if request.param == "redis-server":
        if redis_url is None:
            pytest.skip("no Redis server on 127.0.0.1:6379 (CI requires one)")
        settings = {"type": "redis", "url": redis_url}
    elif request.param == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        settings = {"type": "redis", "url": cluster.url, "cluster": True}
    else:
        settings = {"type": "redis"}  # no url: an embedded server under target/
    opened = open_online_store(settings, tmp_path)
    yield opened
    opened.close()


def row(key: bytes, event_us: int, created_us: int | None, value: float, expire_at_ms: int = 0) -> tuple:
    return key, b"f", fmt.encode_row(event_us, created_us, [value]), expire_at_ms


def value_of(store: OnlineStore, key: bytes) -> float | None:
    raw = store.read([(key, [b"f"])])[0][0]
    return None if raw is None else fmt.decode_row(raw)[2][0]


def test_every_store_type_is_registered():
    assert set(ONLINE_STORES) == {"redis"}
    with pytest.raises(ProjectError, match="unknown online_store type 'dynamo'"):
        open_online_store({"type": "dynamo"}, Path("."))


def test_writes_are_monotonic_by_writer_generation(store):
    key = b"sk1:{conformance:user:1}"
    assert store.write([row(key, 2_000, None, 1.0)], generation=10) == 1
    assert store.write([row(key, 9_000, None, 0.5)], generation=9) == 0  # an older run: refused, whatever its rows
    assert value_of(store, key) == 1.0
    assert store.write([row(key, 1_000, None, 2.0)], generation=11) == 1  # a newer run's truth: an older event wins
    assert value_of(store, key) == 2.0
    assert store.write([row(key, 1_000, None, 3.0)], generation=11) == 1  # the same run may write again
    assert value_of(store, key) == 3.0


def test_removals_are_generational_too(store):
    key = b"sk1:{conformance:user:2}"
    store.write([row(key, 1_000, None, 1.0)], generation=10)
    assert store.write([(key, b"f", b"", 0)], generation=12) == 1  # removed by a newer run
    assert value_of(store, key) is None
    assert store.write([row(key, 5_000, None, 9.0)], generation=11) == 0  # a racing older run cannot bring it back
    assert value_of(store, key) is None
    assert store.write([row(key, 6_000, None, 4.0)], generation=13) == 1
    assert value_of(store, key) == 4.0
    assert store.write([(b"sk1:{conformance:user:3}", b"f", b"", 0)], generation=13) == 1  # nothing there: fine
    assert value_of(store, b"sk1:{conformance:user:3}") is None


def test_replace_fields_makes_a_prefix_hold_exactly_the_fields_given(store):
    key = b"sk1:{conformance:user:2}"
    other = b"sk1:{conformance:user:3}"
    assert store.write([(key, b"plain@v1", b"kept", 0)], generation=1) == 1
    assert store.replace_fields([(key, b"win@v1~", [(b"win@v1~0:1", b"a"), (b"win@v1~0:2", b"b")], 0),
                                 (other, b"win@v1~", [(b"win@v1~1:7", b"c")], 0)], generation=5) == 2
    assert store.read([(key, [b"win@v1~0:1", b"win@v1~0:2"]), (other, [b"win@v1~1:7"])]) == [[b"a", b"b"], [b"c"]]
    # A newer run's recomputation: tiles it does not produce are gone, the other fields of the key are kept.
    assert store.replace_fields([(key, b"win@v1~", [(b"win@v1~0:2", b"B"), (b"win@v1~0:3", b"C")], 0)],
                                generation=6) == 1
    assert store.read([(key, [b"win@v1~0:1", b"win@v1~0:2", b"win@v1~0:3", b"plain@v1"])]) == [
        [None, b"B", b"C", b"kept"]]
    # An older run is refused, whole.
    assert store.replace_fields([(key, b"win@v1~", [(b"win@v1~0:1", b"old")], 0)], generation=5) == 0
    assert store.read([(key, [b"win@v1~0:1", b"win@v1~0:2"])]) == [[None, b"B"]]
    # No fields: the prefix is emptied.
    assert store.replace_fields([(other, b"win@v1~", [], 0)], generation=7) == 1
    assert store.read([(other, [b"win@v1~1:7"])]) == [[None]]


def test_streams_deliver_to_a_group_and_apply_events_at_most_once(store):
    stream = "sk1:stream:{conformance}:events"
    ids = store.append_events(stream, [{"user_id": "1", "amount": "2"}, {"user_id": "1", "amount": "5"}])
    assert len(ids) == 2
    first = store.open_stream(stream, "group", "first")
    entries = first.read(10, 10)
    assert [fields for _, fields in entries] == [{"user_id": "1", "amount": "2"}, {"user_id": "1", "amount": "5"}]
    assert first.health()["pending"] == 2
    # A counter tile per event: (slot 0) one int64 word, added.
    key = b"sk1:{conformance:user:1}"
    units = [(key, entry_id, b"applied", 0, [value_update(b"m@v~0:", b"<i8|a|0|0", 0, 0, 0, (7).to_bytes(8, "little"))])
             for entry_id, _ in entries]
    assert store.apply_events(units, first.low_watermark()) == (2, 0)
    assert store.apply_events(units[:1], first.low_watermark()) == (0, 1)  # delivered again: recognised
    assert store.read([(key, [b"m@v~0:0"])]) == [[b"\x01\x00" + (14).to_bytes(8, "little")]]
    # Not acknowledged: another consumer claims them once idle; acknowledged: nothing is pending.
    second = store.open_stream(stream, "group", "second")
    assert [i for i, _ in second.claim(0, 10)] == ids
    second.ack(ids)
    assert second.health()["pending"] == 0 and first.pending(10) == []
    milliseconds, sequence = ids[-1].split("-")
    assert second.low_watermark() == f"{milliseconds}-{int(sequence) + 1}"  # every id below it is acknowledged
    assert first.advance_watermark(None) is None and first.advance_watermark(5) == 5
    assert first.advance_watermark(3) == 5
    store.set_cutoff(stream, "m", 600)
    assert store.cutoffs(stream, ["m", "other"]) == {"m": 600} == first.cutoffs(["m"])


def test_a_busy_entitys_applied_ids_are_dropped_below_the_low_watermark_only(store):
    """Every id applied is recognised when delivered again, until the low watermark passes it (then it is never
    delivered again): a busy entity's list of applied ids is cut to those, and stays short."""
    key = b"sk1:{conformance:user:9}"

    def unit(entry_id: str) -> tuple:
        return key, entry_id, b"applied", 0, [value_update(b"m@v~0:", b"<i8|a|0|0", 0, 0, 0, (1).to_bytes(8, "little"))]

    ids = [f"{1_000 + i}-{i % 3}" for i in range(100)]
    assert store.apply_events([unit(i) for i in ids], "0-0") == (100, 0)
    assert store.apply_events([unit(i) for i in ids], "0-0") == (0, 100)  # none acknowledged: all recognised
    assert store.apply_events([unit("2000-0")], ids[60]) == (1, 0)  # ids[:60] are below the low watermark now
    assert store.apply_events([unit(i) for i in [*ids[60:], "2000-0"]], ids[60]) == (0, 41)
    assert store.read([(key, [b"m@v~0:0"])]) == [[b"\x01\x00" + (101).to_bytes(8, "little")]]
    kept = store.read([(key, [b"applied"])])[0][0].split(b",")
    assert not set(kept) & {i.encode() for i in ids[:60]} and {i.encode() for i in ids[60:]} <= set(kept)


def test_each_units_applied_field_is_its_own(store):
    """Units of one call may carry different applied fields (a stream consumer's, a Spark runner's): an event is
    recognised by its own field only."""
    key = b"sk1:{conformance:user:10}"
    word = (1).to_bytes(8, "little")
    units = [(key, "5-0", field, 0, [value_update(b"m@v~0:", b"<i8|a|0|0", 0, 0, 0, word)])
             for field in (b"applied-a", b"applied-a", b"applied-b", b"applied-a")]
    assert store.apply_events(units, "0-0") == (2, 2)
    assert store.read([(key, [b"m@v~0:0"])]) == [[b"\x01\x00" + (2).to_bytes(8, "little")]]


def test_replace_closed_keeps_the_slots_after_the_cutoff(store):
    key = b"sk1:{conformance:user:4}"
    slot = lambda index, value: bytes([index]) + value.to_bytes(8, "little")  # noqa: E731
    # Level 0: tiles of 10 µs in blocks of 40 µs. The stream wrote slots 0 and 3 of block 0 and slot 0 of block 1;
    # a level-1 block is left from a layout that kept a level the model no longer has.
    store.replace_fields([(key, b"m@v~", [(b"m@v~0:0", b"\x01" + slot(0, 1) + slot(3, 4)),
                                          (b"m@v~0:1", b"\x01" + slot(0, 9)), (b"m@v~0:-1", b"\x01" + slot(1, 1)),
                                          (b"m@v~1:0", b"\x01" + slot(0, 5))],
                           0)], generation=1)
    # run owns up to 20 µs: block 0 gets its slots 0 and 1 from run, keeps slot 3 (ends at 40); block 1 is the
    # stream's; block -1 ended before the cutoff and run has nothing for it: removed; the old level's: removed.
    assert store.replace_closed([(key, b"m@v~", [(b"m@v~0:0", b"\x01" + slot(0, 2) + slot(1, 3))], 0)],
                                cutoff=20, geometry=[(10, 40)], width=1, generation=2) == 1
    blocks = store.read([(key, [b"m@v~0:0", b"m@v~0:1", b"m@v~0:-1", b"m@v~1:0"])])[0]
    assert blocks == [b"\x01" + slot(0, 2) + slot(1, 3) + slot(3, 4), b"\x01" + slot(0, 9), None, None]


def test_reads_many_keys_in_order_with_missing_ones(store):
    keys = [f"sk1:{{conformance:user:{i}}}".encode() for i in range(12)]
    store.write([row(k, 1_000, None, float(i)) for i, k in enumerate(keys) if i % 3], generation=1)
    for count in (1, 2, 3, 4, 12):  # one key, a pipeline, the many-key path
        replies = store.read([(k, [b"f", b"absent"]) for k in keys[:count]])
        assert len(replies) == count
        for i, reply in enumerate(replies):
            assert reply[1] is None
            assert (reply[0] is None) == (i % 3 == 0)
            if reply[0] is not None:
                assert fmt.decode_row(reply[0])[2] == [float(i)]


def test_applied_events_only_ever_lengthen_a_keys_life(store):
    """A key lives until the newest tile an event needs (set on a new key, lengthened, never shortened), and a key
    without an expiry (another model keeps it forever) keeps none, however many events the stream applies."""
    now_ms = int(time.time() * 1000)

    def apply(key: bytes, event_id: str, expire_at: int) -> None:
        update = value_update(b"m@v~0:", b"<i8|a|0|0", 0, 0, 0, (1).to_bytes(8, "little"))
        assert store.apply_events([(key, event_id, b"applied", expire_at, [update])], "0-0") == (1, 0)

    def seconds_left(key: bytes) -> float:
        return store.client.pttl(key) / 1000

    key = b"sk1:{conformance:user:1}"
    apply(key, "1-1", now_ms + 100_000)
    assert 95 < seconds_left(key) <= 100
    apply(key, "1-2", now_ms + 50_000)  # needs less: kept
    assert 95 < seconds_left(key) <= 100
    apply(key, "1-3", now_ms + 200_000)  # needs more: lengthened
    assert 195 < seconds_left(key) <= 200
    apply(key, "1-4", now_ms + 150_000)
    assert 195 < seconds_left(key) <= 200
    persistent = b"sk1:{conformance:user:2}"
    store.write([row(persistent, 1_000, None, 1.0)], generation=1)  # no expiry
    for number, expire_at in enumerate((now_ms + 100_000, now_ms + 300_000, now_ms + 50_000)):
        apply(persistent, f"2-{number}", expire_at)
        assert store.client.pttl(persistent) == -1


def test_write_markers_are_kept_per_model_until_the_data_is_lost(store):
    assert store.marker("conformance", "m") is None
    store.set_marker("conformance", "m", "first")
    assert store.marker("conformance", "m") == "first" and store.marker("conformance", "other") is None
    store.set_marker("conformance", "m", "second")
    assert store.marker("conformance", "m") == "second"
    store.client.flushdb()
    assert store.marker("conformance", "m") is None


def test_ping_and_a_store_that_is_down(store, tmp_path):
    store.ping()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = open_online_store({"url": f"redis://:s3cret@127.0.0.1:{port}/0"}, tmp_path)  # opens: a server starts
    try:
        with pytest.raises(AdapterError, match="check that Redis is running") as raised:
            down.ping()
        assert "s3cret" not in str(raised.value)
        with pytest.raises(AdapterError, match="check that Redis is running"):
            down.read([(b"sk1:{conformance:user:1}", [b"f"])])
    finally:
        down.close()


def test_description_never_holds_a_secret(store):
    assert "@" not in store.description or ":***@" in store.description
