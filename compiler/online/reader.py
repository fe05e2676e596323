"""The typed online reader: a read plan per feature list, one round trip per read, ttl applied at read time,
on-demand features computed per entity row. Imports neither the project compiler nor Jinja."""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from skewless.core.errors import AdapterError, SkewlessError

from . import format as fmt
from . import tiles
from .catalog import OnlineModel
from .events import stream_key
from .keys import typed_keys

if TYPE_CHECKING:
    from skewless.ondemand.model import OnlineExpression
    from skewless.online.store import OnlineStore

    from .catalog import ServingCatalog


class _EntityRead(NamedTuple):
    """One key per entity row, and the fields of the models read from it."""

    entity: str
    join_keys: tuple[str, ...]
    models: tuple[OnlineModel, ...]
    fields: list[bytes]
    windowed: bool = False  # a window_agg model among them: its fields depend on the read's instant


@dataclass(frozen=True)
class _ReadPlan:
    """Everything about a list of features that does not depend on the entity rows: worked out once per list."""

    derived: tuple["OnlineExpression", ...]  # on-demand features asked for
    groups: tuple[_EntityRead, ...]  # one per entity the stored features belong to
    keys_needed: tuple[str, ...]
    request_fields: tuple[str, ...]
    picks: tuple[tuple[str, int, int, int], ...]  # stored feature -> (group, model in group, value position)
    needed: frozenset[str]  # the names every entity row must hold: join keys and request fields
    key_types: tuple[tuple[str, str | None], ...] = ()  # each join key read, with its SQL type


