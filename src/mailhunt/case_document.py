"""The findings document of a whole case, built from the case database.

A case is hunted into any number of times; its outputs describe all of it:
every input of every hunt with the hunt that added it, every finding's
evidence with every file and locator the record was seen in, and the
rejections of all inputs with their caps stated. ``mailhunt hunt`` writes the
outputs through ``case_outputs`` and ``mailhunt report`` calls the same
function on the stored case, so both write the same bytes for the same case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from mailhunt import __version__
from mailhunt.atomic_files import Content
from mailhunt.case.iocs import IOC_FILES, iocs_csv, iocs_stix
from mailhunt.case.ocsf import ocsf_jsonl
from mailhunt.case.review import case_review
from mailhunt.case.timeline import (
    TIMELINE_FILES,
    escalated_ids,
    timeline_csv,
    timeline_jsonl_of_texts,
)
from mailhunt.case_queries import TIMELINE_FIELDS
from mailhunt.csv_cells import csv_bytes, csv_line_sql, neutralized_sql
from mailhunt.findings import SCHEMA
from mailhunt.json_pieces import indented_json_pieces
from mailhunt.report.html import html_pieces
from mailhunt.report.markdown import markdown_pieces
from mailhunt.sql_text import sql_identifier, sql_string
from mailhunt.store import CaseStore

# What a hunt (or ``mailhunt report``) writes beside case.duckdb, all replaced together.
OUTPUT_FILES = ("findings.json", "report.html", "report.md", "findings.ocsf.jsonl", *TIMELINE_FILES, *IOC_FILES)
# The case-wide parts of the document that the analysis of the last hunt produced, in document order.
ANALYSIS_PARTS = ("skipped_rules", "rule_matches", "evidence_preservation", "logging_gaps", "iocs")
MAX_REPORTED_REJECTIONS = 200
# Timeline entries written to or read from the case database at a time.
TIMELINE_BATCH = 10_000
INPUTS_QUERY = """SELECT path, sha256, format, records, rejected, skipped_reason, notes, hunt, new_events
                  FROM inputs ORDER BY hunt NULLS FIRST, path, sha256"""
# Inputs read from the case database at a time.
INPUTS_BATCH = 5_000
# Inputs of the case the terminal lists (``InputsAtAGlance``); findings.json and the reports list every one.
SHOWN_INPUTS = 20
# Characters of a report encoded and written at a time.
UTF8_PIECE = 1 << 20


class CaseInputs:
    """Every input of every hunt, in hunt order then by path: the ``inputs`` of findings.json.

    Read from the case database a batch at a time each time it is iterated, while
    the case is open: a case of 100,000 small files lists 100,000 inputs, and the
    reports and findings.json each go through them once without holding them
    (bench/README.md, many small files). ``len`` is their number."""

    def __init__(self, store: CaseStore):
        self._db = store.db
        self._count = int(store.db.execute("SELECT count(*) FROM inputs").fetchall()[0][0])

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict]:
        cursor = self._db.cursor()  # a connection of its own: the case may be asked other things meanwhile
        try:
            cursor.execute(INPUTS_QUERY)
            while rows := cursor.fetchmany(INPUTS_BATCH):
                for path, sha256, file_format, records, rejected, skipped_reason, notes, hunt, new_events in rows:
                    yield {"path": path, "sha256": sha256 or None, "format": file_format, "records": records,
                           "rejected": rejected, "skipped_reason": skipped_reason, "notes": list(notes or []),
                           "hunt": hunt, "new_events": new_events or 0}
        finally:
            cursor.close()


def input_note(entry: dict) -> str:
    """What an input of the case has to say: why it was skipped, and its notes ('' for nothing)."""
    return "; ".join(filter(None, [entry["skipped_reason"] and f"skipped: {entry['skipped_reason']}",
                                   *entry["notes"]]))


@dataclass
class InputsAtAGlance:
    """What the terminal says of the case's inputs, from one pass over them: all of them with their notes, or, past
    ``SHOWN_INPUTS``, that many with those with something to say (rejected records, a note) first, each part in
    the case's order; and how many there are, how many have something to say, and their records and rejected
    records in all."""

    listed: list[tuple[dict, str]] = field(default_factory=list)
    count: int = 0
    telling: int = 0
    records: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, inputs: Iterable[dict]) -> InputsAtAGlance:
        limit = SHOWN_INPUTS
        glance = cls()
        first: list[tuple[dict, str]] = []
        telling: list[tuple[dict, str]] = []
        plain: list[tuple[dict, str]] = []
        for entry in inputs:
            note = input_note(entry)
            glance.count += 1
            glance.records += entry["records"] or 0
            glance.rejected += entry["rejected"] or 0
            if len(first) < limit:
                first.append((entry, note))
            if entry["rejected"] or note:
                glance.telling += 1
                if len(telling) < limit:
                    telling.append((entry, note))
            elif len(plain) < limit:
                plain.append((entry, note))
        glance.listed = first if glance.count <= limit else (telling + plain)[:limit]
        return glance


def case_hunts(store: CaseStore) -> list[dict]:
    """Every hunt into the case: number, UTC start (null for one recorded by an earlier mailhunt), the
    inputs it added and the new events they brought, and the events the case held before and after it
    (null for a hunt that was stopped before it counted; the hunt that resumed it counts its files)."""
    added = {hunt: (inputs, new) for hunt, inputs, new in store.db.execute(
        "SELECT hunt, count(*), sum(new_events) FROM inputs GROUP BY 1").fetchall()}
    return [{"id": h["id"], "started_at": h["started_at"], "inputs": added.get(h["id"], (0, 0))[0],
             "new_events": int(added.get(h["id"], (0, 0))[1] or 0),
             "events_before": h["events_before"], "events_after": h["events_after"]}
            for h in store.hunts()]


def case_rejections(store: CaseStore, limit: int = MAX_REPORTED_REJECTIONS) -> tuple[list[dict], dict]:
    """The first ``limit`` rejected records of the case (by hunt, file, position in the file), and the caps:
    how many records were rejected in all, how many the case database keeps, how many are listed."""
    listed = store.query(
        """SELECT r.path, r.locator, r.reason FROM rejections r
           LEFT JOIN inputs i ON i.path = r.path AND i.sha256 = r.sha256
           ORDER BY i.hunt NULLS FIRST, r.path, r.sha256, r.seq NULLS LAST, r.locator LIMIT ?""", [limit])
    total = store.db.execute("SELECT coalesce(sum(rejected), 0) FROM inputs").fetchall()[0][0]
    kept = store.db.execute("SELECT count(*) FROM rejections").fetchall()[0][0]
    return listed, {"total": int(total), "kept_in_case": int(kept), "listed": len(listed)}


def attach_sources(store: CaseStore, evidence_lists: list[list[dict]]) -> None:
    """Give each entry of these evidence lists ``sources``: every (file, sha256, locator) its record was seen
    in. One look-up for all the lists: each reads every event's sources."""
    found = store.event_sources_of(sorted({e["event_id"] for evidence in evidence_lists for e in evidence}))
    for entry in (entry for evidence in evidence_lists for entry in evidence):
        entry["sources"] = [{"source": path, "sha256": sha256,
                             "locator": f"{unit} {record}" if record is not None else "unknown"}
                            for path, sha256, record, unit in found.get(entry["event_id"], [])]


