"""The finding model and the ``findings.json`` document (schema ``mailhunt.findings/1``).

This is a public contract: other tools read it. Fields are only ever added,
never renamed or removed; see docs/findings.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

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
        }


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


@dataclass
class Finding:
    indicator: str
    actor: str | None
    rules: list[RuleRef]
    attack: list[str]
    events: list[EvidenceEvent]
    answers: dict[str, Answer] = field(default_factory=dict)
    escalate: bool = False
    severity: str = "medium"
    reasons: list[str] = field(default_factory=list)
    actor_resolution: list[str] = field(default_factory=list)
    l1: list[L1Step] = field(default_factory=list)
    baseline: dict | None = None

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
        return sorted({e.target for e in self.events if e.target})

    @property
    def host(self) -> str | None:
        hosts = [e.host for e in self.events if e.host]
        return max(sorted(set(hosts)), key=hosts.count) if hosts else None

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "indicator": self.indicator,
            "rule": vars(self.rule),
            "rules": [vars(r) for r in self.rules],
            "attack": self.attack,
            "actor": self.actor,
            "actor_resolution": self.actor_resolution,
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
                      skipped_rules: dict[str, str], rule_matches: list[RuleMatches] = ()) -> dict:
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
