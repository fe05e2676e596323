"""`skewless monitor`: per feature, how fresh it is, how often it is NULL, how far its distribution drifted, and
whether the online store serves what a training set computes.

Drift is the population stability index between a reference window and the current one (both ending at the
clock's now): over 10 equal-width bins of the reference's range for a numeric feature (counts computed in SQL,
GROUP BY bin), over category shares for the others; PSI = sum((c - r) * ln(c / r)), an empty bin counted as
0.0001. Defaults: warn at 0.1, error at 0.25; a model's YAML entry overrides them (`monitor: {psi_warn: 0.2,
psi_error: 0.4, warn_after: 1d, error_after: 3d}`; the last two bound the newest event's age).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from skewless.core.durations import format_duration, parse_duration
from skewless.core.errors import Location, ProjectError, did_you_mean
from skewless.core.sqlbuild import quoted_column
from skewless.core.windowagg import numeric_family
from skewless.core.yamlfile import MarkedDict
from skewless.project.compile import CompiledProject
from skewless.project.nodes import ModelNode

if TYPE_CHECKING:
    from skewless.adapters.base import WarehouseAdapter

BINS = 10
EMPTY_SHARE = 0.0001
MIN_ROWS = 50  # rows each window needs before its PSI is judged (fewer: reported, not judged)
PSI_WARN, PSI_ERROR = 0.1, 0.25
_LEVEL = {"ok": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class Thresholds:
    psi_warn: float = PSI_WARN
    psi_error: float = PSI_ERROR
    warn_after: timedelta | None = None
    error_after: timedelta | None = None


def thresholds(raw: Mapping[str, Any]) -> Thresholds:
    """A model's YAML `monitor:` entry, checked: a mistake names the file, line and column."""
    known = ("psi_warn", "psi_error", "warn_after", "error_after")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ProjectError(f"monitor: unknown key {unknown[0]!r}", location=_at(raw, unknown[0]),
                           hint=did_you_mean(unknown[0], known) or f"keys: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key in ("psi_warn", "psi_error"):
        if raw.get(key) is not None:
            if isinstance(raw[key], bool) or not isinstance(raw[key], (int, float)) or raw[key] < 0:
                raise ProjectError(f"monitor: {key} must be a number of 0 or more, not {raw[key]!r}",
                                   location=_at(raw, key), hint="PSI thresholds, e.g. psi_warn: 0.1")
            values[key] = float(raw[key])
    for key in ("warn_after", "error_after"):
        if raw.get(key) is not None:
            try:
                values[key] = parse_duration(raw[key])
            except ValueError as error:
                raise ProjectError(f"monitor: {key}: {error}", location=_at(raw, key),
                                   hint="a duration, e.g. 1d or 12h") from None
    return Thresholds(**values)


def _at(raw: Mapping[str, Any], key: str) -> Location | None:
    return raw.location(key) if isinstance(raw, MarkedDict) else None


@dataclass
class FeatureHealth:
    feature: str
    model: str
    kind: str  # numeric | categorical | other
    newest: datetime | None  # the newest event time offline
    age_seconds: float | None
    rows_reference: int
    rows_current: int
    null_rate: float | None  # in the current window
    psi: float | None
    bins: dict[str, list[float]] = field(default_factory=dict)  # reference and current shares, for plots
    status: str = "ok"
    reasons: list[str] = field(default_factory=list)
    newest_online: datetime | None = None  # an online model's newest event time served (from the sample)

    def to_json(self) -> dict[str, Any]:
        return {"feature": self.feature, "model": self.model, "kind": self.kind,
                "newest": self.newest.isoformat() if self.newest else None,
                "newest_online": self.newest_online.isoformat() if self.newest_online else None,
                "age_seconds": self.age_seconds, "rows_reference": self.rows_reference,
                "rows_current": self.rows_current, "null_rate": self.null_rate,
                "psi": None if self.psi is None else round(self.psi, 6), "bins": self.bins,
                "status": self.status, "reasons": self.reasons}


@dataclass
class Consistency:
    model: str
    checked: int  # entity x feature values compared
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    newest_online: datetime | None = None  # the newest event time among the sampled entities' online values
    not_compared: list[str] = field(default_factory=list)  # float sums of window features: order of addition

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "checked": self.checked, "mismatches": self.mismatches,
                "newest_online": self.newest_online.isoformat() if self.newest_online else None,
                "not_compared": self.not_compared}


