"""The main job, stage by stage: evidence -> events -> case store -> detections -> findings -> triage -> outputs.

Each stage only reads what the one before it produced. The command line
(``mailhunt.cli``) adds progress display and the summary; tests call ``hunt``.
"""

from __future__ import annotations

import contextlib
import io
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from mailhunt import memory
from mailhunt.atomic_files import replace_files
from mailhunt.case import add_case_plans
from mailhunt.case.acquisition import AcquisitionInBackground
from mailhunt.case.iocs import collect_iocs
from mailhunt.case.timeline import TIMELINE_FILES, keep_timeline
from mailhunt.case_document import (
    OUTPUT_FILES,
    InputsAtAGlance,
    case_outputs,
    save_analysis,
)
from mailhunt.config import Config
from mailhunt.detect.engine import (
    DetectionSettings,
    RuleEngine,
    compile_rules,
    matching_steps,
    run_rules,
)
from mailhunt.detect.grouping import group_detections, rule_matches
from mailhunt.detect.rules import LoadedRule, load_rules
from mailhunt.findings import Finding, findings_document
from mailhunt.sources import ReadContext, identify, sniff_head
from mailhunt.sources.base import Batch
from mailhunt.sources.inputs import EvidenceFile, EvidenceTooLarge, iter_evidence
from mailhunt.store import COMBINED_ROWS, CaseOpenError, CaseStore
from mailhunt.triage import TriageContext, triage

__all__ = ["OUTPUT_FILES", "HuntInterrupted", "HuntResult", "InputSummary", "ProgressSink", "hunt"]
# Makes the engine the rules run in, from the loaded case and its folder.
RuleEngineFactory = Callable[[CaseStore, Path], RuleEngine]


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
    """What a hunt did. ``inputs``: this hunt's inputs; ``document``: the findings document of the case as written
    to findings.json, but for its ``inputs`` (every input of every hunt: 100,000 in a case of many small files),
    of which ``inputs_at_a_glance`` keeps what the terminal shows."""

    out: Path
    inputs: list[InputSummary]
    findings: list[Finding]
    document: dict
    events_in_case: int = 0
    hunt: int = 0
    new_events: int = 0
    # Events of files a stopped earlier hunt had stored whole, counted by this one (they stay that hunt's).
    resumed_events: int = 0
    inputs_at_a_glance: InputsAtAGlance = field(default_factory=InputsAtAGlance)


class HuntInterrupted(Exception):
    """The analyst stopped the hunt (Ctrl-C). Says what the case holds now and that running again resumes.

    ``stage`` is "reading", "analysing" or "writing"; ``reading`` the file
    being loaded when it was stopped (its part-loaded events are removed);
    ``stored`` the files of this hunt that are in the case whole."""

    def __init__(self, out: Path, stage: str, reading: str | None, stored: list[str]):
        self.out, self.stage, self.reading, self.stored = out, stage, reading, stored
        super().__init__(self.explain())

    def explain(self) -> str:
        resume = "Run the same command again to resume: files already in the case are not read again."
        if self.stage == "reading":
            where = f" while reading {self.reading}" if self.reading else " while reading the evidence"
            return (f"Interrupted{where}. The case {self.out} holds the {len(self.stored)} file(s) this hunt read "
                    f"in full (and any earlier hunt's); "
                    + (f"{self.reading} was not stored and " if self.reading else "")
                    + f"the files after it were not reached. No findings or reports were written. {resume}")
        if self.stage == "analysing":
            return (f"Interrupted while running the rules and triage. All {len(self.stored)} evidence file(s) of "
                    f"this hunt are stored in the case {self.out}; findings.json and the reports were not written "
                    f"(any in the folder are from an earlier hunt). {resume}")
        return (f"Interrupted while writing the outputs. All {len(self.stored)} evidence file(s) of this hunt are "
                f"stored in the case {self.out}; findings.json and the reports may not all be from this hunt. "
                f"{resume}")


_ctrl_c = threading.Event()


