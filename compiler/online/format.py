"""The online store's byte format, version 1: how entity keys and feature values are laid out in Redis.

Documented in docs/online_format.md and pinned by golden tests; change it only by adding a new version.

Key:   b"sk1:{" + project + b":" + entity + b":" + key_text + b"}"   (one Redis hash per entity)
Field: model + b"@" + schema_version                                   (one field per online model)
Value: 0x01 | event_ts int64 LE | created_ts int64 LE | one tagged value per feature, in schema order

The braces are a Redis Cluster hash tag: everything stored for an entity hashes to one slot. Timestamps are
microseconds since the Unix epoch, UTC (a naive timestamp is taken as UTC); a missing created timestamp is
the minimum int64, so any real one is newer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from skewless.core.errors import SkewlessError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

FORMAT_VERSION = 1
KEY_PREFIX = b"sk1:"
HEADER = struct.Struct("<Bqq")
NO_CREATED = -(2**63)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EPOCH_DATE = date(1970, 1, 1)

# Value tags
NULL, INT, FLOAT, FALSE, TRUE, STRING, TIMESTAMP, TIMESTAMP_TZ, DATE, DECIMAL, INTERVAL, TIME = range(12)
_INT64 = struct.Struct("<q")
_FLOAT64 = struct.Struct("<d")
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")


class EncodeError(ValueError):
    """A value that the format cannot hold; the caller names the model, column and entity key."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("{", "%7B").replace("}", "%7D").replace("\x1f", "%1F")


# A NULL key: no written entity has it (the writer skips NULL keys, and a real '%' is escaped as %25).
NULL_KEY_TEXT = "%00null"


def key_text(value: Any) -> str:
    """The canonical text of one join key value: 42 and "42" are the same entity, as the CLI sees them."""
    if value is None:
        return NULL_KEY_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return _escape(str(value))


def entity_key(project: str, entity: str, values: Sequence[Any]) -> bytes:
    """The Redis key of one entity; composite keys are joined by the unit separator."""
    joined = "\x1f".join(key_text(v) for v in values)
    return KEY_PREFIX + b"{" + f"{project}:{entity}:{joined}".encode() + b"}"


def entity_key_maker(project: str, entity: str, width: int) -> Callable[[Sequence[Any]], bytes]:
    """entity_key for one entity kind, its prefix worked out once (the stream consumer's hot path)."""
    if width != 1:
        return lambda values: entity_key(project, entity, values)
    prefix = entity_key(project, entity, [""])[:-1]  # b"sk1:{project:entity:"
    return lambda values: prefix + (str(v) if type(v := values[0]) is int else key_text(v)).encode() + b"}"


def entity_rows_from_text(join_keys: Sequence[str], keys: Iterable[str]) -> list[dict[str, str]]:
    """Entity rows from key text (a composite key's values separated by commas, in join_keys order).

    Values stay text here; readers bring them to the key's type (online/keys.py), as for the Python API."""
    rows = []
    for key in keys:
        values = key.split(",") if len(join_keys) > 1 else [key]
        if len(values) != len(join_keys):
            raise SkewlessError(f"key {key!r} needs {len(join_keys)} comma-separated values: {', '.join(join_keys)}")
        rows.append(dict(zip(join_keys, values, strict=True)))
    return rows


def entity_keys(project: str, entity: str, key_columns: Sequence[Sequence[Any]]) -> list[bytes]:
    """The Redis keys of many entities, from their join key columns (the write and the read path)."""
    if len(key_columns) == 1:
        prefix = entity_key(project, entity, [""])[:-1]  # b"sk1:{project:entity:"
        return [prefix + (str(v) if type(v) is int else key_text(v)).encode() + b"}" for v in key_columns[0]]
    return list(map(entity_key_maker(project, entity, len(key_columns)), zip(*key_columns, strict=True)))


def field_name(model: str, schema_version: str) -> bytes:
    return f"{model}@{schema_version}".encode()