@dataclass
class MonitorReport:
    now: datetime
    features: list[FeatureHealth]
    consistency: list[Consistency]

    @property
    def status(self) -> str:
        worst = max((_LEVEL[f.status] for f in self.features), default=0)
        if any(c.mismatches for c in self.consistency):
            worst = 2
        return {0: "ok", 1: "warn", 2: "error"}[worst]

    def to_json(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "status": self.status,
                "features": [f.to_json() for f in self.features],
                "consistency": [c.to_json() for c in self.consistency]}


def monitorable(node: ModelNode) -> bool:
    """Models whose features are columns of a warehouse relation with an event time."""
    return (node.relation is not None and node.on_demand is None and node.window is None
            and node.config.timestamp is not None and bool(node.features))


@dataclass(frozen=True)
class _Side:
    """Where a window's rows are: a relation, and the condition that picks them."""

    relation: exp.Expression
    condition: exp.Expression


class Monitor:
    """`reference_table`: a training set's rows (a dataset) as the reference, instead of a window of the model."""

    def __init__(self, compiled: CompiledProject, adapter: "WarehouseAdapter", now: datetime,
                 reference: timedelta, current: timedelta,
                 thresholds: Mapping[str, Thresholds] | None = None,
                 reference_table: exp.Table | None = None) -> None:
        self.compiled = compiled
        self.adapter = adapter
        self.now = now
        self.current_start = now - current
        self.reference_start = self.current_start - reference
        self.thresholds = thresholds or {}
        self.reference_table = reference_table

    def model(self, node: ModelNode, only: Iterable[str] | None = None) -> list[FeatureHealth]:
        """The health of the model's features (`only`: of these)."""
        assert node.relation is not None and node.config.timestamp is not None
        ts = quoted_column(node.config.timestamp)
        names = [f for f in node.features if only is None or f in set(only)]
        current = _Side(node.relation, exp.and_(exp.GT(this=ts.copy(), expression=_time(self.current_start)),
                                                 exp.LTE(this=ts.copy(), expression=_time(self.now))))
        reference = _Side(self.reference_table, exp.true()) if self.reference_table is not None else _Side(
            node.relation, exp.and_(exp.GT(this=ts.copy(), expression=_time(self.reference_start)),
                                    exp.LTE(this=ts.copy(), expression=_time(self.current_start))))
        types = {f: node.feature_column(f).type for f in names}
        if None in types.values():  # a type the compiler could not infer: the warehouse knows it
            observed = self.adapter.columns(node.relation)
            types = {f: kind or observed.get(f) for f, kind in types.items()}
        kinds = {f: _kind(kind) for f, kind in types.items()}
        now_row = self.adapter.fetch_all(exp.select(
            exp.Max(this=ts.copy()), _count_if(current.condition),
            *[_count_if(exp.and_(current.condition.copy(), quoted_column(f).is_(exp.null()))) for f in names]
        ).from_(node.relation.copy()))[0]
        numeric = [f for f in names if kinds[f] == "numeric"]
        then_row = self.adapter.fetch_all(exp.select(
            _count_if(reference.condition),
            *[part for f in numeric for part in (
                exp.Min(this=exp.If(this=reference.condition.copy(), true=exp.cast(quoted_column(f), "DOUBLE"))),
                exp.Max(this=exp.If(this=reference.condition.copy(), true=exp.cast(quoted_column(f), "DOUBLE"))))]
        ).from_(reference.relation.copy()))[0]
        newest, rows_current, rows_reference = _datetime(now_row[0]), int(now_row[1] or 0), int(then_row[0] or 0)
        ranges = {f: (then_row[1 + 2 * i], then_row[2 + 2 * i]) for i, f in enumerate(numeric)}
        limits = self.thresholds.get(node.name, Thresholds())
        age = None if newest is None else (self.now - newest).total_seconds()
        results = []
        for index, feature in enumerate(names):
            nulls = int(now_row[2 + index] or 0)
            health = FeatureHealth(feature, node.name, kinds[feature], newest, age, rows_reference, rows_current,
                                   nulls / rows_current if rows_current else None, None)
            if feature in ranges and ranges[feature][0] is not None and rows_current:
                low, high = (float(v) for v in ranges[feature])
                health.psi, health.bins = self._numeric_psi(feature, low, high, current, reference)
            elif kinds[feature] == "categorical" and rows_reference and rows_current:
                health.psi, health.bins = self._categorical_psi(feature, current, reference)
            _judge(health, limits)
            results.append(health)
        return results

    def _numeric_psi(self, feature: str, low: float, high: float, current: _Side, reference: _Side
                     ) -> tuple[float, dict[str, list[float]]]:
        width = (high - low) / BINS or 1.0
        value = exp.cast(quoted_column(feature), "DOUBLE")
        raw_bin = exp.Floor(this=exp.Div(this=exp.paren(exp.Sub(this=value, expression=exp.Literal.number(low))),
                                         expression=exp.Literal.number(width)))
        binned = exp.Greatest(this=exp.Least(this=raw_bin, expressions=[exp.Literal.number(BINS - 1)]),
                              expressions=[exp.Literal.number(0)])
        counts = {"reference": self._counts(feature, binned, reference), "current": self._counts(feature, binned,
                                                                                                 current)}
        keys = [float(k) for k in range(BINS)]
        return _psi(counts, keys), _shares(counts, keys)

    def _categorical_psi(self, feature: str, current: _Side, reference: _Side
                         ) -> tuple[float, dict[str, list[float]]]:
        key = exp.cast(quoted_column(feature), "VARCHAR")
        counts = {"reference": self._counts(feature, key, reference), "current": self._counts(feature, key, current)}
        keys = sorted({k for side in counts.values() for k in side}, key=str)
        return _psi(counts, keys), _shares(counts, keys)

    def _counts(self, feature: str, key: exp.Expression, side: _Side) -> dict[Any, int]:
        """Rows per key on one side, GROUP BY in the warehouse (NULL values left out: the null rate shows them)."""
        query = (exp.select(exp.alias_(key.copy(), "k"), exp.alias_(exp.Count(this=exp.Star()), "n"))
                 .from_(side.relation.copy())
                 .where(exp.and_(side.condition.copy(), quoted_column(feature).is_(exp.null()).not_()))
                 .group_by(exp.column("k")))
        return {float(value) if isinstance(value, (int, float, Decimal)) else value: int(n)
                for value, n in self.adapter.fetch_all(query)}


