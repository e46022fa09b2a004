"""Question 3: does this account usually do this? A baseline from the evidence before the finding."""

from __future__ import annotations

from datetime import timedelta

from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext

NAME = "usual_for_account"
MIN_BASELINE = timedelta(days=1)


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    if ctx.evidence_start is None or finding.actor is None:
        return Answer("unknown", "the finding has no actor to build a baseline for")
    history = finding.first_seen - ctx.evidence_start
    if history < MIN_BASELINE:
        return Answer("unknown", f"the baseline before the finding covers only {history.total_seconds() / 3600:.1f} h "
                                 f"(from {iso_z(ctx.evidence_start)}); at least {MIN_BASELINE.days} day is needed")
    actions = sorted({e.action for e in finding.events if e.action})
    if not actions:
        return Answer("unknown", "the finding's events name no operation to compare with")
    earlier = ctx.store.db.execute(
        f"""SELECT "event.action", count(*), min("@timestamp") FROM events
            WHERE "user.name" = ? AND "@timestamp" < ? AND "event.action" IN ({", ".join("?" * len(actions))})
            GROUP BY 1 ORDER BY 1""", [finding.actor, finding.first_seen, *actions]).fetchall()
    total_before = ctx.store.db.execute(
        'SELECT count(*) FROM events WHERE "user.name" = ? AND "@timestamp" < ?',
        [finding.actor, finding.first_seen]).fetchall()[0][0]
    span = f"baseline {iso_z(ctx.evidence_start)} .. {iso_z(finding.first_seen)} ({history.days} days)"
    if earlier:
        done = "; ".join(f"{action} {count}x since {iso_z(first)}" for action, count, first in earlier)
        return Answer("yes", f"{finding.actor} did this before: {done} ({span})")
    if total_before == 0:
        return Answer("unknown", f"{finding.actor} has no earlier activity at all in the evidence ({span}), "
                                 "so what is usual for the account cannot be told")
    return Answer("no", f"{finding.actor} never did {', '.join(actions)} before, though the account has "
                        f"{total_before} earlier events ({span})")
