"""Parse rendered model SQL with sqlglot and map errors back to the model file's line and column."""

from __future__ import annotations

import difflib
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from skewless.core.errors import CompileError, Location, snippet_at


def parse_query(sql: str, *, dialect: str, path: Path, template: str) -> exp.Query:
    """Exactly one SELECT (or set operation) per model; anything else is a CompileError at file:line:col."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        raise _located(
            f"SQL syntax error: {first.get('description', str(error))}",
            sql, template, path, first.get("line"), first.get("col"), first.get("highlight"),
        ) from None
    except TokenError as error:
        raise CompileError(f"SQL syntax error: {error}", location=Location(path),
                           hint="look for an unclosed quote or comment") from None
    if not statements:
        raise CompileError("the model is empty: write one SELECT statement", location=Location(path, 1, 1))
    if len(statements) > 1:
        raise CompileError(
            f"a model holds one SELECT statement, found {len(statements)} statements",
            location=Location(path, 1, 1),
            hint="remove the extra statements (and any trailing ';' followed by more SQL)",
        )
    query = statements[0]
    # Token positions are only needed while parsing; dropping them halves the cost of every later tree copy.
    for node in query.walk():
        node._meta = None
    if not isinstance(query, exp.Query):
        raise CompileError(
            f"a model must be a SELECT query, found {query.key.upper()}",
            location=Location(path, 1, 1),
            hint="skewless writes the DDL itself: keep only the SELECT",
        )
    return query


def _located(
    message: str, sql: str, template: str, path: Path, line: int | None, col: int | None, token: str | None
) -> CompileError:
    """An error at the template position that produced rendered (line, col)."""
    if line is None:
        return CompileError(message, location=Location(path))
    if token and col:  # sqlglot reports the column where the offending token ends
        col = max(1, col - len(token) + 1)
    t_line, t_col = map_position(sql, template, line, col or 1, token)
    return CompileError(
        message,
        location=Location(path, t_line, t_col),
        snippet=snippet_at(template, t_line, t_col),
        hint="fix the SQL at the marked place (the rendered SQL is what `skewless compile` checks)",
    )


def map_position(rendered: str, template: str, line: int, col: int, token: str | None = None) -> tuple[int, int]:
    """Map a (line, col) in rendered SQL to the template by aligning their lines.

    Lines that Jinja left unchanged map one to one; inside a changed block, the token is looked for in the
    corresponding template lines, so `{{ config() }}` blocks and macro expansions do not shift positions.
    """
    r_lines, t_lines = rendered.splitlines(), template.splitlines()
    index = line - 1
    matcher = difflib.SequenceMatcher(a=r_lines, b=t_lines, autojunk=False)
    for tag, r1, r2, t1, t2 in matcher.get_opcodes():
        if not r1 <= index < r2:
            continue
        if tag == "equal":
            return t1 + (index - r1) + 1, col
        candidates = range(t1, max(t2, t1 + 1))
        if token:
            for t_index in candidates:
                if t_index < len(t_lines) and token in t_lines[t_index]:
                    return t_index + 1, t_lines[t_index].index(token) + 1
        t_index = min(t1 + (index - r1), max(t1, t2 - 1))
        return min(t_index, max(0, len(t_lines) - 1)) + 1, col
    return line, col
