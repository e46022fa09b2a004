"""The main job, stage by stage: evidence -> events -> case store -> detections -> findings -> triage -> outputs.

Each stage only reads what the one before it produced. The command line
(``mailhunt.cli``) adds progress display and the summary; tests call ``hunt``.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa

from mailhunt.config import Config
from mailhunt.detect.engine import DetectionSettings, compile_rules, run_rules
from mailhunt.detect.grouping import group_detections, rule_matches
from mailhunt.detect.rules import load_rules
from mailhunt.findings import Finding, findings_document
from mailhunt.report.html import write_html_report
from mailhunt.report.markdown import write_markdown_report
from mailhunt.sources import SNIFF_BYTES, ReadContext, identify
from mailhunt.sources.base import Batch
from mailhunt.sources.inputs import EvidenceFile, EvidenceTooLarge, iter_evidence
from mailhunt.store import CaseStore
from mailhunt.triage import TriageContext, triage

MAX_REPORTED_REJECTIONS = 200


@dataclass
class InputSummary:
    path: str
    sha256: str | None
    format: str | None
    records: int = 0
    rejected: int = 0
    new_events: int = 0
    skipped_reason: str | None = None
    already_loaded: bool = False
    rejections: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "records": self.records,
                "rejected": self.rejected, "skipped_reason": self.skipped_reason, "notes": self.notes}


@dataclass
class HuntResult:
    out: Path
    inputs: list[InputSummary]
    findings: list[Finding]
    document: dict


class ProgressSink:
    """Receives progress; the CLI shows it, tests ignore it."""

    def start(self, display: str, total: int | None) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self, summary: InputSummary) -> None: ...


class CountingReader(io.RawIOBase):
    def __init__(self, inner, on_read: Callable[[int], None]):
        self._inner = inner
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._inner.readinto(buffer)
        if count:
            self._on_read(count)
        return count

    def close(self) -> None:
        self._inner.close()
        super().close()


def read_ahead(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
    """Produce batches in a second thread while the caller stores the previous ones.

    Reading and loading then overlap; at most ``depth`` batches wait in memory
    besides the one being read and those being stored. An exception in the
    reader surfaces here.
    """
    done = object()
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        waiting.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            waiting.put(done)
        except BaseException as exc:  # handed to the consumer, who raises it
            waiting.put(exc)

    worker = threading.Thread(target=produce, name="mailhunt-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def load_evidence_file(store: CaseStore, item: EvidenceFile, progress: ProgressSink,
                       read_hints: dict[str, str] | None = None) -> InputSummary:
    if item.problem:
        return InputSummary(item.display, None, None, skipped_reason=item.problem)
    try:
        head = item.head(SNIFF_BYTES)
        source = identify(head) if head else None
        # A plain file this case has never seen cannot be loaded already, so it
        # is hashed while it is read; anything else is hashed first.
        if source is not None and item.local_path and not store.known_path(item.display):
            digest = item.sha256_in_background()
        else:
            digest = item.sha256()
    except (OSError, EvidenceTooLarge, EOFError) as exc:
        return InputSummary(item.display, None, None, skipped_reason=f"cannot read: {exc}")
    if not head:
        return InputSummary(item.display, digest, None, skipped_reason="empty file")
    if source is None:
        return InputSummary(item.display, digest, None, skipped_reason="format not recognized")
    summary = InputSummary(item.display, None, source.name)
    if isinstance(digest, str) and store.known_input(item.display, digest):
        row = store.query("SELECT records, rejected FROM inputs WHERE path = ? AND sha256 = ?", [item.display, digest])[0]
        summary.sha256, summary.records, summary.rejected = digest, row["records"], row["rejected"]
        summary.already_loaded = True
        return summary
    ctx = ReadContext(item.display, digest, dict(read_hints or {}), local_path=item.local_path)
    progress.start(item.display, item.size)

    def batches():
        with io.BufferedReader(CountingReader(item.open(), progress.advance), buffer_size=1 << 20) as stream:
            yield from source.read(stream, ctx)

    staged_reports = []
    with store.bulk_load():
        try:
            for batch in read_ahead(batches()):
                store.append(batch)
                if not isinstance(batch, pa.Table):
                    staged_reports.append(batch.context)
            store.wait_staged()
        except EvidenceTooLarge as exc:
            ctx.reject("end", str(exc))
        except OSError as exc:
            ctx.reject("end", f"read error: {exc}")
        except Exception as exc:  # a reader must never take the hunt down; say where it stopped
            ctx.reject("end", f"reading stopped after {ctx.records + sum(r.records for r in staged_reports)} "
                              f"records ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); the records before were kept")
    try:
        sha256 = ctx.sha256
    except OSError as exc:  # the file could not be read through for its digest: no batch could be stored
        unread = InputSummary(item.display, None, None, skipped_reason=f"cannot read: {exc}")
        progress.finish(unread)
        return unread
    summary.sha256 = sha256
    for report in staged_reports:
        ctx.absorb(report)
    if staged_reports:
        ctx.order_rejections()
    summary.records, summary.rejected = ctx.records, ctx.rejected
    summary.rejections = ctx.rejections
    summary.notes = ctx.notes
    store.record_input(item.display, sha256, source.name, ctx.records, ctx.rejected, 0, None,
                       getattr(source, "locator_unit", "line"))
    store.record_rejections(sha256, ctx.rejections)
    progress.finish(summary)
    return summary


def settle_new_events(store: CaseStore, summaries: list[InputSummary]) -> None:
    """Deduplicate once after loading, then count what each new input added."""
    store.deduplicate()
    kept = dict(store.db.execute(
        'SELECT "log.file.path" || chr(31) || "log.file.sha256", count(*) FROM events GROUP BY 1').fetchall())
    updates = []
    for summary in summaries:
        if summary.format and not summary.skipped_reason and not summary.already_loaded:
            summary.new_events = kept.get(f"{summary.path}\x1f{summary.sha256}", 0)
            updates.append([summary.new_events, summary.path, summary.sha256])
    if updates:  # one transaction: a commit per input costs a log flush each
        store.db.execute("BEGIN TRANSACTION")
        store.db.executemany("UPDATE inputs SET new_events = ? WHERE path = ? AND sha256 = ?", updates)
        store.db.execute("COMMIT")


def detection_settings(config: Config) -> DetectionSettings:
    return DetectionSettings(
        exclude_rules=frozenset(config.exclude_rules),
        include_system_accounts=config.include_system_accounts,
        thresholds={"bulk_delete_per_hour": config.bulk_delete_per_hour},
        timespans={"export_deletion_window": config.export_deletion_window_seconds},
        identities=config.identities,
        org_domains=config.domains,
    )


def hunt(paths: list[Path], out: Path, config: Config, progress: ProgressSink | None = None,
         rule_dirs: list[Path] | None = None, read_hints: dict[str, str] | None = None,
         follow_symlinks: bool = False) -> HuntResult:
    progress = progress or ProgressSink()
    out.mkdir(parents=True, exist_ok=True)
    with CaseStore(out / "case.duckdb") as store:
        summaries = []
        for item in iter_evidence(paths, follow_symlinks, case_dirs=[out]):
            summary = load_evidence_file(store, item, progress, read_hints)
            if summary.skipped_reason:
                store.record_input(summary.path, summary.sha256 or "", None, 0, 0, 0, summary.skipped_reason)
                progress.finish(summary)
            summaries.append(summary)
        settle_new_events(store, summaries)

        rules = load_rules(rule_dirs)
        run = run_rules(store, compile_rules(rules, detection_settings(config)))
        findings = group_detections(store, run.detections)
        ctx = TriageContext.build(store, config, {r.id: r.indicator for r in rules if r.indicator})
        triage(findings, ctx)

        rejections = [{"path": r.path, "locator": r.locator, "reason": r.reason}
                      for s in summaries for r in s.rejections][:MAX_REPORTED_REJECTIONS]
        document = findings_document(findings, [s.to_json() for s in summaries], rejections, run.skipped,
                                     rule_matches(store, rules))
        store.db.execute("DELETE FROM findings")
        if document["findings"]:
            store.db.executemany("INSERT INTO findings VALUES (?, ?, ?)",
                                 [(f["id"], f["indicator"], orjson.dumps(f).decode()) for f in document["findings"]])

    (out / "findings.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    write_html_report(document, out / "report.html")
    write_markdown_report(document, out / "report.md")
    return HuntResult(out, summaries, findings, document)
