"""The signals the policy's checks read, one function each, by the name ``policy.toml`` uses.

A signal looks at one finding (its events, rules, answers, L1 steps, the
assessment of who did it and the legitimacy judgment) and returns outcomes:
met ones become reasons, and when none is met the first outcome says why the
check failed. Each outcome names the events it rests on by id. Which
indicators, rules, tools and patterns a signal looks for is the policy's, not
the signal's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailhunt.events import iso_z
from mailhunt.findings import Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.legitimacy import Assessment, Judgment, ioc_matches
from mailhunt.triage.policy import Check, Policy, Tool
from mailhunt.wording import account_name

EVIDENCE_IDS = 10
MAX_ROWS = 5000
ROW_COLUMNS = ("event.id", "@timestamp", "event.action", "user.name", "user.id", "user.target.name", "source.ip",
               "app.id", "user_agent.original", "process.name", "process.executable", "process.parent.name",
               "process.parent.executable", "process.command_line", "process.parent.command_line",
               "powershell.file.script_block_text", "file.path", "file.target_path", "parameters", "labels")
TEXT_COLUMNS = ("process.command_line", "powershell.file.script_block_text", "parameters", "file.path",
                "file.target_path")


@dataclass(frozen=True)
class Outcome:
    met: bool
    because: str
    events: tuple[str, ...] = ()
    severity: str | None = None


@dataclass
class Inputs:
    """What every signal may read about one finding; the finding's events are read once, when first needed."""

    finding: Finding
    assessment: Assessment
    judgment: Judgment
    ctx: TriageContext | None
    policy: Policy
    met_checks: set[str] = field(default_factory=set)
    _rows: list[dict] | None = None
    _matched: dict[str, set[str]] | None = None

    def rows(self) -> list[dict]:
        """The finding's events (up to ``MAX_ROWS``), each with its id, in time order."""
        if self._rows is None:
            if self.ctx is None or not self.finding.first_event_ids(1):
                self._rows = []
            else:
                self._rows = self.ctx.logged_rows(self.finding, MAX_ROWS, ROW_COLUMNS)
        return self._rows

    def matched_by(self, rule_names: frozenset[str]) -> set[str]:
        """Ids of the finding's events that rules of these names matched."""
        if self._matched is None:
            self._matched = {}
            ids = self.finding.first_event_ids(MAX_ROWS)
            by_id = {r.id: r.name for r in self.finding.rules if r.name}
            if self.ctx is not None and ids and by_id:
                for rule_id, event_id in self.ctx.store.resolved.rule_matches(list(ids), sorted(by_id)):
                    self._matched.setdefault(by_id[rule_id], set()).add(event_id)
        return {i for name in rule_names for i in self._matched.get(name, ())}

    def rule_names(self) -> set[str]:
        return {r.name for r in self.finding.rules if r.name}

    def finding_ids(self) -> tuple[str, ...]:
        return tuple(self.finding.first_event_ids(EVIDENCE_IDS))


def _ids(rows: list[dict]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r["event.id"] for r in rows))[:EVIDENCE_IDS]


MAX_TEXT = 65536


def _texts(row: dict) -> list[str]:
    """The event's command line, script block, parameters and paths, each cut to ``MAX_TEXT`` characters:
    the policy's expressions run over attacker-written text, and stay linear in it."""
    return [row[c][:MAX_TEXT] for c in TEXT_COLUMNS if row.get(c)]


# ---------------------------------------------------------------- whose mailbox

_STORE_OWNERS = (
    re.compile(r"/var/(?:spool/)?mail/(?P<owner>[A-Za-z0-9._-]+|\*)(?![\w/.-])"),
    re.compile(r"/home/(?P<owner>[A-Za-z0-9._-]+)/(?:Maildir|mail|Mail|mbox)\b"),
    re.compile(r"/Users/(?P<owner>[A-Za-z0-9._-]+)/Library/Mail\b"),
    re.compile(r"(?i)\\Users\\(?P<owner>[^\\$%]+)\\AppData\\Local\\(?:Comms|Microsoft\\Outlook)"),
    re.compile(r"~(?P<owner>[A-Za-z0-9._-]+)/(?:Maildir|mail|Mail|mbox|Library/Mail)\b"),
    re.compile(r"\bdoveadm\b.*\s-u\s+(?P<owner>[^\s*]+)"),
)
_EVERYONE = re.compile(r"\bdoveadm\b.*\s-A\b|/var/(?:spool/)?mail/\*|\bdoveadm\b.*\s-u\s+\S*\*")
_HOME = re.compile(r"^/(?:home|Users)/(?P<owner>[A-Za-z0-9._-]+)(?:/|$)")
_SUDO_LINE = re.compile(r"^\s*(?:\S*/)?sudo\s")


