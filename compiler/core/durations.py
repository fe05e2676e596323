"""Durations written as '30d', '2h', '15m': parsing and turning them into SQL intervals."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "us": "microseconds",
    "ms": "milliseconds",
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*$")


# Longer durations are no durations: every instant of a warehouse minus 100 years is still a valid timestamp.
MAX_DURATION = timedelta(days=36_525)


def parse_duration(text: object) -> timedelta:
    """Parse '30d'-style text; raises ValueError with the accepted forms."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"expected a duration such as '30d', got {text!r}")
    if isinstance(text, int):
        text = f"{text}s"
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a whole number and a unit, "
            "one of us, ms, s, m, h, d, w (e.g. '30d', '12h')"
        )
    amount, unit = int(match.group(1)), match.group(2)
    try:
        value = timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        value = MAX_DURATION + timedelta(days=1)
    if value > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than {MAX_DURATION.days:,} days (100 years): leave it out "
                         "for none (a ttl), or use a shorter one")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest '30d'-style text for a duration, used in the manifest."""
    micros = value // timedelta(microseconds=1)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000),
                       ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000)):
        if micros and micros % size == 0:
            return f"{micros // size}{unit}"
    return f"{micros}us"


def human_duration(seconds: float) -> str:
    """An age as people read it, to two units: 1d 20h, 3h 5m, 40s."""
    whole = int(max(0, seconds))
    parts = [(whole // 86_400, "d"), (whole % 86_400 // 3_600, "h"), (whole % 3_600 // 60, "m"), (whole % 60, "s")]
    return " ".join([f"{value}{unit}" for value, unit in parts if value][:2]) or "0s"
