"""What every triage question may read: the case's events, what the rules matched, the configuration.

Actors are compared after identity resolution: queries by actor go through the
``detection_events`` view, whose ``user.name`` is the resolved actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from mailhunt.config import Config
from mailhunt.detect.baselines import (
    DETECTION_RELATION,
    create_detection_view,
    detection_select,
)
from mailhunt.events import iso_z
from mailhunt.findings import Finding, event_column
from mailhunt.store import CaseStore
from mailhunt.triage.baselines import ActorBaseline, build_actor_baseline
from mailhunt.triage.policy import policy

DETAIL_COLUMNS = ("event.id", "@timestamp", "event.action", "event.outcome", "event.code", "event.dataset",
                  "user.name", "user.target.name", "source.ip", "source.geo.country_iso_code", "host.name",
                  "process.name", "process.executable", "process.command_line", "process.parent.name",
                  "process.parent.executable", "process.parent.command_line", "powershell.file.script_block_text", "app.id",
                  "user_agent.original", "parameters", "email.subject", "email.from.address", "labels",
                  "log.file.path", "log.record")

# The columns of a detail row: every detail column but the event's own identity.
VALUE_COLUMNS = tuple(c for c in DETAIL_COLUMNS if c not in ("event.id", "@timestamp", "log.file.path", "log.record"))


def matched_events_sql(relation: str) -> str:
    """Each event the rules matched, with the rule, from ``relation`` (events with resolved actors)."""
    return f"""SELECT DISTINCT e."event.id" AS id, e."@timestamp" AS ts, e."event.action" AS action,
                      e."user.name" AS actor, e."user.target.name" AS target,
                      e."log.file.path" AS path, e."log.record" AS record, x.rule_id AS rule_id
               FROM matches x JOIN {relation} e ON e."event.id" = x.event_id"""


EXPORT_INDICATORS = policy().family("export")
DELETION_INDICATORS = policy().family("deletion")


@dataclass
class TriageContext:
    store: CaseStore
    config: Config
    indicator_of_rule: dict[str, str]
    evidence_start: datetime | None
    evidence_end: datetime | None
    cmdlet_records: int
    _baselines: dict = field(default_factory=dict, repr=False)
    _details: dict = field(default_factory=dict, repr=False)
    _app_first_seen: dict | None = field(default=None, repr=False)
    people_relation: str = DETECTION_RELATION
    matches_relation: str = f"({matched_events_sql(DETECTION_RELATION)})"

    @classmethod
    def build(cls, store: CaseStore, config: Config, indicator_of_rule: dict[str, str]) -> TriageContext:
        start, end, cmdlets = store.db.execute(
            """SELECT min("@timestamp"), max("@timestamp"),
                      count(*) FILTER (WHERE "event.code" = '1' OR "event.action" LIKE '%-%') FROM events""").fetchall()[0]
        views = store.db.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                                 [DETECTION_RELATION]).fetchall()[0][0]
        if not views:
            create_detection_view(store)
        return cls(store, config, indicator_of_rule, start, end, cmdlets)

    def prepare(self, findings: list[Finding]) -> None:
        """Copy once the events of every actor and target of the findings into ``triage_events``,
        and what the rules matched among them into ``triage_matches``.

        Per-actor questions then read those small tables instead of resolving
        identities over the whole case for every finding. Only events whose
        logged names are one of these people or an alias of theirs can resolve
        to them, so identities are resolved over those events alone."""
        db = self.store.db
        names = sorted({n for f in findings for n in (f.actor, *f.targets) if n})
        db.register("triage_people", pa.table({"name": pa.array(names, pa.string())}))
        try:
            db.execute("""CREATE OR REPLACE TEMP TABLE triage_names AS
                          SELECT name FROM triage_people
                          UNION SELECT alias FROM identities WHERE actor IN (SELECT name FROM triage_people)""")
            db.execute(f"""CREATE OR REPLACE TEMP TABLE triage_logged AS
                          SELECT {", ".join(f'"{c}"' for c in (*DETAIL_COLUMNS, "user.id"))}
                          FROM events WHERE "user.name" IN (SELECT name FROM triage_names)
                             OR "user.id" IN (SELECT name FROM triage_names)
                             OR "user.target.name" IN (SELECT name FROM triage_names)""")
            db.execute(
                f"""CREATE OR REPLACE TEMP TABLE triage_events AS
                    SELECT "event.id", {", ".join(f'"{c}"' for c in DETAIL_COLUMNS if c != "event.id")}
                    FROM ({detection_select(self.store, "triage_logged")})
                    WHERE "user.name" IN (SELECT name FROM triage_people)
                       OR "user.target.name" IN (SELECT name FROM triage_people)""")
        finally:
            db.unregister("triage_people")
            db.execute("DROP TABLE IF EXISTS triage_logged")
            db.execute("DROP TABLE IF EXISTS triage_names")
        db.execute(f"CREATE OR REPLACE TEMP TABLE triage_matches AS {matched_events_sql('triage_events')}")
        self.people_relation = "triage_events"
        self.matches_relation = "triage_matches"
        self._details.update(self._load_details(findings))

    def names_of(self, actor: str | None) -> set[str]:
        """Every name the actor goes by in the case (lower-cased): the actor and each logged alias resolved to it.

        Configured admins, automation accounts and change-window actors are
        compared with these, so ``CORP\\exadmin`` in mailhunt.toml covers the
        same person logged as ``exadmin@corp.com``."""
        if not actor:
            return set()
        rows = self.store.db.execute("SELECT alias FROM identities WHERE actor = ?", [actor]).fetchall()
        return {actor.lower()} | {alias.lower() for (alias,) in rows if alias}

    def baseline(self, finding: Finding) -> ActorBaseline:
        """The actor's history before the finding (built once per finding)."""
        key = (finding.actor, finding.first_seen)
        if key not in self._baselines:
            self._baselines[key] = build_actor_baseline(self.store.db, finding.actor, finding.first_seen,
                                                        self.evidence_start, self.people_relation)
        return self._baselines[key]

    def _load_details(self, findings: list[Finding]) -> dict[int, tuple[Finding, list[dict]]]:
        """The distinct detail rows of each finding, actors resolved, by ``id(finding)`` (one query).

        Rows that differ only in their event's identity (id, time, record)
        are one row, kept where its values first occur in time order: the
        answers only read the values, so a finding of 100,000 identical
        log-cleared records costs what a finding of a few does."""
        ids = [event_column(f.events, "event_id") for f in findings]
        self.store.db.register("finding_event_ids", pa.table({
            "finding": pa.chunked_array([pa.repeat(pa.scalar(index, pa.int64()), len(column))
                                         for index, column in enumerate(ids)], pa.int64()),
            "event_id": pa.chunked_array(ids, pa.string())}))
        try:
            resolved = {"user.name": 'coalesce(actor.actor, e."user.name")',
                        "user.target.name": 'coalesce(target.actor, e."user.target.name")'}
            values = ", ".join(f'{resolved.get(c, f"e.{_quoted(c)}")} AS {_quoted(c)}' for c in VALUE_COLUMNS)
            names = ", ".join(_quoted(c) for c in VALUE_COLUMNS)
            rows = self.store.db.execute(
                f"""WITH finding_rows AS (
                        SELECT w.finding, {values},
                               struct_pack(ts := e."@timestamp", id := e."event.id") AS seen
                        FROM finding_event_ids w JOIN events e ON e."event.id" = w.event_id
                        LEFT JOIN identities actor ON actor.alias = e."user.name"
                        LEFT JOIN identities target ON target.alias = e."user.target.name")
                    SELECT finding, {names} FROM finding_rows
                    GROUP BY finding, {names} ORDER BY finding, min(seen)""").fetchall()
        finally:
            self.store.db.unregister("finding_event_ids")
        loaded: dict[int, tuple[Finding, list[dict]]] = {id(f): (f, []) for f in findings}
        for index, *row_values in rows:
            row = dict(zip(VALUE_COLUMNS, row_values))
            row["labels"] = dict(row["labels"]) if row["labels"] else {}
            loaded[id(findings[index])][1].append(row)
        return loaded

    def details(self, finding: Finding) -> list[dict]:
        """The values of the finding's events an assessment reads, each distinct row once, in time order.

        Rows carry ``VALUE_COLUMNS`` (not the event id, time or record: use
        ``finding.events`` for those)."""
        cached = self._details.get(id(finding))
        if cached is None or cached[0] is not finding:
            self._details.update(self._load_details([finding]))
        return self._details[id(finding)][1]

    def records_naming(self, finding: Finding, text: str) -> int:
        """How many of the finding's raw records contain ``text`` (case-insensitive)."""
        ids = pa.table({"event_id": pa.array(sorted(set(finding.event_ids)), pa.string())})
        self.store.db.register("finding_event_ids", ids)
        try:
            return self.store.db.execute(
                """SELECT count(*) FROM events WHERE "event.id" IN (SELECT event_id FROM finding_event_ids)
                   AND contains(lower("event.original"), ?)""", [text.lower()]).fetchall()[0][0]
        finally:
            self.store.db.unregister("finding_event_ids")

    def app_first_seen(self) -> dict[str, datetime]:
        """Application id (lower-cased) -> first time it appears in the case."""
        if self._app_first_seen is None:
            self._app_first_seen = dict(self.store.db.execute(
                'SELECT lower("app.id"), min("@timestamp") FROM events WHERE "app.id" IS NOT NULL GROUP BY 1'
            ).fetchall())
        return self._app_first_seen

    def actor_events(self, actor: str, start: datetime, end: datetime, where: str, params: list) -> list[dict]:
        """Events of the resolved actor (as actor or as target) between start and end matching ``where``."""
        cols = ", ".join(f'"{c}"' for c in DETAIL_COLUMNS)
        rows = self.store.db.execute(
            f"""SELECT {cols} FROM {self.people_relation}
                WHERE ("user.name" = ? OR "user.target.name" = ?) AND "@timestamp" BETWEEN ? AND ? AND ({where})
                ORDER BY "@timestamp", "event.id" """, [actor, actor, start, end, *params]).fetchall()
        out = []
        for values in rows:
            row = dict(zip(DETAIL_COLUMNS, values))
            row["labels"] = dict(row["labels"]) if row["labels"] else {}
            out.append(row)
        return out

    def coverage(self) -> str:
        if self.evidence_start is None or self.evidence_end is None:  # both or neither: min and max of one column
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
            f"""SELECT * FROM {self.matches_relation}
                WHERE rule_id IN ({", ".join("?" * len(rule_ids))})
                  AND (actor IN ({", ".join("?" * len(people))}) OR target IN ({", ".join("?" * len(people))}))
                ORDER BY ts, id""",
            [*rule_ids, *people, *people])


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def describe(event: dict) -> str:
    return f"{event['action']} at {iso_z(event['ts'])} ({event['path']}:{event['record']})"