def store_owners(row: dict) -> set[str]:
    """The accounts whose mail stores an event names ("*" for every account's); dovecot names the mailbox itself."""
    owners = set()
    for text in _texts(row):
        if _EVERYONE.search(text):
            owners.add("*")
        for pattern in _STORE_OWNERS:
            owners |= {m["owner"].lower() for m in pattern.finditer(text) if m["owner"] != "*"}
    if (row.get("process.name") or "").lower() == "dovecot" and row.get("user.target.name"):
        owners.add(row["user.target.name"].lower())
    return owners


def actor_names(inputs: Inputs, row: dict) -> set[str]:
    """Every name the event's actor goes by: the finding's actor and aliases, the logged name and uid.

    When the account is known only by a number, the home folder it worked in
    (the event's working directory) stands for its name."""
    names = {n.lower() for n in (inputs.finding.actor, row.get("user.name"), row.get("user.id")) if n}
    if inputs.ctx is not None:
        names |= inputs.ctx.names_of(inputs.finding.actor)
    if names and all(n.isdigit() for n in names):
        labels = row.get("labels") or {}
        home = _HOME.match(labels.get("cwd") or "") if isinstance(labels, dict) else None
        if home:
            names.add(home["owner"].lower())
    return names


def other_mailboxes(inputs: Inputs, rows: list[dict]) -> tuple[list[tuple[dict, set[str]]], list[str]]:
    """Events naming another account's mail store (with those accounts), and why others could not be told."""
    found, unsure = [], []
    for row in rows:
        owners = store_owners(row)
        if not owners:
            continue
        names = actor_names(inputs, row)
        if "*" in owners:
            found.append((row, {"every account"}))
            continue
        if names and all(n.isdigit() for n in names):
            unsure.append(f"{', '.join(sorted(owners))} (the actor is known only as uid {', '.join(sorted(names))})")
            continue
        others = owners - names
        if others:
            found.append((row, others))
    return found, unsure


def _describe_row(row: dict) -> str:
    text = row.get("process.command_line") or row.get("powershell.file.script_block_text") or row.get("file.path") \
        or row.get("event.action") or ""
    return f"{row.get('event.action')} '{text[:160]}' at {iso_z(row['@timestamp'])}"


def _run_through_sudo(row: dict) -> bool:
    return (row.get("event.action") == "sudo_command" or (row.get("process.parent.name") or "").lower() == "sudo"
            or bool(_SUDO_LINE.match(row.get("process.command_line") or "")))


# ---------------------------------------------------------------- the signals

def not_justified(check: Check, inputs: Inputs) -> list[Outcome]:
    judgment = inputs.judgment
    if judgment.justified:
        return [Outcome(False, f"justified: {judgment.because}")]
    evidence = judgment.because
    severity = check.severity
    if check.coinciding_question:
        coinciding = inputs.finding.answers.get(check.coinciding_question)
        if coinciding is not None and coinciding.answer == "yes":
            evidence += check.coinciding_reason.replace("{evidence}", coinciding.because)
            severity = check.coinciding_severity or severity
    ids = tuple(e for s in judgment.adverse for e in s.events)[:EVIDENCE_IDS] or inputs.finding_ids()
    return [Outcome(True, check.render(evidence), ids, severity)]


def client(check: Check, inputs: Inputs) -> list[Outcome]:
    hits = [c for c in inputs.assessment.clients if c.kind in check.kinds]
    if not hits:
        return [Outcome(False, f"no client of kind {', '.join(check.kinds)} in the events")]
    rows = [r for r in inputs.rows() if any(r.get(h.field) == h.value for h in hits)]
    return [Outcome(True, check.render("; ".join(h.describe() for h in hits)), _ids(rows), check.severity)]


def offensive_tool(check: Check, inputs: Inputs) -> list[Outcome]:
    hits = inputs.assessment.offensive
    if not hits:
        return [Outcome(False, "no offensive tool named in the client strings")]
    rows = [r for r in inputs.rows() if r.get(hits[0].field) == hits[0].value]
    return [Outcome(True, check.render(hits[0].name), _ids(rows), check.severity)]


def new_app(check: Check, inputs: Inputs) -> list[Outcome]:
    apps = inputs.assessment.new_apps
    if not apps:
        return [Outcome(False, "no application new to the tenant")]
    names = {a.split(" ", 1)[0] for a in apps}
    rows = [r for r in inputs.rows() if (r.get("app.id") or "").lower() in names]
    return [Outcome(True, check.render("; ".join(apps)), _ids(rows), check.severity)]


