"""The case as ``mailhunt serve`` browses it: typed, paged questions over the findings and the events.

Every question here is answered by DuckDB over the case database opened
read-only. Values from the browser (filters, search text, times, paging) are
bound parameters; the only SQL text chosen by a request is one of this
module's constants, picked by name from a fixed table (``FINDING_SORTS``).
Pages are bounded by LIMIT/OFFSET, so a case of millions of events costs one
page of rows per request, never the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import orjson

from mailhunt.case.review import ANALYST_TABLE, DISPOSITION, has_review_table
from mailhunt.case_queries import family_sql

SEVERITY_RANK = "CASE document->>'severity' WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 " \
                "WHEN 'low' THEN 1 ELSE 0 END"
# sort key -> SQL over the findings relation below; the only SQL a request selects, by name
FINDING_SORTS = {
    "first_seen": "first_seen",
    "last_seen": "last_seen",
    "severity": "severity_rank",
    "indicator": "indicator",
    "actor": "actor",
    "events": "event_count",
    "disposition": "disposition",
}
NO_DISPOSITION = "none"
# Event columns searched by the timeline's search box.
SEARCHED_COLUMNS = ("user.name", "user.target.name", "source.ip", "email.subject", "process.command_line",
                    "rule.name", "event.action")
MAX_LANES = 40


@dataclass(frozen=True)
class FindingFilter:
    """What the findings page shows; every field optional. Times are naive UTC."""

    indicator: str | None = None
    severity: str | None = None
    escalate: bool | None = None
    actor: str | None = None
    disposition: str | None = None  # a DISPOSITIONS key, or NO_DISPOSITION
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, list]:
        clauses: list[str] = ["TRUE"]
        params: list[object] = []
        if self.indicator:
            clauses.append("indicator = ?")
            params.append(self.indicator)
        if self.severity:
            clauses.append("severity = ?")
            params.append(self.severity)
        if self.escalate is not None:
            clauses.append("escalate = ?")
            params.append(self.escalate)
        if self.actor:
            clauses.append("lower(actor) = lower(?)")
            params.append(self.actor)
        if self.disposition == NO_DISPOSITION:
            clauses.append("disposition IS NULL")
        elif self.disposition:
            clauses.append("disposition = ?")
            params.append(self.disposition)
        if self.since is not None:
            clauses.append("last_seen >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("first_seen <= ?")
            params.append(self.until)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class FindingRow:
    id: str
    indicator: str
    severity: str | None
    escalate: bool
    actor: str | None
    first_seen: datetime | None
    last_seen: datetime | None
    event_count: int | None
    title: str | None
    disposition: str | None


@dataclass(frozen=True)
class FindingsPage:
    rows: list[FindingRow]
    total: int


@dataclass(frozen=True)
class IndicatorCount:
    indicator: str
    findings: int
    escalated: int


@dataclass(frozen=True)
class ActorStory:
    """One actor's findings told together: what they did, when, and how much of it is escalated."""

    actor: str
    findings: int
    escalated: int
    indicators: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    finding_ids: list[str]


@dataclass(frozen=True)
class EventRow:
    id: str
    timestamp: datetime
    action: str | None
    outcome: str | None
    actor: str | None
    target: str | None
    source_ip: str | None
    subject: str | None
    rule_name: str | None
    command_line: str | None
    dataset: str | None
    source_file: str | None


@dataclass(frozen=True)
class Lane:
    """One source (event dataset) over the shown time range: its events counted per bucket."""

    name: str
    family: str | None
    counts: list[int]
    total: int


@dataclass(frozen=True)
class Lanes:
    start: datetime
    end: datetime
    bucket: timedelta
    lanes: list[Lane] = field(default_factory=list)


@dataclass(frozen=True)
class FindingMark:
    id: str
    indicator: str
    severity: str | None
    escalate: bool
    first_seen: datetime
    last_seen: datetime


_FINDINGS = f"""WITH latest AS (
        SELECT finding_id, arg_max(value, seq) AS disposition FROM {{review}}
        WHERE action = '{DISPOSITION}' GROUP BY finding_id),
    f AS (
        SELECT id, indicator, document->>'severity' AS severity, {SEVERITY_RANK} AS severity_rank,
               coalesce(TRY_CAST(document->>'escalate' AS BOOLEAN), false) AS escalate, document->>'actor' AS actor,
               TRY_CAST(replace(document->>'first_seen', 'Z', '') AS TIMESTAMP) AS first_seen,
               TRY_CAST(replace(document->>'last_seen', 'Z', '') AS TIMESTAMP) AS last_seen,
               TRY_CAST(document->>'event_count' AS BIGINT) AS event_count, document->'rule'->>'title' AS title,
               latest.disposition AS disposition
        FROM findings LEFT JOIN latest ON latest.finding_id = findings.id)"""