class OnlineReader:
    """Reads features back, typed, with ttl applied at read time, and computes on-demand features per row."""

    def __init__(self, catalog: "ServingCatalog", store: "OnlineStore") -> None:
        self.catalog = catalog
        self.store = store
        self.project = catalog.project
        self._plans: dict[tuple[str, ...], _ReadPlan] = {}
        self._cutoffs: dict[str, tuple[float, int | None]] = {}
        self._tile_reads: dict[tuple[Any, ...], tiles.TileRead] = {}

    def features_of(self, entity: str) -> list[str]:
        return [f for m in self.catalog.models.values() if m.entity == entity for f in m.features]

    def plan(self, features: Sequence[str]) -> _ReadPlan:
        """What to read for these features, checked; kept for the next call with the same list."""
        key = tuple(features)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(key)
            if len(self._plans) < 1024:
                self._plans[key] = plan
        return plan

    def _make_plan(self, features: tuple[str, ...]) -> _ReadPlan:
        catalog = self.catalog
        for feature in features:
            catalog.check(feature)
        derived = tuple(catalog.evaluators[f] for f in features if f in catalog.on_demand)
        for evaluator in derived:
            for name in evaluator.input_names:
                if name not in catalog.by_feature:
                    raise SkewlessError(
                        f"on-demand feature {evaluator.feature.name!r} reads {name!r}, which is not served online",
                        hint=f"set online=true on model {catalog.offline_features.get(name)!r} and run again",
                    )
        stored = list(dict.fromkeys(
            [f for f in features if f not in catalog.on_demand] + [i for d in derived for i in d.input_names]
        ))
        models = list(dict.fromkeys(catalog.by_feature[f] for f in stored))
        groups = []
        for entity in dict.fromkeys(m.entity for m in models):
            entity_models = tuple(m for m in models if m.entity == entity)
            groups.append(_EntityRead(entity, entity_models[0].join_keys, entity_models,
                                      [m.field for m in entity_models],
                                      any(m.window is not None for m in entity_models)))
        picks = []
        for feature in stored:
            model = catalog.by_feature[feature]
            group = next(i for i, g in enumerate(groups) if model in g.models)
            picks.append((feature, group, groups[group].models.index(model), model.features.index(feature)))
        keys_needed = tuple(dict.fromkeys(k for g in groups for k in g.join_keys))
        request_fields = tuple(dict.fromkeys(n for d in derived for n in d.request_names))
        key_types = tuple((key, next((catalog.key_types.get(g.entity, {}).get(key) for g in groups
                                      if key in g.join_keys), None)) for key in keys_needed)
        return _ReadPlan(
            derived=derived, groups=tuple(groups), keys_needed=keys_needed,
            request_fields=request_fields, picks=tuple(picks), needed=frozenset(keys_needed + request_fields),
            key_types=key_types,
        )

    def read(
        self, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str], now: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """Columnar result: the join key columns given, then one column per feature in the order asked.

        Entity rows also carry the request fields on-demand features read. One round trip reads every stored
        value, the on-demand inputs included."""
        plan = self.plan(features)
        needed = plan.needed
        for row in entity_rows:
            if not row.keys() >= needed:
                missing = [k for k in plan.keys_needed if k not in row]
                if missing:
                    raise SkewlessError(f"entity row {dict(row)!r} lacks join key(s) {missing}",
                                        hint="the features asked for read those keys: give them, or ask only for "
                                             "features of the entities given")
                raise SkewlessError(
                    f"entity row {dict(row)!r} lacks request field(s) "
                    f"{[n for n in plan.request_fields if n not in row]}",
                    hint="on-demand features read them from each entity row",
                )
        columns = {name: [row[name] for row in entity_rows] for name in needed}
        return self.read_columns(columns, len(entity_rows), features, now)

    def read_columns(
        self, columns: Mapping[str, Sequence[Any]], count: int, features: Sequence[str], now: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """`read` for entity rows given as columns of `count` values (as the HTTP API sends them)."""
        plan = self.plan(features)
        missing = [k for k in plan.keys_needed if k not in columns]
        if missing:
            raise SkewlessError(f"the entities lack join key(s) {missing}")
        absent = [n for n in plan.request_fields if n not in columns]
        if absent:
            raise SkewlessError(f"the entities lack request field(s) {absent}",
                                hint="on-demand features read them from each entity row")
        columns = {**columns, **{key: typed_keys(columns[key], kind, key) for key, kind in plan.key_types}}
        values = self._read_stored(columns, count, plan, now)
        for evaluator in plan.derived:
            inputs = [values[name] for name in evaluator.input_names]
            requests = [columns[name] for name in evaluator.request_names]
            values[evaluator.feature.name] = [
                evaluator([column[index] for column in inputs],
                          dict(zip(evaluator.request_names, [r[index] for r in requests], strict=True)))
                for index in range(count)
            ]
        result = {k: list(columns[k]) for k in plan.keys_needed}
        for feature in features:
            result[feature] = values[feature]
        return result

    def _cutoff(self, model: OnlineModel) -> int | None:
        """The cutoff `run` last set for a streamed model (kept for a second: a stale one still reads right)."""
        if model.stream is None:
            return None
        cached = self._cutoffs.get(model.name)
        if cached is None or time.monotonic() - cached[0] > 1.0:
            found = self.store.cutoffs(stream_key(self.project, model.stream), [model.name]).get(model.name)
            cached = (time.monotonic(), found)
            self._cutoffs[model.name] = cached
        return cached[1]

    def _tile_read(self, plan: _ReadPlan, index: int, position: int, model: OnlineModel, at: int
                   ) -> "tiles.TileRead":
        """The tiles to read for a model's asked window features at `at`: the same for every instant strictly
        between two hop boundaries (both ends of every window move in whole hops), so kept per hop interval."""
        assert model.window is not None
        cutoff = self._cutoff(model)
        hop = model.window.hop
        key = (plan.picks, index, position, at // hop, -(-at // hop), cutoff)
        read = self._tile_reads.get(key)
        if read is None:
            asked = {f for f, g, p, _ in plan.picks if g == index and p == position}
            features = [f for f in model.window.features(model.entity) if f.name in asked]
            read = tiles.read_plan(model.window, model.tile_prefix, features, at, cutoff)
            if len(self._tile_reads) > 256:
                self._tile_reads.clear()
            self._tile_reads[key] = read
        return read

    def _window_fields(self, plan: _ReadPlan, index: int, group: _EntityRead, now_us: int
                       ) -> tuple[list[bytes], list[Any]]:
        """The fields to read for a group holding window_agg models at this instant, and per model where its
        fields start (plain models) or (start, the tile read) (window models)."""
        fields: list[bytes] = []
        places: list[Any] = []
        for position, model in enumerate(group.models):
            if model.window is None:
                places.append(len(fields))
                fields.append(model.field)
                continue
            at = now_us - (model.delay // timedelta(microseconds=1) if model.delay else 0)
            read = self._tile_read(plan, index, position, model, at)
            places.append((len(fields), read))
            fields.extend(read.fields)
        return fields, places

    @staticmethod
    def _merge_tiles(model: OnlineModel, place: tuple[int, "tiles.TileRead"], replies: Sequence[list[bytes | None]],
                     requests: Sequence[tuple[bytes, Any]]) -> dict[str, list[Any]]:
        """Each asked window feature's values, merged from the tiles read for each entity row."""
        start, read = place
        assert model.window is not None
        layout = read.layout
        stop = start + len(read.fields)
        try:
            merged = tiles.merge_rows(model.window, layout, read, [reply[start:stop] for reply in replies])
            return dict(zip(read.names, merged, strict=True))
        except (ValueError, struct.error, IndexError, OverflowError):
            pass  # entity by entity: a sum past int64 in Python's integers, or which key holds a damaged block
        rows = []
        for reply, (key, _) in zip(replies, requests, strict=False):
            try:
                rows.append(tiles.merge(model.window, layout, read, reply[start:stop]))
            except (ValueError, struct.error, IndexError) as error:
                raise AdapterError(
                    f"the online tiles of model {model.name!r} at key {key.decode(errors='replace')!r} cannot be "
                    f"read: {error}", hint="run `skewless run` to write them again") from None
        return {name: [row[i] for row in rows] for i, name in enumerate(read.names)}

    @staticmethod
    def _corrupt(model: OnlineModel, raws: Sequence[bytes | None], requests: Sequence[tuple[bytes, Any]]
                 ) -> AdapterError:
        """The error for a stored value that is not in the format: which key and model, and how to mend it."""
        for raw, (key, _) in zip(raws, requests, strict=False):
            try:
                fmt.decode_values([raw], None)
            except (ValueError, struct.error, UnicodeDecodeError) as error:
                return AdapterError(
                    f"the online value of model {model.name!r} at key {key.decode(errors='replace')!r} cannot be "
                    f"read: {error}", hint="run `skewless run --resend-online` to write every value again")
        return AdapterError(f"an online value of model {model.name!r} cannot be read")

    def _read_stored(
        self, columns: Mapping[str, Sequence[Any]], count: int, plan: _ReadPlan, now: datetime | None,
    ) -> dict[str, list[Any]]:
        """Each stored feature's values: one key per row and entity, all read in one round trip."""
        now_us = fmt.micros(now) if now is not None else time.time_ns() // 1000
        group_fields = [group.fields if not group.windowed else self._window_fields(plan, index, group, now_us)
                        for index, group in enumerate(plan.groups)]
        requests: list[tuple[bytes, list[bytes]]] = []
        for group, fields in zip(plan.groups, group_fields, strict=True):
            keys = fmt.entity_keys(self.project, group.entity, [columns[k] for k in group.join_keys])
            requests.extend((key, fields if isinstance(fields, list) else fields[0]) for key in keys)
        if not requests:  # no entity rows (or only on-demand features): an empty column per stored feature
            return {feature: [None] * count for feature, *_ in plan.picks}
        replies = self.store.read(requests)
        decoded: dict[tuple[int, int], Any] = {}
        columns: dict[str, list[Any]] = {}
        for feature, group, position, at in plan.picks:
            rows = decoded.get((group, position))
            model = plan.groups[group].models[position]
            group_replies = replies[group * count:(group + 1) * count]
            if rows is None:
                fields = group_fields[group]
                if model.window is not None:
                    assert isinstance(fields, tuple)
                    rows = self._merge_tiles(model, fields[1][position], group_replies, requests[group * count:])
                else:
                    slot = position if isinstance(fields, list) else fields[1][position]
                    ttl = model.ttl
                    oldest = None if ttl is None else now_us - ttl // timedelta(microseconds=1)
                    raws = [reply[slot] for reply in group_replies]
                    try:
                        rows = fmt.decode_values(raws, oldest)
                    except (ValueError, struct.error, UnicodeDecodeError):
                        raise self._corrupt(model, raws, requests[group * count:]) from None
                decoded[(group, position)] = rows
            if model.window is not None:
                columns[feature] = rows[feature]
            else:
                columns[feature] = [None if values is None else values[at] for values in rows]
        return columns
