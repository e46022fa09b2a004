"""The case timeline: every event of the people and hosts of the findings, around the findings, in time order.

For each finding, the events whose resolved actor or target is the finding's
actor or one of its targets (mailboxes, accounts), and, for endpoint evidence
(``HOST_FAMILIES``: a host there is one machine, unlike a mail server that
serves every mailbox), the events logged on the finding's host, from
``hours`` before its first event to ``hours`` after its last
(``tuning.timeline_hours``). Every source of the case contributes; each event
appears once, with the ids of every finding it belongs to.

Written as ``timeline.jsonl`` (one JSON object per line, which Timesketch
imports as is: ``message``, ``datetime`` in ISO 8601 UTC, ``timestamp_desc``,
and the other fields) and ``timeline.csv`` (the same columns, every cell
neutralized against spreadsheet formulas: ``mailhunt.csv_cells``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pyarrow as pa

from mailhunt.case_queries import (
    TIMELINE_FIELDS,
    TIMELINE_TIMESTAMP_DESC,
    ResolvedEvents,
)
from mailhunt.csv_cells import csv_bytes
from mailhunt.events import utc_from_document

HOST_FAMILIES = ("windows", "unix", "macos")
TIMELINE_FILES = ("timeline.csv", "timeline.jsonl")
TIMESTAMP_DESC = TIMELINE_TIMESTAMP_DESC
# The fields of every timeline entry, in the order of the CSV columns.
FIELDS = TIMELINE_FIELDS
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class TimelineFilter:
    """A slice of the timeline: one person (as actor or target, case-insensitive) and a time span (naive UTC)."""

    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def keeps(self, entry: dict, when: datetime) -> bool:
        if self.since is not None and when < self.since:
            return False
        if self.until is not None and when > self.until:
            return False
        if self.actor is not None:
            wanted = self.actor.lower()
            return any((entry.get(name) or "").lower() == wanted for name in ("actor", "actor_logged", "target"))
        return True


def wanted_table(findings: Sequence[dict], hours: int) -> pa.Table:
    """The people, hosts and time spans of these findings (``findings.json`` entries), one row per person or host."""
    margin = timedelta(hours=hours)
    rows: dict[str, list] = {"finding": [], "person": [], "host": [], "start": [], "end": []}

    for finding in findings:
        first, last = utc_from_document(finding.get("first_seen")), utc_from_document(finding.get("last_seen"))
        if first is None or last is None:
            continue
        people = sorted({p for p in (finding.get("actor"), *finding.get("targets", ())) if p})
        for person, host in [*((p, None) for p in people), *([(None, finding["host"])] if finding.get("host") else [])]:
            rows["finding"].append(finding["id"])
            rows["person"].append(person)
            rows["host"].append(host)
            rows["start"].append(first - margin)
            rows["end"].append(last + margin)
    return pa.table(rows, schema=pa.schema([("finding", pa.string()), ("person", pa.string()), ("host", pa.string()),
                                            ("start", pa.timestamp("us")), ("end", pa.timestamp("us"))]))


def keep_timeline(resolved: ResolvedEvents, findings: Sequence[dict], hours: int) -> dict[str, dict]:
    """Find the timeline of these findings (``findings.json`` entries) and keep its events in the case, for
    ``build_timeline`` and ``save_analysis`` (``ResolvedEvents.timeline_texts``, ``store_timeline``); return
    each finding's ``timeline_ref`` in findings.json (the timeline files and how many of their entries belong
    to it), for the findings with entries."""
    counts = resolved.keep_timeline(wanted_table(findings, hours), HOST_FAMILIES)
    return {finding: {"files": list(TIMELINE_FILES), "entries": count} for finding, count in counts.items()}


def escalated_ids(findings: Sequence[dict]) -> list[str]:
    """The ids of the escalated findings (``findings.json`` entries): their timeline entries say so."""
    return sorted(f["id"] for f in findings if f.get("escalate"))


def build_timeline(resolved: ResolvedEvents, findings: Sequence[dict], hours: int,
                   keep: TimelineFilter = TimelineFilter()) -> list[dict]:
    """The timeline entries of these findings (``findings.json`` entries) that ``keep`` keeps, in time order."""
    keep_timeline(resolved, findings, hours)
    entries = []
    for text in resolved.timeline_texts(escalated_ids(findings)):
        entry = orjson.loads(text)
        if keep.keeps(entry, EPOCH + timedelta(microseconds=entry["timestamp"])):
            entries.append(entry)
    return entries


def timeline_jsonl(entries: Iterable[dict]) -> bytes:
    """One JSON object per line (Timesketch's JSONL import)."""
    return b"".join(orjson.dumps(entry) + b"\n" for entry in entries)


def timeline_jsonl_of_texts(texts: Iterable[str]) -> bytes:
    """timeline.jsonl from entries already written as JSON (the case's ``timeline_entries``): the same bytes."""
    return b"".join(text.encode("utf-8") + b"\n" for text in texts)


def timeline_csv(entries: Iterable[dict]) -> bytes:
    """The entries as CSV, finding ids joined by spaces, every cell neutralized."""
    return csv_bytes(FIELDS, ([" ".join(e[name]) if name == "finding_ids" else _cell(e[name]) for name in FIELDS]
                              for e in entries))


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
