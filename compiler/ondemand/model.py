"""On-demand features: SQL expressions over request fields and stored features, computed per request online and
in the training-set query offline, from the one sqlglot expression.

Both paths bring every input to its declared type first (a CAST in the training query, the same conversion in
Python online), then compute the expression with the warehouse's semantics (see evaluator.py), so a value served
is the value trained on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

from skewless.core.errors import CompileError, Location, SkewlessError, did_you_mean

from . import sqltypes as st
from .evaluator import CompiledExpression, Unsupported, compile_expression
from .sqltypes import SqlType


@dataclass(frozen=True)
class OnDemandFeature:
    """One output column of an on-demand model."""

    name: str
    model: str
    expression: exp.Expression  # in the project's dialect, reading inputs and request fields by bare name
    inputs: Mapping[str, SqlType]  # stored features it reads, with the type they are brought to
    request: Mapping[str, SqlType]  # request fields it reads (entity rows online, spine columns offline)
    type: SqlType
    dialect: str

    @property
    def sql(self) -> str:
        return self.expression.sql(dialect=self.dialect)

    def offline(self, inputs: Mapping[str, exp.Expression], request: Mapping[str, exp.Expression]) -> exp.Expression:
        """The expression for a training-set query: each input and request field replaced by the given
        expression, cast to its declared type."""
        def replace(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table:
                name = node.name
                if name in self.inputs:
                    return exp.cast(inputs[name].copy(), _datatype(self.inputs[name]))
                if name in self.request:
                    return exp.cast(request[name].copy(), _datatype(self.request[name]))
            return node

        return self.expression.copy().transform(replace, copy=False)

    def evaluator(self) -> "OnlineExpression":
        return OnlineExpression(self)


def _datatype(kind: SqlType) -> exp.DataType:
    return exp.DataType.build(str(kind))


@dataclass(frozen=True)
class OnDemandModel:
    name: str
    features: tuple[OnDemandFeature, ...]
    inputs: Mapping[str, SqlType]
    request: Mapping[str, SqlType]


def _python_type(value: Any) -> SqlType:
    """The type of a value read from the online store, as the warehouse held it."""
    if isinstance(value, bool):
        return st.BOOLEAN
    if isinstance(value, int):
        return st.BIGINT
    if isinstance(value, float):
        return st.DOUBLE
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return SqlType("DECIMAL", 38, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    if isinstance(value, str):
        return st.VARCHAR
    if isinstance(value, datetime):
        return st.TIMESTAMP
    if isinstance(value, date):
        return st.DATE
    raise st.EvaluationError(f"unsupported value {value!r}")


class OnlineExpression:
    """An on-demand feature compiled for serving: inputs as stored, request values as sent, then the expression."""

    def __init__(self, feature: OnDemandFeature) -> None:
        self.feature = feature
        self.input_names = list(feature.inputs)
        self.request_names = list(feature.request)
        columns = {**feature.inputs, **feature.request}
        self.compiled: CompiledExpression = compile_expression(feature.expression, columns)
        self._input_types = [feature.inputs[n] for n in self.input_names]
        self._request_types = [feature.request[n] for n in self.request_names]

    def __call__(self, inputs: Sequence[Any], request: Mapping[str, Any]) -> Any:
        """`inputs`: values of the stored features, in `input_names` order; `request`: the entity row."""
        row: list[Any] = []
        try:
            for value, kind in zip(inputs, self._input_types, strict=True):
                if isinstance(value, datetime) and value.tzinfo is not None:  # TIMESTAMPTZ: UTC, as the session
                    value = value.astimezone(timezone.utc).replace(tzinfo=None)
                row.append(None if value is None else st.cast(value, _python_type(value), kind))
            for name, kind in zip(self.request_names, self._request_types, strict=True):
                try:
                    row.append(st.python_value(request[name], kind))
                except (ValueError, TypeError, OverflowError) as error:  # a request value that is no such type
                    raise st.EvaluationError(f"request field {name!r}: {request[name]!r} is not a {kind}: "
                                             f"{error}") from None
            return self.compiled(row)
        except st.EvaluationError as error:
            raise SkewlessError(f"on-demand feature {self.feature.name!r}: {error}",
                                hint="the training-set query fails on the same values") from None


# -- compiling an on-demand model ----------------------------------------------------------------------------


def parse_types(values: Mapping[str, Any], what: str, where: Location) -> dict[str, SqlType]:
    result = {}
    for name, text in values.items():
        try:
            result[str(name)] = st.parse_type(str(text))
        except st.UnsupportedType as error:
            raise CompileError(f"{what} {name!r}: {error}", location=where) from None
    return result


def compile_model(
    name: str, query: exp.Query, dialect: str, request: Mapping[str, SqlType],
    declared_inputs: Mapping[str, SqlType | None] | None, feature_types: Mapping[str, str | None],
    path: Any, text: str,
) -> OnDemandModel:
    """Check an on-demand model's SELECT and compile each of its expressions.

    `feature_types`: every stored feature of the project with its known type (None when not known before a run).
    """
    where = Location(path, *_find(text, r"\bselect\b"))
    if not isinstance(query, exp.Select) or any(
        query.args.get(k) for k in ("from_", "from", "joins", "where", "group", "having", "qualify", "order", "limit",
                                    "with", "distinct")
    ):
        raise CompileError(
            "an on-demand model is one SELECT of expressions, without FROM, WHERE, GROUP BY or WITH",
            location=where,
            hint="e.g. select amount / nullif(user__amount_avg__30d, 0) as payment__amount_ratio",
        )
    features = []
    used_inputs: dict[str, SqlType] = {}
    for projection in query.expressions:
        alias = projection.alias
        if not alias or not isinstance(projection, exp.Alias):
            raise CompileError("every expression of an on-demand model needs a name: `... as entity__feature`",
                               location=Location(path, *_find(text, re.escape(projection.sql(dialect=dialect)[:20]))))
        located = Location(path, *_find(text, rf"\b{re.escape(alias)}\b"))
        if any(f.name == alias for f in features):
            raise CompileError(f"two expressions are named {alias!r}: one would silently replace the other",
                               location=located, hint="give each on-demand feature its own name")
        expression = projection.this
        inputs: dict[str, SqlType] = {}
        reads: dict[str, SqlType] = {}
        for column in expression.find_all(exp.Column):
            column_name = column.name
            if column.table:
                raise CompileError(f"{alias}: write {column_name!r} without a table name", location=located)
            if column_name in request:
                reads[column_name] = request[column_name]
                continue
            if declared_inputs is not None and column_name not in declared_inputs:
                raise CompileError(
                    f"{alias} reads {column_name!r}, which is neither a request field nor a declared input",
                    location=located, hint="add it to inputs=[...] or request_fields={...} in config()",
                )
            if column_name not in feature_types:
                raise CompileError(
                    f"{alias} reads {column_name!r}: no feature or request field has that name",
                    location=located,
                    hint=did_you_mean(column_name, [*feature_types, *request]) or
                    "declare request fields with request_fields={'name': 'type'}",
                )
            kind = (declared_inputs or {}).get(column_name)
            if kind is None:
                known = feature_types[column_name]
                try:
                    kind = st.parse_type(known) if known else None
                except st.UnsupportedType:
                    kind = None
            if kind is None:
                raise CompileError(
                    f"{alias} reads {column_name!r}, whose type is not known before a run",
                    location=located,
                    hint=f"declare it: inputs={{'{column_name}': 'double'}} (the type both paths bring it to)",
                )
            inputs[column_name] = kind
        try:
            compiled = compile_expression(expression, {**inputs, **reads})
        except Unsupported as error:
            raise CompileError(f"on-demand feature {alias!r}: {error}", location=located,
                               hint="on-demand expressions use the SQL both paths compute alike; see "
                                    "docs/on_demand.md for what is supported") from None
        used_inputs.update(inputs)
        features.append(OnDemandFeature(alias, name, expression, inputs, reads, compiled.type, EVALUATOR_DIALECT))
    if declared_inputs is not None:
        unused = [i for i in declared_inputs if i not in used_inputs]
        missing = [i for i in unused if i not in feature_types]
        if missing:
            raise CompileError(f"inputs names unknown feature {missing[0]!r}", location=where,
                               hint=did_you_mean(missing[0], list(feature_types)) or "`skewless ls` lists features")
    return OnDemandModel(name, tuple(features), used_inputs, {n: t for n, t in request.items()})


# On-demand expressions are evaluated with DuckDB's semantics online (and offline on every engine): the manifest
# writes them in DuckDB's dialect, whatever the target's, so that reading them back never changes their meaning.
EVALUATOR_DIALECT = "duckdb"


def _find(text: str, pattern: str) -> tuple[int | None, int | None]:
    """Line and column of the last match of pattern outside comments (where the SELECT's parts are)."""
    found: tuple[int | None, int | None] = (None, None)
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("--"):
            continue
        match = re.search(pattern, line, re.IGNORECASE)
        if match:
            found = (number, match.start() + 1)
    return found


def feature_from_json(name: str, entry: Mapping[str, Any], dialect: str = "duckdb") -> OnDemandFeature:
    """An on-demand feature as the manifest describes it (what the feature server loads). The manifest holds the
    expression in the evaluator's dialect whatever the target (`dialect` is the target's, not used for it)."""
    dialect = EVALUATOR_DIALECT
    expression = sqlglot.parse_one(entry["expression"], read=dialect)
    return OnDemandFeature(
        name=name, model=entry["model"].split(".", 1)[-1], expression=expression,
        inputs={k: st.parse_type(v) for k, v in entry["inputs"].items()},
        request={k: st.parse_type(v) for k, v in entry["request_fields"].items()},
        type=st.parse_type(entry["type"]) if entry.get("type") else st.NULL, dialect=dialect,
    )


def feature_to_json(feature: OnDemandFeature) -> dict[str, Any]:
    return {
        "expression": feature.sql,
        "inputs": {k: str(v) for k, v in feature.inputs.items()},
        "request_fields": {k: str(v) for k, v in feature.request.items()},
    }