def ctrl_c_pressed() -> bool:
    """Whether Ctrl-C (SIGINT) came during the running hunt.

    DuckDB turns a Ctrl-C during a query into an exception of its own
    (InterruptException, or RuntimeError "Query interrupted"), and the
    statements after it may fail with transaction errors that surface instead;
    so the signal itself is noted, and any error after it is the interruption."""
    return _ctrl_c.is_set()


def _is_interruption(exc: BaseException) -> bool:
    """Whether ``exc`` ended the hunt because of Ctrl-C (whatever form it took on the way up)."""
    return ctrl_c_pressed() or isinstance(exc, (KeyboardInterrupt, duckdb.InterruptException))


@contextlib.contextmanager
def _noting_ctrl_c():
    _ctrl_c.clear()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield  # only the main thread can handle signals; an ignored SIGINT stays ignored
        return

    def note(signum, frame):
        _ctrl_c.set()
        previous(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _HuntState:
    """How far a hunt got, for the message when it is interrupted."""

    stage: str = "reading"
    reading: str | None = None
    summaries: list[InputSummary] = field(default_factory=list)


class ProgressSink:
    """Receives progress; the CLI shows it, tests ignore it.

    While the evidence is read: ``start`` a file (its size in bytes, None when
    unknown), ``advance`` by the bytes read, ``finish`` it. Then each analysis
    stage (``STAGES``) as it begins, with how many steps it has when they are
    counted (rules compiled, findings triaged), ``step`` after each, and
    ``stage(None)`` when the last one is over."""

    def start(self, display: str, total: int | None) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self, summary: InputSummary) -> None: ...

    def stage(self, name: str | None, total: int | None = None) -> None: ...

    def step(self) -> None: ...


# The analysis stages after reading, in the order a hunt goes through them (``ProgressSink.stage``).
STAGES = ("preserving the evidence", "compiling the rules", "matching the rules", "grouping into findings",
          "triage", "containment plans", "timeline and indicators", "writing the reports")


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


def read_ahead(batches: Iterator[Batch], depth: int = 1,
               before_take: Callable[[], None] | None = None) -> Iterator[Batch]:
    """Produce batches in a second thread while the caller stores the previous ones.

    Reading and loading then overlap. The reader starts a batch only while
    fewer than ``depth`` batches are read and not yet taken, so at most that
    many are in memory besides the one the caller holds; ``before_take`` is
    called before each batch is taken (a store with batches in flight waits
    there for room, so the caller holds none while it waits). An exception in
    the reader surfaces here. With ``depth`` 0 the batches are read in this
    thread (for a small file, starting a thread costs more than the overlap
    gains).
    """
    if depth == 0:
        source = iter(batches)
        while True:
            if before_take is not None:
                before_take()
            batch = next(source, None)
            if batch is None:
                return
            yield batch
            del batch
    done = object()
    waiting: queue.Queue = queue.Queue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            source = iter(batches)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                batch = next(source, done)
                waiting.put(batch)
                if batch is done:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            waiting.put(exc)

    worker = threading.Thread(target=produce, name="mailhunt-reader", daemon=True)
    worker.start()
    try:
        while True:
            if before_take is not None:
                before_take()
            item = waiting.get()
            slots.release()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item  # not held while the next one is awaited
    finally:
        stop.set()
        worker.join()


# A plain file this case has never seen is hashed in a thread of its own while it is read when it is at least
# this large; a smaller one is hashed first, which costs less than starting the thread.
BACKGROUND_HASH_BYTES = 1 << 20
# A file at least this large (or of unknown size) is read in a thread of its own while its batches are stored.
READ_AHEAD_BYTES = 1 << 20
# The files a hunt has read wait to be stored together (their small batches mapped as one, their inputs rows
# written in one statement) until their batches hold this many records or this many files wait.
STORE_EVERY_RECORDS = 100_000
STORE_EVERY_FILES = 2_000


