"""Group detections into findings: one per indicator x actor x burst of activity.

Detections of the same indicator by the same actor merge when they overlap in
time or follow each other within ``burst_gap``; the finding's rule is the most
severe rule that contributed. The actor is the account of the earliest event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from mailhunt.case_queries import RESOLVED_RELATION
from mailhunt.detect.engine import Detection
from mailhunt.detect.rules import LEVEL_ORDER, LoadedRule
from mailhunt.findings import (
    EVIDENCE_FIELDS,
    EvidenceEvent,
    EvidenceList,
    Finding,
    RuleMatches,
    RuleRef,
    evidence_events,
    value_counts,
)
from mailhunt.store import CaseStore

BURST_GAP = timedelta(hours=1)

# Evidence rows come from the case's resolved-events relation: user.name and
# user.target.name there are the resolved actor and target, user.name_logged the name as logged.
_EVIDENCE_COLUMNS = """e."event.id", e."@timestamp", e."event.action", e."user.name",
       e."user.target.name", e."host.name",
       e."source.ip", e."user_agent.original", e."app.id", e."parameters", e."email.subject", e."rule.name",
       e."log.file.path", e."log.file.sha256", e."log.record", coalesce(i.locator_unit, 'line'),
       e."user.name_logged" """
_EVIDENCE_JOINS = """LEFT JOIN (SELECT DISTINCT path, sha256, locator_unit FROM inputs) i
  ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256" """

_EVIDENCE_SQL = f"""
SELECT {_EVIDENCE_COLUMNS}
FROM {RESOLVED_RELATION} e
{_EVIDENCE_JOINS}
WHERE e."event.id" IN (SELECT event_id FROM wanted)
"""


def load_evidence(store: CaseStore, event_ids: set[str]) -> dict[str, EvidenceEvent]:
    store.resolved.ensure()
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
    """Logged name -> how it was resolved to another actor (configured or inferred), or why it was left as
    logged although the evidence names it otherwise (a uid paired with two names on one host)."""
    return store.resolved.identity_notes()


# Bursts in SQL: detections of one indicator by one actor (the account of a
# detection's earliest event), ordered by start, end, rule id and position;
# a detection starts a new burst when it starts more than the gap after the
# latest end of every detection before it.
_BURSTS_SQL = f"""
WITH evidence AS (
  SELECT d.detection, d.rule_position, d.event_id, e."@timestamp" AS ts, e."user.name" AS actor
  FROM detection_events_wanted d
  JOIN {RESOLVED_RELATION} e ON e."event.id" = d.event_id
), detections AS (
  SELECT detection, any_value(rule_position) AS rule_position, min(ts) AS first_ts, max(ts) AS last_ts,
         arg_min_null(actor, struct_pack(ts := ts, id := event_id)) AS actor
  FROM evidence GROUP BY detection
), keyed AS (
  SELECT d.*, r.indicator, r.rule_id,
         max(last_ts) OVER (PARTITION BY r.indicator, d.actor ORDER BY first_ts, last_ts, r.rule_id, detection
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS end_before
  FROM detections d JOIN detection_rules r USING (rule_position)
), numbered AS (
  SELECT detection, indicator, actor,
         sum(CASE WHEN end_before IS NULL OR first_ts > end_before + ? THEN 1 ELSE 0 END)
           OVER (PARTITION BY indicator, actor ORDER BY first_ts, last_ts, rule_id, detection
                 ROWS UNBOUNDED PRECEDING) AS burst,
         min(detection) OVER (PARTITION BY indicator, actor) AS key_seen
  FROM keyed
)
SELECT detection, dense_rank() OVER (ORDER BY indicator, coalesce(actor, ''), key_seen, burst) - 1 AS finding
FROM numbered
"""

_FINDING_EVIDENCE_SQL = f"""
WITH wanted AS (
  SELECT DISTINCT b.finding, d.event_id FROM detection_bursts b JOIN detection_events_wanted d USING (detection))
SELECT w.finding, {_EVIDENCE_COLUMNS}
FROM wanted w JOIN {RESOLVED_RELATION} e ON e."event.id" = w.event_id
{_EVIDENCE_JOINS}
ORDER BY w.finding, e."@timestamp", e."event.id"
"""


