"""Streams on Redis: events in a Redis Stream read through a consumer group (skewless.online.store.EventStream), and
the server-side script that applies them to window tiles at most once per entity."""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

import redis

from skewless.core.sourcefile import is_utf8
from skewless.online.events import UNREADABLE
from skewless.online.store import EventStream, EventUnit, StreamEntry

# KEYS: entity keys. ARGV[1]: the low watermark id (ids below it are acknowledged: never delivered again), ARGV[2]:
# the applied field (one per consumer). Then per key: event id, and one string: expire-at (ms, int64; 0: none), then
# its updates one after another (online/tile_updates.py): for each,
#   v, prefix, spec, block, slot, oldest kept block, contribution
#       merge into the value block <prefix><block> (online/tiles.py); a new block removes stale ones. spec:
#       "<struct format>|<roles>|<guards>|<1 if the model has distinct blocks, else 0>"
#   d, prefix, block, slot, column, hash          add a hash to the distinct block <prefix><block>
# The entity's applied field lists the ids applied ("<expiry>,id,id,"): an id found there was applied before (a
# redelivery after a crash, or a claim), and is skipped whole. Past 512 bytes, the ids below the low watermark are
# dropped from its front (its cost follows the ids dropped, not the ids kept: a busy entity's list). Its head is the
# expiry (ms) the key is known to last until, or 'p' for a key without one: every writer only ever extends a key's
# life (or removes its expiry), so an event needing no longer skips reading the time to live. A key's fields are
# read with one HMGET and written with one HSET; PTTL, HDEL and PEXPIREAT only when a new block or tile needs them.
APPLY_SCRIPT = r"""
local STALE_BLOCKS = 4
local spec_cache = {}
local stale_cache = {}  -- value prefix -> oldest block kept -> the fields of the blocks before it
local field_cache = {}  -- prefix -> block -> field name
local spec_by_prefix = {}

-- ms and sequence of a stream id
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function spec_of(text)
  local spec = spec_cache[text]
  if spec then return spec end
  local fmt, roles, guards_text, distinct = string.match(text, '^([^|]*)|([^|]*)|([^|]*)|(%d)$')
  local guards = {}
  for part in string.gmatch(guards_text, '([^,]+)') do guards[#guards + 1] = tonumber(part) end
  local role_list = {}
  for j = 1, #roles do role_list[j] = string.sub(roles, j, j) end
  spec = {fmt = fmt, roles = role_list, width = #roles, size = 1 + 8 * #roles, guards = guards,
          distinct = distinct == '1'}
  spec_cache[text] = spec
  return spec
end

local function field_of(prefix, block)
  local by_block = field_cache[prefix]
  if not by_block then by_block = {}; field_cache[prefix] = by_block end
  local name = by_block[block]
  if not name then name = prefix .. block; by_block[block] = name end
  return name
end

-- a > b, NaN above every number (as SQL engines order floats: min skips NaN, max returns it)
local function above(a, b)
  return a > b or (a ~= a and b == b)
end

-- Merge the words `new` into `cur`, in place. From the last word down: a word's guard (its column's count, an
-- earlier word) is read before it is added to.
local function merge_into(spec, cur, new)
  local roles, guards = spec.roles, spec.guards
  for j = spec.width, 1, -1 do
    local role = roles[j]
    if role == 'a' then
      cur[j] = cur[j] + new[j]
    elseif role ~= 'l' then
      local g = guards[j]
      if new[g] ~= 0 then
        if cur[g] == 0 then
          cur[j] = new[j]
          if role == 't' then cur[j + 1] = new[j + 1] end
        elseif role == 'n' then
          if above(cur[j], new[j]) then cur[j] = new[j] end
        elseif role == 'x' then
          if above(new[j], cur[j]) then cur[j] = new[j] end
        elseif new[j] > cur[j] or (new[j] == cur[j] and above(new[j + 1], cur[j + 1])) then  -- t
          cur[j] = new[j]; cur[j + 1] = new[j + 1]
        end
      end
    end
  end
end

-- The fields of the blocks of a value prefix that fell out of retention (before `oldest`), with their distinct
-- blocks: removed when a new block starts.
local function stale_names(prefix, oldest, spec)
  local by_oldest = stale_cache[prefix]
  if not by_oldest then by_oldest = {}; stale_cache[prefix] = by_oldest end
  local names = by_oldest[oldest]
  if not names then
    names = {}
    local distinct_prefix = string.sub(prefix, 1, -2) .. 'd:'
    for b = oldest - STALE_BLOCKS, oldest - 1 do
      names[#names + 1] = prefix .. b
      if spec.distinct then names[#names + 1] = distinct_prefix .. b end
    end
    by_oldest[oldest] = names
  end
  return names
end

-- The block with the contribution (the spec's words at `pos` of `blob`) merged into its slot.
local function merge_values(raw, slot, spec, blob, pos)
  local size = spec.size
  if not raw then return '\1' .. string.char(slot) .. string.sub(blob, pos, pos + size - 2) end
  local at = 2
  local length = #raw
  while at <= length do
    if string.byte(raw, at) == slot then break end
    at = at + size
  end
  if at > length then return raw .. string.char(slot) .. string.sub(blob, pos, pos + size - 2) end
  local fmt = spec.fmt
  local cur = {struct.unpack(fmt, raw, at + 1)}
  merge_into(spec, cur, {struct.unpack(fmt, blob, pos)})
  return string.sub(raw, 1, at) .. struct.pack(fmt, unpack(cur, 1, spec.width)) .. string.sub(raw, at + size)
end

local function add_distinct(raw, slot, column, hash)
  if not raw then raw = '\1' end
  local at = 2
  while at <= #raw do
    local s, c, count = struct.unpack('<BBI4', raw, at)
    local first = at + 6
    local stop = first + 8 * count
    if s == slot and c == column then
      for h = first, stop - 1, 8 do
        if string.sub(raw, h, h + 7) == hash then return raw end
      end
      return string.sub(raw, 1, at - 1) .. struct.pack('<BBI4', s, c, count + 1) .. string.sub(raw, first, stop - 1)
        .. hash .. string.sub(raw, stop)
    end
    at = stop
  end
  return raw .. struct.pack('<BBI4', slot, column, 1) .. hash
end

-- A key's updates, read from their encoding into these arrays (reused from key to key): field, is value, slot,
-- spec (value) or column (distinct), position of the words (value) or the hash (distinct), oldest kept block, prefix.
local u_field, u_value, u_slot, u_spec, u_pos, u_oldest, u_prefix = {}, {}, {}, {}, {}, {}, {}

local function read_updates(blob, pos)
  local count = 0
  local size = #blob
  while pos <= size do
    count = count + 1
    local kind = string.byte(blob, pos)
    local length = struct.unpack('<H', blob, pos + 1)
    local prefix = string.sub(blob, pos + 3, pos + 2 + length)
    pos = pos + 3 + length
    if kind == 118 then  -- v
      length = struct.unpack('<H', blob, pos)
      local spec = spec_by_prefix[prefix]  -- a prefix is one model's level: one spec
      if not spec then
        spec = spec_of(string.sub(blob, pos + 2, pos + 1 + length))
        spec_by_prefix[prefix] = spec
      end
      local block, slot, oldest = struct.unpack('<i8Bi8', blob, pos + 2 + length)
      pos = pos + 19 + length
      u_field[count], u_value[count], u_slot[count], u_spec[count] = field_of(prefix, block), true, slot, spec
      u_pos[count], u_oldest[count], u_prefix[count] = pos, oldest, prefix
      pos = pos + spec.size - 1
    else  -- d
      local block, slot, column = struct.unpack('<i8BB', blob, pos)
      u_field[count], u_value[count], u_slot[count], u_spec[count] = field_of(prefix, block), false, slot, column
      u_pos[count] = pos + 10
      pos = pos + 18
    end
  end
  return count
end

local low_ms, low_seq = id_parts(ARGV[1])
local applied_field = ARGV[2]
local applied, skipped = 0, 0
local now_ms = nil
local at = 3
local touched = {}
for _, key in ipairs(KEYS) do
  local id, blob = ARGV[at], ARGV[at + 1]
  at = at + 2
  local expire_at = struct.unpack('<i8', blob)
  local count = read_updates(blob, 9)
  -- one HMGET: the applied field, then the fields the event touches
  local names, index, values
  if count == 1 then
    touched[1] = 2
    values = redis.call('HMGET', key, applied_field, u_field[1])
  else
    index = {[applied_field] = 1}
    names = {applied_field}
    for u = 1, count do
      local field = u_field[u]
      local n = index[field]
      if not n then n = #names + 1; names[n] = field; index[field] = n end
      touched[u] = n
    end
    values = redis.call('HMGET', key, unpack(names))
  end
  -- "<expiry>,id,id,": the expiry (ms) the key is known to last at least ('p': persistent), then the ids
  local record = values[1] or ','
  local comma = string.find(record, ',', 1, true)
  if string.find(record, ',' .. id .. ',', comma, true) then
    skipped = skipped + 1
  else
    local known = string.sub(record, 1, comma - 1)
    -- the key's time to live, read only when this event may need it longer than known (a new block or tile)
    local pttl = nil
    if expire_at > 0 and known ~= 'p' and expire_at > (tonumber(known) or 0) then pttl = redis.call('PTTL', key) end
    local stale = nil
    for u = 1, count do
      local n = touched[u]
      if u_value[u] then
        if not values[n] and pttl ~= -2 then
          for _, name in ipairs(stale_names(u_prefix[u], u_oldest[u], u_spec[u])) do
            if (index and not index[name]) or (not index and name ~= u_field[1]) then
              stale = stale or {}
              stale[#stale + 1] = name
            end
          end
        end
        values[n] = merge_values(values[n], u_slot[u], u_spec[u], blob, u_pos[u])
      else
        values[n] = add_distinct(values[n], u_slot[u], u_spec[u], string.sub(blob, u_pos[u], u_pos[u] + 7))
      end
    end
    if #record - comma > 512 then
      -- drop the ids below the low watermark from the front (ids are appended in about increasing order; one
      -- out of order stops the drop early, which only keeps a few ids longer)
      local drop = comma
      for old_ms, old_seq, stop in string.gmatch(string.sub(record, comma + 1), '(%d+)-(%d+),()') do
        old_ms, old_seq = tonumber(old_ms), tonumber(old_seq)
        if old_ms > low_ms or (old_ms == low_ms and old_seq >= low_seq) then break end
        drop = comma + stop - 1
      end
      if drop > comma then record = known .. ',' .. string.sub(record, drop + 1) end
    end
    if pttl == -1 then
      record, pttl = 'p' .. string.sub(record, comma), nil
    elseif pttl then
      if not now_ms then
        local now = redis.call('TIME')
        now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
      end
      if pttl ~= -2 and expire_at <= now_ms + pttl then pttl = nil end  -- lasts long enough already
      record = string.format('%d', expire_at) .. string.sub(record, comma)
    end
    values[1] = record .. id .. ','
    if stale then redis.call('HDEL', key, unpack(stale)) end
    if count == 1 then
      redis.call('HSET', key, applied_field, values[1], u_field[1], values[2])
    else
      local pairs_out = {}
      for n, name in ipairs(names) do
        pairs_out[#pairs_out + 1] = name
        pairs_out[#pairs_out + 1] = values[n]
      end
      redis.call('HSET', key, unpack(pairs_out))
    end
    if pttl then redis.call('PEXPIREAT', key, expire_at) end
    applied = applied + 1
  end
end
return {applied, skipped}
"""

