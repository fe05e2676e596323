from datetime import timedelta

import pytest

from skewless.core.durations import format_duration, parse_duration
from skewless.core.sqlbuild import interval


@pytest.mark.parametrize(("text", "value"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("15m", timedelta(minutes=15)),
    ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), ("250ms", timedelta(milliseconds=250)),
    ("7us", timedelta(microseconds=7)), (60, timedelta(seconds=60)),
])
def test_parse(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("bad", ["30 days", "d", "-1d", "1.5h", "", True, None, "10y"])
def test_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_round_trips():
    for text in ("30d", "12h", "15m", "90s", "250ms", "7us"):
        assert format_duration(parse_duration(text)) == text
    assert format_duration(timedelta(weeks=1)) == "7d"


def test_interval_per_dialect():
    assert interval(timedelta(days=30)).sql("duckdb") == "INTERVAL '30' DAY"
    assert interval(timedelta(hours=36)).sql("duckdb") == "INTERVAL '36' HOUR"
    assert interval(timedelta(seconds=1.5)).sql("postgres") == "INTERVAL '1500000 MICROSECOND'"
