from pathlib import Path

import pytest

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