def schema_version(model: str, join_keys: Iterable[str], timestamp: str, features: Iterable[str],
                   definition: str) -> str:
    """A short hash of everything that gives a stored value its meaning; a change means a new field."""
    digest = hashlib.sha256()
    for part in (str(FORMAT_VERSION), model, ",".join(join_keys), timestamp, ",".join(features), definition):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:12]


def micros(value: datetime | date) -> int:
    """Microseconds since the epoch, UTC; a naive datetime is taken as UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int, aware: bool = False) -> datetime:
    moment = EPOCH + timedelta(microseconds=value)
    return moment if aware else moment.replace(tzinfo=None)


def encode_value(value: Any) -> bytes:
    """One feature value with its type tag; raises EncodeError for types the format does not hold."""
    if value is None:
        return bytes((NULL,))
    if isinstance(value, bool):
        return bytes((TRUE if value else FALSE,))
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise EncodeError(f"integer {value} does not fit in 64 bits")
        return bytes((INT,)) + _INT64.pack(value)
    if isinstance(value, float):
        return bytes((FLOAT,)) + _FLOAT64.pack(value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return bytes((STRING,)) + _UINT32.pack(len(data)) + data
    if isinstance(value, datetime):
        tag = TIMESTAMP if value.tzinfo is None else TIMESTAMP_TZ
        return bytes((tag,)) + _INT64.pack(micros(value))
    if isinstance(value, date):
        return bytes((DATE,)) + _INT32.pack((value - EPOCH_DATE).days)
    if isinstance(value, Decimal):
        data = str(value).encode()
        return bytes((DECIMAL,)) + _UINT32.pack(len(data)) + data
    if isinstance(value, timedelta):
        return bytes((INTERVAL,)) + _INT64.pack(value // timedelta(microseconds=1))
    if isinstance(value, time):
        moment = datetime.combine(EPOCH_DATE, value)
        return bytes((TIME,)) + _INT64.pack((moment - datetime(1970, 1, 1)) // timedelta(microseconds=1))
    raise EncodeError(f"a value of type {type(value).__name__} cannot be stored online")


def encode_row(event_ts: int, created_ts: int | None, values: Iterable[Any]) -> bytes:
    """The field value for one model's newest row of one entity."""
    parts = [HEADER.pack(FORMAT_VERSION, event_ts, NO_CREATED if created_ts is None else created_ts)]
    parts.extend(encode_value(v) for v in values)
    return b"".join(parts)


def encode_headers(event_ts: "np.ndarray", created_ts: "np.ndarray | None") -> list[bytes]:
    """The 17-byte header of many rows at once (created_ts: int64 with NO_CREATED for none)."""
    import numpy as np

    packed = np.empty(len(event_ts), dtype=[("v", "u1"), ("ts", "<i8"), ("created", "<i8")])
    packed["v"] = FORMAT_VERSION
    packed["ts"] = event_ts
    packed["created"] = NO_CREATED if created_ts is None else created_ts
    return _split(packed.tobytes(), HEADER.size)


