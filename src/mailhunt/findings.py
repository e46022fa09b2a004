"""The finding model and the ``findings.json`` document (schema ``mailhunt.findings/1``).

This is a public contract: other tools read it. Fields are only ever added,
never renamed or removed; see docs/findings.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from mailhunt import __version__
from mailhunt.events import iso_z

SCHEMA = "mailhunt.findings/1"
QUESTIONS = (
    "export_followed_by_deletion",
    "legitimate_admin_activity",
    "usual_for_account",
    "transport_rule_with_suspicious_mail",
)
SEVERITIES = ("low", "medium", "high", "critical")
MAX_EVIDENCE = 200


@dataclass(frozen=True)
class EvidenceEvent:
    """One event behind a finding, with what an analyst needs to find it again."""

    event_id: str
    timestamp: datetime
    action: str | None
    actor: str | None
    target: str | None
    host: str | None
    source_ip: str | None
    user_agent: str | None
    app_id: str | None
    parameters: str | None
    subject: str | None
    rule_name: str | None
    source: str
    sha256: str
    record: int | None
    locator_unit: str = "line"
    logged_actor: str | None = None

    @property
    def locator(self) -> str:
        return f"{self.locator_unit} {self.record}" if self.record is not None else "unknown"

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "locator": self.locator,
            "@timestamp": iso_z(self.timestamp),
            "action": self.action,
            "target": self.target,
            "parameters": self.parameters,
            "subject": self.subject,
            "event_id": self.event_id,
            "logged_actor": self.logged_actor,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "app_id": self.app_id,
        }


EVIDENCE_FIELDS = ("event_id", "timestamp", "action", "actor", "target", "host", "source_ip", "user_agent", "app_id",
                   "parameters", "subject", "rule_name", "source", "sha256", "record", "locator_unit", "logged_actor")


class EvidenceList(Sequence[EvidenceEvent]):
    """A finding's events in time order, held as one Arrow table (columns ``EVIDENCE_FIELDS``).

    It behaves as the list of ``EvidenceEvent`` it stands for, building each
    event only when it is read, and answers the questions asked of all the
    events (targets, host, actions, ids) column-wise: a finding of 200,000
    log-cleared records costs no 200,000 Python objects.
    """

    def __init__(self, table: pa.Table):
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return evidence_events(self.table.slice(start, max(0, stop - start)))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("evidence index out of range")
        return evidence_events(self.table.slice(index, 1))[0]

    def __iter__(self):
        for batch in self.table.to_batches(max_chunksize=10_000):
            yield from evidence_events(pa.Table.from_batches([batch]))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)


def event_column(events: Sequence[EvidenceEvent], field_name: str) -> pa.Array:
    """One text field of every event, in time order: an ``EvidenceList``'s own column, or built from the objects."""
    if isinstance(events, EvidenceList):
        return events.table.column(field_name).combine_chunks().cast(pa.string())
    return pa.array([getattr(e, field_name) for e in events], pa.string())


def value_counts(events: Sequence[EvidenceEvent], field_name: str) -> dict:
    """Non-empty value of one text field -> how many of the events have it."""
    counted = pc.value_counts(event_column(events, field_name)).to_pylist()
    return {c["values"]: c["counts"] for c in counted if c["values"]}


def evidence_events(table: pa.Table) -> list[EvidenceEvent]:
    """The events of a table with the columns ``EVIDENCE_FIELDS``, as objects."""
    return [EvidenceEvent(**row) for row in table.to_pylist()]


@dataclass(frozen=True)
class Answer:
    answer: str
    because: str

    def __post_init__(self) -> None:
        if self.answer not in ("yes", "no", "unknown"):
            raise ValueError(f"answer must be yes, no or unknown, not {self.answer!r}")


@dataclass(frozen=True)
class L1Step:
    """One of the playbook's additional L1 steps, done: ``flag``, ``clear`` or ``unknown``, and why."""

    step: str
    result: str
    detail: str

    def __post_init__(self) -> None:
        if self.result not in ("flag", "clear", "unknown"):
            raise ValueError(f"result must be flag, clear or unknown, not {self.result!r}")


@dataclass(frozen=True)
class RuleRef:
    id: str
    title: str
    level: str
    name: str | None = None