WATERMARK_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current
"""


# KEYS: entity keys. ARGV: generation, cutoff (µs), slot width (words), number of levels, then each level's tile
# size and block span (µs); then per key: prefix, expire-at (ms), number of fields, then name and value of each.
# Blocks of the prefix that end by the cutoff become exactly those given; later blocks are kept; a block spanning
# the cutoff gets the given slots (all by the cutoff) and keeps its own slots after it; a block of a level beyond
# the given ones (written under a layout that kept more levels) is removed.
REPLACE_CLOSED_SCRIPT = r"""
local generation, cutoff, width, levels = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sizes, spans = {}, {}
for i = 1, levels do
  sizes[i] = tonumber(ARGV[3 + 2 * i])
  spans[i] = tonumber(ARGV[4 + 2 * i])
end
local value_size = 1 + 8 * width

local function open_slots(raw, distinct, start, size)
  local kept = {}
  local at = 2
  while at <= #raw do
    local slot = string.byte(raw, at)
    local stop
    if distinct then
      local count = struct.unpack('<I4', raw, at + 2)
      stop = at + 6 + 8 * count
    else
      stop = at + value_size
    end
    if start + (slot + 1) * size > cutoff then kept[#kept + 1] = string.sub(raw, at, stop - 1) end
    at = stop
  end
  return table.concat(kept)
end

local replaced = 0
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local at = 5 + 2 * levels
for _, key in ipairs(KEYS) do
  local prefix, expire_at, count = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local first = at + 3
  at = first + 2 * count
  local gen_field = prefix .. '#gen'
  local current = redis.call('HGET', key, gen_field)
  if not current or tonumber(current) <= tonumber(generation) then
    replaced = replaced + 1
    local new = {}
    for j = first, at - 1, 2 do new[ARGV[j]] = ARGV[j + 1] end
    for _, name in ipairs(redis.call('HKEYS', key)) do
      if string.sub(name, 1, #prefix) == prefix then
        local level, distinct, block = string.match(string.sub(name, #prefix + 1), '^(%d+)(d?):(%-?%d+)$')
        if level then
          level = tonumber(level) + 1
          local start = spans[level] and tonumber(block) * spans[level]
          if not start then  -- a level the model no longer keeps (an earlier layout): never read again
            redis.call('HDEL', key, name)
          elseif start + spans[level] <= cutoff then
            if not new[name] then redis.call('HDEL', key, name) end
          elseif start < cutoff then
            local kept = open_slots(redis.call('HGET', key, name), distinct == 'd', start, sizes[level])
            new[name] = (new[name] or '\1') .. kept
          end
        end
      end
    end
    local pttl = redis.call('PTTL', key)
    for name, value in pairs(new) do redis.call('HSET', key, name, value) end
    redis.call('HSET', key, gen_field, generation)
    if expire_at > 0 and (pttl == -2 or (pttl >= 0 and expire_at > now_ms + pttl)) then
      redis.call('PEXPIREAT', key, expire_at)
    end
  end
end
return replaced
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unreadable(entry_id: Any, pairs: Sequence[tuple[Any, Any]]) -> StreamEntry:
    """An entry whose bytes are not all UTF-8: its fields shown with escapes, and UNREADABLE saying which field
    (the consumer reports it as invalid: the batch goes on, nothing is dropped silently)."""
    def shown(value: Any) -> str:
        return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)

    fields = {shown(k): shown(v) for k, v in pairs}
    for name, value in pairs:
        if isinstance(name, bytes) and not is_utf8(name):
            fields[UNREADABLE] = f"has a field whose name is not UTF-8 text: {shown(name)!r}"
            break
        if isinstance(value, bytes) and not is_utf8(value):
            fields[UNREADABLE] = f"has a field {shown(name)!r} whose value is not UTF-8 text: {shown(value)!r}"
            break
    return _text(entry_id), fields


def _entries(reply: Any) -> list[StreamEntry]:
    """XREADGROUP / XAUTOCLAIM entries as (id, {field: text}); a deleted entry (nil fields) is left out."""
    try:  # the client's replies are bytes
        return [(entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
                for entry_id, fields in reply or [] if fields is not None]
    except (AttributeError, UnicodeDecodeError):  # a client decoding replies itself, or bytes that are not text
        return [_unreadable(entry_id, list(fields.items())) for entry_id, fields in reply or [] if fields is not None]


def _raw_entries(reply: Any) -> list[StreamEntry]:
    """XREADGROUP's reply as the server sends it (one stream: a map in RESP3, a pair in a list in RESP2), as
    (id, {field: text}): past redis-py's parsing into a dict per entry, decoded once."""
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    decode = bytes.decode
    try:
        return [(decode(entry_id), dict(zip(map(decode, flat[::2]), map(decode, flat[1::2]), strict=True)))
                for entry_id, flat in entries if flat is not None]  # None: deleted
    except UnicodeDecodeError:  # bytes that are not text: entry by entry
        return [_unreadable(entry_id, list(zip(flat[::2], flat[1::2], strict=True)))
                for entry_id, flat in entries if flat is not None]


class RedisEventStream(EventStream):
    """A consumer of one Redis Stream in a consumer group."""

    def __init__(self, client: Any, key: str, group: str, consumer: str) -> None:
        self.client = client
        self.key = key
        self.group = group
        self.consumer = consumer
        self.late_key = key + ":late"
        # New entries are read through a client of the same connections that leaves the reply unparsed (a
        # consumer's hot path); a cluster's or an embedded server's client parses as usual.
        self._reader: Any = None
        if type(client) is redis.Redis:
            self._reader = redis.Redis(connection_pool=client.connection_pool)
            self._reader.set_response_callback("XREADGROUP", lambda reply, **_: reply)
        try:
            client.xgroup_create(key, group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read(self, count: int, block_ms: int) -> list[StreamEntry]:
        if self._reader is not None:
            return _raw_entries(self._reader.xreadgroup(self.group, self.consumer, {self.key: ">"}, count=count,
                                                        block=block_ms or None))
        reply = self.client.xreadgroup(self.group, self.consumer, {self.key: ">"}, count=count,
                                       block=block_ms or None)
        return _entries(reply[0][1]) if reply else []

    def pending(self, count: int) -> list[StreamEntry]:
        reply = self.client.xreadgroup(self.group, self.consumer, {self.key: "0"}, count=count)
        return _entries(reply[0][1]) if reply else []

    def claim(self, min_idle_ms: int, count: int) -> list[StreamEntry]:
        reply = self.client.xautoclaim(self.key, self.group, self.consumer, min_idle_time=min_idle_ms,
                                       start_id="0-0", count=count)
        return _entries(reply[1])

    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.xack(self.key, self.group, *ids)

    def low_watermark(self) -> str:
        summary = self.client.xpending(self.key, self.group)
        if summary and summary.get("pending"):
            return _text(summary["min"])
        for group in self.client.xinfo_groups(self.key):
            if _text(group["name"]) == self.group:
                last = _text(group["last-delivered-id"])
                milliseconds, sequence = (int(p) for p in last.split("-"))
                return f"{milliseconds}-{sequence + 1}"
        return "0-0"

    def health(self) -> dict[str, Any]:
        summary = self.client.xpending(self.key, self.group)
        pending = int(summary.get("pending") or 0) if summary else 0
        oldest = None
        if pending:
            oldest = max(0, int(time.time() * 1000) - int(_text(summary["min"]).split("-")[0]))
        lag = None
        for group in self.client.xinfo_groups(self.key):
            if _text(group["name"]) == self.group:
                lag = group.get("lag")
        return {"pending": pending, "lag": lag, "oldest_pending_ms": oldest}

    def advance_watermark(self, newest: int | None) -> int | None:
        if newest is None:
            value = self.client.get(self.key + ":watermark")
            return None if value is None else int(value)
        return int(self.client.eval(WATERMARK_SCRIPT, 1, self.key + ":watermark", newest))

    def cutoffs(self, models: Sequence[str]) -> dict[str, int]:
        return cutoffs(self.client, self.key, models)

    def report_late(self, entries: Sequence[tuple[StreamEntry, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for (entry_id, fields), reason in entries:
            pipe.xadd(self.late_key, {**fields, "__skewless_id": entry_id, "__skewless_reason": reason},
                      maxlen=100_000, approximate=True)
        pipe.execute()


def apply_arguments(units: Sequence[EventUnit], low_watermark: str) -> tuple[list[bytes], list[Any]]:
    """KEYS and ARGV of one APPLY_SCRIPT call for the units (which share one applied field)."""
    args: list[Any] = [low_watermark, units[0][2]]
    for _, event_id, _, expire_at, updates in units:
        args += (event_id, _EXPIRY.pack(expire_at) + b"".join(updates))
    return [unit[0] for unit in units], args


def apply_calls(units: Sequence[EventUnit], per_call: int) -> list[Sequence[EventUnit]]:
    """The units in runs of one applied field, each cut into calls of at most `per_call`."""
    calls: list[Sequence[EventUnit]] = []
    for _, run in groupby(units, key=itemgetter(2)):
        same_field = list(run)
        calls += [same_field[start:start + per_call] for start in range(0, len(same_field), per_call)]
    return calls


_EXPIRY = struct.Struct("<q")


def cutoffs(client: Any, stream_key: str, models: Sequence[str]) -> dict[str, int]:
    if not models:
        return {}
    values = client.hmget(stream_key + ":cutoffs", list(models))
    return {m: int(v) for m, v in zip(models, values, strict=True) if v is not None}


def stream_health(client: Any, key: str, group: str) -> dict[str, Any]:
    """What /metrics shows of a stream, read without side effects (no group is created)."""
    if not client.exists(key):
        return {}
    health: dict[str, Any] = {"length": client.xlen(key), "late": client.xlen(key + ":late")}
    for info in client.xinfo_groups(key):
        if _text(info["name"]) != group:
            continue
        summary = client.xpending(key, group)
        pending = int(summary.get("pending") or 0) if summary else 0
        health["pending"] = pending
        health["lag"] = info.get("lag")
        health["entries_read"] = info.get("entries-read")
        health["oldest_pending_ms"] = (max(0, int(time.time() * 1000) - int(_text(summary["min"]).split("-")[0]))
                                       if pending else 0)
    return health


def append_events(client: Any, key: str, rows: Sequence[Mapping[str, str]]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for row in rows:
        pipe.xadd(key, dict(row))
    return [_text(i) for i in pipe.execute()]
