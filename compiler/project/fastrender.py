"""A fast path for the commonest model templates: text and `{{ name(literal, ...) }}` tags, nothing else.

Compiling a Jinja template costs more than parsing its SQL (lexer, parser, code generator, Python compile), and
most models only call `config`, `ref`, `source` and macros with literal arguments. For those, the output is
exactly the text with each tag replaced by `str(name(*args, **kwargs))`, which is what Jinja computes too.
Anything else (blocks, filters, attributes, operators, whitespace control, escapes in strings, names that are
not defined) returns None and the caller uses Jinja; a differential test keeps the two in agreement.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
_NUMBER = re.compile(r"-?\d+(\.\d+)?$")
_CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}


@dataclass(frozen=True)
class Tag:
    """One `{{ ... }}`: a call of a global with literal arguments, or a bare global name."""

    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    is_call: bool
    line: int
    col: int


def split_template(text: str) -> list[str | Tag] | None:
    """The template as literal text and tags, or None when it needs full Jinja."""
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    parts: list[str | Tag] = []
    position = 0
    for match in _TAG.finditer(text):
        inner = match.group(1)
        if inner[:1] in "-+" or inner[-1:] in "-+" or "{{" in inner:
            return None
        tag = _parse_tag(inner.strip(), text, match.start())
        if tag is None:
            return None
        parts.append(text[position:match.start()])
        parts.append(tag)
        position = match.end()
    parts.append(text[position:])
    if any(isinstance(part, str) and "{{" in part for part in parts):
        return None  # an unclosed `{{` (in a SQL comment too): Jinja reports it
    return parts


def render_parts(
    parts: list[str | Tag], namespace: Mapping[str, Any], on_tag: Callable[[Tag], None]
) -> str | None:
    """Evaluate the tags against `namespace`; None when a name is not defined there (Jinja reports it)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if part.name not in namespace:
            return None
        value = namespace[part.name]
        on_tag(part)
        if part.is_call:
            value = value(*part.args, **dict(part.kwargs))
        out.append(str(value))
    return "".join(out)


def _parse_tag(source: str, text: str, offset: int) -> Tag | None:
    parsed = _parse_expression(source)
    if parsed is None:
        return None
    name, args, kwargs, is_call = parsed
    if any(isinstance(v, (list, dict)) for v in [*args, *(v for _, v in kwargs)]):
        args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)  # the cache's values stay unshared
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Tag(name, args, kwargs, is_call, line, col)


@functools.lru_cache(maxsize=4096)
def _parse_expression(source: str) -> tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...], bool] | None:
    """(name, args, kwargs, is_call) of a tag's expression; the same tag text recurs across many models."""
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Name) and node.id not in _CONSTANTS:
        return node.id, (), (), False
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.func.id in _CONSTANTS:
        return None
    lines = source.splitlines()
    try:
        args = tuple(_literal(arg, lines) for arg in node.args)
        kwargs = tuple((kw.arg, _literal(kw.value, lines)) for kw in node.keywords if kw.arg is not None)
    except ValueError:
        return None
    if len(kwargs) != len(node.keywords) or len({name for name, _ in kwargs}) != len(kwargs):
        return None  # a keyword given twice: Jinja's error (Python's parser lets it through)
    return node.func.id, args, kwargs, True


def _segment(node: ast.expr, lines: list[str]) -> str:
    """The source text of a node (ast.get_source_segment without re-splitting the source each time)."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    if first == last:
        return lines[first].encode()[node.col_offset:node.end_col_offset].decode()
    parts = [lines[first].encode()[node.col_offset:].decode(), *lines[first + 1:last],
             lines[last].encode()[:node.end_col_offset].decode()]
    return "\n".join(parts)


def _literal(node: ast.expr, lines: list[str]) -> Any:
    """A Jinja literal with the same meaning in Python, or ValueError."""
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    segment = _segment(node, lines)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if segment[:1] not in ("'", '"') or "\\" in segment or segment[:3] in ("'''", '"""'):
            raise ValueError(segment)
        return node.value
    if isinstance(node, (ast.Constant, ast.UnaryOp)) and _NUMBER.match(segment.replace(" ", "")):
        value = ast.literal_eval(node)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(item, lines) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        pairs = zip(node.keys, node.values, strict=True)
        return {_literal(k, lines): _literal(v, lines) for k, v in pairs}  # type: ignore[arg-type]
    raise ValueError(segment)