def save_analysis(store: CaseStore, findings: list[dict], parts: dict[str, Any]) -> None:
    """Store this hunt's findings (in document order), the other analysis parts (those of
    ``ANALYSIS_PARTS``) and the entries of timeline.csv/jsonl the analysis kept (``case/timeline.py``
    ``keep_timeline``), each as its JSON text, in timeline order."""
    attach_sources(store, [finding["evidence"] for finding in findings]
                   + [match["evidence"] for match in parts.get("rule_matches") or []])
    store.db.execute("BEGIN TRANSACTION")
    store.db.execute("DELETE FROM findings")
    if findings:
        store.db.executemany("INSERT INTO findings (id, indicator, document, position) VALUES (?, ?, ?, ?)",
                             [(f["id"], f["indicator"], orjson.dumps(f).decode(), n) for n, f in enumerate(findings)])
    store.db.executemany("INSERT OR REPLACE INTO report_parts VALUES (?, ?)",
                         [(name, orjson.dumps(part).decode()) for name, part in sorted(parts.items())])
    # A case saved by an earlier mailhunt kept the whole timeline as one report part.
    store.db.execute("DELETE FROM report_parts WHERE name = 'timeline'")
    store.resolved.store_timeline(escalated_ids(findings))
    store.db.execute("COMMIT")


