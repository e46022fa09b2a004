"""One story per actor: the findings of each resolved actor told together, in time order.

The actor is the finding's ``actor``, the resolved identity triage and the
detections already use (``actor_aliases``, ``actor_resolution`` say which
logged names it stands for); nothing here resolves names again.

Findings of one actor repeat much of their reasons (the same sign-ins from a
new country, the same missing justification). A reason is a label and
clauses (``"supporting: sign ins: country new ...; network new ...; 12
sign-ins <window>"``); a clause of a supporting reason, or a criterion's
reason whole, that two or more findings of the actor give under the same
label is *shared*: the actor's story states it once, naming
the findings, and each finding keeps only its own clauses. L1 steps with the
same result and detail in two or more findings are shared the same way.

Everything here reads the findings document only and returns display text
(not yet escaped: the writers escape it for HTML or Markdown).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailhunt.events import utc_from_document
from mailhunt.report.summary import (
    IOC_KINDS,
    SEVERITY_ORDER,
    duration,
    fmt_doc_time,
    fmt_time,
    l1_rows,
    severity_of,
    text,
)

NO_ACTOR = "actor not named in the logs"
SUPPORTING = "supporting: "
MAX_ACTIONS = 4
# Indicator kinds told in the story, in this order (findings.json ``iocs[].kind``).
STORY_IOC_KINDS = ("ip", "user_agent", "app_id", "email", "rule_name")


def split_reason(reason: str) -> tuple[str, list[str]]:
    """A reason as its label and its clauses.

    The label is the criterion's name (``no legitimate justification``,
    ``known threat pattern``, ``not escalated``) or ``supporting: <step>``;
    the clauses are the rest split at ``; `` outside parentheses (``(though:
    a; b)`` stays one clause). A reason without a label is one clause."""
    head = reason
    label = ""
    if reason.startswith(SUPPORTING):
        rest = reason[len(SUPPORTING):]
        name, sep, body = rest.partition(": ")
        if sep:
            label, head = SUPPORTING + name, body
    else:
        name, sep, body = reason.partition(": ")
        if sep:
            label, head = name, body
    clauses, depth, start = [], 0, 0
    for index, char in enumerate(head):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0 and head.startswith("; ", index):
            clauses.append(head[start:index])
            start = index + 2
    clauses.append(head[start:])
    return label, [c for c in clauses if c.strip()]


def _parts(reason: str) -> tuple[str, list[str]]:
    """A reason as compared between findings: a supporting reason clause by clause (the same sign-ins
    seen from findings with different windows share most clauses); a criterion's reason whole, since its
    clauses describe one pattern (``export followed by deletion: ...; 27 such pairs``)."""
    if reason.startswith(SUPPORTING):
        return split_reason(reason)
    label, _ = split_reason(reason)
    return label, [reason[len(label) + 2:] if label else reason]


def join_reason(label: str, clauses: list[str]) -> str:
    body = "; ".join(clauses)
    return f"{label}: {body}" if label else body


@dataclass
class SharedReason:
    """Clauses of one label that the same findings of an actor share."""

    label: str
    clauses: list[str]
    numbers: list[int]          # the findings' numbers in the report (1-based)
    all_findings: bool

    @property
    def text(self) -> str:
        return join_reason(self.label, self.clauses)


@dataclass
class StoryStep:
    """One finding as a step of its actor's story."""

    number: int
    anchor: str
    finding_id: str
    indicator: str
    severity: str
    escalate: bool
    when: str
    duration: str
    events: str
    actions: str
    targets: list[str]
    ips: list[tuple[str, str]]    # address, "country, network" (or "")


@dataclass
class ActorStory:
    anchor: str
    actor: str
    named: bool
    aliases: list[str]
    resolution: list[str]
    findings: list[int]                       # positions in the document's findings
    escalated: int
    severity: str
    first_seen: datetime | None
    last_seen: datetime | None
    steps: list[StoryStep] = field(default_factory=list)
    network: list[dict] = field(default_factory=list)   # {kind, label, entries: [{value, where, seen, events}]}
    shared_reasons: list[SharedReason] = field(default_factory=list)
    shared_l1: list[dict] = field(default_factory=list)  # l1 rows + "numbers"
    events: int = 0

    @property
    def span(self) -> str:
        if not self.first_seen:
            return ""
        start, end = fmt_time(self.first_seen), fmt_time(self.last_seen)
        took = duration(self.first_seen, self.last_seen)
        return (start if start == end else f"{start} to {end}") + (f" ({took})" if took and start != end else "")


@dataclass
class FindingOwn:
    """What is a finding's own once its actor's shared reasons and L1 steps are taken out."""

    reasons: list[str]
    shared_reasons: int
    l1: list[dict]
    shared_l1: int
    actor_anchor: str


def _actor_key(finding: dict) -> str:
    return text(finding.get("actor"))


def _actions(finding: dict) -> str:
    counts = Counter(text(e.get("action")) for e in finding.get("evidence") or [] if isinstance(e, dict)
                     and e.get("action"))
    parts = [f"{action} \u00d7{n}" if n > 1 else action for action, n in counts.most_common(MAX_ACTIONS)]
    if len(counts) > MAX_ACTIONS:
        parts.append(f"{len(counts) - MAX_ACTIONS} other actions")
    return ", ".join(parts)


