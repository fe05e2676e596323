"""Parse rendered model SQL with sqlglot and map errors back to the model file's line and column."""

from __future__ import annotations

import difflib
import re
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
            f"SQL syntax error: {describe_parse_error(first.get('description', str(error)))}",
            sql, template, path, first.get("line"), first.get("col"), first.get("highlight"),
        ) from None
    except TokenError:
        raise _unclosed_error(sql, template, path, dialect) from None
    except Exception:  # noqa: BLE001  (the parser failing inside itself on unusual SQL is still the SQL's error)
        line, col, token = where_parser_stopped(sql, dialect) or (None, None, None)
        raise _located("SQL syntax error: the SQL parser cannot read the SQL here", sql, template, path, line, col,
                       token) from None
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


def where_parser_stopped(sql: str, dialect: str) -> tuple[int, int, str] | None:
    """(line, col, text) of the last token sqlglot's parser read before it failed inside itself (an exception
    other than ParseError, on unusual SQL): near what it cannot read. None if it does not fail that way."""
    from sqlglot.dialects.dialect import Dialect

    engine = Dialect.get_or_raise(dialect)
    parser = engine.parser()
    try:
        parser.parse(engine.tokenize(sql), sql)
    except Exception:  # noqa: BLE001
        token = getattr(parser, "_prev", None) or getattr(parser, "_curr", None)
        if token is not None:
            return token.line, token.col, token.text
    return None


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


_TOKEN = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, "
                    r"comments: \[.*?\]>")
_REQUIRED = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


def describe_parse_error(description: str) -> str:
    """sqlglot's parse error in the user's terms: no token reprs, no sqlglot class names."""
    description = _TOKEN.sub(_token_text, description)
    match = _REQUIRED.search(description)
    if match:
        description = _incomplete(match.group(2), match.group(1))
    return description


def _token_text(match: re.Match[str]) -> str:
    return "the end of the SQL" if match.group(1) == "SENTINEL" else f"`{match.group(2)}`"


def _incomplete(class_name: str, argument: str) -> str:
    """What a half-written expression is missing, named by what the user wrote."""
    node = getattr(exp, class_name, None)
    if isinstance(node, type) and issubclass(node, exp.Binary):
        side = "left" if argument == "this" else "right"
        return f"an operator is missing its {side}-hand operand"
    if isinstance(node, type) and issubclass(node, exp.Func):
        return f"{node.sql_name()}() is missing an argument"
    readable = {"Alias": "an alias has no expression before AS", "Aliases": "an alias list is empty",
                "Column": "a column name is missing", "Paren": "a pair of parentheses is empty",
                "Case": "a CASE has no WHEN branch"}
    return readable.get(class_name, f"an incomplete {class_name.lower()} expression (its {argument} is missing)")


def _unclosed_error(sql: str, template: str, path: Path, dialect: str) -> CompileError:
    """sqlglot's tokenizer says only that it failed: find the quote or comment that never closes."""
    found = unclosed_delimiter(sql, dialect)
    if found is None:
        return CompileError("SQL syntax error: the SQL could not be split into tokens", location=Location(path),
                            hint="look for an unclosed quote or comment")
    offset, opener, closer, what = found
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    t_line, t_col = map_position(sql, template, line, col, opener)
    inside = f", and double a {opener} that belongs inside it" if what != "a comment" else ""
    return CompileError(
        f"SQL syntax error: {what} opened by {opener} is never closed",
        location=Location(path, t_line, t_col),
        snippet=snippet_at(template, t_line, t_col),
        hint=f"close it with {closer}{inside}",
    )


def unclosed_delimiter(sql: str, dialect: str) -> tuple[int, str, str, str] | None:
    """(offset, opener, closer, 'a string' / 'a quoted name' / 'a comment') of the first delimiter left open, read with
    the dialect's own quote, identifier, comment and escape characters."""
    from sqlglot.dialects.dialect import Dialect

    tokenizer = Dialect.get_or_raise(dialect).tokenizer_class
    openers: dict[str, tuple[str, str]] = {}
    for opener, closer in tokenizer._QUOTES.items():
        openers[opener] = (closer, "a string")
    for opener, closer in tokenizer._IDENTIFIERS.items():
        openers[opener] = (closer, "a quoted name")
    for opener, closer in tokenizer._COMMENTS.items():
        if opener != "{#":
            openers[opener] = (closer or "\n", "a comment")
    if tokenizer.HEREDOC_STRINGS:
        openers["$$"] = ("$$", "a string")
    escapes = set(tokenizer._STRING_ESCAPES)
    ordered = sorted(openers, key=len, reverse=True)
    position = 0
    while position < len(sql):
        opener = next((o for o in ordered if sql.startswith(o, position)), None)
        if opener is None:
            position += 1
            continue
        closer, what = openers[opener]
        end = _closing(sql, position + len(opener), closer, escapes if what == "a string" else set())
        if end is None:
            return None if closer == "\n" else (position, opener, closer, what)
        position = end
    return None


def _closing(sql: str, start: int, closer: str, escapes: set[str]) -> int | None:
    """The offset just past `closer`, skipping escaped characters; None when it never comes."""
    position = start
    while position < len(sql):
        char = sql[position]
        if char in escapes and position + 1 < len(sql) and (sql[position + 1] == closer or char != closer):
            position += 2
            continue
        if sql.startswith(closer, position):
            return position + len(closer)
        position += 1
    return None
