"""The one place output is drawn: rich consoles for results (stdout) and progress/errors (stderr)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from skewless.offline.runner import ModelResult, RunReporter, RunResults

if TYPE_CHECKING:
    from skewless.offline.monitoring import MonitorReport
    from skewless.offline.testing import TestResult, TestResults
    from skewless.project.lineage import ColumnLineage
    from skewless.project.nodes import ModelNode
    from skewless.project.state import StateDiff

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
for _console in (out, err):
    if not _console.is_terminal and "COLUMNS" not in __import__("os").environ:
        _console.width = 200  # pipes and CI logs: do not squeeze tables into 80 columns

_STATUS = {"success": "[green]OK[/green]", "error": "[red]ERROR[/red]", "skipped": "[yellow]SKIP[/yellow]"}


class ConsoleReporter(RunReporter):
    """dbt-style progress lines, one per model, readable in a terminal and in CI logs."""

    def __init__(self, console: Console = err) -> None:
        self.console = console

    def start(self, total: int) -> None:
        self.console.print(f"Running {total} model{'s' if total != 1 else ''}")

    def seed(self, name: str, rows: int) -> None:
        self.console.print(f"  loaded seed [bold]{escape(name)}[/bold] ({rows:,} rows)")

    def model_start(self, node: "ModelNode", index: int, total: int) -> None:
        pass

    def model_end(self, result: ModelResult, index: int, total: int) -> None:
        width = len(str(total))
        rows = f"{result.rows:,} rows" if result.rows is not None else result.materialized
        line = (
            f"  {index:>{width}} of {total} {_STATUS[result.status]:<7} {result.materialized:<13} "
            f"[bold]{escape(result.name)}[/bold] [dim]\\[{rows} in {result.seconds:.2f}s][/dim]"
        )
        self.console.print(line)
        if result.message and result.status == "error":
            self.console.print(f"[red]{escape(result.message)}[/red]")

    def finish(self, results: RunResults) -> None:
        online = results.hooks.get("online")
        if online:
            sent = sum(r["sent"] for r in online.values())
            written = sum(r["written"] for r in online.values())
            self.console.print(
                f"  online store: {len(online)} model{'s' if len(online) != 1 else ''}, "
                f"{sent:,} changed rows sent, {written:,} applied"
            )
        for name, message in results.hook_errors.items():
            self.console.print(f"[red]{escape(name)} post-hook failed:[/red] {escape(message)}")
        counts = {status: sum(r.status == status for r in results.results) for status in _STATUS}
        colour = "green" if results.ok else "red"
        self.console.print(
            f"[{colour}]Done in {results.elapsed:.2f}s:[/{colour}] {counts['success']} ok, "
            f"{counts['error']} error, {counts['skipped']} skipped"
        )


_ROLE_STYLE = {"value": "green", "window key": "cyan", "filter": "yellow"}


def print_lineage(step: "ColumnLineage") -> None:
    """A feature's lineage as a tree (model column, how it is computed, its inputs by role), then the source
    columns it comes from."""
    from rich.tree import Tree

    from skewless.core.windowagg import format_duration_us

    def label(node: "ColumnLineage") -> str:
        role = f"[{_ROLE_STYLE[node.role]}]{node.role}[/]"
        where = f"[bold]{escape(node.relation)}[/bold].{escape(node.column)}"
        kind = "" if node.kind in ("model", "source") else f" [dim]({node.kind})[/dim]"
        windows = f" [magenta]window {', '.join(format_duration_us(w) for w in node.windows)}[/magenta]" \
            if node.windows else ""
        text = f"{role}  {where}{kind}{windows}"
        if node.expression:
            text += f"\n[dim]{escape(node.expression)}[/dim]"
        return text

    def grow(tree: Tree, node: "ColumnLineage") -> None:
        for child in node.inputs:
            grow(tree.add(label(child)), child)

    root = Tree(label(step))
    grow(root, step)
    out.print(root)
    out.print("\n[bold]source columns[/bold]")
    for source in step.sources():
        where = f"{escape(source.relation)}.{escape(source.column)}"
        out.print(f"  [{_ROLE_STYLE[source.role]}]{source.role:<11}[/] {where}")


_KIND_STYLE = {"breaking": "red", "removed": "red", "indirect": "red", "non-breaking": "green", "added": "green"}


def print_diff(result: "StateDiff") -> None:
    """One block per changed model, then what reads the features whose values change."""
    if not result.changes:
        out.print("No model changed.")
        return
    for change in result.changes:
        kind = {"indirect": "breaking (upstream)"}.get(change.kind, change.kind)
        out.print(f"[{_KIND_STYLE[change.kind]}]{kind:<20}[/] [bold]{escape(change.model)}[/bold]")
        for reason in change.reasons:
            out.print(f"    {escape(reason)}")
        if change.features and change.breaking:
            out.print(f"    [dim]features: {escape(', '.join(change.features))}[/dim]")
        downstream = result.downstream.get(change.model)
        if downstream:
            out.print(f"    [dim]downstream models: {escape(', '.join(downstream))}[/dim]")
    affected = [("on-demand features", result.on_demand), ("datasets", result.datasets),
                ("feature services", result.services)]
    if any(names for _, names in affected):
        out.print("\n[bold]affected[/bold]")
        for what, names in affected:
            if names:
                out.print(f"  {what}: {escape(', '.join(names))}")
    breaking = sum(c.breaking for c in result.changes)
    out.print(f"\n{breaking} breaking, {len(result.changes) - breaking} non-breaking change"
              f"{'s' if len(result.changes) != 1 else ''}")


_TEST_STATUS = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "warn": "[yellow]WARN[/yellow]",
                "error": "[red]ERROR[/red]", "skipped": "[yellow]SKIP[/yellow]"}


class TestReporter:
    """One line per test as it finishes; a failure's first rows as a table."""

    def __init__(self, console: Console = err) -> None:
        self.console = console

    def test_end(self, result: "TestResult") -> None:
        from rich.table import Table

        detail = f" [dim]{escape(result.message)}[/dim]" if result.message and result.status != "error" else ""
        self.console.print(f"  {_TEST_STATUS[result.status]:<6} {result.kind:<16} [bold]{escape(result.name)}"
                           f"[/bold]{detail}")
        if result.status == "error" and result.message:
            self.console.print(f"[red]{escape(result.message)}[/red]")
        if result.rows:
            table = Table(show_edge=False, header_style="bold", padding=(0, 1))
            columns = list(dict.fromkeys(c for row in result.rows for c in row))
            for column in columns:
                table.add_column(escape(column) or " ")
            for row in result.rows:
                table.add_row(*[escape("NULL" if row.get(c) is None else str(row.get(c))) for c in columns])
            self.console.print(table)

    def finish(self, results: "TestResults") -> None:
        counts = {status: sum(r.status == status for r in results.results) for status in _TEST_STATUS}
        colour = "green" if results.ok else "red"
        self.console.print(f"[{colour}]{len(results.results)} tests:[/{colour}] {counts['pass']} passed, "
                           f"{counts['fail']} failed, {counts['warn']} warned, {counts['error']} errors")


