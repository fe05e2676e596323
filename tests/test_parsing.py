import re
from pathlib import Path

import pytest
import sqlglot

from skewless.core.errors import CompileError
from skewless.project.parsing import map_position, parse_query


def test_equal_lines_map_one_to_one():
    template = "select a,\n  b\nfrom t\n"
    assert map_position(template, template, 2, 3) == (2, 3)


def test_removed_config_block_shifts_lines_back():
    template = "{{ config(\n  entity='user'\n) }}\nselect a\nfrom t\nwhere (x\n"
    rendered = "\nselect a\nfrom t\nwhere (x\n"
    assert map_position(rendered, template, 4, 8, "x") == (6, 8)


def test_expanded_macro_finds_token_in_template_line():
    template = "select {{ m() }}, bad token\nfrom t\n"
    rendered = "select 1 + 2 + 3, bad token\nfrom t\n"
    assert map_position(rendered, template, 1, 22, "token") == (1, 23)


def test_parse_error_has_template_location():
    with pytest.raises(CompileError) as info:
        parse_query("\nselect (a from t", dialect="duckdb", path=Path("m.sql"),
                    template="{{ config() }}\nselect (a from t")
    assert (info.value.location.line, info.value.location.col) == (2, 11)


def test_non_select_rejected():
    with pytest.raises(CompileError, match="must be a SELECT"):
        parse_query("create table x (a int)", dialect="duckdb", path=Path("m.sql"), template="")


# -- the class: every way of breaking a model's SQL gets a located message in the user's terms --------------------

# Models written as SQL (a window_agg() model has none of its own: its arguments are checked by the compiler).
MODELS = Path(__file__).resolve().parent.parent / "example_project" / "models"
EXAMPLE_MODELS = sorted(p for p in MODELS.rglob("*.sql") if "window_agg(" not in p.read_text())
INTERNALS = re.compile(r"<Token|<class|TokenType|SENTINEL|sqlglot|Traceback|Error tokenizing|expressions\.")
INSERTIONS = ["from ", "( ", ", ", "'", '"', "select ", "case ", "/* ", "+ ", "as "]


def _plain_sql(text: str) -> str:
    text = re.sub(r"\{\{\s*config.*?\}\}", "", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", "x", text, flags=re.S)
    return re.sub(r"\{%.*?%\}", "", text, flags=re.S)


def _broken_variants(sql: str):
    """Each token cut off after, deleted, or preceded by a stray token."""
    for token in sqlglot.tokenize(sql, read="duckdb"):
        yield sql[:token.end + 1]
        yield sql[:token.start] + sql[token.end + 1:]
        for insertion in INSERTIONS:
            yield sql[:token.start] + insertion + sql[token.start:]


@pytest.mark.parametrize("model", EXAMPLE_MODELS, ids=lambda p: p.stem)
def test_broken_sql_is_located_and_worded_for_users(model):
    sql = _plain_sql(model.read_text())
    seen = 0
    for variant in _broken_variants(sql):
        for dialect in ("duckdb", "postgres", "spark"):
            try:
                parse_query(variant, dialect=dialect, path=Path("m.sql"), template=variant)
            except CompileError as error:
                seen += 1
                assert not INTERNALS.search(error.message), (variant, error.message)
                assert error.location is not None and error.location.line and error.location.col, (variant, error)
    assert seen > 50


@pytest.mark.parametrize(("sql", "dialect", "where", "words"), [
    ("select 1,\n   'abc as x from t", "duckdb", (2, 4), "a string opened by ' is never closed"),
    ("select 1,\n   'it''s as x from t", "duckdb", (2, 4), "a string opened by ' is never closed"),
    ("select 'a\\'b' as x,\n \"y from t", "spark", (2, 2), "a string opened by \" is never closed"),
    ("select \"abc from t", "duckdb", (1, 8), "a quoted name opened by \" is never closed"),
    ("select `abc from t", "spark", (1, 8), "a quoted name opened by ` is never closed"),
    ("select 1 -- fine\n, 2 /* abc", "postgres", (2, 5), "a comment opened by /* is never closed"),
    ("select $$abc", "postgres", (1, 8), "a string opened by $$ is never closed"),
    ("select 1 as x from", "duckdb", (1, 15), "Expected table name but got the end of the SQL"),
    ("select 1 + from t", "duckdb", (1, 12), "an operator is missing its right-hand operand"),
])
def test_unclosed_and_incomplete_sql_messages(sql, dialect, where, words):
    with pytest.raises(CompileError) as info:
        parse_query(sql, dialect=dialect, path=Path("m.sql"), template=sql)
    assert words in info.value.message
    assert (info.value.location.line, info.value.location.col) == where