def ioc(check: Check, inputs: Inputs) -> list[Outcome]:
    iocs = inputs.assessment.iocs
    if not iocs:
        return [Outcome(False, "no IOC of the configuration matches the events")]
    config = inputs.ctx.config if inputs.ctx is not None else None
    rows = [r for r in inputs.rows() if config is not None and ioc_matches(config, [r])]
    return [Outcome(True, check.render("; ".join(iocs[:3])), _ids(rows), check.severity)]


def answer_yes(check: Check, inputs: Inputs) -> list[Outcome]:
    answer = inputs.finding.answers.get(check.question or "")
    if answer is None or answer.answer != "yes":
        return [Outcome(False, f"{check.question}: {answer.answer + ': ' + answer.because if answer else 'not asked'}")]
    return [Outcome(True, check.render(answer.because), inputs.finding_ids(), check.severity)]


def l1_flag(check: Check, inputs: Inputs) -> list[Outcome]:
    step = next((s for s in inputs.finding.l1 if s.step == check.step), None)
    if step is None or step.result != "flag":
        return [Outcome(False, f"L1 step {check.step}: {step.result + ': ' + step.detail if step else 'not done'}")]
    return [Outcome(True, check.render(step.detail), inputs.finding_ids(), check.severity)]


def threat_pattern(check: Check, inputs: Inputs) -> list[Outcome]:
    finding = inputs.finding
    alerting = [r for r in finding.rules if r.level != "informational"]
    outcomes = []
    for pattern in inputs.policy.threat_patterns:
        if pattern.unless_met and pattern.unless_met in inputs.met_checks:
            continue
        if finding.indicator in pattern.indicators and alerting:
            outcomes.append(Outcome(True, check.render(f"{pattern.describe()}; here: "
                                                       f"{', '.join(r.title for r in alerting)}"),
                                    inputs.finding_ids(), check.severity))
            continue
        rules = pattern.rules & inputs.rule_names()
        if not rules:
            continue
        matched = inputs.matched_by(frozenset(rules))
        rows = [r for r in inputs.rows() if r["event.id"] in matched]
        texts = [(r, t) for r in rows for t in _texts(r)]
        hits = [[r for r, t in texts if regex.search(t)] for regex in pattern.all_of]
        if all(hits):
            shown = list({r["event.id"]: r for found in hits for r in found}.values())
            outcomes.append(Outcome(True, check.render(f"{pattern.describe()}; here: "
                                                       + "; ".join(_describe_row(r) for r in shown[:3])),
                                    _ids(shown), check.severity))
    if outcomes:
        return outcomes
    if not alerting:
        return [Outcome(False, "only informational rules matched")]
    return [Outcome(False, f"no known threat pattern of the policy matches indicator {finding.indicator} "
                           f"or rules {', '.join(sorted(inputs.rule_names())) or '(unnamed)'}")]


def tool(check: Check, inputs: Inputs) -> list[Outcome]:
    outcomes = []
    reasons_not = []
    for entry in inputs.policy.tools:
        rules = entry.rules & inputs.rule_names()
        if not rules:
            continue
        matched = inputs.matched_by(frozenset(rules))
        rows = [r for r in inputs.rows() if r["event.id"] in matched]
        hit, why_not = _tool_rows(entry, inputs, rows)
        if hit:
            outcomes.append(Outcome(True, check.render(f"{entry.description}: "
                                                       + "; ".join(_describe_row(r) for r in hit[:3])),
                                    _ids(hit), check.severity))
        else:
            reasons_not.append(f"{entry.id}: {why_not}")
    if outcomes:
        return outcomes
    if reasons_not:
        return [Outcome(False, "; ".join(reasons_not))]
    return [Outcome(False, "no rule of the finding is a tool the policy lists "
                           f"({', '.join(sorted(inputs.rule_names())) or 'unnamed rules'})")]


def _tool_rows(entry: Tool, inputs: Inputs, rows: list[dict]) -> tuple[list[dict], str]:
    if entry.process is not None:
        process = entry.process
        rows = [r for r in rows if any(process.search(r.get(c) or "") for c in ("process.name", "process.executable"))]
        if not rows:
            return [], f"no event's process matches {process.pattern}"
    if entry.requires == "sudo":
        rows = [r for r in rows if _run_through_sudo(r)]
        return rows, "not run through sudo"
    if entry.requires == "other_mailbox":
        found, unsure = other_mailboxes(inputs, rows)
        why = "no mail store of another account is named" + (f"; cannot tell for {'; '.join(unsure[:2])}"
                                                              if unsure else "")
        return [r for r, _ in found], why
    return rows, "the rule's events are not in the case"