_HEALTH = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "error": "[red]error[/red]"}
_SPARK = " ▁▂▃▄▅▆▇█"


def _spark(shares: list[float]) -> str:
    """A small bar chart of shares, one character per bin."""
    top = max(shares, default=0) or 1
    return "".join(_SPARK[min(8, round(share / top * 8))] for share in shares)


def print_monitor(report: "MonitorReport") -> None:
    from rich.table import Table

    from skewless.core.durations import human_duration

    table = Table(show_edge=False, header_style="bold")
    for column in ("feature", "model", "age", "rows now", "null rate", "PSI", "reference", "current", "status"):
        table.add_column(column, justify="right" if column in ("rows now", "null rate", "PSI") else "left")
    for health in report.features:
        age = "" if health.age_seconds is None else human_duration(health.age_seconds)
        table.add_row(
            escape(health.feature), escape(health.model), age, f"{health.rows_current:,}",
            "" if health.null_rate is None else f"{health.null_rate:.1%}",
            "" if health.psi is None else f"{health.psi:.3f}",
            _spark(health.bins.get("reference", [])[:24]), _spark(health.bins.get("current", [])[:24]),
            _HEALTH[health.status] + (f" [dim]{escape('; '.join(health.reasons))}[/dim]" if health.reasons else ""))
    out.print(table)
    for check in report.consistency:
        state = "[green]0 mismatches[/green]" if not check.mismatches else f"[red]{len(check.mismatches)} " \
            "mismatches[/red]"
        served = f", newest online event {check.newest_online.isoformat(sep=' ')}" if check.newest_online else ""
        if check.not_compared:
            served += f"; {len(check.not_compared)} float window sums not compared bit for bit (order of addition)"
        out.print(f"online vs training set  [bold]{escape(check.model)}[/bold]: {check.checked:,} values, {state}"
                  f"{escape(served)}")
        for mismatch in check.mismatches[:5]:
            out.print(f"    {escape(mismatch['feature'])} {escape(str(mismatch['entity']))}: online "
                      f"{escape(repr(mismatch['online']))}, training set {escape(repr(mismatch['offline']))}")
    out.print(f"status: {_HEALTH[report.status]} (at {report.now.isoformat(sep=' ', timespec='seconds')} UTC)")