def finding_ips(finding: dict) -> list[str]:
    """The client addresses of the finding's listed events, in the order first seen."""
    seen: dict[str, None] = {}
    for entry in finding.get("evidence") or []:
        if isinstance(entry, dict) and entry.get("source_ip"):
            seen.setdefault(text(entry.get("source_ip")), None)
    return list(seen)


def _where(ioc: dict) -> str:
    where = ", ".join(text(ioc.get(k)) for k in ("country", "network") if ioc.get(k))
    if ioc.get("external") is True:
        where = ", ".join(filter(None, ["outside the organization's domains", where]))
    return where


def ioc_places(document: dict) -> dict[str, str]:
    """IP address -> "country, network" from the document's indicators (empty when not located)."""
    return {text(i.get("value")): _where(i) for i in document.get("iocs") or []
            if isinstance(i, dict) and i.get("kind") == "ip"}


EVENT_FIELDS = (("ip", "source_ip"), ("user_agent", "user_agent"), ("app_id", "app_id"))
PLURALS = {"ip": "IP addresses", "user_agent": "User agents", "app_id": "Application ids",
           "email": "External addresses", "rule_name": "Rule names"}


def _network(document: dict, chosen: list[dict]) -> list[dict]:
    """The actor's addresses (with country and network), user agents and application ids, from the events its
    findings list, each with its first and last time and how many of those events carry it; and the external
    addresses and rule names of the case's indicators that come from its findings."""
    places = ioc_places(document)
    seen: dict[str, dict[str, dict]] = {}
    counted: set[str] = set()
    for finding in chosen:
        for entry in finding.get("evidence") or []:
            if not isinstance(entry, dict):
                continue
            key = text(entry.get("event_id")) or f"{text(entry.get('source'))}:{text(entry.get('locator'))}"
            if key in counted:
                continue
            counted.add(key)
            moment = fmt_doc_time(entry.get("@timestamp"))
            for kind, name in EVENT_FIELDS:
                value = text(entry.get(name))
                if not value:
                    continue
                stats = seen.setdefault(kind, {}).setdefault(value, {"first": moment, "last": moment, "events": 0})
                stats["first"], stats["last"] = min(stats["first"], moment), max(stats["last"], moment)
                stats["events"] += 1
    groups: dict[str, list[dict]] = {}
    for kind, values in seen.items():
        for value, stats in sorted(values.items(), key=lambda kv: (kv[1]["first"], kv[0])):
            groups.setdefault(kind, []).append({
                "value": value, "where": places.get(value, "") if kind == "ip" else "",
                "seen": stats["first"] if stats["first"] == stats["last"] else f"{stats['first']} to {stats['last']}",
                "events": stats["events"]})
    ids = {text(f.get("id")) for f in chosen}
    for ioc in document.get("iocs") or []:
        if isinstance(ioc, dict) and ioc.get("kind") in ("email", "rule_name") and \
                ids & {text(f) for f in ioc.get("findings") or []}:
            groups.setdefault(text(ioc.get("kind")), []).append({"value": text(ioc.get("value")),
                                                                 "where": _where(ioc), "seen": "", "events": None})
    return [{"kind": kind, "label": IOC_KINDS.get(kind, kind) if len(groups[kind]) == 1 else PLURALS[kind],
             "entries": groups[kind]} for kind in STORY_IOC_KINDS if kind in groups]


def _shared(findings: list[dict], positions: list[int]) -> tuple[list[SharedReason], dict[int, list[str]], dict[int, int]]:
    """The reasons clauses two or more of the actor's findings give, and each finding's own reasons."""
    split = {p: [_parts(text(r)) for r in findings[p].get("reasons") or []] for p in positions}
    holders: dict[tuple[str, str], list[int]] = {}
    for p in positions:
        for label, clauses in split[p]:
            for clause in clauses:
                found = holders.setdefault((label, clause), [])
                if p not in found:
                    found.append(p)
    shared_keys = {key for key, found in holders.items() if len(found) >= 2}
    grouped: dict[tuple[str, tuple[int, ...], str], list[str]] = {}
    for p in positions:
        for label, clauses in split[p]:
            for clause in clauses:
                if (label, clause) in shared_keys:
                    # clauses of one supporting step held by the same findings read as one reason; a
                    # criterion's reasons stay apart (two threat patterns are two reasons)
                    alone = "" if label.startswith(SUPPORTING) else clause
                    key = (label, tuple(holders[(label, clause)]), alone)
                    if clause not in grouped.setdefault(key, []):
                        grouped[key].append(clause)
    shared = [SharedReason(label, clauses, [p + 1 for p in holder], len(holder) == len(positions))
              for (label, holder, _), clauses in grouped.items()]
    own: dict[int, list[str]] = {}
    taken: dict[int, int] = {}
    for p in positions:
        own[p], taken[p] = [], 0
        for label, clauses in split[p]:
            mine = [c for c in clauses if (label, c) not in shared_keys]
            if mine:
                own[p].append(join_reason(label, mine))
            if len(mine) < len(clauses):
                taken[p] += 1
    return shared, own, taken


