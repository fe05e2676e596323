"""The online byte format v1: golden bytes, and typed round trips."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.online import format as fmt


def test_golden_keys():
    assert fmt.entity_key("payments", "user", [42]) == b"sk1:{payments:user:42}"
    assert fmt.entity_key("payments", "user", ["42"]) == b"sk1:{payments:user:42}"
    assert fmt.entity_key("p", "pair", ["a}b", 7]) == b"sk1:{p:pair:a%7Db\x1f7}"
    assert fmt.entity_key("p", "day", [date(2026, 1, 2)]) == b"sk1:{p:day:2026-01-02}"
    assert fmt.field_name("user_spend", "0123456789ab") == b"user_spend@0123456789ab"


def test_golden_value():
    ts = fmt.micros(datetime(2026, 1, 1))
    value = fmt.encode_row(ts, None, [3, 1.5, None, True, "é", datetime(2026, 1, 1, 0, 0, 1)])
    assert value.hex() == (
        "01" + "0040204648470600" + "0000000000000080"   # version, event ts, no created ts
        + "01" + "0300000000000000"                       # int 3
        + "02" + "000000000000f83f"                       # float 1.5
        + "00"                                            # null
        + "04"                                            # true
        + "05" + "02000000" + "c3a9"                      # string "é"
        + "06" + "40822f4648470600"                       # timestamp
    )


def test_schema_version_changes_with_definition():
    a = fmt.schema_version("m", ["user_id"], "ts", ["f"], "select 1")
    assert a == fmt.schema_version("m", ["user_id"], "ts", ["f"], "select 1")
    assert a != fmt.schema_version("m", ["user_id"], "ts", ["f"], "select 2")
    assert a != fmt.schema_version("m", ["user_id"], "ts", ["f", "g"], "select 1")
    assert len(a) == 12


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False), st.text(),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)),
    st.dates(), st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.timedeltas(min_value=timedelta(days=-9999), max_value=timedelta(days=9999)),
    st.times(),
)


@given(st.lists(VALUES, max_size=8), st.integers(min_value=-(2**62), max_value=2**62),
       st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62)))
def test_round_trip(values, ts, created):
    got_ts, got_created, got = fmt.decode_row(fmt.encode_row(ts, created, values))
    assert (got_ts, got_created) == (ts, created)
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


def test_nan_round_trips():
    _, _, values = fmt.decode_row(fmt.encode_row(0, None, [float("nan")]))
    assert values[0] != values[0]


@pytest.mark.parametrize("bad", [2**63, [1, 2], {"a": 1}, b"bytes"])
def test_unencodable_values(bad):
    with pytest.raises(fmt.EncodeError):
        fmt.encode_value(bad)


def test_time_round_trip():
    assert fmt.decode_row(fmt.encode_row(0, None, [time(13, 14, 15, 16)]))[2] == [time(13, 14, 15, 16)]


NUMBER_COLUMNS = st.one_of(
    st.lists(st.floats(allow_nan=False), max_size=20).map(lambda v: ("double", v)),
    st.lists(st.floats(width=32, allow_nan=False), max_size=20).map(lambda v: ("float", v)),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20).map(lambda v: ("int64", v)),
    st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), max_size=20).map(lambda v: ("int32", v)),
    st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=20).map(lambda v: ("uint64", v)),
    st.lists(st.one_of(st.none(), st.floats()), max_size=20).map(lambda v: ("double", v)),
)


@given(NUMBER_COLUMNS)
def test_column_encoding_equals_value_encoding(column):
    import pyarrow as pa

    kind, values = column
    array = pa.chunked_array([pa.array(values, type=kind)])
    expected = []
    try:
        expected = [fmt.encode_value(v) for v in array.to_pylist()]
    except fmt.EncodeError:
        with pytest.raises(fmt.EncodeError):
            fmt.encode_column(array)
        return
    assert fmt.encode_column(array) == expected


def test_headers_equal_row_encoding():
    import numpy as np

    headers = fmt.encode_headers(np.array([1, -5], dtype="int64"), np.array([fmt.NO_CREATED, 7], dtype="int64"))
    assert headers == [fmt.encode_row(1, None, []), fmt.encode_row(-5, 7, [])]