@dataclass
class _ReadFile:
    """A file read in full whose events may still be on their way into the case."""

    summary: InputSummary
    ctx: ReadContext | None = None
    staged_reports: list[ReadContext] = field(default_factory=list)
    locator_unit: str = "line"
    damage_notes: list[str] = field(default_factory=list)


class EvidenceLoading:
    """The loading of one hunt's evidence, in the store's ``bulk_load``: files are read one after the
    other, and stored in groups (``store_waiting``): their events committed, then each file's rejections,
    marks and inputs row, in one transaction. A file's inputs row therefore never comes before all its
    events, and a file read in full is stored with the group it waits in; ``stored`` lists, in the order
    they were read, the files stored so far (and those skipped or found already loaded)."""

    def __init__(self, store: CaseStore, hunt_number: int | None):
        self.store = store
        self.hunt_number = hunt_number
        self.stored: list[InputSummary] = []
        self._waiting: list[_ReadFile] = []
        self._waiting_paths: set[str] = set()
        self._waiting_records = 0
        self._known_paths = {path for (path,) in store.db.execute("SELECT DISTINCT path FROM inputs").fetchall()}

    def known_path(self, path: str) -> bool:
        """Whether an input of this path was hunted into the case before (``CaseStore.known_path``)."""
        if path in self._waiting_paths:
            self.store_waiting()  # the same file named twice: the second finds the first stored
        return path in self._known_paths

    def keep(self, read: _ReadFile, records: int = 0) -> None:
        """Add a file read (or skipped) to those waiting; store them all when they are enough."""
        self._waiting.append(read)
        self._waiting_paths.add(read.summary.path)
        self._waiting_records += records
        if self._waiting_records >= STORE_EVERY_RECORDS or len(self._waiting) >= STORE_EVERY_FILES:
            self.store_waiting()

    def store_waiting(self) -> None:
        """Commit the events of the files waiting, then record them all: rejections, marks of keys named
        twice and inputs rows, a statement each for the whole group; the files are then ``stored``."""
        if not self._waiting:
            return
        self.store.commit_bulk()
        rows = [row for read in self._waiting if (row := self._complete(read)) is not None]
        read_files = [(read.summary.path, read.summary.sha256 or "", read.ctx) for read in self._waiting
                      if read.ctx is not None and not read.summary.skipped_reason]
        self.store.record_rejections_of_files([(path, sha256, ctx.rejections) for path, sha256, ctx in read_files])
        self.store.mark_duplicate_keys_of_files([(path, sha256, ctx.duplicate_keys)
                                                 for path, sha256, ctx in read_files])
        self.store.record_inputs(rows)
        self.store.commit_bulk()
        self.stored.extend(read.summary for read in self._waiting)
        self._known_paths.update(read.summary.path for read in self._waiting)
        self._waiting, self._waiting_paths, self._waiting_records = [], set(), 0

    def _complete(self, read: _ReadFile) -> tuple | None:
        """Fill in the file's summary from what reading and storing found; its inputs row (None: none to write)."""
        summary, ctx = read.summary, read.ctx
        if ctx is None:
            if summary.already_loaded:
                return None
            return (summary.path, summary.sha256 or "", None, 0, 0, 0, summary.skipped_reason, "line",
                    self.hunt_number, [])
        try:
            sha256 = ctx.sha256
        except OSError as exc:  # the file could not be read through for its digest: no batch could be stored
            summary.format, summary.skipped_reason = None, f"cannot read: {exc}"
            return (summary.path, "", None, 0, 0, 0, summary.skipped_reason, "line", self.hunt_number, [])
        summary.sha256 = sha256
        for damage in read.damage_notes:
            ctx.note(damage)
        for report in read.staged_reports:
            ctx.absorb(report)
        if read.staged_reports:
            ctx.order_rejections()
        summary.records, summary.rejected = ctx.records, ctx.rejected
        summary.rejections = ctx.rejections
        summary.notes = ctx.notes
        return (summary.path, sha256, summary.format, ctx.records, ctx.rejected, None, None, read.locator_unit,
                self.hunt_number, ctx.notes)


