"""The Jinja layer: macros, overrides, dispatch, is_incremental, vars, env_var."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from skewless import FeatureStore
from skewless.core.errors import CompileError
from skewless.project.config import env_var
from skewless.project.rendering import Renderer, RenderLimits, TargetInfo, builtin_macro_dir


def compiled_sql(root, model: str, dialect: str | None = None) -> str:
    return FeatureStore(root).compile(write=False).sql(model, dialect=dialect, pretty=False)


def test_builtin_macro_renders_dialect_interval(make_project):
    root = make_project({"models/w.sql": """\
        select user_id, event_ts, count(*) {{ rolling_window('user_id', 'event_ts', '7d') }} as c
        from {{ source('app', 'events') }}
    """})
    sql = compiled_sql(root, "w")
    assert "RANGE BETWEEN INTERVAL '7' DAY PRECEDING AND CURRENT ROW" in sql.upper()


def test_project_macro_overrides_builtin_but_skewless_namespace_reaches_it(make_project):
    root = make_project({
        "macros/math.sql": "{% macro safe_divide(a, b) %}({{ a }}) / ({{ b }} + 0.5){% endmacro %}",
        "models/m.sql": "select {{ safe_divide('1', '2') }} as x, {{ skewless.safe_divide('3', '4') }} as y\n",
    })
    sql = compiled_sql(root, "m")
    assert "(1) / (2 + 0.5) AS x" in sql
    assert "(3) / NULLIF(4, 0) AS y" in sql


def test_dispatch_prefers_dialect_variant_and_lists_searched_names(make_project):
    root = make_project({
        "macros/greet.sql": """\
            {% macro default__greet() %}'default'{% endmacro %}
            {% macro duckdb__greet() %}'duckdb'{% endmacro %}
            {% macro default__only() %}'only default'{% endmacro %}
        """,
        "models/m.sql": "select {{ greet() }} as a, {{ only() }} as b, {{ adapter.dispatch('greet')() }} as c\n",
    })
    sql = compiled_sql(root, "m")
    assert "'duckdb' AS a" in sql and "'only default' AS b" in sql and "'duckdb' AS c" in sql
    bad = make_project({"models/m.sql": "select {{ adapter.dispatch('nothing')() }} as a\n"}, name="bad")
    with pytest.raises(CompileError, match="searched duckdb__nothing, default__nothing, nothing"):
        FeatureStore(bad).compile(write=False)


def test_macros_can_call_each_other_across_files(make_project):
    root = make_project({
        "macros/a.sql": "{% macro outer(x) %}{{ inner(x) }} + 1{% endmacro %}",
        "macros/b.sql": "{% macro inner(x) %}{{ x }} * 2{% endmacro %}",
        "models/m.sql": "select {{ outer('5') }} as v\n",
    })
    assert "5 * 2 + 1 AS v" in compiled_sql(root, "m")


def test_is_incremental_renders_both_variants(make_project):
    root = make_project({"models/inc.sql": """\
        {{ config(materialized='incremental', unique_key='user_id') }}
        select user_id, event_ts from {{ source('app', 'events') }}
        {% if is_incremental() %} where event_ts > (select max(event_ts) from {{ this }}) {% endif %}
    """})
    node = FeatureStore(root).compile(write=False).nodes["inc"]
    assert "WHERE" not in node.query.sql()
    assert 'FROM "features"."inc"' in node.incremental_query.sql()


def test_incremental_since_macro_uses_this_and_lookback(make_project):
    root = make_project({"models/inc.sql": """\
        {{ config(materialized='incremental') }}
        select user_id, event_ts from {{ source('app', 'events') }}
        {{ incremental_since('event_ts', lookback='1h') }}
    """})
    node = FeatureStore(root).compile(write=False).nodes["inc"]
    assert node.incremental_query.sql(dialect="duckdb") .endswith(
        """WHERE event_ts > (SELECT MAX(event_ts) FROM "features"."inc") - INTERVAL '1' HOUR""")


def test_vars_and_overrides(make_project):
    root = make_project({
        "skewless_project.yml": "name: mini\nvars:\n  threshold: 10\n",
        "models/m.sql": "select {{ var('threshold') }} as t, {{ var('missing', 3) }} as d\n",
    })
    assert "10 AS t, 3 AS d" in compiled_sql(root, "m")
    assert "99 AS t" in FeatureStore(root, vars={"threshold": 99}).compile(write=False).sql("m", pretty=False)


def test_undefined_var_is_a_located_error(make_project):
    root = make_project({"models/m.sql": "\nselect {{ var('treshold') }} as t\n"})
    with pytest.raises(CompileError) as info:
        FeatureStore(root).compile(write=False)
    assert info.value.location.line == 2
    assert "var('treshold') is not defined" in str(info.value)


def test_env_var_in_model_and_profile(make_project, monkeypatch):
    root = make_project({"models/m.sql": "select '{{ env_var(\"SKW_TEST_VALUE\", \"fallback\") }}' as v\n"})
    assert "'fallback' AS v" in compiled_sql(root, "m")
    monkeypatch.setenv("SKW_TEST_VALUE", "set")
    assert "'set' AS v" in compiled_sql(root, "m")


def test_target_is_visible(make_project):
    root = make_project({"models/m.sql": "select '{{ target.name }}/{{ target.type }}/{{ target.schema }}' as t\n"})
    assert "'dev/duckdb/features' AS t" in compiled_sql(root, "m")


def test_sandbox_blocks_python_internals(make_project):
    root = make_project({"models/m.sql": "select '{{ ''.__class__.__mro__ }}' as t\n"})
    with pytest.raises(CompileError):
        FeatureStore(root).compile(write=False)


def test_ephemeral_chain_is_inlined_once_in_order(make_project):
    root = make_project({
        "models/e1.sql": "{{ config(materialized='ephemeral') }}\n"
                         "select user_id, amount from {{ source('app', 'events') }}\n",
        "models/e2.sql": "{{ config(materialized='ephemeral') }}\n"
                         "select user_id, amount * 2 as a2 from {{ ref('e1') }}\n",
        "models/final.sql": "select e2.user_id, e2.a2, e1.amount\n"
                            "from {{ ref('e2') }} as e2 join {{ ref('e1') }} as e1 using (user_id)\n",
    })
    sql = compiled_sql(root, "final")
    assert sql.count('"__skewless_cte__e1" AS (') == 1
    assert sql.index('"__skewless_cte__e1" AS') < sql.index('"__skewless_cte__e2" AS')


LIMITED = RenderLimits(seconds=0.5, chars=100_000)


def limited_renderer() -> Renderer:
    return Renderer(dialect="duckdb", variables={}, target=TargetInfo("dev", "duckdb", "f", "p"), model_names=[],
                    sources=[], macro_dirs=[builtin_macro_dir()], env_var=env_var, limits=LIMITED)


@pytest.mark.parametrize(("template", "words"), [
    ("select 1\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "took more than 0.5 s"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "more than 100,000"),
    ("select '{{ 'x' * 1000000000 }}'", "repeating a value 1000000000 times"),
    ("select {{ [1] * 1000000000 }}", "repeating a value 1000000000 times"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}select {{ f(1) }}", "calls itself without end"),
])
def test_rendering_is_bounded_in_time_and_size(template, words):
    started = time.monotonic()
    with pytest.raises(CompileError) as info:
        limited_renderer().render_model(Path("m.sql"), template)
    assert words in info.value.message
    assert str(info.value.location.path) == "m.sql"
    assert time.monotonic() - started < 5


def test_the_limits_leave_ordinary_loops_alone():
    template = "select {% for i in range(2000) %}{{ i }} as c{{ i }}{{ ', ' if not loop.last }}{% endfor %}"
    assert "c1999" in limited_renderer().render_model(Path("m.sql"), template).sql