@dataclass
class Finding:
    indicator: str
    actor: str | None
    rules: list[RuleRef]
    attack: list[str]
    events: Sequence[EvidenceEvent]
    answers: dict[str, Answer] = field(default_factory=dict)
    escalate: bool = False
    severity: str = "medium"
    reasons: list[str] = field(default_factory=list)
    actor_resolution: list[str] = field(default_factory=list)
    actor_aliases: list[str] = field(default_factory=list)
    l1: list[L1Step] = field(default_factory=list)
    baseline: dict | None = None
    decision: dict | None = None

    @property
    def id(self) -> str:
        first = self.events[0].event_id if self.events else ""
        digest = hashlib.sha256(f"{self.indicator}\x1f{self.actor}\x1f{first}".encode()).hexdigest()
        return "mh-" + digest[:20]

    @property
    def rule(self) -> RuleRef:
        return self.rules[0]

    @property
    def first_seen(self) -> datetime:
        return self.events[0].timestamp

    @property
    def last_seen(self) -> datetime:
        return self.events[-1].timestamp

    @property
    def targets(self) -> list[str]:
        return sorted(value_counts(self.events, "target"))

    @property
    def host(self) -> str | None:
        """The host most of the events name (the first in sort order on a tie)."""
        counts = value_counts(self.events, "host")
        return min(counts, key=lambda h: (-counts[h], h)) if counts else None

    @property
    def actions(self) -> list[str]:
        """The distinct actions of the events, sorted."""
        return sorted(value_counts(self.events, "action"))

    @property
    def event_ids(self) -> list[str]:
        """Every event's id, in time order."""
        return event_column(self.events, "event_id").to_pylist()

    def first_event_ids(self, limit: int) -> list[str]:
        """The ids of the first ``limit`` events, in time order (without listing all of a large finding's)."""
        return event_column(self.events, "event_id").slice(0, limit).to_pylist()

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "indicator": self.indicator,
            "rule": vars(self.rule),
            "rules": [vars(r) for r in self.rules],
            "attack": self.attack,
            "actor": self.actor,
            "actor_resolution": self.actor_resolution,
            "actor_aliases": self.actor_aliases,
            "targets": self.targets,
            "host": self.host,
            "first_seen": iso_z(self.first_seen),
            "last_seen": iso_z(self.last_seen),
            "event_count": len(self.events),
            "evidence": [e.to_json() for e in self.events[:MAX_EVIDENCE]],
            "evidence_truncated": max(0, len(self.events) - MAX_EVIDENCE),
            "answers": {q: vars(self.answers[q]) for q in QUESTIONS if q in self.answers},
            "escalate": self.escalate,
            "severity": self.severity,
            "reasons": self.reasons,
            "l1": [vars(s) for s in self.l1],
            "baseline": self.baseline,
            "decision": self.decision,
        }


@dataclass(frozen=True)
class RuleMatches:
    """Events matched by one of the analyst's rules that names no indicator (so makes no finding)."""

    rule: RuleRef
    attack: list[str]
    event_count: int
    events: list[EvidenceEvent]
    rule_file: str

    def to_json(self) -> dict:
        return {
            "rule": vars(self.rule),
            "rule_file": self.rule_file,
            "attack": self.attack,
            "event_count": self.event_count,
            "first_seen": iso_z(self.events[0].timestamp) if self.events else None,
            "last_seen": iso_z(self.events[-1].timestamp) if self.events else None,
            "evidence": [e.to_json() for e in self.events],
        }


def findings_document(findings: list[Finding], inputs: list[dict], rejections: list[dict],
                      skipped_rules: dict[str, str], rule_matches: Sequence[RuleMatches] = ()) -> dict:
    ordered = sorted(findings, key=lambda f: (f.first_seen, f.indicator, f.actor or "", f.id))
    return {
        "schema": SCHEMA,
        "tool": {"name": "mailhunt", "version": __version__},
        "inputs": inputs,
        "findings": [f.to_json() for f in ordered],
        "rejections": rejections,
        "skipped_rules": [{"id": k, "reason": v} for k, v in sorted(skipped_rules.items())],
        "rule_matches": [m.to_json() for m in rule_matches],
    }
