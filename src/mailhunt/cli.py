"""The ``mailhunt`` command line."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mailhunt import __version__
from mailhunt.atomic_files import OutputError, unreplaceable_reason
from mailhunt.case.show import raw_records
from mailhunt.case.timeline import (
    TimelineFilter,
    build_timeline,
    timeline_csv,
    timeline_jsonl,
)
from mailhunt.case.verify import verify_case
from mailhunt.config import ConfigError, load_config
from mailhunt.detect.catalog import describe_rules
from mailhunt.detect.examples import run_rule_examples
from mailhunt.detect.rules import RuleLoadError, load_rules, shipped_rules_dir
from mailhunt.detect.validation import check_rules
from mailhunt.events import utc_time
from mailhunt.export.coverage import coverage_markdown, update_document
from mailhunt.export.exporter import TARGETS, ExportDirError, export_rules, write_export
from mailhunt.findings import SEVERITIES
from mailhunt.hunt import (
    OUTPUT_FILES,
    HuntInterrupted,
    HuntResult,
    InputSummary,
    ProgressSink,
    hunt,
)
from mailhunt.sources.hints import (
    READ_HINTS,
    USER_HINT,
    YEAR_HINT,
    YEARS,
    HintError,
    check_read_hint,
)
from mailhunt.store import CaseOpenError, CaseStore
from mailhunt.terminal import VisibleConsole, shown
from mailhunt.triage.policy import policy as triage_policy
from mailhunt.visible import visible_text

# A traceback (a bug) shows no local variables: they hold evidence, which may carry secrets and is not
# passed through ``shown``.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Find adversaries who clear mailbox data (MITRE ATT&CK T1070.008).")
console = VisibleConsole(highlight=False)
if not console.is_terminal:
    console = VisibleConsole(highlight=False, width=200)
errors = VisibleConsole(stderr=True, highlight=False, width=None if console.is_terminal else 200)



def _print_version(value: bool) -> None:
    if value:
        console.print(f"mailhunt {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit")) -> None:
    """Find adversaries who clear mailbox data (MITRE ATT&CK T1070.008)."""


# Exit codes of ``mailhunt hunt`` (README.md, Hunting): 0 the hunt ran (with or without findings).
USAGE_ERROR = 2           # bad arguments or hints, a config error, or a case folder that cannot be used
NO_EVIDENCE = 3           # nothing was read: the case holds no event, so no rule could match
OUTPUTS_NOT_WRITTEN = 4   # the case holds the evidence, but findings.json and the reports could not be written
INTERRUPTED = 130         # Ctrl-C; what was stored is kept and running again resumes
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
MAX_SHOWN_REJECTIONS = 20


def _usage_error(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {shown(message, keep_newlines=True)}", soft_wrap=True)
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
    for name in OUTPUT_FILES:
        reason = unreplaceable_reason(out / name)
        if reason:
            raise _usage_error(f"--out {out}: {name} {reason}, so this hunt could not replace it")


class RichProgress(ProgressSink):
    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, display: str, total: int | None) -> None:
        self.task = self.progress.add_task(shown(_short(display)), total=total)

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


_HINT_HELP = "KEY=VALUE the evidence does not say itself: " + "; ".join(
    f"{h.key}: {h.meaning}" for h in READ_HINTS.values())


@app.command("hunt")
def hunt_command(
    paths: list[Path] = typer.Argument(..., help="Evidence files or folders (searched recursively; .zip and .gz too)"),
    out: Path = typer.Option(..., "--out", "-o", help="Case folder: new, empty, or an earlier case to add to"),
    config_path: Path | None = typer.Option(None, "--config", "-c", help="mailhunt.toml"),
    rules: list[Path] = typer.Option([], "--rules", help="Extra folder of Sigma rules to run beside the shipped ones"),
    hints: list[str] = typer.Option([], "--hint", help=_HINT_HELP),
    year: int | None = typer.Option(None, "--year", min=YEARS.start, max=YEARS.stop - 1,
                                       help="Year of the first line of syslog files whose times have none (RFC 3164)"),
    user: str | None = typer.Option(None, "--user",
                                       help="Owner of shell histories whose location does not say (not /home/<u>/...)"),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                         help="Follow symbolic links, also out of the evidence named (by default "
                                              "no link is followed; each is listed with where it points)"),
    no_copy: bool = typer.Option(False, "--no-copy", help="Do not copy the evidence into CASE/evidence: keep only "
                                 "its paths and SHA-256 in the manifest (the reports say so)"),
    min_severity: str | None = typer.Option(None, "--min-severity",
                                            help=f"List only findings of this severity or above in the summary "
                                                 f"({', '.join(SEVERITIES)}); the case files hold them all"),
    escalated_only: bool = typer.Option(False, "--escalated-only",
                                        help="List only findings escalated to Tier 2 in the summary; the case "
                                             "files hold them all"),
) -> None:
    """Read the evidence into a case, run the rules, triage the findings and write the reports."""
    if min_severity is not None and min_severity not in SEVERITIES:
        raise _usage_error(f"--min-severity {min_severity}: expected one of {', '.join(SEVERITIES)}")
    read_hints = {}
    for hint in hints:
        key, equals, value = hint.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise _usage_error(f"--hint {hint}: expected KEY=VALUE")
        key, value = key.strip(), value.strip()
        try:
            check_read_hint(key, value)
        except HintError as exc:
            raise _usage_error(f"--hint {hint}: {exc}")
        read_hints[key] = value
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

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                      console=console, transient=False, disable=not console.is_terminal) as progress:
            result = hunt(paths, out, config, RichProgress(progress), [shipped_rules_dir(), *rules], read_hints,
                          follow_symlinks, copy_evidence=not no_copy, command_line=["mailhunt", *sys.argv[1:]])
    except RuleLoadError as exc:
        raise _usage_error(str(exc))
    except CaseOpenError as exc:
        raise _usage_error(f"--out {out}: {exc}")
    except OutputError as exc:
        errors.print(f"[bold red]error:[/] {shown(_outputs_not_written(exc))}", soft_wrap=True)
        raise typer.Exit(OUTPUTS_NOT_WRITTEN)
    except HuntInterrupted as exc:
        errors.print(f"[bold yellow]{shown(exc.explain())}[/]", soft_wrap=True)
        raise typer.Exit(INTERRUPTED)
    _print_summary(result, SummaryFilter(min_severity, escalated_only))
    if not result.events_in_case:
        errors.print(f"[bold red]error:[/] {shown(_nothing_read(result))}", soft_wrap=True)
        raise typer.Exit(NO_EVIDENCE)


def _outputs_not_written(exc: OutputError) -> str:
    if exc.replaced:
        kept = (f"{', '.join(p.name for p in exc.replaced)} were replaced by this hunt's, the others were not: "
                "the outputs disagree until the hunt is run again")
    else:
        kept = f"none of {', '.join(OUTPUT_FILES)} was replaced (any there are from an earlier hunt)"
    return (f"{exc.path.name} in {exc.path.parent}: {exc.reason}. {kept}. The evidence is stored in the case; "
            "run the same command again once this is fixed (the evidence is not read again).")


def _nothing_read(result: HuntResult) -> str:
    skipped = Counter(s.skipped_reason for s in result.inputs if s.skipped_reason)
    rejected = sum(s.rejected for s in result.inputs)
    parts = [f"{count} {reason}" for reason, count in sorted(skipped.items())]
    if rejected:
        parts.append(f"{rejected} record(s) rejected")
    why = f" ({'; '.join(parts)})" if parts else ""
    return (f"no evidence was read: {len(result.inputs)} input(s){why}, and the case holds no event, so no rule "
            "could match. Check the evidence paths and formats (README.md, Evidence it reads).")


def _read_hints(year: int | None, user: str | None) -> dict[str, str]:
    hints = {}
    if year is not None:
        hints[YEAR_HINT] = str(year)
    if user is not None:
        try:
            check_read_hint(USER_HINT, user.strip())
        except HintError as exc:
            raise _usage_error(f"--user: {exc}")
        hints[USER_HINT] = user.strip()
    return hints


@dataclass(frozen=True)
class SummaryFilter:
    """Which findings the terminal summary lists (``--min-severity``, ``--escalated-only``)."""

    min_severity: str | None = None
    escalated_only: bool = False

    def keeps(self, finding: dict) -> bool:
        if self.escalated_only and not finding["escalate"]:
            return False
        if self.min_severity is not None:
            severity = finding["severity"]
            return severity in SEVERITIES and SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)
        return True

    def describe(self) -> str:
        parts = ([f"severity {self.min_severity} or above"] if self.min_severity else []) + (
            ["escalated"] if self.escalated_only else [])
        return " and ".join(parts)


def _print_summary(result: HuntResult, keep: SummaryFilter = SummaryFilter()) -> None:
    listed = 0
    for summary in result.inputs:
        for rejection in summary.rejections:
            if listed < MAX_SHOWN_REJECTIONS:
                errors.print(f"[yellow]rejected[/] {shown(str(rejection))}")
            listed += 1
    total_rejected = sum(s.rejected for s in result.inputs)
    if total_rejected > listed:
        errors.print(f"[yellow]... {total_rejected - listed} more rejected records; see case.duckdb table rejections[/]")

    inputs = Table(title="Inputs", title_justify="left")
    for column in ("file", "format", "records", "rejected", "new events", "note"):
        inputs.add_column(column, justify="right" if column in ("records", "rejected", "new events") else "left")
    for s in result.inputs:
        note = s.skipped_reason and f"skipped: {s.skipped_reason}" or ("already in the case" if s.already_loaded else "")
        note = "; ".join(filter(None, [note, *s.notes]))
        inputs.add_row(shown(_short(s.path, 60)), s.format or "-", str(s.records), str(s.rejected),
                       str(s.new_events), shown(note))
    console.print(inputs)

    listed_findings = [f for f in result.document["findings"] if keep.keeps(f)]
    title = "Findings" if keep == SummaryFilter() else (
        f"Findings: {len(listed_findings)} of {len(result.document['findings'])} ({keep.describe()})")
    findings = Table(title=title, title_justify="left")
    for column in ("severity", "escalate", "indicator", "actor", "first seen (UTC)", "events", "id"):
        findings.add_column(column)
    for f in listed_findings:
        findings.add_row(f"[{SEVERITY_STYLE.get(f['severity'], '')}]{shown(f['severity'])}[/]",
                         "yes" if f["escalate"] else "no", shown(f["indicator"]), shown(f["actor"] or "-"),
                         shown(f["first_seen"]), str(f["event_count"]), shown(f["id"]))
    console.print(findings)
    if result.document.get("rule_matches"):
        matches = Table(title="Matches of your own rules (no indicator, so no finding)", title_justify="left")
        for column in ("rule", "level", "events", "first seen (UTC)"):
            matches.add_column(column, justify="right" if column == "events" else "left")
        for m in result.document["rule_matches"]:
            matches.add_row(shown(m["rule"]["title"] or m["rule"]["id"]), shown(m["rule"]["level"]),
                            str(m["event_count"]), shown(m["first_seen"] or "-"))
        console.print(matches)
    if result.document.get("skipped_rules"):
        errors.print(f"[yellow]{len(result.document['skipped_rules'])} rules could not run[/]; each is listed "
                     "with the reason under skipped_rules in findings.json and in the reports")
    preservation = result.document.get("evidence_preservation") or {}
    for problem in preservation.get("problems", []):
        errors.print(f"[yellow]{shown(problem)}[/]", soft_wrap=True)
    if preservation:
        console.print(f"Evidence preservation: {shown(preservation['statement'])}", soft_wrap=True)
    escalated = sum(1 for f in result.document["findings"] if f["escalate"])
    console.print(f"{len(result.findings)} findings, {escalated} to escalate to Tier 2. "
                  f"Case: {shown(str(result.out))} ({', '.join(OUTPUT_FILES)}, case.duckdb)")


def _utc_option(name: str, value: str | None):
    """A --since/--until time: ISO 8601 in UTC written with a Z; anything else is refused, never guessed."""
    if value is None:
        return None
    example = "2026-10-13T23:00:00Z"
    if not value.strip().endswith(("Z", "z")):
        raise _usage_error(f"{name} {value}: write the time in UTC with a Z, e.g. {example} "
                           "(a time without a zone or with another offset is not guessed)")
    try:
        return utc_time(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise _usage_error(f"{name} {value}: not an ISO 8601 time, e.g. {example}")


TIMELINE_FORMATS = ("csv", "jsonl")


@app.command("timeline")
def timeline_command(
    case: Path = typer.Argument(..., help="Case folder written by mailhunt hunt"),
    actor: str | None = typer.Option(None, "--actor", help="Only events of this person, as actor or target "
                                                             "(case-insensitive)"),
    since: str | None = typer.Option(None, "--since", help="Only events at or after this time (UTC, with a Z)"),
    until: str | None = typer.Option(None, "--until", help="Only events at or before this time (UTC, with a Z)"),
    fmt: str = typer.Option("csv", "--format", help="csv or jsonl (Timesketch imports either)"),
    hours: int = typer.Option(24, "--hours", min=1, help="Hours around each finding (tuning.timeline_hours)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of the screen"),
) -> None:
    """Print a slice of the case timeline: the events of the findings' people and hosts, in time order."""
    if fmt not in TIMELINE_FORMATS:
        raise _usage_error(f"--format {fmt}: expected csv or jsonl")
    keep = TimelineFilter(actor, _utc_option("--since", since), _utc_option("--until", until))
    if keep.since and keep.until and keep.since > keep.until:
        raise _usage_error(f"--since {since} is after --until {until}")
    findings_file = case / "findings.json"
    if not (case / "case.duckdb").is_file() or not findings_file.is_file():
        raise _usage_error(f"{case}: not a case folder (case.duckdb and findings.json, written by mailhunt hunt)")
    try:
        findings = orjson.loads(findings_file.read_bytes())["findings"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise _usage_error(f"{findings_file}: cannot read the findings ({exc})")
    try:
        with CaseStore(case / "case.duckdb", read_only=True) as store:
            store.resolved.ensure()
            entries = build_timeline(store.resolved, findings, hours, keep)
    except CaseOpenError as exc:
        raise _usage_error(f"{case}: {exc}")
    data = timeline_jsonl(entries) if fmt == "jsonl" else timeline_csv(entries)
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise _usage_error(f"--out {out}: cannot write ({exc.strerror or exc})")
        errors.print(f"{len(entries)} events written to {shown(str(out))}")
    elif sys.stdout.isatty():  # evidence text reaches a terminal: every hidden character written out
        sys.stdout.write(visible_text(data.decode("utf-8").replace("\r\n", "\n"), keep_newlines=True))
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


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
def rules_list_command(rules: list[Path] = RULES_OPTION,
                       show_policy: bool = typer.Option(False, "--policy", help="Also print the triage policy: the "
                                                        "escalation criteria, their checks, the indicator families, "
                                                        "tools and known threat patterns")) -> None:
    """Each rule: id, title, indicator, level, status, logsource, examples, and whether it runs on mailhunt's events."""
    infos = describe_rules(_load_rule_set(rules))
    if show_policy:
        print_policy({info.name for info in infos if info.name})
    table = Table(title=f"{len(infos)} rules", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=36)
    for column in ("name", "title", "indicator", "level", "status", "logsource", "examples", "runs"):
        table.add_column(column, overflow="fold")
    for info in infos:
        runs = "yes" if info.runs else f"no: {info.reason}"
        examples = f"{info.example_cases} cases, {info.example_records} records" if info.example_cases else "none"
        table.add_row(shown(info.id), shown(info.name or "-"), shown(info.title), shown(info.indicator or "(none)"),
                      shown(info.level), shown(info.status or "-"), shown(info.logsource), examples, shown(runs))
    console.print(table)


def print_policy(rule_names: set[str]) -> None:
    """The triage policy (``triage/policy.toml``) as tables; a rule it names that the rule set lacks is marked."""
    loaded = triage_policy()

    def rules_cell(names) -> str:
        return ", ".join(n if n in rule_names else f"{n} (not in this rule set)" for n in sorted(names))

    for sentence in loaded.sentences.values():
        console.print(f"[bold]{shown(sentence.id)}[/] {shown(sentence.text)}")
    criteria = Table(title="Escalation criteria and their checks", title_justify="left")
    for column in ("criterion", "sentence", "check", "signal", "applies to", "unless justified", "severity floor"):
        criteria.add_column(column, overflow="fold")
    for criterion in loaded.criteria:
        for check in criterion.checks:
            criteria.add_row(shown(f"{criterion.id} {criterion.name}"), shown(criterion.sentence.id), shown(check.id),
                             shown(check.signal), shown(", ".join(check.applies_to) or "every indicator"),
                             "yes" if check.unless_justified else "no", shown(check.severity))
    console.print(criteria)
    families = Table(title="Indicator families", title_justify="left")
    families.add_column("family")
    families.add_column("indicators", overflow="fold")
    for name, members in loaded.families.items():
        families.add_row(shown(name), shown(", ".join(members)))
    console.print(families)
    tools = Table(title="Scripts or tools typically not used by authorized personnel (DE-1b)", title_justify="left")
    for column in ("tool", "description", "rules", "requires"):
        tools.add_column(column, overflow="fold")
    for tool in loaded.tools:
        tools.add_row(shown(tool.id), shown(tool.description), shown(rules_cell(tool.rules)),
                      shown(tool.requires or (f"process {tool.process.pattern}" if tool.process else "-")))
    console.print(tools)
    patterns = Table(title="Known threat patterns (DE-1c)", title_justify="left")
    for column in ("pattern", "description", "ATT&CK", "indicators or rules"):
        patterns.add_column(column, overflow="fold")
    for pattern in loaded.threat_patterns:
        named = ", ".join(sorted(pattern.indicators)) or rules_cell(pattern.rules)
        patterns.add_row(shown(pattern.id), shown(pattern.description), shown(", ".join(pattern.attack)), shown(named))
    console.print(patterns)


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
        table.add_row("[green]pass[/]" if result.passed else "[bold red]FAIL[/]", shown(titles[result.rule_id]),
                      shown(result.case), shown(result.expected or "-"), shown(result.detail))
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
            table.add_row(shown(issue.severity), shown(issue.check), shown(issue.description), shown(issue.detail),
                          "\n".join(shown(rule) for rule in issue.rules))
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
                console.print(f"[bold]# {shown(result.name or result.id)}[/]: {shown(result.title)}")
                console.print(shown(result.query or "", keep_newlines=True), soft_wrap=True)
    table = Table(title=f"Export to {TARGETS[target].language}", title_justify="left")
    for column in ("rule", "title", "kind", "result"):
        table.add_column(column, overflow="fold")
    for result in results:
        outcome = (f"[green]exported[/] {shown(result.file or '')}" if result.exported
                   else f"[yellow]{shown(result.reason or '')}[/]")
        table.add_row(shown(result.name or result.id), shown(result.title), shown(result.kind), outcome)
    console.print(table)
    exported = sum(1 for r in results if r.exported)
    where = f" into {shown(str(out))} (index.json, index.md)" if out is not None else ""
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
        console.print(shown(table, keep_newlines=True), soft_wrap=True, end="")
        return
    if not update.is_file() or not update_document(update, table):
        raise _usage_error(f"--update {update}: no such file, or it lacks the coverage markers")
    console.print(f"coverage table written to {shown(str(update))}")


@app.command("verify")
def verify_command(case: Path = typer.Argument(..., help="Case folder written by mailhunt hunt")) -> None:
    """Check the preserved evidence against its manifest and the custody chain; exit 1 on any discrepancy."""
    if not case.is_dir():
        raise _usage_error(f"{case}: not a folder")
    result = verify_case(case)
    for problem in result.problems:
        console.print(f"[bold red]FAIL[/] {shown(problem)}", soft_wrap=True)
    for note in result.notes:
        console.print(f"[yellow]note[/] {shown(note)}", soft_wrap=True)
    verdict = "intact" if result.intact else f"{len(result.problems)} discrepanc{'y' if len(result.problems) == 1 else 'ies'}"
    console.print(f"{result.files_checked} evidence file(s) hashed, {result.entries_checked} custody entries "
                  f"checked: {verdict}. Custody head: {shown(result.head or '-')}", soft_wrap=True)
    if not result.intact:
        raise typer.Exit(1)


@app.command("show")
def show_command(case: Path = typer.Argument(..., help="Case folder written by mailhunt hunt"),
                 event_id: str = typer.Argument(..., help="event.id, as findings.json lists it")) -> None:
    """Print an event's raw record as stored, with its file, SHA-256 and locator (hidden characters written out)."""
    if not (case / "case.duckdb").is_file():
        raise _usage_error(f"{case}: holds no case (case.duckdb)")
    try:
        records = raw_records(case, event_id)
    except CaseOpenError as exc:
        raise _usage_error(f"{case}: {exc}")
    if not records:
        errors.print(f"[bold red]error:[/] no event {shown(event_id)} in {shown(str(case))}", soft_wrap=True)
        raise typer.Exit(1)
    for record in records:
        console.print(f"[bold]event[/] {shown(record.event_id)}", soft_wrap=True)
        console.print(f"file: {shown(record.file)}", soft_wrap=True)
        console.print(f"sha256: {shown(record.sha256)}", soft_wrap=True)
        console.print(f"locator: {shown(record.locator)}", soft_wrap=True)
        preserved = ", ".join(f"evidence/{p}" for p in record.preserved_as) or "not copied into the case"
        console.print(f"preserved as: {shown(preserved)}", soft_wrap=True)
        console.print(shown(record.original if record.original is not None else "(no raw record kept)",
                            keep_newlines=True), soft_wrap=True)


@app.command("serve")
def serve_command(case: Path = typer.Argument(..., help="Case folder written by mailhunt hunt"),
                  host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)"),
                  port: int = typer.Option(8765, "--port", help="Port to listen on"),
                  analyst: str = typer.Option("", "--analyst", help="Name to fill in the analyst fields")) -> None:
    """Open the case in a browser: findings, timeline, evidence, dispositions and sign-off (docs/web.md)."""
    if not (case / "case.duckdb").is_file():
        raise _usage_error(f"{case}: holds no case (case.duckdb)")
    from mailhunt.web.serve import serve

    serve(case, host, port, analyst,
          say=lambda line: console.print(shown(line), soft_wrap=True),
          warn=lambda line: errors.print(f"[bold yellow]{shown(line)}[/]", soft_wrap=True))


@app.command("version")
def version_command() -> None:
    """Print the version."""
    console.print(f"mailhunt {__version__}")


if __name__ == "__main__":
    app()
