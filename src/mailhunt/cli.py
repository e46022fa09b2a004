"""The ``mailhunt`` command line."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import typer
from rich import filesize
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from mailhunt import __version__
from mailhunt.atomic_files import OutputError, replace_files, unreplaceable_reason
from mailhunt.case import custody
from mailhunt.case.show import raw_records
from mailhunt.case.timeline import (
    TimelineFilter,
    build_timeline,
    timeline_csv,
    timeline_jsonl,
)
from mailhunt.case.verify import verify_case
from mailhunt.case_document import InputsAtAGlance, case_outputs
from mailhunt.config import ConfigError, load_config
from mailhunt.detect.catalog import describe_rules
from mailhunt.detect.examples import run_rule_examples
from mailhunt.detect.rules import RuleLoadError, load_rules, shipped_rules_dir
from mailhunt.detect.validation import check_rules
from mailhunt.events import utc_from_analyst
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
from mailhunt.memory import MemoryLimitError, parse_size
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
from mailhunt.wording import count_of

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


# What the steps of a counted analysis stage are (``hunt.STAGES``); other stages show no count.
STAGE_UNITS = {"compiling the rules": "rules", "matching the rules": "passes", "triage": "findings"}


class AmountColumn(ProgressColumn):
    """A file's bytes read of its size (the bytes alone when its size is unknown, as in a .gz); an analysis
    stage's steps done of its total (nothing when they are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.download = DownloadColumn()

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "bytes")
        if unit == "bytes":
            if not task.total:
                return Text(f"{filesize.decimal(int(task.completed))} read", style="progress.download")
            return self.download.render(task)
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed)}/{int(task.total)} {unit}", style="progress.download")


class RichProgress(ProgressSink):
    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None
        self.stage_task: TaskID | None = None

    def start(self, display: str, total: int | None) -> None:
        self.task = self.progress.add_task(shown(_short(display)), total=total, unit="bytes")

    def stage(self, name: str | None, total: int | None = None) -> None:
        """Show the analysis stage now running in place of the one before (None: analysis over)."""
        if self.stage_task is not None:
            self.progress.remove_task(self.stage_task)
            self.stage_task = None
        if name is not None:
            self.stage_task = self.progress.add_task(name, total=total, unit=STAGE_UNITS.get(name, "steps"))

    def step(self) -> None:
        if self.stage_task is not None:
            self.progress.advance(self.stage_task, 1)

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
    memory_limit: str | None = typer.Option(None, "--memory-limit",
                                            help="Memory budget of the hunt, e.g. 1GB or 768MiB (256 MiB .. 1 TiB): "
                                                 "the case database spills to disk past its share and loading "
                                                 "stages smaller batches; default: 512 MB for the database"),
    engine: str = typer.Option("duckdb", "--engine",
                               help="Where the rules run: duckdb (in the case database) or spark (Apache Spark over "
                                    "the events as Parquet; pip install 'mailhunt[spark]', Java 17+; docs/scale.md)"),
    spark_master: str | None = typer.Option(None, "--spark-master",
                                            help="Spark master URL for --engine spark (default local[*], or the "
                                                 "session spark-submit started)"),
    spark_data: Path | None = typer.Option(None, "--spark-data",
                                           help="Folder for the events as Parquet, on storage every Spark executor "
                                                "reads (default CASE/events.parquet)"),
) -> None:
    """Read the evidence into a case, run the rules, triage the findings and write the reports."""
    if engine not in ENGINES:
        raise _usage_error(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    if engine != "spark" and (spark_master or spark_data):
        raise _usage_error("--spark-master and --spark-data apply to --engine spark only")
    try:
        memory_bytes = parse_size(memory_limit) if memory_limit is not None else None
    except MemoryLimitError as exc:
        raise _usage_error(f"--memory-limit {exc}")
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
    rule_engine = _spark_engine(spark_master, spark_data) if engine == "spark" else None

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), AmountColumn(), TimeElapsedColumn(),
                      console=console, transient=False, disable=not console.is_terminal) as progress:
            result = hunt(paths, out, config, RichProgress(progress), [shipped_rules_dir(), *rules], read_hints,
                          follow_symlinks, copy_evidence=not no_copy, command_line=["mailhunt", *sys.argv[1:]],
                          memory_limit=memory_bytes, rule_engine=rule_engine)
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