def load_evidence_file(store: CaseStore, item: EvidenceFile, progress: ProgressSink,
                       read_hints: dict[str, str] | None = None, hunt_number: int | None = None,
                       loading: EvidenceLoading | None = None) -> InputSummary:
    """Read one evidence file into the case and return its summary.

    Within a hunt's ``loading`` the file waits to be stored with the next ones: its
    summary (records, rejections, notes) is complete once ``loading`` has stored it.
    Without one, the file is stored before this returns; a file that was skipped is
    not recorded (the caller records it)."""
    if loading is None:
        with store.bulk_load(combine_rows=COMBINED_ROWS):
            loading = EvidenceLoading(store, hunt_number)
            summary = load_evidence_file(store, item, progress, read_hints, hunt_number, loading)
            if not summary.skipped_reason:
                loading.store_waiting()
        return summary
    if item.problem:
        return InputSummary(item.display, None, None, skipped_reason=item.problem)
    try:
        head = sniff_head(item.head)
        source = identify(head) if head else None
        known = source is not None and loading.known_path(item.display)
        # A plain file this case has never seen cannot be loaded already, so a large one is hashed while it
        # is read; anything else is hashed first.
        if source is not None and item.local_path and not known and (item.size or 0) >= BACKGROUND_HASH_BYTES:
            hashed_first: str | None = None
            digest: str | Future[str] = item.sha256_in_background()
        else:
            hashed_first = digest = item.sha256()
    except (OSError, EvidenceTooLarge, EOFError) as exc:
        return InputSummary(item.display, None, None, skipped_reason=f"cannot read: {exc}")
    if not head:
        return InputSummary(item.display, hashed_first, None, skipped_reason="empty file")
    if source is None:
        return InputSummary(item.display, hashed_first, None, skipped_reason="format not recognized")
    summary = InputSummary(item.display, None, source.name)
    if isinstance(digest, str) and known and store.known_input(item.display, digest):
        row = store.query("SELECT records, rejected FROM inputs WHERE path = ? AND sha256 = ?", [item.display, digest])[0]
        summary.sha256, summary.records, summary.rejected = digest, row["records"], row["rejected"]
        summary.already_loaded = True
        loading.keep(_ReadFile(summary))
        return summary
    ctx = ReadContext(item.display, digest, dict(read_hints or {}), local_path=item.local_path,
                      cut_short=item.damage.cut_short, read_bytes=progress.advance)
    progress.start(item.display, item.size)

    def batches():
        with io.BufferedReader(CountingReader(item.open(), progress.advance), buffer_size=1 << 20) as stream:
            yield from source.read(stream, ctx)

    read = _ReadFile(summary, ctx, locator_unit=getattr(source, "locator_unit", "line"))
    staged_records = 0
    try:
        for batch in read_ahead(batches(), 1 if item.size is None or item.size >= READ_AHEAD_BYTES else 0,
                                before_take=store.wait_for_room):
            store.append(batch)
            if not isinstance(batch, pa.Table):
                read.staged_reports.append(batch.context)
                staged_records += batch.num_rows
            del batch  # not held while the next one is read
    except duckdb.InterruptException:  # Ctrl-C in a query: the file is not loaded, not "read up to here"
        raise
    except EvidenceTooLarge as exc:
        ctx.reject("end", str(exc))
    except OSError as exc:
        ctx.reject("end", f"read error: {exc}")
    except Exception as exc:  # noqa: BLE001 - a reader must never take the hunt down; say where it stopped
        ctx.reject("end", f"reading stopped after {ctx.records + staged_records} "
                          f"records ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); the records before were kept")
    if ctrl_c_pressed():  # DuckDB may surface a Ctrl-C as another error, taken above for a reader's
        raise KeyboardInterrupt
    read.damage_notes = item.damage.notes()
    progress.finish(summary)
    loading.keep(read, ctx.records + staged_records)
    return summary


