"""The `skewless` command: each command builds a FeatureStore and calls one method on it."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from skewless import __version__
from skewless.core.sourcefile import is_utf8

EPILOG_SELECT = (
    "Selection (dbt syntax): NAME, +NAME (and its parents), NAME+ (and its children), tag:TAG, path:DIR, "
    "config.KEY:VALUE; separate several with spaces (union) or commas (intersection)."
)


def _parse_vars(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise click.BadParameter(f"not YAML or JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("give a mapping, e.g. --vars '{large_amount: 500}'")
    return parsed


def project_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--project-dir, --target and --vars, shared by every command that opens a project."""
    command = click.option("--vars", "vars_", callback=_parse_vars, metavar="YAML",
                           help="Override project vars, e.g. --vars '{large_amount: 500}'.")(command)
    command = click.option("--target", "-t", metavar="NAME",
                           help="Profile target to use (default: the profile's).")(command)
    command = click.option("--project-dir", default=".", show_default=True, type=click.Path(file_okay=False),
                           help="Folder holding skewless_project.yml.")(command)
    return command


def selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--exclude", multiple=True, metavar="SELECTOR", help="Leave out these models.")(command)
    command = click.option("--select", "-s", multiple=True, metavar="SELECTOR", help="Only these models.")(command)
    return command