ENGINES = ("duckdb", "spark")


def _spark_engine(master: str | None, data: Path | None):
    """The Spark rule engine, started before any evidence is read; a missing pyspark or Java is a usage error
    that says what to install (``mailhunt.spark.session``)."""
    from mailhunt.spark.session import SparkUnavailable

    try:
        from mailhunt.spark import spark_rule_engine

        return spark_rule_engine(master, data.resolve() if data else None)
    except SparkUnavailable as exc:
        raise _usage_error(str(exc)) from None


@app.command("report")
def report_command(
    case: Path = typer.Argument(..., help="Case folder (holds case.duckdb) written by mailhunt hunt"),
) -> None:
    """Write findings.json, report.html and report.md again from the case database, without hunting again."""
    if not (case / "case.duckdb").is_file():
        raise _usage_error(f"{case}: holds no case (case.duckdb)")
    for name in OUTPUT_FILES:
        reason = unreplaceable_reason(case / name)
        if reason:
            raise _usage_error(f"{case}: {name} {reason}, so it could not be replaced")
    try:
        with CaseStore(case / "case.duckdb") as store:
            document, outputs = case_outputs(store, case)
            digests = replace_files(outputs)
        custody.record(case, "report", {"written": {path.name: digest for path, digest in sorted(digests.items())}})
    except CaseOpenError as exc:
        raise _usage_error(f"{case}: {exc}")
    except OutputError as exc:
        errors.print(f"[bold red]error:[/] {shown(f'{exc.path.name} in {exc.path.parent}: {exc.reason}')}",
                     soft_wrap=True)
        raise typer.Exit(OUTPUTS_NOT_WRITTEN)
    console.print(f"{count_of(len(document['inputs']), 'input')} of {count_of(len(document['hunts']), 'hunt')}, "
                  f"{count_of(len(document['findings']), 'finding')}. Written: "
                  f"{', '.join(str(case / name) for name in OUTPUT_FILES)}", soft_wrap=True)


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


def findings_table(findings: list[dict], title: str, on: Console | None = None) -> Table:
    """The findings as a table for a terminal as wide as ``on`` (default: the summary's console).

    An id is never wrapped or cut, so it can be copied whole: when the table
    with a column per field is wider than the terminal, indicator, actor and
    first seen share one column, one per line, and only that column folds."""
    on = on or console
    width = max((len(shown(f["id"])) for f in findings), default=2)
    wide = Table(title=title, title_justify="left")
    for column in ("severity", "escalate", "indicator", "actor", "first seen (UTC)", "events"):
        wide.add_column(column, overflow="fold")
    wide.add_column("id", no_wrap=True, min_width=width)
    for f in findings:
        wide.add_row(f"[{SEVERITY_STYLE.get(f['severity'], '')}]{shown(f['severity'])}[/]",
                     "yes" if f["escalate"] else "no", shown(f["indicator"]), shown(f["actor"] or "-"),
                     shown(f["first_seen"]), str(f["event_count"]), shown(f["id"]))
    if Measurement.get(on, on.options.update_width(1 << 16), wide).maximum <= on.width:
        return wide
    narrow = Table(title=title, title_justify="left")
    narrow.add_column("id", no_wrap=True, min_width=width)
    narrow.add_column("severity", no_wrap=True)
    narrow.add_column("tier 2", no_wrap=True)
    narrow.add_column("events", justify="right", no_wrap=True)
    narrow.add_column("indicator / actor / first seen (UTC)", overflow="fold")
    for f in findings:
        narrow.add_row(shown(f["id"]), f"[{SEVERITY_STYLE.get(f['severity'], '')}]{shown(f['severity'])}[/]",
                       "yes" if f["escalate"] else "no", str(f["event_count"]),
                       f"{shown(f['indicator'])}\n{shown(f['actor'] or '-')}\n{shown(f['first_seen'])}")
    return narrow