def settle_new_events(store: CaseStore, summaries: list[InputSummary], hunt_number: int) -> tuple[int, int]:
    """Deduplicate once after loading, then count what each new input added, on the database.

    Returns the new events of this hunt's inputs, and those of inputs a stopped
    earlier hunt had stored whole, counted now (they stay that hunt's)."""
    counted = store.settle_sources(hunt_number)
    own = 0
    for summary in summaries:
        if summary.format and not summary.skipped_reason and not summary.already_loaded:
            summary.new_events = counted.pop((summary.path, summary.sha256 or ""), 0)
            own += summary.new_events
    return own, sum(counted.values())


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
         follow_symlinks: bool = False, copy_evidence: bool = True,
         command_line: list[str] | None = None, memory_limit: int | None = None,
         rule_engine: RuleEngineFactory | None = None) -> HuntResult:
    """Run every stage into the case folder ``out``.

    ``memory_limit`` (bytes) is the hunt's memory budget (``mailhunt.memory``); None keeps the defaults.
    ``rule_engine`` makes the engine the rules run in from the loaded case and
    its folder (default: the case database itself; ``mailhunt.spark``).

    The inputs are copied to ``out/evidence`` (only listed with their SHA-256
    when ``copy_evidence`` is false) and the hunt is recorded in
    ``out/custody.jsonl`` with ``command_line`` (default ``sys.argv``).

    Raises CaseOpenError (``mailhunt.store``) when the case cannot be opened,
    OutputError (``mailhunt.atomic_files``) when the outputs cannot be written
    (the case holds the evidence; no output was replaced), and HuntInterrupted
    on Ctrl-C, after removing what the file then being loaded had stored."""
    state = _HuntState()
    try:
        with _noting_ctrl_c(), memory.limited_to(memory_limit):
            return _run_stages(paths, out, config, progress or ProgressSink(), rule_dirs, read_hints,
                               follow_symlinks, state, copy_evidence, command_line, rule_engine)
    except BaseException as exc:
        if not _is_interruption(exc):
            raise
        if state.stage == "reading":  # if this fails, the next hunt finds the loading note and cleans up
            with contextlib.suppress(duckdb.Error, CaseOpenError), CaseStore(out / "case.duckdb") as store:
                store.drop_unrecorded_events()  # of the file being read, and of any read but not yet stored
                store.end_loading()
        stored = [s.path for s in state.summaries if s.format and not s.skipped_reason]
        raise HuntInterrupted(out, state.stage, state.reading, stored) from exc