_EMPTY_REVIEW = "(SELECT NULL::VARCHAR AS finding_id, NULL::VARCHAR AS value, NULL::BIGINT AS seq, " \
                "NULL::VARCHAR AS action WHERE FALSE)"


class CaseBrowser:
    """Read-only questions over one case database (opened read-only by the caller)."""

    def __init__(self, db: duckdb.DuckDBPyConnection):
        self.db = db

    def _findings_sql(self) -> str:
        return _FINDINGS.format(review=ANALYST_TABLE if has_review_table(self.db) else _EMPTY_REVIEW)

    # ------------------------------------------------------------ findings

    def findings_page(self, keep: FindingFilter, sort: str = "first_seen", descending: bool = False,
                      limit: int = 50, offset: int = 0) -> FindingsPage:
        order = FINDING_SORTS.get(sort, FINDING_SORTS["first_seen"])
        direction = "DESC" if descending else "ASC"
        where, params = keep.where()
        base = self._findings_sql()
        total = self.db.execute(f"{base} SELECT count(*) FROM f WHERE {where}", params).fetchall()[0][0]
        rows = self.db.execute(
            f"""{base} SELECT id, indicator, severity, escalate, actor, first_seen, last_seen, event_count, title,
                       disposition FROM f WHERE {where}
                ORDER BY {order} {direction} NULLS LAST, id LIMIT ? OFFSET ?""",
            [*params, limit, offset]).fetchall()
        return FindingsPage([FindingRow(*row) for row in rows], total)

    def indicator_counts(self, keep: FindingFilter = FindingFilter()) -> list[IndicatorCount]:
        where, params = keep.where()
        rows = self.db.execute(
            f"""{self._findings_sql()} SELECT indicator, count(*), count(*) FILTER (WHERE escalate)
                FROM f WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1""", params).fetchall()
        return [IndicatorCount(*row) for row in rows]

    def actor_stories(self, keep: FindingFilter = FindingFilter()) -> list[ActorStory]:
        where, params = keep.where()
        rows = self.db.execute(
            f"""{self._findings_sql()} SELECT coalesce(actor, '(no actor)'), count(*), count(*) FILTER (WHERE escalate),
                       list(DISTINCT indicator ORDER BY indicator), min(first_seen), max(last_seen),
                       list(id ORDER BY first_seen, id)
                FROM f WHERE {where} GROUP BY 1 ORDER BY 3 DESC, 5, 1""", params).fetchall()
        return [ActorStory(*row) for row in rows]

    def filter_choices(self) -> dict[str, list[str]]:
        """The indicators, severities and actors the case's findings hold, for the filter menus."""
        base = self._findings_sql()
        choices = {}
        for name in ("indicator", "severity", "actor"):
            choices[name] = [v for (v,) in self.db.execute(
                f"{base} SELECT DISTINCT {name} FROM f WHERE {name} IS NOT NULL ORDER BY 1").fetchall()]
        return choices

    def finding_document(self, finding_id: str) -> dict | None:
        row = self.db.execute("SELECT document FROM findings WHERE id = ?", [finding_id]).fetchall()
        return orjson.loads(row[0][0]) if row else None

    def finding_marks(self, start: datetime, end: datetime) -> list[FindingMark]:
        """The findings whose span meets [start, end], in time order."""
        rows = self.db.execute(
            f"""{self._findings_sql()} SELECT id, indicator, severity, escalate, first_seen, coalesce(last_seen, first_seen)
                FROM f WHERE first_seen IS NOT NULL AND first_seen <= ? AND coalesce(last_seen, first_seen) >= ?
                ORDER BY first_seen, id""", [end, start]).fetchall()
        return [FindingMark(*row) for row in rows]

    def findings_of_event(self, event_id: str) -> list[tuple[str, str]]:
        """(id, indicator) of the findings that list this event among their evidence."""
        return [(fid, indicator) for fid, indicator in self.db.execute(
            """SELECT id, indicator FROM findings
               WHERE list_contains(json_extract_string(document, '$.evidence[*].event_id'), ?) ORDER BY id""",
            [event_id]).fetchall()]

    # ------------------------------------------------------------ events

    def case_period(self) -> tuple[datetime | None, datetime | None]:
        first, last = self.db.execute('SELECT min("@timestamp"), max("@timestamp") FROM events').fetchall()[0]
        return first, last

    def lanes(self, start: datetime, end: datetime, buckets: int) -> Lanes:
        """Events per source (``event.dataset``) counted in ``buckets`` equal slices of [start, end]."""
        span = max((end - start).total_seconds(), 1.0)
        width = span / buckets
        rows = self.db.execute(
            f"""SELECT coalesce("event.dataset", '(unknown)') AS dataset, any_value({family_sql('"event.dataset"')}),
                       list(bucket ORDER BY bucket), list(n ORDER BY bucket), sum(n)
                FROM (SELECT "event.dataset",
                             least(CAST(floor(epoch("@timestamp") - epoch(?::TIMESTAMP)) / ? AS BIGINT), ? - 1) AS bucket,
                             count(*) AS n
                      FROM events WHERE "@timestamp" BETWEEN ? AND ? GROUP BY 1, 2)
                GROUP BY 1 ORDER BY 5 DESC, 1 LIMIT ?""",
            [start, width, buckets, start, end, MAX_LANES]).fetchall()
        lanes = []
        for dataset, family, slots, counts, total in rows:
            dense = [0] * buckets
            for slot, count in zip(slots, counts, strict=True):
                dense[max(0, min(buckets - 1, int(slot)))] += count
            lanes.append(Lane(dataset, family, dense, int(total)))
        return Lanes(start, end, timedelta(seconds=width), lanes)

    def search_events(self, text: str | None, since: datetime | None, until: datetime | None,
                      limit: int, offset: int) -> list[EventRow]:
        """Events in [since, until] whose actor, target, address, subject, command line, rule name or action
        contains ``text`` (case-insensitive), in time order; one page."""
        clauses: list[str] = ["TRUE"]
        params: list[object] = []
        if text:
            clauses.append("(" + " OR ".join(f'contains(lower("{c}"), ?)' for c in SEARCHED_COLUMNS) + ")")
            params.extend([text.lower()] * len(SEARCHED_COLUMNS))
        if since is not None:
            clauses.append('"@timestamp" >= ?')
            params.append(since)
        if until is not None:
            clauses.append('"@timestamp" <= ?')
            params.append(until)
        return self._events(" AND ".join(clauses), params, limit, offset)

    def events_of_people(self, people: list[str], start: datetime, end: datetime, limit: int) -> list[EventRow]:
        """Events in [start, end] done by or on these people, by any name the case resolves to them."""
        names = sorted({p.lower() for p in people if p})
        if not names:
            return []
        aliases = [a for (a,) in self.db.execute(
            "SELECT lower(alias) FROM identities WHERE lower(actor) IN (SELECT unnest(?::VARCHAR[]))",
            [names]).fetchall() if a]
        wanted = sorted(set(names) | set(aliases))
        return self._events(
            """"@timestamp" BETWEEN ? AND ? AND (lower("user.name") IN (SELECT unnest(?::VARCHAR[]))
               OR lower("user.id") IN (SELECT unnest(?::VARCHAR[]))
               OR lower("user.target.name") IN (SELECT unnest(?::VARCHAR[])))""",
            [start, end, wanted, wanted, wanted], limit, 0)

    def _events(self, where: str, params: list, limit: int, offset: int) -> list[EventRow]:
        rows = self.db.execute(
            f"""SELECT "event.id", "@timestamp", "event.action", "event.outcome", "user.name", "user.target.name",
                       "source.ip", "email.subject", "rule.name", "process.command_line", "event.dataset",
                       "log.file.path"
                FROM events WHERE {where} ORDER BY "@timestamp", "event.id" LIMIT ? OFFSET ?""",
            [*params, limit, offset]).fetchall()
        return [EventRow(*row) for row in rows]

    def apps_of_events(self, event_ids: list[str], since: datetime, until: datetime) -> list[str]:
        """The distinct application ids these events, all within [since, until], name."""
        return [app for (app,) in self.db.execute(
            """SELECT DISTINCT "app.id" FROM events WHERE "@timestamp" BETWEEN ? AND ?
               AND "event.id" IN (SELECT unnest(?::VARCHAR[])) AND "app.id" IS NOT NULL ORDER BY 1""",
            [since, until, sorted(set(event_ids))]).fetchall()]