def _shared_l1(findings: list[dict], positions: list[int]) -> tuple[list[dict], dict[int, list[dict]]]:
    rows = {p: l1_rows(findings[p]) for p in positions}
    holders: dict[tuple[str, str, str], list[int]] = {}
    for p in positions:
        for row in rows[p]:
            found = holders.setdefault((row["label"], row["result"], row["detail"]), [])
            if p not in found:
                found.append(p)
    shared_keys = [key for key, found in holders.items() if len(found) >= 2]
    shared = []
    for key in shared_keys:
        row = next(r for p in positions for r in rows[p] if (r["label"], r["result"], r["detail"]) == key)
        shared.append(dict(row, numbers=[p + 1 for p in holders[key]],
                           all_findings=len(holders[key]) == len(positions)))
    own = {p: [r for r in rows[p] if (r["label"], r["result"], r["detail"]) not in set(shared_keys)]
           for p in positions}
    return shared, own


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def no_anchor(finding: dict, position: int) -> str:
    """For reports without link targets (Markdown)."""
    return ""


def actor_stories(document: dict, findings: list[dict], anchor_of: Callable[[dict, int], str] = no_anchor,
                  ) -> tuple[list[ActorStory], dict[int, FindingOwn]]:
    """The actors of the findings, each with its story, and what each finding keeps as its own.

    Actors with an escalated finding come first (most severe first, then by
    their first event), then the others by their first event. ``anchor_of``
    gives a finding's id attribute in the HTML report from the finding and
    its position."""
    by_actor: dict[str, list[int]] = {}
    for position, finding in enumerate(findings):
        by_actor.setdefault(_actor_key(finding), []).append(position)
    places = ioc_places(document)
    stories = []
    for actor, positions in by_actor.items():
        positions.sort(key=lambda p: (utc_from_document(findings[p].get("first_seen")) or datetime.max, p))
        chosen = [findings[p] for p in positions]
        firsts = [t for t in (utc_from_document(f.get("first_seen")) for f in chosen) if t]
        lasts = [t for t in (utc_from_document(f.get("last_seen")) or utc_from_document(f.get("first_seen")) for f in chosen) if t]
        aliases = sorted({text(a) for f in chosen for a in f.get("actor_aliases") or []})
        resolution = list(dict.fromkeys(text(n) for f in chosen for n in f.get("actor_resolution") or []))
        escalated = sum(1 for f in chosen if f.get("escalate") is True)
        severity = min((severity_of(f) for f in chosen), key=_severity_rank)
        event_ids = {text(e.get("event_id")) for f in chosen for e in f.get("evidence") or []
                     if isinstance(e, dict) and e.get("event_id")}
        story = ActorStory(anchor="", actor=actor or NO_ACTOR, named=bool(actor), aliases=aliases,
                           resolution=resolution, findings=positions, escalated=escalated, severity=severity,
                           first_seen=min(firsts) if firsts else None, last_seen=max(lasts) if lasts else None,
                           events=len(event_ids))
        for p in positions:
            f = findings[p]
            first, last = utc_from_document(f.get("first_seen")), utc_from_document(f.get("last_seen"))
            start, end = fmt_doc_time(f.get("first_seen")), fmt_doc_time(f.get("last_seen"))
            ips = [(ip, places.get(ip, "")) for ip in finding_ips(f)]
            story.steps.append(StoryStep(
                number=p + 1, anchor=anchor_of(f, p), finding_id=text(f.get("id")),
                indicator=text(f.get("indicator")), severity=severity_of(f), escalate=f.get("escalate") is True,
                when=start if start == end or not end else f"{start} to {end}", duration=duration(first, last),
                events=text(f.get("event_count")), actions=_actions(f),
                targets=[text(t) for t in f.get("targets") or []], ips=ips))
        story.network = _network(document, chosen)
        stories.append(story)
    stories.sort(key=lambda s: (s.escalated == 0, _severity_rank(s.severity) if s.escalated else 0,
                                s.first_seen or datetime.max, s.actor))
    owns: dict[int, FindingOwn] = {}
    for number, story in enumerate(stories, start=1):
        story.anchor = f"actor-{number}"
        shared, own, taken = _shared(findings, story.findings)
        shared_l1, own_l1 = _shared_l1(findings, story.findings)
        story.shared_reasons, story.shared_l1 = shared, shared_l1
        for p in story.findings:
            owns[p] = FindingOwn(reasons=own[p], shared_reasons=taken[p], l1=own_l1[p],
                                 shared_l1=len(l1_rows(findings[p])) - len(own_l1[p]), actor_anchor=story.anchor)
    return stories, owns


def numbers_text(numbers: list[int], all_findings: bool, total: int) -> str:
    """'all 8 findings' or 'findings 6, 7, 9'."""
    if all_findings:
        return f"all {total} findings" if total != 2 else "both findings"
    return "findings " + ", ".join(str(n) for n in numbers)