def _psi(counts: Mapping[str, Mapping[Any, int]], keys: Sequence[Any]) -> float:
    reference, current = _shares(counts, keys)["reference"], _shares(counts, keys)["current"]
    return sum((c - r) * math.log(c / r) for r, c in zip(reference, current, strict=True))


def _shares(counts: Mapping[str, Mapping[Any, int]], keys: Sequence[Any]) -> dict[str, list[float]]:
    out = {}
    for side in ("reference", "current"):
        total = sum(counts[side].values())
        out[side] = [max(counts[side].get(k, 0) / total, EMPTY_SHARE) if total else EMPTY_SHARE for k in keys]
    return out


def _judge(health: FeatureHealth, limits: Thresholds) -> None:
    def raise_to(level: str, reason: str) -> None:
        health.reasons.append(reason)
        if _LEVEL[level] > _LEVEL[health.status]:
            health.status = level

    if health.psi is not None and min(health.rows_reference, health.rows_current) < MIN_ROWS:
        health.reasons.append(f"fewer than {MIN_ROWS} rows in a window: drift not judged")
    elif health.psi is not None:
        if health.psi >= limits.psi_error:
            raise_to("error", f"PSI {health.psi:.3f} >= {limits.psi_error}")
        elif health.psi >= limits.psi_warn:
            raise_to("warn", f"PSI {health.psi:.3f} >= {limits.psi_warn}")
    if health.age_seconds is None:
        if limits.error_after or limits.warn_after:
            raise_to("error", "no rows")
    elif limits.error_after and health.age_seconds > limits.error_after.total_seconds():
        raise_to("error", f"newest event older than {format_duration(limits.error_after)}")
    elif limits.warn_after and health.age_seconds > limits.warn_after.total_seconds():
        raise_to("warn", f"newest event older than {format_duration(limits.warn_after)}")


