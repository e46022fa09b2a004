"""Run each rule's example records and check the rule decides as its examples say.

Beside every rule file ``<stem>.yml`` lies ``<stem>.examples.yml``::

    # one line saying what the cases show
    cases:
      - name: short description
        expect: match            # or no_match
        records:                 # raw records exactly as the log writes them
          - {...}
      - name: the same from a text log
        expect: match
        evidence: |              # or: the file content itself (admin audit XML or CSV,
          <SearchResults>...     # a message tracking log), read as it is

Line-oriented logs (auditd, syslog, shell histories, eslogger) give their raw
``lines`` (a block, or a list of double-quoted lines when they hold control
characters such as auditd's ``\x1d``), with an optional relative
``file_name`` (a shell history's owner comes from its location) and reader
``hints`` (``year``, ``user``). A case may name the organization's domains
(``org_domains: [contoso.com]``, as ``[organization] domains`` does) for rules
on recipients outside the organization (``email.to.external``)::

      - name: short description
        expect: match
        file_name: home/alice/.bash_history   # default <rule>-<n>.log
        hints: {year: "2026"}
        lines: |
          #1791990000
          echo 'd *' | mail -f /var/mail/bob

Each case is run the way evidence is: its records are written as NDJSON (or its
``evidence`` or ``lines`` text as it is) to a temporary file -- one file per run of
records of the same format, so a case can mix audit-log records with
``evtx_dump``-style Windows records ``{"Event": {"System": ..., "EventData":
...}}`` or Winlogbeat documents -- each file is identified and read by the normal readers
(``mailhunt.sources``), loaded into an in-memory case store, deduplicated, and
the whole rule set runs over it, so that correlations find the rules they
refer to. A case passes when its rule produces a detection (or, for a
building block without an indicator, matches at least one event) exactly when
``expect`` is ``match``.

A rule without an examples file, a file that cannot be read, and a file without
both a ``match`` and a ``no_match`` case are failing results too: every rule
has to show what it finds and what it leaves alone.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import orjson
import pyarrow as pa
import yaml

from mailhunt.detect.engine import (
    CompiledRules,
    DetectionSettings,
    compile_rules,
    run_rules,
)
from mailhunt.detect.rules import (
    LoadedRule,
    UnsafeYAML,
    yaml_documents,
    yaml_error_line,
)
from mailhunt.sources import ReadContext, Source, identify, read_events, sniff_head
from mailhunt.sources.hints import HintError, check_read_hint
from mailhunt.store import CaseStore

EXPECTATIONS = ("match", "no_match")
NO_CASE = "(no examples)"


@dataclass(frozen=True)
class ExampleCase:
    name: str
    expect: str
    records: list[dict]
    evidence: str | None = None
    file_name: str | None = None
    hints: dict[str, str] = field(default_factory=dict)
    line_records: bool = False
    org_domains: tuple[str, ...] = ()

    @property
    def record_count(self) -> int:
        """Records in the case: the list's length, or for evidence text its Events (XML) or lines after the
        header, or for ``lines`` its non-empty lines."""
        if self.evidence is None:
            return len(self.records)
        if self.line_records:
            return sum(1 for line in self.evidence.splitlines() if line.strip())
        if "<Event" in self.evidence:
            return self.evidence.count("<Event")
        return max(1, sum(1 for line in self.evidence.splitlines()[1:] if line.strip().startswith('"')))

    def file_bytes(self) -> bytes:
        """What the case's evidence file holds: the text as given, else the records as NDJSON."""
        if self.evidence is not None:
            return self.evidence.encode("utf-8")
        return _ndjson(self.records)


@dataclass(frozen=True)
class ExampleResult:
    rule_id: str
    rule_title: str
    case: str
    expected: str
    matched: bool
    passed: bool
    detail: str


class ExampleFileError(Exception):
    pass


