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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pyarrow as pa

from mailhunt.case_queries import FAMILY, ResolvedEvents
from mailhunt.csv_cells import csv_bytes
from mailhunt.events import iso_z, utc_from_document

HOST_FAMILIES = ("windows", "unix", "macos")
TIMELINE_FILES = ("timeline.csv", "timeline.jsonl")
TIMESTAMP_DESC = "Event time (as logged)"
# The fields of every timeline entry, in the order of the CSV columns.
FIELDS = ("datetime", "timestamp_desc", "message", "timestamp", "finding_ids", "escalated", "event_id", "action",
          "outcome", "actor", "actor_logged", "target", "source_ip", "country", "host", "app_id", "user_agent",
          "subject", "rule_name", "command_line", "dataset", "source_family", "source_file", "source_sha256",
          "locator")


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


def _message(row: dict) -> str:
    actor, target = row["user.name"], row["user.target.name"]
    parts = [f"{row['event.action'] or 'event'} by {actor or 'unknown actor'}"]
    if target and target != actor:
        parts.append(f"on {target}")
    if row["source.ip"]:
        parts.append(f"from {row['source.ip']}")
    if row["host.name"]:
        parts.append(f"at {row['host.name']}")
    if row["rule.name"]:
        parts.append(f"rule {row['rule.name']}")
    message = " ".join(parts)
    return f"{message}: {row['email.subject']}" if row["email.subject"] else message


def _entry(row: dict, escalated: set[str]) -> dict:
    when: datetime = row["@timestamp"]
    findings = list(row["findings"])
    return {
        "datetime": iso_z(when),
        "timestamp_desc": TIMESTAMP_DESC,
        "message": _message(row),
        "timestamp": int((when - datetime(1970, 1, 1)) / timedelta(microseconds=1)),
        "finding_ids": findings,
        "escalated": any(f in escalated for f in findings),
        "event_id": row["event.id"],
        "action": row["event.action"],
        "outcome": row["event.outcome"],
        "actor": row["user.name"],
        "actor_logged": row["user.name_logged"],
        "target": row["user.target.name"],
        "source_ip": row["source.ip"],
        "country": row["source.geo.country_iso_code"],
        "host": row["host.name"],
        "app_id": row["app.id"],
        "user_agent": row["user_agent.original"],
        "subject": row["email.subject"],
        "rule_name": row["rule.name"],
        "command_line": row["process.command_line"],
        "dataset": row["event.dataset"],
        "source_family": row[FAMILY],
        "source_file": row["log.file.path"],
        "source_sha256": row["log.file.sha256"],
        "locator": f"{row['locator_unit']} {row['log.record']}" if row["log.record"] is not None else "unknown",
    }


def iter_timeline(resolved: ResolvedEvents, findings: Sequence[dict], hours: int,
                  keep: TimelineFilter = TimelineFilter()) -> Iterator[dict]:
    """The timeline entries of these findings (``findings.json`` entries) that ``keep`` keeps, in time order,
    one at a time (consume them before asking ``resolved`` anything else)."""
    escalated = {f["id"] for f in findings if f.get("escalate")}
    for row in resolved.events_involving(wanted_table(findings, hours), HOST_FAMILIES):
        entry = _entry(row, escalated)
        if keep.keeps(entry, row["@timestamp"]):
            yield entry


def build_timeline(resolved: ResolvedEvents, findings: Sequence[dict], hours: int,
                   keep: TimelineFilter = TimelineFilter()) -> list[dict]:
    """The timeline entries of these findings (``findings.json`` entries) that ``keep`` keeps, in time order."""
    return list(iter_timeline(resolved, findings, hours, keep))


def serialized_timeline(entries: Iterable[dict]) -> tuple[list[str], dict[str, dict]]:
    """Each entry's JSON text (a line of timeline.jsonl without its line end), and each finding's ``timeline_ref`` in
    findings.json (the timeline files and how many of their entries belong to it), holding no entry longer
    than it takes to write it."""
    texts: list[str] = []
    counts: dict[str, int] = {}
    for entry in entries:
        texts.append(orjson.dumps(entry).decode())
        for finding in entry["finding_ids"]:
            counts[finding] = counts.get(finding, 0) + 1
    return texts, {finding: {"files": list(TIMELINE_FILES), "entries": count} for finding, count in counts.items()}


def timeline_jsonl(entries: Iterable[dict]) -> bytes:
    """One JSON object per line (Timesketch's JSONL import)."""
    return b"".join(orjson.dumps(entry) + b"\n" for entry in entries)


def timeline_jsonl_of_texts(texts: Iterable[str]) -> bytes:
    """timeline.jsonl from entries already written as JSON (``serialized_timeline``): the same bytes."""
    return b"".join(text.encode("utf-8") + b"\n" for text in texts)


def timeline_csv(entries: Iterable[dict]) -> bytes:
    """The entries as CSV, finding ids joined by spaces, every cell neutralized."""
    return csv_bytes(FIELDS, ([" ".join(e[name]) if name == "finding_ids" else _cell(e[name]) for name in FIELDS]
                              for e in entries))


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
