"""What the configuration and the client strings say about who did a finding, and with what.

One assessment per finding, shared by question 2 and the escalation decision:
authorized admin or matching automation entry, the change window that covers
it, the clients used (patterns from ``client_patterns.toml``: offensive
tooling, scripted clients, IIS worker process, exports to web folders), IOC
matches, admin activity from outside the trusted networks, and application
ids first seen in the tenant with this finding.

``judge`` then weighs the assessment with the finding's answers and L1
steps: an authorized admin doing their usual work outside every change window
is legitimate unless an adverse signal (``adverse_signals``) says otherwise,
or the configuration makes change windows mandatory
(``tuning.require_change_window``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from importlib import resources

from mailhunt.config import ChangeWindow, Config
from mailhunt.events import iso_z
from mailhunt.findings import Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.policy import policy


@dataclass(frozen=True)
class ClientPattern:
    name: str
    kind: str
    pattern: re.Pattern
    fields: tuple[str, ...]
    unless: re.Pattern | None = None
    unless_fields: tuple[str, ...] = ()

    def excused(self, row: dict) -> bool:
        return self.unless is not None and any(row.get(f) and self.unless.search(row[f]) for f in self.unless_fields)


@lru_cache(maxsize=1)
def client_patterns() -> tuple[ClientPattern, ...]:
    data = tomllib.loads(resources.files("mailhunt.triage").joinpath("client_patterns.toml").read_text("utf-8"))
    return tuple(ClientPattern(c["name"], c["kind"], re.compile(c["pattern"], re.IGNORECASE), tuple(c["fields"]),
                               re.compile(c["unless"], re.IGNORECASE) if c.get("unless") else None,
                               tuple(c.get("unless_fields", ())))
                 for c in data["client"])


@lru_cache(maxsize=1)
def admin_app_ids() -> frozenset[str]:
    data = tomllib.loads(resources.files("mailhunt.triage").joinpath("client_patterns.toml").read_text("utf-8"))
    return frozenset(a.lower() for a in data.get("admin_apps", {}).get("ids", []))


@dataclass(frozen=True)
class ClientHit:
    name: str
    kind: str
    field: str
    value: str

    def describe(self) -> str:
        return f"{self.name} ({self.field} '{self.value[:120]}')"


@dataclass
class Assessment:
    actor: str | None
    admin: bool = False
    automation: dict | None = None
    automation_mismatch: str | None = None
    window: ChangeWindow | None = None
    windows_for_actor: int = 0
    clients: list[ClientHit] = field(default_factory=list)
    iocs: list[str] = field(default_factory=list)
    untrusted_ips: list[str] = field(default_factory=list)
    new_apps: list[str] = field(default_factory=list)

    @property
    def offensive(self) -> list[ClientHit]:
        return [c for c in self.clients if c.kind == "offensive"]

    @property
    def authorized(self) -> bool:
        return self.admin or self.automation is not None or self.window is not None

    def authorization(self) -> str:
        """The 'authorized: ...' statement for a justified finding."""
        if self.window is not None:
            return (f"authorized: {self.window.ticket or 'change window without ticket'} by {self.actor} "
                    f"(change window {iso_z(self.window.start)} .. {iso_z(self.window.end)})")
        if self.automation is not None:
            keys = ", ".join(f"{k}={v}" for k, v in sorted(self.automation.items()) if k != "account")
            return f"authorized: known automation {self.actor}" + (f" ({keys})" if keys else "")
        return f"authorized: {self.actor} is an authorized admin; no change windows are configured for the account"


def _commands(row: dict) -> list[str]:
    return [row[k] for k in ("parameters", "process.command_line", "powershell.file.script_block_text") if row.get(k)]


def _command_text(row: dict) -> str:
    return " ".join(p for p in (row.get("event.action"), row.get("parameters")) if p)


def _match_automation(entry: dict, rows: list[dict], naming) -> str | None:
    """None when every key of the entry matches the finding's events, else what did not match."""
    if entry.get("app_id"):
        apps = sorted({(r.get("app.id") or "").lower() for r in rows if r.get("app.id")})
        if apps and any(a != entry["app_id"] for a in apps):
            return f"app id {', '.join(a for a in apps if a != entry['app_id'])} is not the entry's {entry['app_id']}"
    if entry.get("command_pattern"):
        pattern = re.compile(entry["command_pattern"], re.IGNORECASE)
        for row in rows:
            texts = [_command_text(row)] + [row[k] for k in ("process.command_line",
                                                              "powershell.file.script_block_text") if row.get(k)]
            texts = [t for t in texts if t]
            if texts and not any(pattern.search(t) for t in texts):
                return f"command '{texts[0][:120]}' does not match command_pattern {entry['command_pattern']!r}"
    if entry.get("script_sha256"):
        digest = entry["script_sha256"]
        if not any(digest in " ".join(_commands(r)).lower() for r in rows) and not naming(digest):
            return f"no event names the script SHA-256 {digest[:16]}…"
    return None