def _run_stages(paths: list[Path], out: Path, config: Config, progress: ProgressSink, rule_dirs: list[Path] | None,
                read_hints: dict[str, str] | None, follow_symlinks: bool, state: _HuntState,
                copy_evidence: bool = True, command_line: list[str] | None = None,
                rule_engine: RuleEngineFactory | None = None) -> HuntResult:
    out.mkdir(parents=True, exist_ok=True)
    rules = load_rules(rule_dirs)  # a broken rule file stops the hunt before any evidence is read
    with CaseStore(out / "case.duckdb") as store:
        hunt_number = store.begin_hunt(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if store.loading_was_cut_short():  # an earlier hunt stopped while loading, before it could clean up
            store.drop_unrecorded_events()
        store.begin_loading()
        summaries = state.summaries
        with store.bulk_load(combine_rows=COMBINED_ROWS):
            loading = EvidenceLoading(store, hunt_number)
            loading.stored = summaries
            try:
                for item in iter_evidence(paths, follow_symlinks, case_dirs=[out]):
                    state.reading = item.display
                    summary = load_evidence_file(store, item, progress, read_hints, hunt_number, loading)
                    if summary.skipped_reason:
                        loading.keep(_ReadFile(summary))
                        progress.finish(summary)
                    state.reading = None
                loading.store_waiting()
            except BaseException:
                # The files read in full before the stop are stored, as they were when each was stored on its own.
                with contextlib.suppress(Exception):
                    loading.store_waiting()
                raise
        store.end_loading()
        state.stage = "analysing"
        new_events, resumed_events = settle_new_events(store, summaries, hunt_number)
        progress.stage(STAGES[0])
        # The copy runs beside the analysis (its result is first needed when the analysis is saved).
        acquisition = AcquisitionInBackground(out, paths, follow_symlinks,
                                              {s.path: s.sha256 for s in summaries if s.sha256},
                                              copy_evidence, command_line, len(summaries), new_events)
        try:
            findings, analysis = _analyse(store, out, config, rules, progress, rule_engine)
            preservation = acquisition.result()
        except BaseException as exc:
            _end_acquisition(acquisition, exc)
            raise
        save_analysis(store, analysis["findings"], {
            "skipped_rules": analysis["skipped_rules"], "rule_matches": analysis["rule_matches"],
            "evidence_preservation": preservation.summary(), "logging_gaps": analysis["logging_gaps"],
            "iocs": analysis["iocs"]})
        events_in_case = store.event_count()

        # Written while the case is still open, so a second hunt into it cannot interleave its outputs.
        state.stage = "writing"
        progress.stage(STAGES[7])
        document, outputs = case_outputs(store, out)
        replace_files(outputs)
        glance = InputsAtAGlance.of(document.pop("inputs"))
        progress.stage(None)
    return HuntResult(out, summaries, findings, document, events_in_case, hunt_number, new_events, resumed_events,
                      glance)


def _analyse(store: CaseStore, out: Path, config: Config, rules: list[LoadedRule], progress: ProgressSink,
             rule_engine: RuleEngineFactory | None) -> tuple[list[Finding], dict]:
    """The rules, the findings and their triage, plans, indicators and timeline (kept in the case for
    ``save_analysis``), from the loaded case."""
    engine = rule_engine(store, out) if rule_engine else None  # may write files: before the seal
    store.seal_external_access()

    progress.stage(STAGES[1], len(rules))
    compiled = compile_rules(rules, detection_settings(config), on_rule=progress.step)
    progress.stage(STAGES[2], matching_steps(compiled))
    run = run_rules(store, compiled, engine, on_step=progress.step)
    progress.stage(STAGES[3])
    findings = group_detections(store, run.detections)
    progress.stage(STAGES[4], len(findings))
    ctx = TriageContext.build(store, config, {r.id: r.indicator for r in rules if r.indicator}, engine)
    triage(findings, ctx, on_finding=progress.step)
    store.resolved.ask_with(None)

    analysis = findings_document(findings, [], [], run.skipped, rule_matches(store, rules))
    progress.stage(STAGES[5])
    add_case_plans(analysis, findings, store)
    progress.stage(STAGES[6])
    _add_case_views(store, config, findings, analysis)
    return findings, analysis


def _end_acquisition(acquisition: AcquisitionInBackground, exc: BaseException) -> None:
    """On Ctrl-C stop the copying (custody says the hunt was interrupted); after any other error let the
    evidence be preserved whole before the error is raised."""
    if _is_interruption(exc):
        acquisition.stop()
        return
    with contextlib.suppress(Exception):
        acquisition.result()


def _add_case_views(store: CaseStore, config: Config, findings: list[Finding], document: dict) -> None:
    """Add the case's indicators (``iocs``) and each finding's ``timeline_ref`` to the document, and keep the
    timeline's events in the case for ``save_analysis`` (``case/timeline.py``, ``case/iocs.py``)."""
    store.resolved.ensure(config.domains)
    escalated = {f["id"] for f in document["findings"] if f["escalate"]}
    document["iocs"] = collect_iocs(store.resolved, {f.id: f.event_ids for f in findings}, escalated, config.domains)
    refs = keep_timeline(store.resolved, document["findings"], config.timeline_hours)
    for finding in document["findings"]:
        finding["timeline_ref"] = refs.get(finding["id"], {"files": list(TIMELINE_FILES), "entries": 0})
