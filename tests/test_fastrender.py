"""The fast path renders exactly what Jinja renders, for every template it accepts."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.project.config import env_var
from skewless.project.fastrender import split_template
from skewless.project.rendering import Renderer, TargetInfo, builtin_macro_dir

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def renderer(fast: bool) -> Renderer:
    return Renderer(
        dialect="duckdb",
        variables={"large_amount": 250, "name": "x"},
        target=TargetInfo("dev", "duckdb", "features", "payments"),
        model_names=["a", "b", "stg"],
        sources=[("app", "events")],
        macro_dirs=[builtin_macro_dir(), EXAMPLE / "macros"],
        env_var=env_var,
        fast_path=fast,
    )


FAST, SLOW = renderer(True), renderer(False)

TAGS = [
    "ref('a')", "ref( 'b' )", 'ref("stg")', "source('app', 'events')", "this", "target",
    "config(materialized='view', tags=['x', 'y'], online=true, ttl=\"7d\")",
    "config(entity='user', timestamp='event_ts', meta={'k': 1, 'n': none})",
    "rolling_window('user_id', 'event_ts', '7d')", "var('large_amount')", "var('missing', -1.5)",
    "var('missing', [1, 2, (3, 4)])", "safe_divide('a', 'b')", "is_large_amount('amount')",
    "interval_literal('2h')", "skewless_missing_name()", "ref('a') ~ 'x'", "var('name') | upper",
    "config(x=1)", "'}}'", "var('missing', '\\\\n')", "config(materialized='view', materialized='table')",
    "ref('a', v=1, v=2)",
]
TEXT = st.sampled_from(["select ", "\n", " from ", "x, ", "-- note\n", "  ", "where 1 = 1\n", "'{ }' ", "",
                        "{{", "}}", "{", "}", "-- {{ c\n", "/* {{ */", "/* }} */", "'{{'", "{{ ", " }}"])
FRAGMENT = st.one_of(TEXT, st.sampled_from(TAGS).map(lambda t: "{{ " + t + " }}"),
                     st.sampled_from(TAGS).map(lambda t: "{{" + t + "}}"))


def render(r: Renderer, text: str, name: str = "m.sql"):
    try:
        result = r.render_model(Path(name), text)
        relations = sorted((k, v.kind, v.parts, v.line) for k, v in result.relations.items())
        return ("ok", result.sql, result.config, relations)
    except Exception as error:  # noqa: BLE001  (the two paths must fail alike too)
        return ("error", type(error).__name__, str(error).splitlines()[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENT, max_size=12).map("".join))
def test_fast_path_equals_jinja(text):
    assert render(FAST, text) == render(SLOW, text)


def test_most_example_models_take_the_fast_path():
    fast = [p.name for p in (EXAMPLE / "models").rglob("*.sql") if split_template(p.read_text()) is not None]
    assert len(fast) >= 7, fast


def test_fast_path_declines_what_it_cannot_do():
    for text in ["{% if x %}{% endif %}", "{{ a.b }}", "{{ f(x) }}", "{{- ref('a') }}", "{{ f(*xs) }}",
                 "{{ f('a\\n') }}", "{{ f(**k) }}", "{# c #}", "{{ f(r'x') }}", "{{ f(0x10) }}",
                 "select 1 -- {{ note\n", "{{ ref('a') }} {{ ref('b')", "{{ f(a=1, a=2) }}"]:
        assert split_template(text) is None, text


def test_error_location_from_the_fast_path():
    result = render(FAST, "select 1\nfrom {{ ref('nope') }}\n")
    assert result[0] == "error" and "m.sql:2" in result[2]