def _client_hits(rows: list[dict]) -> list[ClientHit]:
    hits: dict[tuple[str, str], ClientHit] = {}
    for row in rows:
        for pattern in client_patterns():
            if pattern.excused(row):
                continue
            for column in pattern.fields:
                value = row.get(column)
                if value and pattern.pattern.search(value) and (pattern.name, column) not in hits:
                    hits[(pattern.name, column)] = ClientHit(pattern.name, pattern.kind, column, value)
    return sorted(hits.values(), key=lambda h: (h.kind != "offensive", h.name, h.field))


def ioc_matches(config: Config, rows: list[dict]) -> list[str]:
    iocs = config.iocs
    found = []
    for row in rows:
        if row.get("source.ip") in iocs.ips:
            found.append(f"IOC address {row['source.ip']}")
        if (row.get("app.id") or "").lower() in iocs.app_ids:
            found.append(f"IOC application id {row['app.id']}")
        agent = (row.get("user_agent.original") or "").lower()
        found += [f"IOC user agent '{ua}'" for ua in iocs.user_agents if ua and ua.lower() in agent]
        text = " ".join(filter(None, (row.get("parameters"), row.get("email.from.address")))).lower()
        found += [f"IOC domain {d}" for d in iocs.domains if d and d in text]
    return sorted(set(found))


def assess(finding: Finding, ctx: TriageContext) -> Assessment:
    config = ctx.config
    actor = (finding.actor or "").lower()
    rows = ctx.details(finding)
    result = Assessment(finding.actor)
    logged = ctx.names_of(finding.actor) | {(r.get("user.name") or "").lower() for r in rows} | {actor}
    result.admin = bool(logged & set(config.admins))
    entries = [a for a in config.automation if a.get("account", "") in logged or
               (not a.get("account") and a.get("app_id") and any((r.get("app.id") or "").lower() == a["app_id"]
                                                                 for r in rows))]
    for entry in entries:
        mismatch = _match_automation(entry, rows, lambda text: ctx.records_naming(finding, text))
        if mismatch is None:
            result.automation, result.automation_mismatch = entry, None
            break
        result.automation_mismatch = f"automation entry for {entry.get('account') or entry.get('app_id')}: {mismatch}"
    windows = [w for w in config.change_windows if not w.actors or set(w.actors) & logged]
    result.windows_for_actor = len(windows)
    covering = [w for w in windows if w.start <= finding.first_seen and finding.last_seen <= w.end]
    result.window = covering[0] if covering else None
    result.clients = _client_hits(rows)
    result.iocs = ioc_matches(config, rows)
    if config.trusted_networks:
        result.untrusted_ips = sorted({r["source.ip"] for r in rows
                                       if r.get("source.ip") and config.in_trusted_network(r["source.ip"]) is False})
    automation_apps = {a.get("app_id") for a in config.automation if a.get("app_id")} | admin_app_ids()
    for app, seen in sorted(ctx.new_apps(finding).items()):
        if app not in automation_apps:
            result.new_apps.append(f"{app} (first seen in the tenant {iso_z(seen)})")
    return result


@dataclass(frozen=True)
class AdverseSignal:
    """Something that makes an authorized admin's activity outside a change window out of context."""

    signal: str
    because: str
    events: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"signal": self.signal, "because": self.because, "events": list(self.events)}


@dataclass(frozen=True)
class Judgment:
    """Question 2's answer as the escalation reads it: justified or not, and why."""

    answer: str
    because: str
    justified: bool
    adverse: tuple[AdverseSignal, ...] = ()

    def to_json(self) -> dict:
        return {"justified": self.justified, "answer": self.answer, "because": self.because,
                "adverse_signals": [a.to_json() for a in self.adverse]}


EVIDENCE_IDS = 10


