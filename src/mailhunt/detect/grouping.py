"""Group detections into findings: one per indicator x actor x burst of activity.

Detections of the same indicator by the same actor merge when they overlap in
time or follow each other within ``burst_gap``; the finding's rule is the most
severe rule that contributed. The actor is the account of the earliest event.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from operator import attrgetter, itemgetter

import pyarrow as pa

from mailhunt.detect.engine import Detection
from mailhunt.detect.rules import LEVEL_ORDER, LoadedRule
from mailhunt.findings import EvidenceEvent, Finding, RuleMatches, RuleRef
from mailhunt.store import CaseStore

BURST_GAP = timedelta(hours=1)

_EVIDENCE_SQL = """
SELECT e."event.id", e."@timestamp", e."event.action", coalesce(actor.actor, e."user.name"),
       coalesce(target.actor, e."user.target.name"), e."host.name",
       e."source.ip", e."user_agent.original", e."app.id", e."parameters", e."email.subject", e."rule.name",
       e."log.file.path", e."log.file.sha256", e."log.record", coalesce(i.locator_unit, 'line'), e."user.name"
FROM events e
LEFT JOIN (SELECT DISTINCT path, sha256, locator_unit FROM inputs) i
  ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256"
LEFT JOIN identities actor ON actor.alias = coalesce(e."user.name", e."user.id")
LEFT JOIN identities target ON target.alias = e."user.target.name"
WHERE e."event.id" IN (SELECT event_id FROM wanted)
"""


def load_evidence(store: CaseStore, event_ids: set[str]) -> dict[str, EvidenceEvent]:
    wanted = pa.table({"event_id": sorted(event_ids)})
    store.db.register("wanted", wanted)
    try:
        rows = store.db.execute(_EVIDENCE_SQL).fetchall()
    finally:
        store.db.unregister("wanted")
    return {row[0]: EvidenceEvent(*row) for row in rows}


def _severity(level: str) -> str:
    return {"informational": "low"}.get(level, level)


def identity_notes(store: CaseStore) -> dict[str, str]:
    """Logged name -> how it was resolved to another actor (configured or inferred)."""
    return dict(store.db.execute(
        "SELECT alias, note FROM identities WHERE basis <> 'as logged' AND alias <> actor").fetchall())


_IN_TIME_ORDER = attrgetter("timestamp", "event_id")


def group_detections(store: CaseStore, detections: list[Detection], burst_gap: timedelta = BURST_GAP) -> list[Finding]:
    evidence = load_evidence(store, {e for d in detections for e in d.event_ids})
    notes = identity_notes(store)
    rule_ids: dict[int, str] = {}
    by_key: dict[tuple[str, str | None], list] = defaultdict(list)
    for detection in detections:
        if len(detection.event_ids) == 1:
            found = evidence.get(detection.event_ids[0])
            events = [found] if found is not None else []
        else:
            events = sorted((evidence[e] for e in detection.event_ids if e in evidence), key=_IN_TIME_ORDER)
        if not events:
            continue
        rule_id = rule_ids.get(id(detection.rule))
        if rule_id is None:
            rule_id = rule_ids[id(detection.rule)] = detection.rule.id
        by_key[(detection.rule.indicator, events[0].actor)].append(
            (events[0].timestamp, events[-1].timestamp, rule_id, detection, events))

    findings: list[Finding] = []
    for (indicator, actor), items in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        items.sort(key=itemgetter(0, 1, 2))
        bursts: list[list[tuple[Detection, list[EvidenceEvent]]]] = []
        burst_end = None
        for start, end, _, detection, events in items:
            if bursts and start <= burst_end + burst_gap:
                bursts[-1].append((detection, events))
                burst_end = max(burst_end, end)
            else:
                bursts.append([(detection, events)])
                burst_end = end
        for burst in bursts:
            findings.append(_finding(indicator, actor, burst, notes))
    return findings


def _finding(indicator: str, actor: str | None, burst, notes: dict[str, str]) -> Finding:
    rules = {}
    events: dict[str, EvidenceEvent] = {}
    for detection, evs in burst:
        if id(detection.rule) not in rules:
            rules[id(detection.rule)] = detection.rule
        for ev in evs:
            events[ev.event_id] = ev
    rules = {rule.id: rule for rule in rules.values()}
    ordered_rules = sorted(rules.values(), key=lambda r: (-LEVEL_ORDER.get(r.level, 2), r.id))
    attack = sorted({t for r in ordered_rules for t in r.attack})
    return Finding(
        indicator=indicator,
        actor=actor,
        rules=[RuleRef(r.id, r.title, r.level) for r in ordered_rules],
        attack=attack,
        events=sorted(events.values(), key=_IN_TIME_ORDER),
        severity=_severity(ordered_rules[0].level),
        actor_resolution=sorted({notes[a] for a in {ev.logged_actor for ev in events.values()} if a in notes}),
    )


MAX_MATCH_EVIDENCE = 20


def rule_matches(store: CaseStore, rules: list[LoadedRule]) -> list[RuleMatches]:
    """What the analyst's own rules without an ``indicator`` matched.

    Such rules (SigmaHQ's, a team's own) cannot name an indicator of the
    vocabulary, so they make no findings; their matches are still reported,
    per rule, with the first events as evidence. Shipped rules without an
    indicator are building blocks of correlations and are left out.
    """
    wanted = {rule.id: rule for rule in rules if not rule.indicator and not rule.is_shipped}
    if not wanted:
        return []
    rows = store.db.execute(
        """SELECT x.rule_id, count(DISTINCT x.event_id), min(e."@timestamp"), max(e."@timestamp"),
                  list(DISTINCT x.event_id ORDER BY x.event_id)
           FROM matches x JOIN events e ON e."event.id" = x.event_id GROUP BY x.rule_id""").fetchall()
    found = [(wanted[rule_id], count, ids) for rule_id, count, _, _, ids in rows if rule_id in wanted]
    evidence = load_evidence(store, {i for _, _, ids in found for i in ids})
    result = []
    for rule, count, ids in sorted(found, key=lambda item: item[0].id):
        events = sorted((evidence[i] for i in ids if i in evidence), key=lambda ev: (ev.timestamp, ev.event_id))
        result.append(RuleMatches(RuleRef(rule.id, rule.title, rule.level), sorted(rule.attack), count,
                                  events[:MAX_MATCH_EVIDENCE], str(rule.path)))
    return result