def state_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--state", type=click.Path(), metavar="PATH",
                        help="An earlier manifest.json (or its folder), for -s state:modified[+].")(command)


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors become one clean message and the design's exit codes (2 usage/project, 1 failure)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from skewless.core.errors import SkewlessError

        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except SkewlessError as error:
            if debug:
                raise
            from .console import err

            err.print(f"[red]Error:[/red] {_escape(str(error))}")
            sys.exit(error.exit_code)
        except (KeyboardInterrupt, SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except OSError as error:  # a path the user gave (or the project implies) cannot be read or written
            if debug:
                raise
            from skewless.core.secrets import mask_secrets

            from .console import err

            where = f"{error.filename}: " if error.filename else ""
            err.print(f"[red]Error:[/red] {_escape(mask_secrets(where + (error.strerror or str(error))))}")
            err.print("hint: check that the path exists, is a folder or file as expected, and is writable")
            sys.exit(2)
        except Exception as error:  # a bug in skewless: say so plainly, keep the traceback behind --debug
            if debug:
                raise
            from skewless.core.secrets import mask_secrets

            from .console import err

            err.print(f"[red]Internal error:[/red] {type(error).__name__}: {_escape(mask_secrets(str(error)))}")
            err.print("This is a bug in skewless; rerun with --debug for the traceback and report it.")
            sys.exit(2)

    return wrapper


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_warnings(warnings: list[str]) -> None:
    from .console import err

    for warning in warnings:
        err.print(f"[yellow]Warning:[/yellow] {_escape(warning)}")


def _store(project_dir: str, target: str | None, vars_: dict[str, Any] | None):  # noqa: ANN202
    from skewless.feature_store import FeatureStore

    return FeatureStore(project_dir, target=target, vars=vars_)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="skewless")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def cli(debug: bool) -> None:
    """skewless: a SQL-first feature store.

    Write features as SQL models, compile them for your warehouse, build point-in-time training sets and
    serve the newest values online, all from the same definitions.

    \b
    Start here:
      skewless init my_features && cd my_features
      skewless run            # build every model, then fill the online store
      skewless ls             # what is there
      skewless show MODEL     # the SQL that ran
    """


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", help="Project name (default: the folder's name).")
@handle_errors
def init(directory: str, name: str | None) -> None:
    """Create a working project in DIRECTORY (DuckDB + embedded Redis).

    \b
    Example:
      skewless init my_features && skewless run --project-dir my_features
    """
    from skewless.project.scaffold import scaffold

    from .console import out

    path = scaffold(Path(directory), name)
    out.print(f"Created project [bold]{_escape(path.name)}[/bold] in {_escape(str(path))}")
    out.print(f"Next: [bold]skewless run --project-dir {_escape(directory)}[/bold]")


@cli.command()
@project_options
@selection_options
@state_option
@handle_errors
def compile(project_dir: str, target: str | None, vars_: dict[str, Any] | None,  # noqa: A001
            select: tuple[str, ...], exclude: tuple[str, ...], state: str | None) -> None:
    """Render, parse and check every model; write target/compiled, target/run and target/manifest.json.

    Catches Jinja and SQL syntax errors, unknown refs and sources, cycles and missing key columns without
    touching the warehouse.

    \b
    Examples:
      skewless compile
      skewless compile --target pg -s tag:fraud
      skewless compile --state prod/manifest.json -s state:modified+
    """
    from .console import out

    store = _store(project_dir, target, vars_)
    chosen = store.selected(select, exclude, state)  # before this compile's manifest replaces a --state one
    compiled = store.compile()
    _print_warnings(compiled.warnings)
    features = sum(len(compiled.nodes[n].features) for n in chosen)
    out.print(f"Compiled {len(chosen)} models ({features} features) into {_escape(str(compiled.config.target_path))}")


@cli.command()
@project_options
@selection_options
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--no-online", is_flag=True, help="Skip the online-store post-hook.")
@click.option("--resend-online", is_flag=True,
              help="Send every online value again, not only what changed (e.g. after restoring Redis by hand).")
@state_option
@handle_errors
def run(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
        exclude: tuple[str, ...], full_refresh: bool, no_online: bool, resend_online: bool,
        state: str | None) -> None:
    """Build the selected models in dependency order, then upsert online features.

    A failing model stops its dependents only; earlier tables stay as they were. Exit code 1 when a model
    failed. Results go to target/run_results.json.

    \b
    Examples:
      skewless run
      skewless run -s +user_spend --full-refresh
      skewless run -s tag:fraud --exclude merchant_volume --no-online
      skewless run --state prod/manifest.json -s state:modified+
    """
    from .console import ConsoleReporter

    with _store(project_dir, target, vars_) as store:
        _print_warnings(store.compile(write=False).warnings)
        results = store.run(select, exclude, full_refresh=full_refresh, online=not no_online,
                            resend_online=resend_online, reporter=ConsoleReporter(), state=state)
    if not results.ok:
        sys.exit(1)


@cli.command(name="test")
@project_options
@selection_options
@state_option
@handle_errors
def test_command(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
                 exclude: tuple[str, ...], state: str | None) -> None:
    """Run the selected models' tests: generic tests from the models' YAML, singular SQL tests in tests/, and
    unit tests (given rows, expected rows; on DuckDB whatever the target).

    Failures print their first failing rows; results go to target/run_results.json. Exit code 1 when a test
    fails (a test of severity warn only warns).

    \b
    Examples:
      skewless test
      skewless test -s user_spend
    """
    from .console import TestReporter

    reporter = TestReporter()
    with _store(project_dir, target, vars_) as store:
        _print_warnings(store.compile(write=False).warnings)
        results = store.test(select, exclude, state=state, report=reporter.test_end)
    reporter.finish(results)
    if not results.ok:
        sys.exit(1)


@cli.command()
@project_options
@selection_options
@state_option
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--no-online", is_flag=True, help="Skip the online-store post-hook.")
@handle_errors
def build(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
          exclude: tuple[str, ...], state: str | None, full_refresh: bool, no_online: bool) -> None:
    """Run models and their tests in dependency order, as dbt build does: each model's tests right after it,
    and the models reading one whose test failed are skipped. Exit code 1 when a model or a test failed.

    \b
    Examples:
      skewless build
      skewless build -s +user_spend
    """
    from .console import ConsoleReporter, TestReporter

    tests = TestReporter()
    with _store(project_dir, target, vars_) as store:
        _print_warnings(store.compile(write=False).warnings)
        runs, results = store.build(select, exclude, state=state, full_refresh=full_refresh, online=not no_online,
                                    reporter=ConsoleReporter(), report=tests.test_end)
    tests.finish(results)
    if not (runs.ok and results.ok):
        sys.exit(1)


@cli.command()
@project_options
@selection_options
@click.option("--reference", metavar="dataset:NAME",
              help="Measure drift against a dataset's training set instead of a window (its features only).")
@click.option("--reference-window", default="30d", show_default=True, metavar="DURATION",
              help="The window drift is measured against (it ends where the current one starts).")
@click.option("--current-window", default="1d", show_default=True, metavar="DURATION",
              help="The recent window, ending now.")
@click.option("--sample", default=100, show_default=True, type=click.IntRange(0),
              help="Entities per online model read online and through a training set (0: skip the check).")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def monitor(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
            exclude: tuple[str, ...], reference: str | None, reference_window: str, current_window: str,
            sample: int, output: str) -> None:
    """Watch features: freshness, null rate, drift (PSI) between a reference and the current window, and whether
    the online store serves what a training set computes for a sample of entities.

    PSI warns at 0.1 and errors at 0.25 unless a model's YAML sets `monitor: {psi_warn, psi_error, warn_after,
    error_after}`. Exit code 1 when anything is past an error threshold or an online value differs: a
    scheduler's alert.

    \b
    Examples:
      skewless monitor
      skewless monitor -s tag:fraud --current-window 6h --output json
      skewless monitor --reference dataset:fraud_training
    """
    from .console import out, print_monitor

    with _store(project_dir, target, vars_) as store:
        report = store.monitor(select, exclude, reference_window=reference_window, current_window=current_window,
                               sample=sample, reference=reference)
    if output == "json":
        out.print_json(json.dumps(report.to_json()))
    else:
        print_monitor(report)
    if report.status == "error":
        sys.exit(1)


@cli.group()
def docs() -> None:
    """The catalog as a static site: every model and feature, lineage, tests, monitoring.

    \b
    Examples:
      skewless docs generate && open target/docs/index.html
      skewless docs serve --port 8080
    """


@docs.command(name="generate")
@project_options
@handle_errors
def docs_generate(project_dir: str, target: str | None, vars_: dict[str, Any] | None) -> None:
    """Write target/docs/index.html (opens from the file system; no server needed).

    It shows the last test results and monitor report found in target/: run `skewless build` (or `test`) and
    `skewless monitor` first to see them.
    """
    from .console import out

    path = _store(project_dir, target, vars_).docs_generate()
    out.print(f"Wrote {_escape(str(path))}")


@docs.command(name="serve")
@project_options
@click.option("--port", "-p", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@handle_errors
def docs_serve(project_dir: str, target: str | None, vars_: dict[str, Any] | None, port: int, host: str) -> None:
    """Generate the site and serve target/docs over HTTP (Ctrl+C stops)."""
    import functools as tools
    import http.server

    from .console import out

    path = _store(project_dir, target, vars_).docs_generate()
    handler = tools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        out.print(f"Serving {_escape(str(path.parent))} on http://{host}:{port}/ (Ctrl+C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


@cli.group()
def dataset() -> None:
    """Training sets declared in datasets/*.yml: build them point-in-time correct.

    \b
    Examples:
      skewless dataset build fraud_training
      skewless dataset build fraud_training --output parquet --path fraud.parquet
      skewless show dataset:fraud_training --dialect snowflake
    """


@dataset.command("build")
@click.argument("name")
@project_options
@click.option("--output", "-o", type=click.Choice(["table", "parquet"]), default="table", show_default=True,
              help="A table in the warehouse (schema `datasets`) or a parquet file.")
@click.option("--path", type=click.Path(dir_okay=False), help="Parquet file to write (default: target/datasets/).")
@handle_errors
def dataset_build(name: str, project_dir: str, target: str | None, vars_: dict[str, Any] | None, output: str,
                  path: str | None) -> None:
    """Build a training set: every spine row once, with each feature as it was at the row's time.

    \b
    Examples:
      skewless dataset build fraud_training
      skewless dataset build fraud_training -o parquet --path /tmp/fraud.parquet
    """
    from .console import out

    with _store(project_dir, target, vars_) as store:
        result = store.build_dataset(name, output=output, path=path)
    out.print(f"Built [bold]{_escape(name)}[/bold]: {result['rows']:,} rows x {result['columns']} columns "
              f"into {_escape(result['output'])}")


@cli.command()
@click.argument("model")
@project_options
@click.option("--dialect", "-d", metavar="DIALECT",
              help="Write the SQL for another dialect (duckdb, postgres, spark, snowflake, bigquery, trino...).")
@click.option("--executed", is_flag=True, help="Show the DDL/DML the last run executed (target/run).")
@handle_errors
def show(model: str, project_dir: str, target: str | None, vars_: dict[str, Any] | None, dialect: str | None,
         executed: bool) -> None:
    """Print a model's compiled SQL, or a dataset's point-in-time query (MODEL = dataset:NAME).

    \b
    Examples:
      skewless show user_spend
      skewless show user_spend --dialect snowflake
      skewless show merchant_volume --executed
      skewless show dataset:fraud_training --dialect spark
    """
    from .console import out

    store = _store(project_dir, target, vars_)
    if model.startswith("dataset:"):
        text = store.dataset_sql(model.split(":", 1)[1], dialect=dialect)
    elif executed:
        text = store.executed_sql(model)
    else:
        text = store.show(model, dialect=dialect)
    out.print(_escape(text), end="\n" if not text.endswith("\n") else "")


@cli.command()
@click.argument("feature")
@project_options
@click.option("--output", "-o", type=click.Choice(["tree", "json"]), default="tree", show_default=True)
@handle_errors
def lineage(feature: str, project_dir: str, target: str | None, vars_: dict[str, Any] | None, output: str) -> None:
    """Print a feature's column-level lineage: the models and source columns it is computed from.

    Each input is labelled: value (the feature is computed from it), window key (it partitions or orders a window)
    or filter (it decides which rows count).

    \b
    Examples:
      skewless lineage user__amount_sum__7d
      skewless lineage merchant__fraud_rate__30d --output json
    """
    from .console import out, print_lineage

    step = _store(project_dir, target, vars_).lineage(feature)
    if output == "json":
        out.print_json(json.dumps(step.to_json()))
        return
    print_lineage(step)


@cli.command()
@project_options
@click.option("--state", required=True, type=click.Path(), metavar="PATH",
              help="The earlier manifest.json (or its folder) to compare with.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def diff(project_dir: str, target: str | None, vars_: dict[str, Any] | None, state: str, output: str) -> None:
    """Compare the project with an earlier manifest: each changed model, breaking or not, and what depends on it.

    Breaking: a feature removed, or its expression, type or window changed; the model's rows (FROM, joins, WHERE,
    GROUP BY), entity, timestamp, ttl or delay changed; an upstream change the model reads. Non-breaking: features
    added; description, owner, tags. Whitespace and comments are no change. Exit code 1 when something breaking
    changed (a CI gate).

    \b
    Examples:
      skewless diff --state prod-target/manifest.json
      skewless diff --state prod-target --output json
    """
    from .console import out, print_diff

    result = _store(project_dir, target, vars_).diff(state)
    if output == "json":
        out.print_json(json.dumps(result.to_json()))
    else:
        print_diff(result)
    if result.breaking:
        sys.exit(1)


@cli.command(name="ls")
@project_options
@selection_options
@state_option
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def ls_command(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
               exclude: tuple[str, ...], state: str | None, output: str) -> None:
    """List models and their features with entity, ttl, online flag and owner.

    \b
    Examples:
      skewless ls
      skewless ls -s config.online:true --output json
    """
    from .console import out

    rows = _store(project_dir, target, vars_).ls(select, exclude, state)
    if output == "json":
        out.print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for column in ("model", "materialized", "entity", "ttl", "online", "owner", "features"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["materialized"], row["entity"] or "", row["ttl"] or "",
            "yes" if row["online"] else "", row["owner"] or "", "\n".join(row["features"]),
        )
    out.print(table)


@cli.command()
@click.argument("entity")
@click.argument("keys", nargs=-1, required=True)
@project_options
@click.option("--feature", "-f", "features", multiple=True, metavar="NAME",
              help="Feature to read (repeat for several; default: every online feature of the entity).")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@handle_errors
def get(entity: str, keys: tuple[str, ...], project_dir: str, target: str | None, vars_: dict[str, Any] | None,
        features: tuple[str, ...], output: str) -> None:
    """Read the newest feature values of entities from the online store.

    KEY is the entity's join key value; for a composite key give the values separated by commas, in the
    order of the entity's join_keys. Values past their model's ttl read as null.

    \b
    Examples:
      skewless get user 42
      skewless get user 42 7 -f user__txn_count__7d -f user__amount_sum__30d
      skewless get merchant 12 --output json
    """
    from .console import out

    with _store(project_dir, target, vars_) as store:
        rows = store.entity_rows(entity, keys)
        names = list(features) or store.online_features_of(entity)
        result = store.get_online_features(rows, names)
    if output == "json":
        from skewless.online.jsonform import columns_to_json

        out.print_json(columns_to_json(result).decode())
        return
    from rich.table import Table

    # One row per feature and one column per entity key: readable however many features there are.
    table = Table(show_edge=False, header_style="bold")
    table.add_column("feature")
    for key in keys:
        table.add_column(_escape(key), justify="right")
    for name in names:
        table.add_row(_escape(name), *[_cell(value) for value in result[name]])
    out.print(table)


@cli.command()
@project_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", "-p", default=6566, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes; more serve more requests per second on more cores.")
@click.option("--max-entities", default=1000, show_default=True, type=click.IntRange(1),
              help="Largest number of entity rows one request may ask for (413 above).")
@click.option("--max-body-bytes", default=1 << 20, show_default=True, type=click.IntRange(1),
              help="Largest request body (413 above).")
@handle_errors
def serve(project_dir: str, target: str | None, vars_: dict[str, Any] | None, host: str, port: int, workers: int,
          max_entities: int, max_body_bytes: int) -> None:
    """Serve online and on-demand features over HTTP.

    Serves what target/manifest.json describes (compiling first when there is none), reloading it when it
    changes or on SIGHUP. The online store is the project's (or the target's) online_store.

    \b
    Endpoints:
      POST /get-online-features  {"features": [...] | "feature_service": "name",
                                  "entities": {"user_id": [1, 2], "amount": [9.5, 120.0]}}
      GET  /features             servable features and feature services
      GET  /health               200 when the online store answers
      GET  /metrics              Prometheus metrics: request counts, latency histogram

    \b
    Example:
      skewless serve --project-dir example_project --port 6566
      curl -s localhost:6566/get-online-features \\
        -d '{"feature_service": "fraud_v1", "entities": {"user_id": [3], "merchant_id": [7]}}'
    """
    from skewless.serving.server import Limits

    from .console import out


    out.print(f"Serving features of {project_dir} on http://{host}:{port} (Ctrl+C stops)")
    with _store(project_dir, target, vars_) as store:
        store.serve(host, port, workers, Limits(max_body_bytes, max_entities))


@cli.command()
@project_options
@selection_options
@click.option("--group", default="skewless", show_default=True, help="Consumer group: its consumers share the work.")
@click.option("--consumer", metavar="NAME", help="This consumer's name in the group (default: host-pid). A "
              "restarted consumer of the same name picks up what it was doing.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1),
              help="Events per read (--engine spark: files per micro-batch).")
@click.option("--claim-idle", default=30.0, show_default=True, type=click.FloatRange(0.001),
              help="Seconds after which another consumer's unacknowledged events are taken over.")
@click.option("--report-every", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between progress lines.")
@click.option("--until-idle", is_flag=True, help="Stop when the streams have nothing left to read (a backfill).")
@click.option("--engine", type=click.Choice(["redis", "spark"]), default="redis", show_default=True,
              help="redis: a consumer group on the Redis Stream; spark: a Spark Structured Streaming job over "
                   "event files (on a Spark target).")
@click.option("--files", type=click.Path(file_okay=False), help="--engine spark: the folder events land in.")
@click.option("--format", "file_format", type=click.Choice(["json", "parquet"]), default="json", show_default=True,
              help="--engine spark: the event files' format (JSON lines or Parquet).")
@click.option("--checkpoint", type=click.Path(file_okay=False),
              help="--engine spark: the job's checkpoint (default: target/stream_checkpoints/STREAM).")
@handle_errors
def stream(project_dir: str, target: str | None, vars_: dict[str, Any] | None, select: tuple[str, ...],
           exclude: tuple[str, ...], group: str, consumer: str | None, batch_size: int, claim_idle: float,
           report_every: float, until_idle: bool, engine: str, files: str | None, file_format: str,
           checkpoint: str | None) -> None:
    """Keep window features current from their event streams.

    Reads the events of each stream that feeds a selected online window_agg model (config stream='NAME') from
    the Redis Stream sk1:stream:{PROJECT}:NAME through a consumer group, applies them to the models' tiles,
    and acknowledges them: a consumer killed at any point and restarted loses no event and counts none twice.
    Late events (past allowed_lateness, or in tiles `run` has closed) are counted and kept in
    sk1:stream:{PROJECT}:NAME:late. Producers append with FeatureStore.push, POST /push, or XADD.

    \b
    Examples:
      skewless stream
      skewless stream -s user_txn_windows --consumer worker-1
      skewless stream --until-idle          # apply what is there, then stop
      skewless stream --engine spark --target spark --files events/ -s user_txn_windows
    """
    import signal

    from .console import err, out

    stopping: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, frame: stopping.append(signum))
    with _store(project_dir, target, vars_) as store:
        names = store.streams(list(select) or None)
        if exclude:
            excluded = set(store.streams(list(exclude)))
            names = [n for n in names if n not in excluded]
        if not names:
            raise click.UsageError("no selected online window_agg model has stream='...'")
        if engine == "spark":
            if len(names) != 1 or not files:
                raise click.UsageError("--engine spark runs one stream (select its model with -s) over --files DIR")
            out.print(f"Streaming {names[0]} from {files} with Spark Structured Streaming (Ctrl+C stops)")
            stats = store.stream_files(names[0], files, file_format=file_format, checkpoint=checkpoint,
                                       until_idle=until_idle, files_per_batch=batch_size, stop=lambda: bool(stopping),
                                       report=lambda s: err.print(_stream_line(names[0], s.to_json())),
                                       )
            out.print(_stream_line(names[0], stats.to_json()))
            return
        consumers = [store.stream_consumer(n, group=group, consumer=consumer, batch_size=batch_size,
                                           claim_idle_ms=int(claim_idle * 1000)) for n in names]
        out.print(f"Consuming {', '.join(names)} as {consumers[0].consumer} in group {group} (Ctrl+C stops)")
        block_ms = 500 if len(consumers) == 1 else 50
        last = time.monotonic()
        while not stopping:
            processed = sum(c.step(block_ms) for c in consumers)
            if until_idle and processed == 0:
                break
            if time.monotonic() - last >= report_every:
                last = time.monotonic()
                for c in consumers:
                    c.stats.health = c.events.health()
                    err.print(_stream_line(c.stream, c.stats.to_json()))
        for c in consumers:
            c.stats.health = c.events.health()
            out.print(_stream_line(c.stream, c.stats.to_json()))


def _stream_line(name: str, stats: dict[str, Any]) -> str:
    oldest = stats.get("oldest_pending_ms")
    lag = stats.get("lag")
    return (f"  {_escape(name)}: {stats['events']:,} events ({stats['events_per_second']:,.0f}/s), "
            f"{stats['applied']:,} applied, {stats['duplicates']:,} already applied, {stats['late']:,} late, "
            f"{stats['invalid']:,} invalid; pending {stats.get('pending', 0):,}"
            + (f", lag {lag:,}" if lag is not None else "")
            + (f", oldest pending {oldest / 1000:.1f}s" if oldest is not None else "")
            + (f"; XADD to applied p50 {stats['delay_ms_p50']} ms, p99 {stats['delay_ms_p99']} ms"
               if stats.get("delay_ms_p50") is not None else ""))


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return _escape(str(value))


for _command in (compile, run, ls_command):
    _command.epilog = EPILOG_SELECT


def main(argv: Sequence[str] | None = None) -> None:
    """The command line. Python keeps bytes of an argument that are not UTF-8 as lone surrogates, which no file,
    query or message of skewless can hold: such an argument is refused here, by its position."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    for position, argument in enumerate(arguments, 1):
        if not is_utf8(argument):
            from .console import err

            shown = argument.encode(errors="surrogateescape").decode(errors="backslashreplace")
            err.print(f"[red]Error:[/red] argument {position} is not UTF-8 text: {_escape(shown)}")
            err.print("hint: give names, keys and paths as UTF-8 text (rename a folder whose name is not)")
            sys.exit(2)
    cli(args=arguments, prog_name="skewless")


if __name__ == "__main__":
    main()