def compare_online(model: str, keys: Sequence[Mapping[str, Any]], features: Sequence[str],
                   online: Mapping[str, Sequence[Any]], offline: Mapping[str, Sequence[Any]]) -> Consistency:
    """The values one entity set got online and from a training set at the same instant, feature by feature."""
    result = Consistency(model, len(keys) * len(features))
    for feature in features:
        for index, key in enumerate(keys):
            served, trained = online[feature][index], offline[feature][index]
            if not _same(served, trained):
                result.mismatches.append({"feature": feature, "entity": dict(key), "online": _plain(served),
                                          "offline": _plain(trained)})
    return result


def _same(a: Any, b: Any) -> bool:
    """Same type, same value; floats bit for bit (0.0 is not -0.0; NaN is NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return value.isoformat() if isinstance(value, (datetime, date)) else str(value)


def _kind(sql_type: str | None) -> str:
    name = (sql_type or "").upper()
    if numeric_family(sql_type) is not None or name.startswith(("DECIMAL", "NUMERIC", "HUGEINT", "UBIGINT")):
        return "numeric"
    if name.startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "BOOL")):
        return "categorical"
    return "other"


def _count_if(condition: exp.Expression) -> exp.Expression:
    return exp.Count(this=exp.If(this=condition, true=exp.Literal.number(1)))


def _time(moment: datetime) -> exp.Expression:
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), "TIMESTAMP")


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # naive UTC, as skewless sessions hold times
        return value if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


def sample_keys(adapter: "WarehouseAdapter", node: ModelNode, count: int) -> list[dict[str, Any]]:
    """The join keys of the entities with the newest events: the ones the online store holds."""
    assert node.relation is not None and node.config.timestamp is not None
    keys = [quoted_column(k) for k in node.join_keys]
    query = (exp.select(*keys).from_(node.relation.copy()).group_by(*[k.copy() for k in keys])
             .order_by(exp.Ordered(this=exp.Max(this=quoted_column(node.config.timestamp)), desc=True),
                       *[k.copy() for k in keys]).limit(count))
    return [dict(zip(node.join_keys, row, strict=True)) for row in adapter.fetch_all(query)]


Reader = Callable[[Sequence[Mapping[str, Any]], Sequence[str], datetime], Mapping[str, Sequence[Any]]]
Newest = Callable[[str, Sequence[Mapping[str, Any]]], datetime | None]


def consistency(compiled: CompiledProject, adapter: "WarehouseAdapter", models: Iterable[str], count: int,
                online: Reader, offline: Reader, newest: Newest | None = None, at: datetime | None = None
                ) -> list[Consistency]:
    """For each online model: `count` entities read online and through a training set at one instant `at`
    (and, with `newest`, the newest event time their online values hold).

    A window model's features are merged at `at` on both sides, except its float sums and averages: they may
    differ in the last bits by the order of addition (the README's bound). A streamed window model is left out:
    online it holds the stream's events, which the warehouse gets later."""
    at = at or datetime.now(timezone.utc).replace(tzinfo=None)
    results = []
    for name in models:
        node = compiled.nodes[name]
        if not node.config.online or node.relation is None or not node.join_keys or node.config.stream:
            continue
        keys = sample_keys(adapter, node, count)
        if not keys:
            continue
        unordered = _order_dependent(node) if node.window is not None else []
        features = [feature for feature in node.features if feature not in unordered]
        check = compare_online(name, keys, features, online(keys, features, at), offline(keys, features, at))
        check.not_compared = unordered
        check.newest_online = newest(name, keys) if newest is not None else None
        results.append(check)
    return results


def _order_dependent(node: ModelNode) -> list[str]:
    """A window model's features whose value depends on the order of addition: sums and averages of floats."""
    assert node.window is not None and node.config.entity is not None
    return [feature.name for feature in node.window.features(node.config.entity)
            if feature.aggregation.function in ("sum", "avg") and feature.aggregation.column is not None
            and numeric_family(node.window.input_type(feature.aggregation.column)) == "float"]
