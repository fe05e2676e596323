"""Every kind of bad input gets a clear message naming file:line:col, exit code 2, and nothing half-written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlglot
from click.testing import CliRunner

from skewless import CompileError, FeatureStore, SkewlessError
from skewless.cli.main import cli


def compile_error(root: Path) -> str:
    result = CliRunner().invoke(cli, ["compile", "--project-dir", str(root)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (root / "target" / "manifest.json").exists(), "a failed compile must not write a manifest"
    return result.output


def location(output: str, file: str) -> tuple[int, int]:
    match = re.search(re.escape(file) + r":(\d+):(\d+)", output)
    assert match, f"no {file}:line:col in:\n{output}"
    return int(match.group(1)), int(match.group(2))


def test_jinja_syntax_error(make_project):
    root = make_project({"models/bad.sql": "select 1 as x\n{% if %}\nfrom t\n"})
    output = compile_error(root)
    assert "Jinja syntax error" in output
    assert location(output, "bad.sql") == (2, 1)


def test_sql_syntax_error_maps_through_config_block(make_project):
    model = """\
        {{ config(
            entity='user',
            timestamp='event_ts',
        ) }}
        select user_id, event_ts,
            amount as user__x__1d
        from {{ source('app', 'events') }}
        where (amount > 1
    """
    root = make_project({"models/user_amounts.sql": model})
    output = compile_error(root)
    assert "SQL syntax error" in output
    line, _ = location(output, "user_amounts.sql")
    assert line == 8
    assert "where (amount > 1" in output  # the snippet shows the model's own line


def test_sql_error_column_points_at_token(make_project):
    root = make_project({"models/bad.sql": "select a,\n  b c d\nfrom t\n"})
    output = compile_error(root)
    assert location(output, "bad.sql") == (2, 7)


def test_unknown_ref_suggests(make_project):
    root = make_project({"models/other.sql": "select * from {{ ref('user_amount') }}\n"})
    output = compile_error(root)
    assert "ref('user_amount') names no model" in output
    assert "did you mean 'user_amounts'" in output
    assert location(output, "other.sql") == (1, 18)


def test_unknown_source(make_project):
    root = make_project({"models/other.sql": "\nselect * from {{ source('app', 'event') }}\n"})
    output = compile_error(root)
    assert "source('app', 'event') is not declared" in output
    assert "did you mean 'app.events'" in output
    assert location(output, "other.sql") == (2, 18)


def test_cycle_is_printed(make_project):
    root = make_project({
        "models/a.sql": "select * from {{ ref('b') }}\n",
        "models/b.sql": "select * from {{ ref('c') }}\n",
        "models/c.sql": "-- c reads a\nselect * from {{ ref('a') }}\n",
    })
    output = compile_error(root)
    assert "cycle: a -> b -> c -> a" in output
    assert location(output, "a.sql") == (1, 18)


def test_missing_entity_key(make_project):
    model = """\
        {{ config(entity='user', timestamp='event_ts') }}
        select merchant_id, event_ts, amount as user__amount__1d
        from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "lacks 'user_id'" in output
    assert location(output, "user_amounts.sql") == (2, 1)


def test_missing_timestamp_column(make_project):
    model = """\
        {{ config(entity='user', timestamp='ts') }}
        select user_id, event_ts, amount as user__amount__1d
        from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "lacks 'ts'" in output


def test_unknown_entity(make_project):
    model = """\
        {{ config(entity='usr', timestamp='event_ts') }}
        select user_id, event_ts from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "unknown entity 'usr'" in output
    assert "did you mean 'user'" in output
    assert location(output, "user_amounts.sql") == (1, 11)


def test_bad_ttl(make_project):
    model = """\
        -- a comment line first
        {{ config(entity='user', timestamp='event_ts', ttl='30 days') }}
        select user_id, event_ts from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "invalid duration '30 days'" in output
    assert location(output, "user_amounts.sql") == (2, 4)


def test_duplicate_model_names(make_project):
    root = make_project({"models/more/user_amounts.sql": "select 1 as x\n"})
    output = compile_error(root)
    assert "two models are named 'user_amounts'" in output
    assert "models/more/user_amounts.sql" in output


def test_duplicate_feature_names(make_project):
    copy = """\
        {{ config(entity='user', timestamp='event_ts') }}
        select user_id, event_ts,
            amount as user__amount_sum__all
        from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_copy.sql": copy}))
    assert "feature 'user__amount_sum__all' is defined by two models" in output
    assert location(output, "user_copy.sql") == (3, 15)


def test_a_feature_name_under_two_entities_names_both_files(make_project):
    # Training sets and services name features alone: one name under two entities would pick a model silently.
    merchant = """\
        {{ config(entity='merchant', timestamp='event_ts') }}
        select merchant_id, event_ts,
            amount as user__amount_sum__all
        from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/merchant_copy.sql": merchant}))
    assert "feature 'user__amount_sum__all' is defined by two models" in output
    assert "models/merchant_copy.sql" in output and ".sql and models/" in output
    assert "entities 'user' and 'merchant'" in output or "entities 'merchant' and 'user'" in output
    assert re.search(r"(merchant_copy|user_amounts)\.sql:\d+:\d+:", output)  # located at one of the two


def test_profile_target_missing(make_project):
    root = make_project()
    result = CliRunner().invoke(cli, ["compile", "--project-dir", str(root), "--target", "prod"])
    assert result.exit_code == 2
    assert "target 'prod' is not in profile 'mini'" in result.output
    assert location(result.output, "profiles.yml")


def test_unknown_config_key(make_project):
    model = """\
        {{ config(entity='user', timestamp='event_ts', tll='30d') }}
        select user_id, event_ts from {{ source('app', 'events') }}
    """
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "unknown config key 'tll'" in output
    assert "did you mean 'ttl'" in output
    assert location(output, "user_amounts.sql") == (1, 4)


def test_unknown_key_in_yaml_config(make_project):
    docs = """\
        models:
          - name: user_amounts
            config:
              onlien: true
    """
    output = compile_error(make_project({"models/schema.yml": docs}))
    assert "unknown config key 'onlien'" in output
    assert location(output, "schema.yml") == (4, 7)


def test_undefined_jinja_variable(make_project):
    root = make_project({"models/bad.sql": "select 1 as x\nwhere {{ nope }} = 1\n"})
    output = compile_error(root)
    assert "'nope' is undefined" in output
    assert location(output, "bad.sql")[0] == 2


def test_invalid_yaml(make_project):
    output = compile_error(make_project({"entities.yml": "entities:\n  - name: user\n   join_keys: [a]\n"}))
    assert "invalid YAML" in output
    assert location(output, "entities.yml")[0] == 3


@pytest.mark.parametrize("statement", ["insert into t values (1)", "select 1; select 2"])
def test_one_select_per_model(make_project, statement):
    output = compile_error(make_project({"models/bad.sql": statement + "\n"}))
    assert "bad.sql:1:1" in output


def test_runtime_failure_names_model_and_keeps_earlier_tables(make_project):
    import duckdb

    root = make_project({"models/broken.sql": "select cast('abc' as integer) as x\n"})
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "--project-dir", str(root), "--no-online", "-s", "user_amounts"])
    assert first.exit_code == 0, first.output
    # Break the healthy model too: its old table must survive a failed rebuild.
    model = root / "models" / "user_amounts.sql"
    model.write_text(model.read_text().replace("sum(amount)", "sum(cast('x' || amount as integer))"))
    result = runner.invoke(cli, ["run", "--project-dir", str(root), "--no-online"])
    assert result.exit_code == 1, result.output
    assert "broken" in result.output and "Conversion Error" in result.output
    assert "Traceback" not in result.output
    with duckdb.connect(str(root / "target" / "mini.duckdb"), read_only=True) as con:
        rows = con.execute('select count(*) from features.user_amounts').fetchone()
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    assert rows == (4,)
    assert "broken" not in tables
    assert not any(t.endswith("__skewless_tmp") for t in tables)


@pytest.mark.parametrize("services, cycle", [
    ("[{name: a, features: [user__amount_sum__all, 'service:a']}]", "a -> a"),
    ("[{name: a, features: ['service:b']}, {name: b, features: ['service:c']}, "
     "{name: c, features: [user__amount_sum__all, 'service:a']}]", "a -> b -> c -> a"),
])
def test_feature_services_that_include_each_other_are_a_clear_error(make_project, services, cycle):
    root = make_project({"datasets/services.yml": f"feature_services: {services}\n"})
    output = compile_error(root)
    assert f"feature services include each other in a cycle: {cycle}" in output
    with FeatureStore(root) as store, pytest.raises(CompileError, match="cycle"):
        store.resolve_features(["service:a"])


@pytest.mark.parametrize("tag", [
    "{% include '/etc/passwd' %}",
    "{% include '../../secret.txt' %}",
    "{% include '../secret.sql' %}",
    "{% from '/etc/hostname' import x %}",
    "{% import '../../secret.txt' as s %}",
])
def test_templates_cannot_read_files_outside_the_project_folders(make_project, tmp_path, tag):
    (tmp_path / "secret.txt").write_text("TOP-SECRET-VALUE\n")
    (tmp_path / "mini").mkdir(exist_ok=True)
    (tmp_path / "mini" / "secret.sql").write_text("TOP-SECRET-VALUE\n")
    model = "{{ config(entity='user', timestamp='event_ts') }}\n" + tag + "\nselect 1 as x\n"
    root = make_project({"models/leak.sql": model})
    output = compile_error(root)
    assert "TOP-SECRET-VALUE" not in output and "root:" not in output
    assert "templates may include or import only .sql files of the project's macro and model folders" in output
    assert "models/leak.sql:2" in output
    assert not list((root / "target").rglob("leak.sql")) or "TOP-SECRET" not in "".join(
        p.read_text() for p in (root / "target").rglob("leak.sql"))


def test_templates_include_the_projects_own_macro_files(make_project):
    root = make_project({
        "macros/snippets/amount.sql": "sum(amount) over (partition by user_id order by event_ts)",
        "models/user_amounts.sql": "{{ config(entity='user', timestamp='event_ts') }}\n"
                                   "select user_id, event_ts, {% include 'snippets/amount.sql' %} as user__amount_sum\n"
                                   "from {{ source('app', 'events') }}\n",
    })
    with FeatureStore(root) as store:
        assert "SUM(amount) OVER (PARTITION BY user_id" in store.show("user_amounts")


@pytest.mark.parametrize(("select", "name"), [
    ("select user_id, event_ts, amount as user__a, amount * 2 as user__a", "user__a"),
    ("select user_id, event_ts, count(*) over () as user_id", "user_id"),
    ("select user_id, event_ts, amount as event_ts", "event_ts"),
])
def test_two_output_columns_with_one_name_are_refused(make_project, select, name):
    model = "{{ config(entity='user', timestamp='event_ts') }}\n" + select + "\nfrom {{ source('app', 'events') }}\n"
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert f"the model's SELECT has two columns named {name!r}" in output
    assert re.search(r"user_amounts\.sql:2:\d+", output), output


def test_two_on_demand_features_with_one_name_are_refused(make_project):
    model = ("{{ config(kind='on_demand', request_fields={'x': 'double'}) }}\n"
             "select x * 2 as req__double, x * 3 as req__double\n")
    output = compile_error(make_project({"models/req.sql": model}))
    assert "two expressions are named 'req__double'" in output and "req.sql:2:" in output


@pytest.mark.parametrize(("model", "message"), [
    ("{{ config(schema='raw', alias='events') }}\nselect 1 as x\n",
     "would build \"raw\".\"events\", which is the declared source app.events"),
    ("{{ config(alias='USER_AMOUNTS') }}\nselect 1 as x\n", "both build \"features\".\"user_amounts\""),
])
def test_no_model_builds_another_models_table_or_a_source(make_project, model, message):
    root = make_project({"models/intruder.sql": model})
    output = compile_error(root)
    assert message.lower() in output.lower(), output
    assert re.search(r"intruder\.sql:1:\d+", output), output


def test_a_star_model_that_lost_its_key_keeps_the_previous_table(make_project):
    sources = """\
        sources:
          - name: app
            schema: raw
            tables:
              - name: events
                file: data/events.csv
    """
    model = "{{ config(entity='user', timestamp='event_ts') }}\nselect * from {{ source('app', 'events') }}\n"
    root = make_project({"sources.yml": sources, "models/user_amounts.sql": model})
    with FeatureStore(root) as store:
        assert store.run().ok
        before = store.adapter.fetch_all(sqlglot.parse_one("select count(*) from features.user_amounts"))
    events = root / "data" / "events.csv"
    events.write_text(events.read_text().replace("user_id,", "customer_id,", 1))  # the key column is gone
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code == 1 and "has no column 'user_id'" in result.output, result.output
    with FeatureStore(root) as store:
        columns = store.adapter.columns(store.compile(write=False).nodes["user_amounts"].relation)
        assert "user_id" in columns  # the good table is still there, with its rows
        assert store.adapter.fetch_all(sqlglot.parse_one("select count(*) from features.user_amounts")) == before
    results = json.loads((root / "target" / "run_results.json").read_text())
    assert results["results"][0]["status"] == "error"


@pytest.mark.parametrize("ttl", ["999999d", "99999999999d"])
def test_an_absurd_ttl_is_a_located_error(make_project, ttl):
    model = f"{{{{ config(entity='user', timestamp='event_ts', ttl='{ttl}') }}}}\n" \
            "select user_id, event_ts, amount as user__a from {{ source('app', 'events') }}\n"
    output = compile_error(make_project({"models/user_amounts.sql": model}))
    assert "is longer than 36,525 days" in output and "user_amounts.sql:1:" in output


def test_a_quoted_boolean_is_not_a_boolean(make_project):
    dataset = """\
        datasets:
          - name: train
            spine: {source: app.events, timestamp: event_ts}
            features: [user__amount_sum__all]
            as_known: "false"
    """
    root = make_project({"datasets/train.yml": dataset})
    with FeatureStore(root) as store, pytest.raises(SkewlessError, match="'as_known' must be true or false"):
        store.dataset_sql("train")
    project = "name: mini\nprofile: mini\nonline_store:\n  cluster: \"false\"\n"
    root = make_project({"skewless_project.yml": project}, name="mini2")
    with FeatureStore(root) as store, pytest.raises(SkewlessError, match="cluster must be true or false"):
        store.online_store  # noqa: B018


def test_paths_that_cannot_be_used_are_user_errors(make_project, tmp_path):
    runner = CliRunner()
    root = make_project()
    (tmp_path / "afile").write_text("x")
    cases = [
        ["dataset", "build", "nope", "--project-dir", str(root)],  # (a project error, for comparison)
        ["init", str(tmp_path / "afile" / "sub")],
    ]
    not_duckdb = root / "target" / "mini.duckdb"
    not_duckdb.parent.mkdir(parents=True, exist_ok=True)
    not_duckdb.write_text("this is not a database")
    cases.append(["run", "--project-dir", str(root)])
    for args in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code in (1, 2), (args, result.output)
        assert "Internal error" not in result.output and "Traceback" not in result.output, (args, result.output)
    result = runner.invoke(cli, ["run", "--project-dir", str(root)])
    assert "another process" not in result.output and "DuckDB database file" in result.output, result.output


def test_yaml_is_parsed_before_its_values_are_rendered(make_project, monkeypatch, tmp_path):
    # A valid single-quoted YAML value holding Jinja works; rendered text cannot change the YAML's structure.
    monkeypatch.setenv("SKEWLESS_TEST_DB", str(tmp_path / "rendered.duckdb"))
    monkeypatch.setenv("SKEWLESS_TEST_INJECT", "x\n      schema: injected")
    profiles = """\
        mini:
          target: dev
          outputs:
            dev:
              type: duckdb
              path: '{{ env_var(''SKEWLESS_TEST_DB'', ''target/x.duckdb'') }}'
              schema: "features{{ env_var('SKEWLESS_TEST_INJECT')[:0] }}"
    """
    root = make_project({"profiles.yml": profiles})
    with FeatureStore(root) as store:
        assert store.config.target.settings["path"] == str(tmp_path / "rendered.duckdb")
        assert store.config.target.schema == "features"
    broken = profiles.replace("env_var(''SKEWLESS_TEST_DB''", "env_var(''SKEWLESS_TEST_DB'' ''")
    root = make_project({"profiles.yml": broken}, name="broken")
    output = compile_error(root)
    assert "profiles.yml:6:" in output and "Jinja" in output


@pytest.mark.parametrize("file", ["profiles.yml", "models/user_stats.sql"])
def test_an_environment_variable_that_is_not_utf8_is_named_not_shown(make_project, monkeypatch, file):
    """Bytes that are not UTF-8 in a variable reach Python as lone surrogates: the variable is named where the
    project reads it, its value never shown (it may be a secret)."""
    monkeypatch.setenv("SKEWLESS_TEST_BYTES", "s3cr\udcffet")
    files = {"profiles.yml": "mini:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: \"{{ env_var("
                             "'SKEWLESS_TEST_BYTES') }}\"}\n"}
    if file != "profiles.yml":
        files = {file: "select 1 as user_id, '{{ env_var('SKEWLESS_TEST_BYTES') }}' as x"}
    output = compile_error(make_project(files))
    assert f"{file}:" in output and "environment variable 'SKEWLESS_TEST_BYTES' is not UTF-8 text" in output, output
    assert "s3cr" not in output and "Internal error" not in output
