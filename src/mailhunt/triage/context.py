"""What every triage question may read: the case's events, what the rules matched, the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailhunt.config import Config
from mailhunt.events import iso_z
from mailhunt.store import CaseStore

EXPORT_INDICATORS = ("mailbox_export",)
DELETION_INDICATORS = ("export_request_removed", "mailbox_purge", "bulk_item_deletion")


@dataclass
class TriageContext:
    store: CaseStore
    config: Config
    indicator_of_rule: dict[str, str]
    evidence_start: datetime | None
    evidence_end: datetime | None
    cmdlet_records: int

    @classmethod
    def build(cls, store: CaseStore, config: Config, indicator_of_rule: dict[str, str]) -> "TriageContext":
        start, end, cmdlets = store.db.execute(
            """SELECT min("@timestamp"), max("@timestamp"),
                      count(*) FILTER (WHERE "event.code" = '1' OR "event.action" LIKE '%-%') FROM events""").fetchall()[0]
        return cls(store, config, indicator_of_rule, start, end, cmdlets)

    def coverage(self) -> str:
        if self.evidence_start is None:
            return "the case holds no events"
        days = (self.evidence_end - self.evidence_start).total_seconds() / 86400
        return f"evidence covers {iso_z(self.evidence_start)} .. {iso_z(self.evidence_end)} ({days:.1f} days)"

    def matched_events(self, indicators: tuple[str, ...], actor_or_targets: tuple[str | None, list[str]]) -> list[dict]:
        """Events matched by rules of the given indicators, by this actor or on these mailboxes."""
        rule_ids = [r for r, ind in self.indicator_of_rule.items() if ind in indicators]
        if not rule_ids:
            return []
        actor, targets = actor_or_targets
        people = sorted({p for p in [actor, *targets] if p})
        if not people:
            return []
        return self.store.query(
            f"""SELECT DISTINCT e."event.id" AS id, e."@timestamp" AS ts, e."event.action" AS action,
                       e."user.name" AS actor, e."user.target.name" AS target,
                       e."log.file.path" AS path, e."log.record" AS record, x.rule_id AS rule_id
                FROM matches x JOIN events e ON e."event.id" = x.event_id
                WHERE x.rule_id IN ({", ".join("?" * len(rule_ids))})
                  AND (e."user.name" IN ({", ".join("?" * len(people))})
                       OR e."user.target.name" IN ({", ".join("?" * len(people))}))
                ORDER BY ts, id""",
            [*rule_ids, *people, *people])


def describe(event: dict) -> str:
    return f"{event['action']} at {iso_z(event['ts'])} ({event['path']}:{event['record']})"
