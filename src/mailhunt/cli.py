"""The ``mailhunt`` command line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mailhunt import __version__
from mailhunt.config import ConfigError, load_config
from mailhunt.detect.catalog import describe_rules
from mailhunt.detect.examples import run_rule_examples
from mailhunt.detect.rules import RuleLoadError, load_rules, shipped_rules_dir
from mailhunt.detect.validation import check_rules
from mailhunt.export.coverage import coverage_markdown, update_document
from mailhunt.export.exporter import TARGETS, ExportDirError, export_rules, write_export
from mailhunt.hunt import HuntResult, InputSummary, ProgressSink, hunt

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find adversaries who clear mailbox data (MITRE ATT&CK T1070.008).")
console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=200)
errors = Console(stderr=True, highlight=False, width=None if console.is_terminal else 200)

USAGE_ERROR = 2
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
MAX_SHOWN_REJECTIONS = 20


def _usage_error(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(USAGE_ERROR)


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise _usage_error(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "case.duckdb").exists():
        raise _usage_error(f"--out {out}: folder is not empty and holds no case (case.duckdb)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise _usage_error(f"--out {out}: cannot write there ({exc.strerror or exc})")


class RichProgress(ProgressSink):
    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def start(self, display: str, total: int | None) -> None:
        self.task = self.progress.add_task(escape(_short(display)), total=total)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)

    def finish(self, summary: InputSummary) -> None:
        """Drop the file's line: the display then redraws one line, not one per file read so far
        (every file is listed in the inputs table at the end)."""
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None


def _short(path: str, width: int = 50) -> str:
    return path if len(path) <= width else "..." + path[-(width - 3):]


@app.command("hunt")
def hunt_command(
    paths: list[Path] = typer.Argument(..., help="Evidence files or folders (searched recursively; .zip and .gz too)"),
    out: Path = typer.Option(..., "--out", "-o", help="Case folder: new, empty, or an earlier case to add to"),
    config_path: Path | None = typer.Option(None, "--config", "-c", help="mailhunt.toml"),
    rules: list[Path] = typer.Option([], "--rules", help="Extra folder of Sigma rules to run beside the shipped ones"),
    hints: list[str] = typer.Option([], "--hint", help="KEY=VALUE the evidence does not say itself, e.g. "
                                                       "timezone=Europe/Berlin for zone-less export times"),
    year: int | None = typer.Option(None, "--year", min=1970, max=2100,
                                       help="Year of the first line of syslog files whose times have none (RFC 3164)"),
    user: str | None = typer.Option(None, "--user",
                                       help="Owner of shell histories whose location does not say (not /home/<u>/...)"),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                         help="Follow symbolic links, also out of the evidence named (by default "
                                              "no link is followed; each is listed with where it points)"),
) -> None:
    """Read the evidence into a case, run the rules, triage the findings and write the reports."""
    read_hints = {}
    for hint in hints:
        key, equals, value = hint.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise _usage_error(f"--hint {hint}: expected KEY=VALUE")
        read_hints[key.strip()] = value.strip()
    for path in paths:
        if not os.path.lexists(path):
            raise _usage_error(f"{path}: no such file or folder")
    for folder in rules:
        if not folder.is_dir():
            raise _usage_error(f"--rules {folder}: not a folder")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise _usage_error(str(exc))
    read_hints.update(_read_hints(year, user))
    _check_out_dir(out)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=not console.is_terminal) as progress:
        try:
            result = hunt(paths, out, config, RichProgress(progress), [shipped_rules_dir(), *rules], read_hints,
                          follow_symlinks)
        except RuleLoadError as exc:
            raise _usage_error(str(exc))
    _print_summary(result)


def _read_hints(year: int | None, user: str | None) -> dict[str, str]:
    hints = {}
    if year is not None:
        hints["year"] = str(year)
    if user is not None:
        if not user.strip() or any(c in user for c in "/\\\n"):
            raise _usage_error(f"--user {user!r}: not an account name")
        hints["user"] = user.strip()
    return hints


def _print_summary(result: HuntResult) -> None:
    shown = 0
    for summary in result.inputs:
        for rejection in summary.rejections:
            if shown < MAX_SHOWN_REJECTIONS:
                errors.print(f"[yellow]rejected[/] {escape(str(rejection))}")
            shown += 1
    total_rejected = sum(s.rejected for s in result.inputs)
    if total_rejected > shown:
        errors.print(f"[yellow]... {total_rejected - shown} more rejected records; see case.duckdb table rejections[/]")

    inputs = Table(title="Inputs", title_justify="left")
    for column in ("file", "format", "records", "rejected", "new events", "note"):
        inputs.add_column(column, justify="right" if column in ("records", "rejected", "new events") else "left")
    for s in result.inputs:
        note = s.skipped_reason and f"skipped: {s.skipped_reason}" or ("already in the case" if s.already_loaded else "")
        note = "; ".join(filter(None, [note, *s.notes]))
        inputs.add_row(escape(_short(s.path, 60)), s.format or "-", str(s.records), str(s.rejected),
                       str(s.new_events), escape(note))
    console.print(inputs)

    findings = Table(title="Findings", title_justify="left")
    for column in ("severity", "escalate", "indicator", "actor", "first seen (UTC)", "events", "id"):
        findings.add_column(column)
    for f in result.document["findings"]:
        findings.add_row(f"[{SEVERITY_STYLE.get(f['severity'], '')}]{f['severity']}[/]",
                         "yes" if f["escalate"] else "no", f["indicator"], escape(f["actor"] or "-"),
                         f["first_seen"], str(f["event_count"]), f["id"])
    console.print(findings)
    if result.document.get("rule_matches"):
        matches = Table(title="Matches of your own rules (no indicator, so no finding)", title_justify="left")
        for column in ("rule", "level", "events", "first seen (UTC)"):
            matches.add_column(column, justify="right" if column == "events" else "left")
        for m in result.document["rule_matches"]:
            matches.add_row(escape(m["rule"]["title"] or m["rule"]["id"]), m["rule"]["level"], str(m["event_count"]),
                            m["first_seen"] or "-")
        console.print(matches)
    escalated = sum(1 for f in result.document["findings"] if f["escalate"])
    console.print(f"{len(result.findings)} findings, {escalated} to escalate to Tier 2. "
                  f"Case: {escape(str(result.out))} (findings.json, report.html, report.md, case.duckdb)")


rules_app = typer.Typer(no_args_is_help=True, help="List, test, check and export Sigma rules: the shipped ones or your own.")
app.add_typer(rules_app, name="rules")

RULES_OPTION = typer.Option([], "--rules", help="Folder of Sigma rules to use instead of the shipped ones (repeatable)")


def _load_rule_set(folders: list[Path]):
    for folder in folders:
        if not folder.is_dir():
            raise _usage_error(f"--rules {folder}: not a folder")
    try:
        return load_rules(folders or [shipped_rules_dir()])
    except RuleLoadError as exc:
        raise _usage_error(str(exc))


@rules_app.command("list")
def rules_list_command(rules: list[Path] = RULES_OPTION) -> None:
    """Each rule: id, title, indicator, level, status, logsource, examples, and whether it runs on mailhunt's events."""
    infos = describe_rules(_load_rule_set(rules))
    table = Table(title=f"{len(infos)} rules", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("name", "title", "indicator", "level", "status", "logsource", "examples", "runs"):
        table.add_column(column, overflow="fold")
    for info in infos:
        runs = "yes" if info.runs else f"no: {info.reason}"
        examples = f"{info.example_cases} cases, {info.example_records} records" if info.example_cases else "none"
        table.add_row(info.id, escape(info.name or "-"), escape(info.title), info.indicator or "(none)",
                      info.level, info.status or "-", escape(info.logsource), examples, escape(runs))
    console.print(table)


@rules_app.command("test")
def rules_test_command(rules: list[Path] = RULES_OPTION) -> None:
    """Run every rule against its example events; exit 1 if any case fails."""
    loaded = _load_rule_set(rules)
    results = run_rule_examples(loaded)
    titles = {r.id: (r.rule.name or r.id) for r in loaded}
    table = Table(title="Rule examples", title_justify="left")
    for column in ("result", "rule", "case", "expected", "detail"):
        table.add_column(column)
    for result in results:
        table.add_row("[green]pass[/]" if result.passed else "[bold red]FAIL[/]", escape(titles[result.rule_id]),
                      escape(result.case), result.expected or "-", escape(result.detail))
    console.print(table)
    failed = sum(1 for r in results if not r.passed)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@rules_app.command("check")
def rules_check_command(rules: list[Path] = RULES_OPTION) -> None:
    """Run pySigma's rule validators (ids, tags, ATT&CK/D3FEND ids, conditions, values); exit 1 on any issue."""
    report = check_rules(_load_rule_set(rules))
    if report.issues:
        table = Table(title=f"{len(report.issues)} issues", title_justify="left")
        for column in ("severity", "check", "issue", "detail", "rules"):
            table.add_column(column, overflow="fold")
        for issue in report.issues:
            table.add_row(issue.severity, issue.check, escape(issue.description), escape(issue.detail),
                          escape("\n".join(issue.rules)))
        console.print(table)
    console.print(f"{report.rules_checked} rules, {len(report.checks)} checks, {len(report.issues)} issues "
                  f"(tags checked against MITRE ATT&CK {report.mitre.attack_version} and "
                  f"D3FEND {report.mitre.d3fend_version}, shipped with mailhunt)")
    if report.issues:
        raise typer.Exit(1)


TARGET_NAMES = ", ".join(TARGETS)


@rules_app.command("export")
def rules_export_command(
    target: str = typer.Option(..., "--target", "-t", help=f"Query language: {TARGET_NAMES}"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for one query file per rule, index.json "
                                       "and index.md (new, empty, or an earlier export); without it the "
                                       "queries are printed"),
    rules: list[Path] = RULES_OPTION,
) -> None:
    """Convert rules to a SIEM's query language; every rule is listed, exported or with why it cannot be."""
    if target not in TARGETS:
        raise _usage_error(f"--target {target}: not one of {TARGET_NAMES}")
    results = export_rules(_load_rule_set(rules), target)
    if out is not None:
        try:
            write_export(results, target, out)
        except (ExportDirError, OSError) as exc:
            raise _usage_error(f"--out {out}: {exc}")
    else:
        for result in results:
            if result.exported:
                console.print(f"[bold]# {escape(result.name or result.id)}[/]: {escape(result.title)}")
                console.print(escape(result.query or ""), soft_wrap=True)
    table = Table(title=f"Export to {TARGETS[target].language}", title_justify="left")
    for column in ("rule", "title", "kind", "result"):
        table.add_column(column, overflow="fold")
    for result in results:
        outcome = (f"[green]exported[/] {escape(result.file or '')}" if result.exported
                   else f"[yellow]{escape(result.reason or '')}[/]")
        table.add_row(escape(result.name or result.id), escape(result.title), result.kind, outcome)
    console.print(table)
    exported = sum(1 for r in results if r.exported)
    where = f" into {escape(str(out))} (index.json, index.md)" if out is not None else ""
    console.print(f"{exported} of {len(results)} rules exported{where}; {len(results) - exported} not supported")


@rules_app.command("coverage")
def rules_coverage_command(
    rules: list[Path] = RULES_OPTION,
    update: Path | None = typer.Option(None, "--update", help="Rewrite the table between the coverage markers "
                                          "in this Markdown file (docs/rules.md)"),
) -> None:
    """Markdown table of every rule against every export target, with the reason for each gap."""
    table = coverage_markdown(_load_rule_set(rules))
    if update is None:
        console.print(escape(table), soft_wrap=True, end="")
        return
    if not update.is_file() or not update_document(update, table):
        raise _usage_error(f"--update {update}: no such file, or it lacks the coverage markers")
    console.print(f"coverage table written to {escape(str(update))}")


@app.command("version")
def version_command() -> None:
    """Print the version."""
    console.print(f"mailhunt {__version__}")


if __name__ == "__main__":
    app()
