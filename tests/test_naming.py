"""project/naming.py: the entity__feature__window convention, with the window read from the SQL (RANGE frames by
hand or by the window macros, through CTEs, subqueries and other models), at the project's severity."""

from __future__ import annotations

import pytest
from conftest import TYPED_SOURCES

from skewless import Project
from skewless.core.errors import CompileError, ProjectError

HEAD = "{{ config(entity='user', timestamp='event_ts') }}\n"
RANGE = "over (partition by user_id order by event_ts range between interval {n} day preceding and current row)"
SOURCE = "{{ source('app', 'events') }}"


def _model(select: str) -> dict[str, str]:
    return {"models/m.sql": HEAD + select}


CASES = [
    # (files, the issue expected: None, or (feature, words of the message, expected name))
    (_model(f"select user_id, event_ts, sum(amount) {RANGE.format(n=7)} as user__amount_sum__7d from {SOURCE}"),
     None),
    (_model(f"select user_id, event_ts, sum(amount) {RANGE.format(n=30)} as user__amount_sum__7d from {SOURCE}"),
     ("user__amount_sum__7d", "computes over 30d", "user__amount_sum__30d")),
    (_model("select user_id, event_ts, {{ rolling('sum(amount)', 'user_id', 'event_ts', '30d') }} "
            f"as user__amount_sum__7d from {SOURCE}"),
     ("user__amount_sum__7d", "computes over 30d", "user__amount_sum__30d")),
    (_model(f"with w as (select user_id, event_ts, sum(amount) {RANGE.format(n=30)} as s from {SOURCE}) "
            "select user_id, event_ts, s as user__amount_sum__7d from w"),
     ("user__amount_sum__7d", "computes over 30d", "user__amount_sum__30d")),
    (_model(f"select user_id, event_ts, s as user__amount_sum__7d from (select user_id, event_ts, "
            f"sum(amount) {RANGE.format(n=30)} as s from {SOURCE}) as inner_rows"),
     ("user__amount_sum__7d", "computes over 30d", "user__amount_sum__30d")),
    ({"models/base.sql": "{{ config(materialized='ephemeral') }}\n"
                         f"select user_id, event_ts, sum(amount) {RANGE.format(n=30)} as s from {SOURCE}",
      "models/m.sql": HEAD + "select user_id, event_ts, s as user__amount_sum__7d from {{ ref('base') }}"},
     ("user__amount_sum__7d", "computes over 30d", "user__amount_sum__30d")),
    (_model(f"select user_id, event_ts, sum(amount) {RANGE.format(n=7)} as amount_sum__7d from {SOURCE}"),
     ("amount_sum__7d", "does not start with its entity's name", "user__amount_sum__7d")),
    (_model(f"select user_id, event_ts, sum(amount) {RANGE.format(n=7)} as user__amount_sum from {SOURCE}"),
     ("user__amount_sum", "7d window its name does not show", "user__amount_sum__7d")),
    (_model(f"select user_id, event_ts, amount as user__last_amount from {SOURCE}"), None),
    (_model(f"select user_id, event_ts, sum(amount) {RANGE.format(n=7)} / nullif(sum(amount) "
            f"{RANGE.format(n=30)}, 0) as user__amount_share__7d from {SOURCE}"), None),
    ({**_model("{{ window_agg(source('app', 'events'), aggs=[('amount', 'sum')], windows=['1h', '1d'], "
               "hop='5m') }}"),
      "sources.yml": TYPED_SOURCES},
     None),
]


@pytest.mark.parametrize(("files", "issue"), CASES)
def test_a_window_suffix_names_the_window_the_sql_computes_over(make_project, files, issue):
    root = make_project({**files, "skewless_project.yml": _project_yml("warn")})
    compiled = Project(root).compile()
    naming = [w for w in compiled.warnings if "naming convention" in w]
    if issue is None:
        assert naming == []
        return
    feature, words, expected = issue
    assert len(naming) == 1, naming
    assert f"feature {feature!r}" in naming[0] and words in naming[0] and f"expected name: {expected}" in naming[0]
    text = (root / "models" / "m.sql").read_text()
    line = text[:text.index(f" {feature}") + 1].count("\n") + 1
    assert f"m.sql:{line}:" in naming[0]


def test_naming_error_fails_the_compile_with_the_place_and_the_expected_name(make_project):
    root = make_project({**_model(f"select user_id, event_ts, count(*) {RANGE.format(n=30)} as user__txn_count__7d "
                                  f"from {SOURCE}"), "skewless_project.yml": _project_yml("error")})
    with pytest.raises(CompileError) as raised:
        Project(root).compile()
    error = raised.value
    assert error.location is not None and error.location.line == 2 and str(error.location.path).endswith("m.sql")
    assert "rename it user__txn_count__30d" in (error.hint or "")


def test_naming_off_skips_the_check(make_project):
    root = make_project({**_model(f"select user_id, event_ts, count(*) {RANGE.format(n=30)} as txn_count "
                                  f"from {SOURCE}"), "skewless_project.yml": _project_yml("off")})
    assert not [w for w in Project(root).compile().warnings if "naming convention" in w]


def test_an_unknown_severity_is_a_located_error(make_project):
    root = make_project({"skewless_project.yml": _project_yml("strict")})
    with pytest.raises(ProjectError) as raised:
        Project(root)
    assert "naming must be one of error, warn, off" in str(raised.value)
    assert raised.value.location is not None and raised.value.location.line is not None


def test_the_example_project_follows_the_convention_at_error():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "example_project"
    assert "naming: error" in (example / "skewless_project.yml").read_text()
    Project(example).compile()


def _project_yml(severity: str) -> str:
    return f"""\
        name: mini
        version: "1"
        naming: {severity}
        online_store:
          url: "{{{{ env_var('SKEWLESS_REDIS_URL', '') }}}}"
        defaults:
          materialized: feature_table
    """