def _print_summary(result: HuntResult, keep: SummaryFilter = SummaryFilter()) -> None:
    listed = 0
    for summary in result.inputs:
        for rejection in summary.rejections:
            if listed < MAX_SHOWN_REJECTIONS:
                errors.print(f"[yellow]rejected[/] {shown(str(rejection))}")
            listed += 1
    hunt_rejected = sum(s.rejected for s in result.inputs)
    shown_here = min(listed, MAX_SHOWN_REJECTIONS)
    if hunt_rejected > shown_here:
        errors.print(f"[yellow]{_rejection_caps(shown_here, hunt_rejected, result.document)}[/]")
    _print_case_inputs(result.inputs_at_a_glance, result.document)
    this_hunt = ", ".join(f"{shown(_short(s.path, 60))}: already in the case" for s in result.inputs
                          if s.already_loaded)
    if this_hunt:
        console.print(f"Read before, not again: {this_hunt}", soft_wrap=True)
    resumed = (f", and counted {result.resumed_events} new events of the files a stopped earlier hunt had stored"
               if result.resumed_events else "")
    console.print(f"Hunt {result.hunt} added {result.new_events} new events{resumed}; the case holds "
                  f"{result.events_in_case} events.")
    _print_findings(result, keep)


def _rejection_caps(shown_here: int, hunt_rejected: int, document: dict) -> str:
    """Where the rejected records are, with each cap stated at the number it limits."""
    caps = document.get("rejections_count") or {}
    return (f"showing {shown_here} of this hunt's {hunt_rejected} rejected records; the case has "
            f"{caps.get('total', 0)} in all, findings.json and the reports list the first {caps.get('listed', 0)}, "
            f"and case.duckdb table rejections keeps {caps.get('kept_in_case', 0)} (at most 1,000 per file)")


def _print_case_inputs(glance: InputsAtAGlance, document: dict) -> None:
    """The inputs of the case, with the hunt that added each (the hunts numbered from 1): all of them, or,
    past ``SHOWN_INPUTS``, those with something to say (skipped, rejected records, a note) first, the
    rest in order, and a line that says how many are left out and where every one is listed."""
    started = {h["id"]: h["started_at"] for h in document.get("hunts") or []}
    inputs = Table(title="Inputs of the case", title_justify="left")
    for column in ("hunt", "file", "format", "records", "rejected", "new events", "note"):
        inputs.add_column(column, justify="right" if column in ("hunt", "records", "rejected", "new events")
                          else "left")
    for i, note in glance.listed:
        inputs.add_row(str(i["hunt"]), shown(_short(i["path"], 60)), i["format"] or "-", str(i["records"]),
                       str(i["rejected"]), str(i["new_events"]), shown(note))
    console.print(inputs)
    if len(glance.listed) < glance.count:
        left_telling = glance.telling - min(glance.telling, len(glance.listed))
        which = (f"{left_telling:,} more with rejected records or a note are not shown" if left_telling else
                 "every input with rejected records or a note is shown")
        console.print(f"showing {len(glance.listed)} of the case's {glance.count:,} inputs ({which}); findings.json "
                      f"and the reports list every input. In all: {glance.records:,} records, "
                      f"{glance.rejected:,} rejected.", soft_wrap=True)
    console.print("Hunts: " + "; ".join(f"{number} at {shown(when or 'an unrecorded time')}"
                                        for number, when in started.items()), soft_wrap=True)


def _print_findings(result: HuntResult, keep: SummaryFilter) -> None:
    listed_findings = [f for f in result.document["findings"] if keep.keeps(f)]
    title = "Findings" if keep == SummaryFilter() else (
        f"Findings: {len(listed_findings)} of {len(result.document['findings'])} ({keep.describe()})")
    console.print(findings_table(listed_findings, title, console))
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
        return utc_from_analyst(value)
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
    _record_export(case, {"export": "timeline", "format": fmt, "actor": actor, "since": since, "until": until,
                          "hours": hours, "to": str(out) if out is not None else "standard output",
                          "entries": len(entries), "sha256": hashlib.sha256(data).hexdigest()})
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



def _record_export(case: Path, details: dict) -> None:
    """Note in the case's custody log that data left the case; a case whose log cannot be written says so."""
    try:
        custody.record(case, "export", details)
    except OSError as exc:
        errors.print(f"[yellow]warning:[/] {shown(str(case))}: the export is not in the custody log "
                     f"({shown(exc.strerror or str(exc))})", soft_wrap=True)


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