def adverse_signals(finding: Finding, others: list[Finding]) -> list[AdverseSignal]:
    """The issue's adverse signals for an authorized admin, from the answers, the L1 steps and the other findings.

    Unusual for the account (a new network or country, an unusual hour, an
    operation new for them: question 3 answers "no"), a deletion after the
    export (question 1 answers "yes"), a flagged sign-in step, and a finding of
    audit tampering by the same account around this one."""
    found: list[AdverseSignal] = []
    ids = tuple(finding.first_event_ids(EVIDENCE_IDS))
    usual = finding.answers.get("usual_for_account")
    if usual is not None and usual.answer == "no":
        found.append(AdverseSignal("unusual for the account", usual.because, ids))
    sequence = finding.answers.get("export_followed_by_deletion")
    if sequence is not None and sequence.answer == "yes":
        found.append(AdverseSignal("deletion after the export", sequence.because, ids))
    rules = policy().adverse
    for step in finding.l1:
        if step.step in rules.l1_steps and step.result == "flag":
            found.append(AdverseSignal(f"{step.step.replace('_', ' ')} anomaly", step.detail))
    around = timedelta(hours=rules.other_findings_hours)
    for other in others:
        if (other is not finding and other.actor and other.actor == finding.actor
                and other.indicator in rules.other_findings
                and any(r.level != "informational" for r in other.rules)
                and other.first_seen <= finding.last_seen + around and finding.first_seen - around <= other.last_seen):
            found.append(AdverseSignal(f"{other.indicator.replace('_', ' ')} by the same account",
                                       f"{other.id} {other.indicator} at {iso_z(other.first_seen)} "
                                       f"({', '.join(r.title for r in other.rules)})",
                                       tuple(other.first_event_ids(EVIDENCE_IDS))))
    return found


def judge(finding: Finding, a: Assessment, config: Config, others: list[Finding]) -> Judgment:
    """Whether the activity has a legitimate justification, after the configuration, the clients and the signals."""
    actor = finding.actor
    if a.iocs:
        return Judgment("no", f"the events match known indicators of compromise: {'; '.join(a.iocs[:3])}", False)
    if a.offensive:
        return Judgment("no", "client strings name offensive tooling: "
                        + "; ".join(c.describe() for c in a.offensive[:2]), False)
    if a.clients:
        return Judgment("no", "a client authorized administrators do not use: "
                        + "; ".join(c.describe() for c in a.clients[:2]), False)
    if a.new_apps:
        return Judgment("no", f"done through an application new to the tenant: {'; '.join(a.new_apps[:2])}", False)
    if not config.admins and not config.automation and not config.change_windows:
        return Judgment("unknown", "no authorized admins, automation or change windows are configured "
                                   "(mailhunt.toml [authorized], [[change_windows]])", False)
    if a.automation_mismatch and not a.admin:
        return Judgment("no", f"{actor} is configured as automation, but the {a.automation_mismatch}", False)
    if not a.authorized and a.windows_for_actor:
        return Judgment("no", f"{actor} is not an authorized admin or known automation, and the activity "
                              f"({iso_z(finding.first_seen)}) lies outside all {a.windows_for_actor} change window(s) "
                              f"that name the account", False)
    if not a.authorized:
        return Judgment("no", f"{actor} is not among the authorized admins or known automation, and no "
                              f"change window names the account", False)
    if a.untrusted_ips:
        return Judgment("no", f"{actor} is authorized, but acted from {', '.join(a.untrusted_ips[:3])}, "
                              f"outside the trusted networks {', '.join(config.trusted_networks)}", False)
    if a.automation_mismatch and a.automation is None:
        return Judgment("no", f"{actor} is an admin, but the {a.automation_mismatch}", False)
    if a.window is not None or (a.automation is not None and not a.admin and a.windows_for_actor == 0):
        return Judgment("yes", a.authorization(), True)
    if not a.admin:
        return Judgment("no", f"{actor} is authorized, but the activity ({iso_z(finding.first_seen)}) lies outside "
                              f"all {a.windows_for_actor} change window(s) configured for the account", False)
    return _judge_admin_outside_windows(finding, a, config, others)


def _judge_admin_outside_windows(finding: Finding, a: Assessment, config: Config, others: list[Finding]) -> Judgment:
    """An authorized admin outside every change window: legitimate unless windows are mandatory or a signal is adverse."""
    actor = finding.actor
    outside = (f"outside all {a.windows_for_actor} change window(s) configured for the account"
               if a.windows_for_actor else "with no change window configured for the account")
    if config.require_change_window:
        return Judgment("no", f"{actor} is an authorized admin, but acted ({iso_z(finding.first_seen)}) {outside}, "
                              "and tuning.require_change_window makes a change window mandatory", False)
    adverse = adverse_signals(finding, others)
    if adverse:
        return Judgment("no", f"{actor} is an authorized admin, but acted ({iso_z(finding.first_seen)}) {outside} "
                              "with an adverse signal: " + "; ".join(f"{s.signal}: {s.because}" for s in adverse),
                        False, tuple(adverse))
    if not a.windows_for_actor:
        return Judgment("yes", a.authorization(), True)
    usual = finding.answers.get("usual_for_account")
    if usual is not None and usual.answer == "yes":
        work = f"doing their usual work {outside}: {usual.because}"
    else:
        work = (f"{outside}, with no adverse signal (usual for the account: "
                f"{usual.answer + ': ' + usual.because if usual else 'not assessed'})")
    return Judgment("yes", f"authorized: {actor} is an authorized admin {work}", True)