# A finding with more events than this keeps them as one Arrow table (``EvidenceList``), not as objects.
COLUMNAR_EVIDENCE = 1000


def group_detections(store: CaseStore, detections: list[Detection], burst_gap: timedelta = BURST_GAP) -> list[Finding]:
    """Findings of the detections, grouped in SQL; a large finding's events stay one Arrow table."""
    rules: list[LoadedRule] = []
    position_of: dict[int, int] = {}
    detection_column: list[int] = []
    rule_column: list[int] = []
    event_column: list[str] = []
    for number, detection in enumerate(detections):
        position = position_of.get(id(detection.rule))
        if position is None:
            position = position_of[id(detection.rule)] = len(rules)
            rules.append(detection.rule)
        for event_id in detection.event_ids:
            detection_column.append(number)
            rule_column.append(position)
            event_column.append(event_id)
    store.resolved.ensure()
    db = store.db
    db.register("detection_events_wanted", pa.table({
        "detection": pa.array(detection_column, pa.int64()), "rule_position": pa.array(rule_column, pa.int64()),
        "event_id": pa.array(event_column, pa.string())}))
    db.register("detection_rules", pa.table({
        "rule_position": pa.array(range(len(rules)), pa.int64()),
        "indicator": pa.array([r.indicator for r in rules], pa.string()),
        "rule_id": pa.array([r.id for r in rules], pa.string())}))
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE detection_bursts AS {_BURSTS_SQL}", [burst_gap])
        rules_of = db.execute("""SELECT finding, list(DISTINCT rule_position ORDER BY rule_position)
                                 FROM detection_bursts b JOIN detection_events_wanted d USING (detection)
                                 GROUP BY finding ORDER BY finding""").fetchall()
        evidence = db.sql(_FINDING_EVIDENCE_SQL).to_arrow_table()
    finally:
        db.unregister("detection_events_wanted")
        db.unregister("detection_rules")
        db.execute("DROP TABLE IF EXISTS detection_bursts")
    notes = identity_notes(store)
    evidence = evidence.rename_columns(["finding", *EVIDENCE_FIELDS])
    sizes = {c["values"]: c["counts"] for c in pc.value_counts(evidence.column("finding")).to_pylist()}
    findings = []
    offset = 0
    for finding, positions in rules_of:
        size = sizes.get(finding, 0)
        table = evidence.slice(offset, size).drop_columns(["finding"])
        offset += size
        events = EvidenceList(table) if size > COLUMNAR_EVIDENCE else evidence_events(table)
        findings.append(_finding([rules[p] for p in positions], events, notes))
    return findings


def _finding(rules: list[LoadedRule], events: Sequence[EvidenceEvent], notes: dict[str, str]) -> Finding:
    by_id = {rule.id: rule for rule in rules}
    ordered_rules = sorted(by_id.values(), key=lambda r: (-LEVEL_ORDER.get(r.level, 2), r.id))
    indicator = ordered_rules[0].indicator
    if indicator is None:
        raise ValueError(f"rule {ordered_rules[0].id} names no indicator; only indicator rules make findings")
    attack = sorted({t for r in ordered_rules for t in r.attack})
    logged = value_counts(events, "logged_actor")
    return Finding(
        indicator=indicator,
        actor=events[0].actor,
        rules=[RuleRef(r.id, r.title, r.level, r.rule.name) for r in ordered_rules],
        attack=attack,
        events=events,
        severity=_severity(ordered_rules[0].level),
        actor_resolution=sorted({notes[a] for a in logged if a in notes}),
        actor_aliases=sorted(a for a in logged if a and a != events[0].actor),
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
        result.append(RuleMatches(RuleRef(rule.id, rule.title, rule.level, rule.rule.name), sorted(rule.attack), count,
                                  events[:MAX_MATCH_EVIDENCE], str(rule.path)))
    return result