def other_mailbox(check: Check, inputs: Inputs) -> list[Outcome]:
    found, unsure = other_mailboxes(inputs, inputs.rows())
    if not found:
        why = "no event names a mail store of another account"
        return [Outcome(False, why + (f"; cannot tell for {'; '.join(unsure[:2])}" if unsure else ""))]
    owners = sorted({o for _, others in found for o in others})
    rows = [r for r, _ in found]
    return [Outcome(True, check.render(f"{', '.join(owners)} by {account_name(inputs.finding.actor)}: "
                                       + "; ".join(_describe_row(r) for r in rows[:3])), _ids(rows), check.severity)]


def new_address_logon(check: Check, inputs: Inputs) -> list[Outcome]:
    finding, ctx = inputs.finding, inputs.ctx
    if finding.actor is None or ctx is None:
        return [Outcome(False, "the finding has no actor")]
    logins = ctx.actor_events(*_logins_asked(check, finding), *_logins_question(check))
    if not logins:
        return [Outcome(False, f"no password log-in by {account_name(finding.actor)} within {check.within_minutes} min before")]
    ids = _login_ids(ctx, finding, logins)
    first = min(r["@timestamp"] for r in logins)
    earlier = ctx.actor_events(finding.actor, datetime.min, first - timedelta(microseconds=1), *_EARLIER_ADDRESSES)
    if not earlier:
        return [Outcome(False, f"{len(logins)} password log-in(s) before the finding, but no earlier address of "
                               f"{account_name(finding.actor)} in the evidence to compare with")]
    known = {r["source.ip"] for r in earlier}
    new = [r for r in logins if r["source.ip"] not in known]
    if not new:
        return [Outcome(False, f"password log-in(s) from known addresses "
                               f"{', '.join(sorted({r['source.ip'] for r in logins}))}")]
    login = new[0]
    minutes = (finding.first_seen - login["@timestamp"]).total_seconds() / 60
    return [Outcome(True, check.render(
        f"{account_name(finding.actor)} logged in with a password from {login['source.ip']} at {iso_z(login['@timestamp'])}, "
        f"{minutes:.0f} min before, an address not seen for the account before "
        f"(known: {', '.join(sorted(known)[:3])})"), ids or inputs.finding_ids(), check.severity)]


_EARLIER_ADDRESSES: tuple[str, list] = ('"source.ip" IS NOT NULL', [])


def _logins_question(check: Check) -> tuple[str, list]:
    """The condition (and its parameters) on the actor's events that are the password log-ins ``check`` means."""
    return (""""event.action" IN (SELECT unnest(CAST(? AS VARCHAR[]))) AND "event.outcome" = 'success'
               AND "source.ip" IS NOT NULL AND labels['auth_method'] IN (SELECT unnest(CAST(? AS VARCHAR[])))""",
            [list(check.login_actions), list(check.auth_methods)])


def _logins_asked(check: Check, finding: Finding) -> tuple[str, datetime, datetime]:
    return finding.actor or "", finding.first_seen - timedelta(minutes=check.within_minutes), finding.last_seen


def prepare_signals(findings: list[Finding], ctx: TriageContext, rules: Policy) -> None:
    """Read the actor events the signals will ask about for every finding in one query per question
    (``new_address_logon``: the log-ins before each finding, then the addresses before the first of them)."""
    for check in (c for criterion in rules.criteria for c in criterion.checks if c.signal == "new_address_logon"):
        asked = [_logins_asked(check, f) for f in findings if f.actor is not None and check.applies(f.indicator)]
        ctx.prepare_actor_events(asked, *_logins_question(check))
        earlier = []
        for actor, start, end in asked:
            logins = ctx.actor_events(actor, start, end, *_logins_question(check))
            if logins:
                earlier.append((actor, datetime.min, min(r["@timestamp"] for r in logins) - timedelta(microseconds=1)))
        ctx.prepare_actor_events(earlier, *_EARLIER_ADDRESSES)


def _login_ids(ctx: TriageContext, finding: Finding, logins: list[dict]) -> tuple[str, ...]:
    """Event ids of the log-ins (``actor_events`` rows carry them as ``event.id``)."""
    return tuple(r["event.id"] for r in logins if r.get("event.id"))[:EVIDENCE_IDS]


SIGNALS: dict[str, Callable[[Check, Inputs], list[Outcome]]] = {
    "not_justified": not_justified, "client": client, "new_app": new_app, "tool": tool, "ioc": ioc,
    "offensive_tool": offensive_tool, "answer_yes": answer_yes, "threat_pattern": threat_pattern,
    "l1_flag": l1_flag, "other_mailbox": other_mailbox, "new_address_logon": new_address_logon,
}