def load_example_cases(rule: LoadedRule) -> list[ExampleCase]:
    """The cases of a rule's examples file; raises ExampleFileError naming what is wrong."""
    path = rule.examples_path
    if not path.is_file():
        raise ExampleFileError(f"no examples: {path.name} is missing")
    try:
        documents = yaml_documents(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ExampleFileError(f"{path.name} is not readable YAML: {yaml_error_line(exc)}") from exc
    except (UnicodeDecodeError, UnsafeYAML) as exc:
        raise ExampleFileError(f"{path.name} is not readable YAML: {exc}") from exc
    document = documents[0] if len(documents) == 1 else None
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list) or not document["cases"]:
        raise ExampleFileError(f"{path.name}: expected a mapping with a non-empty list 'cases'")
    cases: list[ExampleCase] = []
    for index, entry in enumerate(document["cases"], start=1):
        where = f"{path.name}: case {index}"
        if not isinstance(entry, dict):
            raise ExampleFileError(f"{where} is not a mapping")
        name, expect, records = entry.get("name"), entry.get("expect"), entry.get("records")
        evidence = entry.get("evidence")
        if not isinstance(name, str) or not name.strip():
            raise ExampleFileError(f"{where} has no name")
        if expect not in EXPECTATIONS:
            raise ExampleFileError(f"{where} ({name}): expect must be match or no_match, not {expect!r}")
        domains = entry.get("org_domains") or []
        if not isinstance(domains, list) or not all(isinstance(d, str) and d.strip() for d in domains):
            raise ExampleFileError(f"{where} ({name}): org_domains must be a list of domain names")
        org_domains = tuple(d.strip().lower() for d in domains)
        if "lines" in entry:
            cases.append(replace(_lines_case(entry, where, name, expect), org_domains=org_domains))
            continue
        if evidence is not None:
            if records is not None or not isinstance(evidence, str) or not evidence.strip():
                raise ExampleFileError(f"{where} ({name}): evidence must be non-empty text, without records")
            cases.append(ExampleCase(name, expect, [], evidence, org_domains=org_domains))
            continue
        if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
            raise ExampleFileError(f"{where} ({name}): records must be a non-empty list of mappings")
        cases.append(ExampleCase(name, expect, records, org_domains=org_domains))
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExampleFileError(f"{path.name}: case names repeat: {', '.join(duplicates)}")
    missing = [e for e in EXPECTATIONS if all(c.expect != e for c in cases)]
    if missing:
        raise ExampleFileError(f"{path.name}: needs at least one {' and one '.join(missing)} case")
    return cases


def _lines_case(entry: dict, where: str, name: str, expect: str) -> ExampleCase:
    text, file_name, hints = entry.get("lines"), entry.get("file_name"), entry.get("hints") or {}
    if "records" in entry or "evidence" in entry:
        raise ExampleFileError(f"{where} ({name}): give one of records, evidence or lines")
    if isinstance(text, list) and text and all(isinstance(line, str) for line in text):
        text = "\n".join(text) + "\n"
    if not isinstance(text, str) or not text.strip():
        raise ExampleFileError(f"{where} ({name}): lines must be non-empty text or a list of lines")
    if file_name is not None:
        relative = PurePosixPath(str(file_name))
        if not relative.parts or relative.is_absolute() or ".." in relative.parts:
            raise ExampleFileError(f"{where} ({name}): file_name must be a relative path without '..'")
    if not isinstance(hints, dict):
        raise ExampleFileError(f"{where} ({name}): hints must be a mapping")
    hints = {str(k): str(v) for k, v in hints.items()}
    for key, value in hints.items():
        try:
            check_read_hint(key, value)
        except HintError as exc:
            raise ExampleFileError(f"{where} ({name}): hints: {exc}") from None
    return ExampleCase(name, expect, [], text, file_name and str(file_name), hints, line_records=True)