def timeline_texts(store: CaseStore) -> Iterator[str]:
    """The stored timeline entries' JSON texts in timeline order (from the one report part of a case
    analysed by an earlier mailhunt)."""
    old = store.db.execute("SELECT document FROM report_parts WHERE name = 'timeline'").fetchall()
    if old:
        yield from (orjson.dumps(entry).decode() for entry in orjson.loads(old[0][0]))
        return
    cursor = store.db.cursor()
    try:
        cursor.execute("SELECT entry FROM timeline_entries ORDER BY position")
        while rows := cursor.fetchmany(TIMELINE_BATCH):
            yield from (text for (text,) in rows)
    finally:
        cursor.close()


def timeline_csv_of_case(store: CaseStore) -> Iterator[bytes | memoryview]:
    """timeline.csv of the stored timeline entries, in pieces: ``timeline_csv`` of them, each line taken out of
    its entry's JSON, neutralized and quoted by the database (no Python object per entry). Read the pieces
    before the case is asked anything else."""
    if _has_old_timeline(store):
        yield timeline_csv(orjson.loads(text) for text in timeline_texts(store))
        return
    fields = ", ".join(f"{sql_identifier(name)}: " + ('"VARCHAR[]"' if name == "finding_ids" else '"VARCHAR"')
                       for name in TIMELINE_FIELDS)
    cells = ", ".join(neutralized_sql(f"array_to_string(e.{sql_identifier(name)}, ' ')" if name == "finding_ids"
                                      else f"e.{sql_identifier(name)}") + f" AS cell_{n}"
                      for n, name in enumerate(TIMELINE_FIELDS))
    line = csv_line_sql([f"cell_{n}" for n in range(len(TIMELINE_FIELDS))])
    yield csv_bytes(TIMELINE_FIELDS, [])
    yield from _text_pieces(store.db.sql(
        f"""SELECT {line} FROM (SELECT position, {cells}
                                FROM (SELECT position, from_json(entry, {sql_string("{" + fields + "}")}) AS e
                                      FROM timeline_entries)) ORDER BY position"""))


def timeline_jsonl_of_case(store: CaseStore) -> Iterator[bytes | memoryview]:
    """timeline.jsonl of the stored timeline entries, in pieces: their JSON texts, a line each. Read the pieces
    before the case is asked anything else."""
    if _has_old_timeline(store):
        yield timeline_jsonl_of_texts(timeline_texts(store))
        return
    yield from _text_pieces(store.db.sql("SELECT entry || chr(10) FROM timeline_entries ORDER BY position"))


def _has_old_timeline(store: CaseStore) -> bool:
    """Whether the case was saved by an earlier mailhunt, which kept the whole timeline as one report part."""
    return bool(store.db.execute("SELECT count(*) FROM report_parts WHERE name = 'timeline'").fetchall()[0][0])