def encode_column(values: "pa.ChunkedArray | pa.Array") -> list[bytes]:
    """Every value of one column, tagged. Numbers without nulls are packed by numpy, the rest one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    if values.null_count == 0 and (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        import numpy as np

        is_float = pa.types.is_floating(kind)
        if pa.types.is_uint64(kind) and len(values) and pc.max(values).as_py() >= 2**63:
            return _one_by_one(values)
        packed = np.empty(len(values), dtype=[("tag", "u1"), ("v", "<f8" if is_float else "<i8")])
        packed["tag"] = FLOAT if is_float else INT
        packed["v"] = values.to_numpy()
        return _split(packed.tobytes(), 9)
    return _one_by_one(values)


def _one_by_one(values: "pa.ChunkedArray | pa.Array") -> list[bytes]:
    encoded = []
    for index, value in enumerate(values.to_pylist()):
        try:
            encoded.append(encode_value(value))
        except EncodeError as error:
            raise EncodeError(str(error), index) from None
    return encoded


def _split(buffer: bytes, width: int) -> list[bytes]:
    return [buffer[start:start + width] for start in range(0, len(buffer), width)]


_NUMERIC_LAYOUTS: dict[bytes, struct.Struct | None] = {}


def _numeric_layout(tags: bytes) -> struct.Struct | None:
    """One struct for a row of only ints and floats (tag byte skipped, then 8 bytes each), by its tags."""
    if tags in _NUMERIC_LAYOUTS:
        return _NUMERIC_LAYOUTS[tags]
    layout = struct.Struct("<" + "".join("xq" if t == INT else "xd" for t in tags)) if all(
        t in (INT, FLOAT) for t in tags) else None
    if len(_NUMERIC_LAYOUTS) < 4096:  # a handful of layouts per project; the bound only guards memory
        _NUMERIC_LAYOUTS[tags] = layout
    return layout


def decode_values(raws: Iterable[bytes | None], oldest: int | None) -> list[list[Any] | None]:
    """The values of many stored fields (None for a missing one, or one whose event time is before `oldest`,
    in microseconds): the read path of every request."""
    result: list[list[Any] | None] = []
    for raw in raws:
        if raw is None:
            result.append(None)
            continue
        event_ts, _ = _header(raw)
        result.append(None if oldest is not None and event_ts < oldest else _values(raw))
    return result


def decode_row(data: bytes) -> tuple[int, int | None, list[Any]]:
    """(event_ts micros, created_ts micros or None, values) of one stored field."""
    event_ts, created = _header(data)
    return event_ts, created, _values(data)


def _header(data: bytes) -> tuple[int, int | None]:
    version, event_ts, created = HEADER.unpack_from(data, 0)
    if version != FORMAT_VERSION:
        raise ValueError(f"online value written in format {version}, this reader knows {FORMAT_VERSION}")
    return event_ts, (None if created == NO_CREATED else created)


def _values(data: bytes) -> list[Any]:
    """The values after the header."""
    if (len(data) - HEADER.size) % 9 == 0:
        # Every value 9 bytes wide (numbers): if every 9th byte is a number's tag, by induction every value is
        # a number, and one precompiled struct reads them all.
        layout = _numeric_layout(data[HEADER.size::9])
        if layout is not None:
            return list(layout.unpack_from(data, HEADER.size))
    values: list[Any] = []
    offset = HEADER.size
    end = len(data)
    while offset < end:
        tag = data[offset]
        offset += 1
        if tag == NULL:
            values.append(None)
        elif tag == FALSE or tag == TRUE:
            values.append(tag == TRUE)
        elif tag == INT:
            values.append(_INT64.unpack_from(data, offset)[0])
            offset += 8
        elif tag == FLOAT:
            values.append(_FLOAT64.unpack_from(data, offset)[0])
            offset += 8
        elif tag in (STRING, DECIMAL):
            length = _UINT32.unpack_from(data, offset)[0]
            text = data[offset + 4:offset + 4 + length].decode("utf-8")
            values.append(text if tag == STRING else Decimal(text))
            offset += 4 + length
        elif tag in (TIMESTAMP, TIMESTAMP_TZ):
            values.append(from_micros(_INT64.unpack_from(data, offset)[0], aware=tag == TIMESTAMP_TZ))
            offset += 8
        elif tag == DATE:
            values.append(EPOCH_DATE + timedelta(days=_INT32.unpack_from(data, offset)[0]))
            offset += 4
        elif tag == INTERVAL:
            values.append(timedelta(microseconds=_INT64.unpack_from(data, offset)[0]))
            offset += 8
        elif tag == TIME:
            values.append((datetime(1970, 1, 1) + timedelta(microseconds=_INT64.unpack_from(data, offset)[0])).time())
            offset += 8
        else:
            raise ValueError(f"unknown value tag {tag} in an online value")
    return values