def _ndjson(records: list[dict]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def _rule_decided(rule: LoadedRule, run) -> bool:
    if rule.indicator:
        return any(d.rule.id == rule.id for d in run.detections)
    return run.matched.get(rule.id, 0) > 0


def _head_of(data: bytes) -> bytes:
    """What sniffers see of an evidence file held in memory."""
    return sniff_head(lambda size: data[:size])


def _case_files(case: ExampleCase) -> list[tuple[bytes, Source | None]]:
    """The case's evidence files with the reader that recognizes each."""
    if case.evidence is not None:
        data = case.file_bytes()
        return [(data, identify(_head_of(data)))]
    return _record_files(case.records)


def _record_files(records: list[dict]) -> list[tuple[bytes, Source | None]]:
    """Records split into NDJSON files, one per run of records the same reader recognizes.

    A case may mix formats, e.g. an audit-log record, an ``evtx_dump`` record
    and a Winlogbeat document, to show a correlation across sources; each run
    is read by its own reader as if it were a separate evidence file.
    """
    files: list[tuple[bytes, Source | None]] = []
    for record in records:
        line = orjson.dumps(record) + b"\n"
        source = identify(_head_of(line))
        if files and files[-1][1] is source:
            files[-1] = (files[-1][0] + line, source)
        else:
            files.append((line, source))
    return files


def _run_case(rule: LoadedRule, case: ExampleCase, compiled: CompiledRules, workdir: Path,
              number: int) -> ExampleResult:
    def result(matched: bool, passed: bool, detail: str) -> ExampleResult:
        return ExampleResult(rule.id, rule.title, case.name, case.expect, matched, passed, detail)

    batches: list[pa.Table] = []
    readers = []
    flagged: list[tuple[str, str, dict[int, str]]] = []  # what store.mark_duplicate_keys marks, per file
    for part, (data, source) in enumerate(_case_files(case), start=1):
        if source is None:
            return result(False, False, f"no reader recognizes evidence file {part} of this case")
        if case.file_name:
            path = workdir / f"{rule.path.stem}-{number}" / case.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path = workdir / f"{rule.path.stem}-{number}-{part}.{'log' if case.evidence is not None else 'ndjson'}"
        path.write_bytes(data)
        ctx = ReadContext(str(path), hashlib.sha256(data).hexdigest(), dict(case.hints))
        with path.open("rb") as stream:
            batches.extend(read_events(source, stream, ctx))
        flagged.append((ctx.path, ctx.sha256, ctx.duplicate_keys))
        if ctx.rejected:
            reasons = "; ".join(str(r) for r in ctx.rejections[:3])
            return result(False, False, f"{source.name} rejected {ctx.rejected} of the records: {reasons}")
        readers.append(source.name)
    store = CaseStore(":memory:")
    try:
        for batch in batches:
            store.append(batch)
        for path_text, sha256, duplicate_keys in flagged:
            store.mark_duplicate_keys(path_text, sha256, duplicate_keys)
        store.deduplicate()
        if case.org_domains:
            compiled = replace(compiled, settings=replace(compiled.settings, org_domains=case.org_domains))
        run = run_rules(store, compiled)
    finally:
        store.close()
    if rule.id in run.skipped:
        return result(False, False, f"rule cannot run: {run.skipped[rule.id]}")
    matched = _rule_decided(rule, run)
    passed = matched == (case.expect == "match")
    count = run.matched.get(rule.id, 0)
    read = f"{sum(b.num_rows for b in batches)} event(s) read by {', '.join(dict.fromkeys(readers))}"
    if passed:
        detail = f"{read}; rule matched {count} event(s)" if matched else f"{read}; rule did not match"
    elif matched:
        detail = f"expected no match, but the rule matched {count} event(s) ({read})"
    else:
        detail = f"expected a match, but the rule matched nothing ({read})"
    return result(matched, passed, detail)


def run_rule_examples(rules: list[LoadedRule], settings: DetectionSettings | None = None) -> list[ExampleResult]:
    """Run the examples of every rule in ``rules``; all of ``rules`` take part in each run."""
    compiled = compile_rules(rules, settings or DetectionSettings())
    results: list[ExampleResult] = []
    with tempfile.TemporaryDirectory(prefix="mailhunt-examples-") as tmp:
        workdir = Path(tmp)
        for rule in rules:
            try:
                cases = load_example_cases(rule)
            except ExampleFileError as exc:
                detail = str(exc)
                if rule.id in compiled.skipped:
                    detail += f"; rule cannot run on mailhunt's events: {compiled.skipped[rule.id]}"
                results.append(ExampleResult(rule.id, rule.title, NO_CASE, "", False, False, detail))
                continue
            if rule.id in compiled.skipped:
                reason = f"rule cannot run: {compiled.skipped[rule.id]}"
                results.extend(ExampleResult(rule.id, rule.title, c.name, c.expect, False, False, reason)
                               for c in cases)
                continue
            for number, case in enumerate(cases, start=1):
                results.append(_run_case(rule, case, compiled, workdir, number))
    return results