def _text_pieces(relation: duckdb.DuckDBPyRelation) -> Iterator[bytes | memoryview]:
    """The text values of the relation's one column, one after the other, as UTF-8: each Arrow batch's data
    buffer, not one Python string a value."""
    for batch in relation.to_arrow_reader(TIMELINE_BATCH):
        column = batch.column(0)
        if not len(column):
            continue
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            yield "".join(column.to_pylist()).encode("utf-8")
            continue
        offsets = pa.Array.from_buffers(pa.int64() if pa.types.is_large_string(column.type) else pa.int32(),
                                        len(column) + 1, [None, column.buffers()[1]], offset=column.offset)
        start, end = offsets[0].as_py(), offsets[len(column)].as_py()
        yield memoryview(column.buffers()[2].slice(start, end - start))


def case_document(store: CaseStore) -> dict:
    """The findings document (schema ``mailhunt.findings/1``) of the whole case, from the database alone. Its
    ``inputs`` are the case's ``CaseInputs``, read as they are iterated while the case is open; ``findings_json``
    writes the document."""
    findings = [orjson.loads(row[0]) for row in store.db.execute(
        """SELECT document FROM findings
           ORDER BY position NULLS LAST, document->>'first_seen', indicator, document->>'actor', id""").fetchall()]
    # stored by a mailhunt that did not keep every source yet
    attach_sources(store, [finding["evidence"] for finding in findings
                           if any("sources" not in e for e in finding.get("evidence") or [])])
    parts = _analysis_parts(store)
    rejections, caps = case_rejections(store)
    document = {
        "schema": SCHEMA,
        "tool": {"name": "mailhunt", "version": __version__},
        "inputs": CaseInputs(store),
        "findings": findings,
        "rejections": rejections,
        "skipped_rules": parts.get("skipped_rules", []),
        "rule_matches": parts.get("rule_matches", []),
        "hunts": case_hunts(store),
        "rejections_count": caps,
    }
    # Parts a case analysed by an older mailhunt lacks stay absent rather than invented.
    document.update({name: parts[name] for name in ANALYSIS_PARTS if name in parts and name not in document})
    return document


def findings_json(document: dict) -> Iterator[bytes]:
    """findings.json of a findings document, in pieces: the bytes of ``orjson.dumps(document,
    option=OPT_INDENT_2)``, its inputs dumped a batch at a time as they are iterated."""
    return indented_json_pieces(document, "inputs", document["inputs"])


def _analysis_parts(store: CaseStore) -> dict:
    return {name: orjson.loads(doc) for name, doc in store.db.execute(
        "SELECT name, document FROM report_parts WHERE name <> 'timeline'").fetchall()}


def case_outputs(store: CaseStore, out: Path) -> tuple[dict, dict[Path, Content]]:
    """The document (``case_document``) and the content of every output file for the case, keyed by the path to
    write: bytes, or the pieces of those that list every input (findings.json and the reports) and of the timeline
    files, made from the case as they are written (``replace_files``, while the case is open)."""
    document = case_document(store)
    iocs = document.get("iocs") or []
    review = case_review(store.db)  # the analyst's dispositions and sign-off (``mailhunt serve``)
    rendered: tuple[Content, ...] = (
        findings_json(document), utf8_pieces(html_pieces(document, review)),
        utf8_pieces(markdown_pieces(document, review=review)), ocsf_jsonl(document), timeline_csv_of_case(store),
        timeline_jsonl_of_case(store), iocs_csv(iocs), iocs_stix(iocs))
    return document, {out / name: data for name, data in zip(OUTPUT_FILES, rendered, strict=True)}


def utf8_pieces(texts: Iterable[str]) -> Iterator[bytes]:
    """The texts one after the other as UTF-8, in pieces of about ``UTF8_PIECE`` characters (a report comes as many short
    texts; one ``bytes`` each would cost more to write than to make)."""
    held: list[str] = []
    length = 0
    for piece in texts:
        held.append(piece)
        length += len(piece)
        if length >= UTF8_PIECE:
            yield "".join(held).encode("utf-8")
            held, length = [], 0
    if held:
        yield "".join(held).encode("utf-8")
