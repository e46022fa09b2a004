"""The case as detection and triage read it: one resolved-events relation, and the questions asked of it.

``CaseStore.resolved`` (a ``ResolvedEvents``) owns the relation
``resolved_events``: every event of the case with

- ``user.name`` / ``user.target.name``: the resolved actor and target (the
  ``identities`` table, ``detect/identities.py``; a record without a name is
  resolved by its ``user.id``, and stands for that id when it resolves to no
  one, so a SID-only script block keeps its actor);
- ``user.name_logged`` / ``user.target.name_logged``: the names as logged;
- ``scope.tenant``: the tenant (``organization.id``; a record that states none
  belongs to its family's tenant when the case holds exactly one tenant of
  that family);
- ``scope.family``: the source family, derived once from ``event.dataset``
  (``SOURCE_FAMILIES``): m365, exchange, windows, unix, macos.

The identity join is written here and nowhere else. The rules read
``detection_events``: the same relation with the app baseline fields
``app.first_seen`` and ``app.new`` (the one definition of "new app":
``NEW_APP_LEARNING``, ``NEW_FOR``). Detection and triage ask typed questions
(an actor's history before a time within a scope, the events rules matched by
rule and person, the instances a correlation recorded) instead of writing SQL
over each other's tables.

Every question that reads the events (``EVENT_QUESTIONS``) is asked through
``ResolvedEvents.ask``: in the case database by default, or in the engine
that ran the rules (``detect.engine.RuleEngine``, e.g. Spark) when triage is
given one, from the same DuckDB-dialect text. Those questions are written in
what both engines run alike: values bound as ``?`` (lists as
``CAST(? AS VARCHAR[])``, times only in input tables), the small tables they
join given as ``inputs``, every ordering total and explicit.

Nothing here pastes evidence into SQL: values are bound parameters; the few
names written into SQL are this module's constants.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import duckdb
import pyarrow as pa

from mailhunt.events import COLUMN_NAMES
from mailhunt.sql_text import sql_identifier, sql_string

RESOLVED_RELATION = "resolved_events"
DETECTION_RELATION = "detection_events"
ORGANIZATION_DOMAINS = "organization_domains"
EXTERNAL_RECIPIENTS = "external_recipients"
PEOPLE_RELATION = "people_events"

# Every question ``ResolvedEvents`` asks of the events (as opposed to the case's small tables: identities,
# matches, correlation steps), by name. Each is asked through ``ResolvedEvents.ask``/``keep``, so the engine
# triage is given runs all of them and a question cannot exist for one engine only.
EVENT_QUESTIONS = frozenset({
    "people_events", "case_span", "records_containing", "events_of", "message_log_spans", "messages_between",
    "persons_events", "event_rows", "scope_coverage", "actor_histories", "app_first_seen", "matched_events",
    "matched_by_actors", "correlation_instances",
})

TENANT = "scope.tenant"
# The columns ``resolved_select`` reads to resolve names, tenant and family.
RESOLVING_COLUMNS = ("user.name", "user.id", "user.target.name", "organization.id", "event.dataset")
FAMILY = "scope.family"

# event.dataset prefix -> source family; the first prefix that matches wins, an
# unlisted dataset is its own family (the part before the first dot).
SOURCE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("m365.", "m365"),
    ("entra.", "m365"),
    ("exchange.", "exchange"),
    ("windows.msexchange_management", "exchange"),
    ("windows.", "windows"),
    ("linux.", "unix"),
    ("unix.", "unix"),
    ("macos.", "macos"),
)

# "New to the tenant": an application id whose first appearance in its tenant
# and source family comes at least NEW_APP_LEARNING after that scope's first
# evidence is new for NEW_FOR after that appearance.
NEW_APP_LEARNING = timedelta(days=7)
NEW_FOR = timedelta(hours=24)

# The fields of every case timeline entry (``case/timeline.py``), in the order of its JSON keys and CSV columns.
TIMELINE_FIELDS = ("datetime", "timestamp_desc", "message", "timestamp", "finding_ids", "escalated", "event_id",
                   "action", "outcome", "actor", "actor_logged", "target", "source_ip", "country", "host", "app_id",
                   "user_agent", "subject", "rule_name", "command_line", "dataset", "source_family", "source_file",
                   "source_sha256", "locator")
TIMELINE_TIMESTAMP_DESC = "Event time (as logged)"
# The events of the case timeline and the findings each belongs to (``ResolvedEvents.keep_timeline``).
TIMELINE_KEPT = "timeline_kept"
# Cmdlet parameters (lower-cased) that send mail to an address: inbox rules (New-InboxRule, Set-InboxRule),
# mailbox forwarding (Set-Mailbox) and transport rules (New-TransportRule).
FORWARDING_PARAMETERS = ("forwardto", "redirectto", "forwardasattachmentto", "forwardingsmtpaddress",
                         "blindcopyto", "copyto", "redirectmessageto", "addtorecipients")


def source_family(dataset: str | None) -> str | None:
    """The source family of an ``event.dataset`` (None without one)."""
    if not dataset:
        return None
    for prefix, family in SOURCE_FAMILIES:
        if dataset.startswith(prefix):
            return family
    return dataset.split(".", 1)[0]


def family_sql(column: str) -> str:
    """SQL for ``source_family`` of the dataset column ``column``."""
    cases = " ".join(f"WHEN starts_with({column}, {sql_string(prefix)}) THEN {sql_string(family)}"
                     for prefix, family in SOURCE_FAMILIES)
    return f"CASE WHEN {column} IS NULL OR {column} = '' THEN NULL {cases} ELSE split_part({column}, '.', 1) END"


@dataclass(frozen=True)
class Scope:
    """The evidence that could have seen a behaviour: one tenant (None: not stated) of one source family."""

    tenant: str | None
    family: str | None

    def describe(self) -> str:
        family = self.family or "unknown-source"
        return f"{family} evidence of tenant {self.tenant}" if self.tenant else f"{family} evidence"


@dataclass(frozen=True)
class HistoryRow:
    """One distinct combination of what a baseline counts, among an actor's earlier events."""

    action: str | None
    hour: int
    source_ip: str | None
    country: str | None
    app_id: str | None
    user_agent: str | None
    process: str | None
    asn: str | None
    target: str | None
    events: int
    first: datetime


@dataclass(frozen=True)
class HistoryRequest:
    """An actor's earlier events asked for: in ``scopes``, in [since, before); ``rule_ids``: the rules whose
    matches among them are counted (``matched_by_actors``)."""

    actor: str
    scopes: tuple[Scope, ...]
    since: datetime
    before: datetime
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchedEvent:
    """An event a rule matched, actors resolved."""

    id: str
    ts: datetime
    action: str | None
    actor: str | None
    target: str | None
    path: str
    record: int | None
    rule_id: str

    def as_dict(self) -> dict:
        return {"id": self.id, "ts": self.ts, "action": self.action, "actor": self.actor, "target": self.target,
                "path": self.path, "record": self.record, "rule_id": self.rule_id}


def resolved_select(relation: str = "events", carried: Sequence[str] = COLUMN_NAMES) -> str:
    """The resolved-events query over ``relation`` (``events``, or a table with the ``carried`` columns and
    ``RESOLVING_COLUMNS``), keeping the ``carried`` columns.

    Every column is named (no ``* REPLACE``), so that the same query carries to Spark SQL."""
    replaced = {"user.name": 'coalesce(actor.actor, e."user.name", e."user.id")',
                "user.target.name": 'coalesce(target.actor, e."user.target.name")'}
    columns = ", ".join(f"{replaced.get(name, 'e.' + sql_identifier(name))} AS {sql_identifier(name)}" for name in carried)
    return f"""SELECT {columns},
                  e."user.name" AS "user.name_logged", e."user.target.name" AS "user.target.name_logged",
                  coalesce(e."organization.id", ft.tenant) AS {sql_identifier(TENANT)},
                  {family_sql('e."event.dataset"')} AS {sql_identifier(FAMILY)}
           FROM {relation} e
           LEFT JOIN identities actor ON actor.alias = coalesce(e."user.name", e."user.id")
           LEFT JOIN identities target ON target.alias = e."user.target.name"
           LEFT JOIN family_tenants ft ON ft.family = {family_sql('e."event.dataset"')}
                                     AND e."organization.id" IS NULL"""


def _detection_select() -> str:
    new_for = int(NEW_FOR.total_seconds())
    learning = int(NEW_APP_LEARNING.total_seconds())
    return f"""SELECT r.*, a.first_seen AS "app.first_seen",
                  coalesce(a.first_seen >= s.first_ts + INTERVAL '{learning} seconds'
                           AND r."@timestamp" <= a.first_seen + INTERVAL '{new_for} seconds', false) AS "app.new",
                  x.external AS "email.to.external"
           FROM {RESOLVED_RELATION} r
           LEFT JOIN {EXTERNAL_RECIPIENTS} x ON x.event_id = r."event.id"
           LEFT JOIN app_first_seen a ON a.app_id = r."app.id"
                AND a.tenant IS NOT DISTINCT FROM r.{sql_identifier(TENANT)} AND a.family IS NOT DISTINCT FROM r.{sql_identifier(FAMILY)}
           LEFT JOIN scope_start s ON s.tenant IS NOT DISTINCT FROM r.{sql_identifier(TENANT)}
                AND s.family IS NOT DISTINCT FROM r.{sql_identifier(FAMILY)}"""


@dataclass(frozen=True)
class Relation:
    """One relation of the resolved-events plan: its name, the DuckDB query that defines it, and whether it
    is worth materializing (small aggregates) rather than kept as a view over the events."""

    name: str
    sql: str
    materialized: bool


def organization_domains_table(org_domains: tuple[str, ...]) -> pa.Table:
    """The ``[organization] domains``, lower-cased, without a leading ``@``: the ``organization_domains``
    relation ``relation_plan`` reads."""
    domains = sorted({d.strip().lower().lstrip("@") for d in org_domains if d and d.strip()})
    return pa.table({"domain": pa.array(domains, pa.string())})


def _external_recipients_sql(org_domains: tuple[str, ...]) -> str:
    """Per event with recipients, whether one is outside ``organization_domains`` (the domain or a subdomain
    of it); no rows when none are configured, so ``email.to.external`` is NULL rather than a guess."""
    if not organization_domains_table(org_domains).num_rows:
        return "SELECT CAST(NULL AS VARCHAR) AS event_id, CAST(NULL AS BOOLEAN) AS external WHERE false"
    return f"""SELECT event_id, bool_or(NOT inside) AS external
               FROM (SELECT r.event_id, r.domain, count(o.domain) > 0 AS inside
                     FROM (SELECT event_id, split_part(trim(address), '@', 2) AS domain
                           FROM (SELECT "event.id" AS event_id,
                                        unnest(string_split(lower("email.to.address"), ';')) AS address
                                 FROM events WHERE "email.to.address" IS NOT NULL) a) r
                     LEFT JOIN {ORGANIZATION_DOMAINS} o
                            ON r.domain = o.domain OR ends_with(r.domain, '.' || o.domain)
                     WHERE r.domain <> ''
                     GROUP BY r.event_id, r.domain) d
               GROUP BY event_id"""


def relation_plan(org_domains: tuple[str, ...] = ()) -> list[Relation]:
    """The relations detection and triage read, in the order they are built, written once in DuckDB's SQL.

    They read ``events``, ``identities`` and ``organization_domains``
    (``organization_domains_table``). ``ResolvedEvents.refresh`` builds them in
    the case database; the Spark engine (``mailhunt.spark``) builds the same
    plan, transpiled, over the events in Parquet."""
    family = family_sql('"event.dataset"')
    return [
        Relation(EXTERNAL_RECIPIENTS, _external_recipients_sql(org_domains), True),
        Relation("family_tenants", f"""SELECT {family} AS family, min("organization.id") AS tenant FROM events
                                       WHERE "organization.id" IS NOT NULL GROUP BY 1
                                       HAVING count(DISTINCT "organization.id") = 1""", True),
        Relation(RESOLVED_RELATION, resolved_select(), False),
        Relation("scope_start", f"""SELECT {sql_identifier(TENANT)} AS tenant, {sql_identifier(FAMILY)} AS family,
                                           min("@timestamp") AS first_ts, max("@timestamp") AS last_ts
                                    FROM {RESOLVED_RELATION} GROUP BY 1, 2""", True),
        Relation("app_first_seen", f"""SELECT {sql_identifier(TENANT)} AS tenant, {sql_identifier(FAMILY)} AS family,
                                              "app.id" AS app_id, min("@timestamp") AS first_seen
                                       FROM {RESOLVED_RELATION} WHERE "app.id" IS NOT NULL GROUP BY 1, 2, 3""", True),
        Relation(DETECTION_RELATION, _detection_select(), False),
        Relation(PEOPLE_RELATION, f"SELECT * FROM {DETECTION_RELATION}", False),
    ]


class EventQuestions(Protocol):
    """An engine that answers the questions of ``EVENT_QUESTIONS`` over its copy of the relations
    ``relation_plan`` builds (``detect.engine.RuleEngine`` is one)."""

    name: str

    def ask(self, sql: str, params: Sequence[object], inputs: Mapping[str, pa.Table]) -> tuple[list[str], list[tuple]]:
        """The column names and rows of ``sql`` (DuckDB's dialect), ``params`` bound to its ``?`` and each of
        ``inputs`` readable under its name."""
        ...

    def keep(self, relation: str, sql: str, inputs: Mapping[str, pa.Table]) -> None:
        """Keep the rows of ``sql`` as ``relation`` for the questions asked after."""
        ...


def ask_case_database(db: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object],
                      inputs: Mapping[str, pa.Table]) -> tuple[list[str], list[tuple]]:
    """``EventQuestions.ask`` in the case database."""
    for name, table in inputs.items():
        db.register(name, table)
    try:
        cursor = db.execute(sql, list(params))
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        for name in inputs:
            db.unregister(name)


def keep_in_case_database(db: duckdb.DuckDBPyConnection, relation: str, sql: str,
                          inputs: Mapping[str, pa.Table]) -> None:
    """``EventQuestions.keep`` in the case database: a temporary table, read through the view ``relation``."""
    for name, table in inputs.items():
        db.register(name, table)
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE {relation}_kept AS {sql}")
        db.execute(f"DROP VIEW IF EXISTS {relation}")
        db.execute(f"CREATE OR REPLACE TEMP VIEW {relation} AS SELECT * FROM {relation}_kept")
    finally:
        for name in inputs:
            db.unregister(name)


# The timeline's events: each event joined on the names it holds (actor, target, and its host when its family
# is one of the ``?`` host families), each an equality a hash join looks up, then on the time span of the
# wanted row (``timeline_wanted``: finding, person, host, start, end). Joined on the time ranges first, every
# event met every wanted row (139M pairs at 10M events).
TIMELINE_JOIN_SQL = f"""
    SELECT event_id, list(DISTINCT finding ORDER BY finding) AS findings
    FROM (SELECT e.event_id, w.finding
          FROM (SELECT "event.id" AS event_id, "@timestamp" AS ts,
                       unnest(['person', 'person', 'host']) AS kind,
                       unnest(["user.name", "user.target.name",
                               CASE WHEN {sql_identifier(FAMILY)} IN (SELECT unnest(CAST(? AS VARCHAR[])))
                                    THEN "host.name" END]) AS name
                FROM {RESOLVED_RELATION}
                WHERE "@timestamp" BETWEEN (SELECT min(start) FROM timeline_wanted)
                                       AND (SELECT max("end") FROM timeline_wanted)) e
          JOIN (SELECT finding, 'person' AS kind, person AS name, start, "end"
                FROM timeline_wanted WHERE person IS NOT NULL
                UNION ALL
                SELECT finding, 'host', host, start, "end" FROM timeline_wanted WHERE host IS NOT NULL) w
            ON e.kind = w.kind AND e.name = w.name AND e.ts BETWEEN w.start AND w."end")
    GROUP BY event_id"""


class ResolvedEvents:
    """The resolved-events relation of one case database and the questions detection and triage ask of it."""

    def __init__(self, db: duckdb.DuckDBPyConnection):
        self.db = db
        # The engine asked the questions of EVENT_QUESTIONS (None: the case database), and what was asked, as
        # (engine name, question) in order.
        self.engine: EventQuestions | None = None
        self.asked: list[tuple[str, str]] = []

    def ask_with(self, engine: EventQuestions | None) -> None:
        """Ask the questions that read the events of ``engine`` from now on (None: of the case database)."""
        self.engine = engine

    def ask(self, question: str, sql: str, params: Sequence[object] = (),
            inputs: Mapping[str, pa.Table] | None = None) -> tuple[list[str], list[tuple]]:
        """The column names and rows of the registered ``question`` (``EVENT_QUESTIONS``), run by the engine."""
        self._note(question)
        if self.engine is None:
            return ask_case_database(self.db, sql, params, inputs or {})
        return self.engine.ask(sql, params, inputs or {})

    def keep(self, question: str, relation: str, sql: str, inputs: Mapping[str, pa.Table] | None = None) -> None:
        """Keep the rows of the registered ``question`` as ``relation``, in the engine."""
        self._note(question)
        if self.engine is None:
            keep_in_case_database(self.db, relation, sql, inputs or {})
        else:
            self.engine.keep(relation, sql, inputs or {})

    def _note(self, question: str) -> None:
        if question not in EVENT_QUESTIONS:
            raise ValueError(f"{question!r} is not a registered question over the events (EVENT_QUESTIONS)")
        self.asked.append((self.engine.name if self.engine is not None else "DuckDB", question))

    def _rows(self, question: str, sql: str, params: Sequence[object] = (),
              inputs: Mapping[str, pa.Table] | None = None) -> list[tuple]:
        return self.ask(question, sql, params, inputs)[1]

    def _asked_dicts(self, question: str, sql: str, params: Sequence[object] = (),
                     inputs: Mapping[str, pa.Table] | None = None) -> list[dict]:
        names, rows = self.ask(question, sql, params, inputs)
        return [dict(zip(names, row)) for row in rows]

    # ------------------------------------------------------------ the relation

    def refresh(self, org_domains: tuple[str, ...] = ()) -> None:
        """(Re)build the relation from the events and the ``identities`` table: call after either changes.

        ``org_domains`` (``[organization] domains``) decide ``email.to.external``."""
        self.db.register("organization_domains_given", organization_domains_table(org_domains))
        try:
            self.db.execute(f"CREATE OR REPLACE TEMP TABLE {ORGANIZATION_DOMAINS} AS "
                            "SELECT * FROM organization_domains_given")
        finally:
            self.db.unregister("organization_domains_given")
        for relation in relation_plan(org_domains):
            kind = "TABLE" if relation.materialized else "VIEW"
            self.db.execute(f"CREATE OR REPLACE TEMP {kind} {relation.name} AS {relation.sql}")

    def ensure(self, org_domains: tuple[str, ...] = ()) -> None:
        """Build the relation unless this connection has it already."""
        present = self.db.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                                  [DETECTION_RELATION]).fetchall()[0][0]
        if not present:
            self.refresh(org_domains)

    def restrict_to_people(self, names: list[str], columns: tuple[str, ...]) -> None:
        """Keep ``columns`` of the events of these resolved people (as actor or target) in ``people_events``,
        which the per-person questions below read from then on.

        Only events whose logged names are one of these people or an alias of
        theirs can resolve to them, so identities are resolved over those alone."""
        # only the columns kept and those resolving names and scopes: not the raw records
        needed = tuple(dict.fromkeys((*RESOLVING_COLUMNS, *columns)))
        logged = ", ".join(sql_identifier(c) for c in needed)
        kept = ", ".join(sql_identifier(c) for c in (*columns, TENANT, FAMILY))
        self.keep("people_events", PEOPLE_RELATION, f"""
            WITH wanted_names AS (SELECT name FROM wanted_people
                                  UNION SELECT alias FROM identities WHERE actor IN (SELECT name FROM wanted_people)),
                 people_logged AS (SELECT {logged} FROM events WHERE "user.name" IN (SELECT name FROM wanted_names)
                                      OR "user.id" IN (SELECT name FROM wanted_names)
                                      OR "user.target.name" IN (SELECT name FROM wanted_names))
            SELECT {kept} FROM ({resolved_select("people_logged", needed)}) p
            WHERE "user.name" IN (SELECT name FROM wanted_people)
               OR "user.target.name" IN (SELECT name FROM wanted_people)""",
            {"wanted_people": pa.table({"name": pa.array(sorted(set(names)), pa.string())})})

    # ------------------------------------------------------------ the case as a whole

    def case_span(self) -> tuple[datetime | None, datetime | None, int]:
        """First and last time of the case's events, and how many of them are admin (cmdlet) records."""
        first, last, cmdlets = self._rows("case_span", """
            SELECT min("@timestamp"), max("@timestamp"),
                   count(*) FILTER (WHERE "event.code" = '1' OR "event.action" LIKE '%-%') FROM events""")[0]
        return first, last, cmdlets

    def records_containing(self, event_ids: list[str], text: str) -> int:
        """How many of these events' raw records contain ``text`` (case-insensitive)."""
        return self._rows(
            "records_containing",
            """SELECT count(*) FROM events WHERE "event.id" IN (SELECT event_id FROM records_wanted)
               AND contains(lower("event.original"), ?)""", [text.lower()],
            {"records_wanted": pa.table({"event_id": pa.array(sorted(set(event_ids)), pa.string())})})[0][0]

    def rule_changes(self, event_ids: list[str]) -> list[dict]:
        """Time, action, cmdlet parameters and target (as logged) of these events, in time order."""
        return self.rule_changes_of([event_ids])[0]

    def rule_changes_of(self, event_ids: list[list[str]]) -> list[list[dict]]:
        """``rule_changes`` of each list of event ids, in one pass over the events for all of them."""
        return self._events_of(event_ids, """SELECT w.finding, e."@timestamp" AS ts, e."event.action" AS action,
                                                    e.params, e."user.target.name" AS target""")

    def message_log_spans(self, datasets: tuple[str, ...]) -> list[tuple]:
        """Per file of these message-log datasets: first and last record, and the query's own start and end
        where the log states them (labels ``query_start``/``query_end``)."""
        return self._rows(
            "message_log_spans",
            """SELECT min("@timestamp"), max("@timestamp"), min(labels['query_start']), max(labels['query_end'])
               FROM events WHERE "event.dataset" IN (SELECT unnest(CAST(? AS VARCHAR[])))
               GROUP BY "log.file.path" ORDER BY 1, 2, 3, 4""", [list(datasets)])

    def messages_between(self, datasets: tuple[str, ...], start: datetime, end: datetime) -> list[dict]:
        """Message trace / tracking records of these datasets between start and end, in time order."""
        return self._asked_dicts(
            "messages_between",
            """SELECT "event.id" AS id, "@timestamp" AS ts, "email.from.address" AS sender,
                      "email.to.address" AS recipients, "email.subject" AS subject,
                      "email.message_id" AS message_id, "email.delivery_status" AS status,
                      "rule.name" AS rule, labels['transport_rule_action'] AS rule_actions,
                      labels['transport_rule_mode'] AS rule_mode, labels['transport_rule_recipients'] AS added,
                      coalesce(labels['recipients_all'], "email.to.address") AS all_recipients
               FROM events WHERE "event.dataset" IN (SELECT unnest(CAST(? AS VARCHAR[])))
                 AND "@timestamp" BETWEEN (SELECT start FROM messages_span) AND (SELECT "end" FROM messages_span)
               ORDER BY ts, id""", [list(datasets)],
            {"messages_span": pa.table({"start": pa.array([start], pa.timestamp("us")),
                                        "end": pa.array([end], pa.timestamp("us"))})})

    def logged_events(self, event_ids: list[str], columns: tuple[str, ...]) -> list[dict]:
        """``columns`` of these events as their records log them (names not resolved), in time order."""
        return self.logged_events_of([event_ids], columns)[0]

    def logged_events_of(self, event_ids: list[list[str]], columns: tuple[str, ...]) -> list[list[dict]]:
        """``logged_events`` of each list of event ids, in one pass over the events for all of them."""
        return self._events_of(event_ids, "SELECT w.finding, " + ", ".join(f"e.{sql_identifier(c)}" for c in columns))

    def _events_of(self, event_ids: list[list[str]], select: str) -> list[list[dict]]:
        """Rows of ``select`` (this module's SQL over ``w.finding`` and the events ``e``) for each list of event
        ids, each event once a list, in time order (then by id)."""
        found: list[list[dict]] = [[] for _ in event_ids]
        wanted = pa.table({"finding": pa.array([i for i, ids in enumerate(event_ids) for _ in ids], pa.int64()),
                           "event_id": pa.array([e for ids in event_ids for e in ids], pa.string())})
        if not wanted.num_rows:
            return found
        names, rows = self.ask(
            "events_of", f"""{select} FROM (SELECT DISTINCT finding, event_id FROM finding_events_wanted) w
                             JOIN events e ON e."event.id" = w.event_id
                             ORDER BY w.finding, e."@timestamp", e."event.id" """,
            inputs={"finding_events_wanted": wanted})
        for finding, *values in rows:
            found[finding].append(dict(zip(names[1:], values)))
        return found

    def rule_matches(self, event_ids: list[str], rule_ids: list[str]) -> list[tuple[str, str]]:
        """(rule id, event id) of every match of these rules among these events."""
        return [(rule, event) for rule, event in self.db.execute(
            """SELECT rule_id, event_id FROM matches WHERE event_id IN (SELECT unnest(CAST(? AS VARCHAR[])))
               AND rule_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY 1, 2""",
            [list(event_ids), list(rule_ids)]).fetchall()]

    def _dict_batches(self, sql: str, params: list, batch: int = 10_000) -> Iterator[dict]:
        """The rows of ``sql`` as dicts, fetched ``batch`` at a time."""
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(batch):
            yield from (dict(zip(names, row)) for row in rows)

    def _dicts(self, sql: str, params: list) -> list[dict]:
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # ------------------------------------------------------------ people

    def aliases_of(self, actor: str) -> list[str]:
        """Every logged name resolved to ``actor``."""
        return [alias for (alias,) in self.db.execute(
            "SELECT alias FROM identities WHERE actor = ? ORDER BY alias", [actor]).fetchall() if alias]

    def identity_notes(self) -> dict[str, str]:
        """Logged name -> how it was resolved to another actor (configured or inferred), or why it was left as
        logged although the evidence names it otherwise (a uid paired with two names on one host)."""
        return dict(self.db.execute(
            "SELECT alias, note FROM identities WHERE note <> '' AND (basis = 'as logged' OR alias <> actor)"
        ).fetchall())

    def person_events(self, person: str, start: datetime, end: datetime, condition: str, params: list,
                      columns: tuple[str, ...]) -> list[dict]:
        """``columns`` of the events by or on the resolved ``person`` between start and end that meet
        ``condition`` (SQL over the relation's columns and ``"request.person"``, the person asked about, written
        by the caller from its own constants; values are bound through ``params``), in time order."""
        return self.persons_events([(person, start, end)], condition, params, columns)[0]

    def persons_events(self, requests: list[tuple[str, datetime, datetime]], condition: str, params: list,
                       columns: tuple[str, ...]) -> list[list[dict]]:
        """``person_events`` of each (person, start, end), in one query for all of them."""
        found: list[list[dict]] = [[] for _ in requests]
        if not requests:
            return found
        person_requests = pa.table({
            "request": pa.array(range(len(requests)), pa.int64()),
            "person": pa.array([r[0] for r in requests], pa.string()),
            "start": pa.array([r[1] for r in requests], pa.timestamp("us")),
            "end": pa.array([r[2] for r in requests], pa.timestamp("us"))})
        cols = ", ".join(sql_identifier(c) for c in columns)
        # an event by the person, or on the person by someone else: two equality joins, each event once
        rows = self._rows(
            "persons_events",
            f"""SELECT "request.index", {cols} FROM (
                        SELECT w.request AS "request.index", w.person AS "request.person", e.*
                        FROM person_requests w JOIN {PEOPLE_RELATION} e ON e."user.name" = w.person
                         AND e."@timestamp" BETWEEN w.start AND w."end"
                        UNION ALL
                        SELECT w.request, w.person, e.*
                        FROM person_requests w JOIN {PEOPLE_RELATION} e ON e."user.target.name" = w.person
                         AND e."user.name" IS DISTINCT FROM w.person AND e."@timestamp" BETWEEN w.start AND w."end")
                    WHERE ({condition})
                    ORDER BY "request.index", "@timestamp", "event.id" """, list(params),
            {"person_requests": person_requests})
        for request, *values in rows:
            found[request].append(dict(zip(columns, values)))
        return found

    def event_rows(self, finding_ids: pa.Table, columns: tuple[str, ...]) -> list[tuple]:
        """The distinct ``columns`` of the events of each finding (``finding_ids``: columns ``finding`` and
        ``event_id``), actors resolved, with the detection fields (scope, ``app.new``): (finding, *values) rows,
        each kept where its values first occur in time."""
        values = ", ".join(f"e.{sql_identifier(c)} AS {sql_identifier(c)}" for c in columns)
        names = ", ".join(sql_identifier(c) for c in columns)
        return self._rows(
            "event_rows",
            f"""WITH finding_rows AS (
                    SELECT w.finding, {values}, struct_pack(ts := e."@timestamp", id := e."event.id") AS seen
                    FROM finding_event_ids w JOIN {DETECTION_RELATION} e ON e."event.id" = w.event_id)
                SELECT finding, {names} FROM finding_rows
                GROUP BY finding, {names} ORDER BY finding, min(seen)""", inputs={"finding_event_ids": finding_ids})

    # ------------------------------------------------------------ the case timeline

    def keep_timeline(self, wanted: pa.Table, host_families: tuple[str, ...]) -> dict[str, int]:
        """Find every event of the people and hosts of ``wanted`` within their times and keep it, with the
        findings it belongs to, for ``timeline_texts`` and ``store_timeline``; return each finding's entries.
        The join is ``TIMELINE_JOIN_SQL``.

        ``wanted`` has columns ``finding``, ``person``, ``host``, ``start`` and
        ``end``: an event belongs to a row's finding when it falls in [start,
        end] and the resolved ``person`` is its actor or target, or (events of
        the ``host_families`` only, where a host is one machine) it was logged
        on ``host``. Only event ids and finding ids are kept (the events may be
        most of the case's)."""
        self.db.execute(f"CREATE OR REPLACE TEMP TABLE {TIMELINE_KEPT} (event_id VARCHAR, findings VARCHAR[])")
        if not wanted.num_rows:
            return {}
        self.db.register("timeline_wanted", wanted)
        try:
            self.db.execute(
                f"INSERT INTO {TIMELINE_KEPT} {TIMELINE_JOIN_SQL}", [list(host_families)])
        finally:
            self.db.unregister("timeline_wanted")
        return dict(self.db.execute(f"SELECT finding, count(*) FROM (SELECT unnest(findings) AS finding "
                                    f"FROM {TIMELINE_KEPT}) GROUP BY finding ORDER BY finding").fetchall())

    def timeline_texts(self, escalated: Sequence[str], batch: int = 10_000) -> Iterator[str]:
        """The JSON text of each timeline entry ``keep_timeline`` kept (``_timeline_entries_sql``), in time order,
        ``escalated`` the ids of the findings escalated. Consume them before asking the case anything else."""
        cursor = self.db.execute(f"SELECT entry FROM ({_timeline_entries_sql()}) ORDER BY position",
                                 [list(escalated)])
        while rows := cursor.fetchmany(batch):
            yield from (text for (text,) in rows)

    def store_timeline(self, escalated: Sequence[str]) -> None:
        """Replace the case's ``timeline_entries`` with the entries ``keep_timeline`` kept (in the caller's
        transaction), ``escalated`` the ids of the findings escalated."""
        self.db.execute("DELETE FROM timeline_entries")
        self.db.execute(f"INSERT INTO timeline_entries SELECT position, entry FROM ({_timeline_entries_sql()})",
                        [list(escalated)])

    def indicator_rows(self, finding_events: pa.Table) -> list[dict]:
        """What the indicators of compromise are drawn from, per event of each finding (``finding_events``:
        columns ``finding`` and ``event_id``) that holds any: time, address and its logged country, agent,
        application, rule name, recipients and the forwarding/redirect/copy parameters of rule cmdlets. An
        event with none of them (most of a host's log-cleared records) is not a row."""
        self.db.register("indicator_events", finding_events)
        try:
            forwards = " , ".join(f"e.params[{sql_string(name)}]" for name in FORWARDING_PARAMETERS)
            given = " OR ".join(f"coalesce(e.{sql_identifier(column)}, '') <> ''" for column in (
                "source.ip", "user_agent.original", "app.id", "rule.name", "email.to.address"))
            return self._dicts(
                f"""SELECT * EXCLUDE (given) FROM (
                        SELECT w.finding AS finding, e."event.id" AS event_id, e."@timestamp" AS ts,
                               e."source.ip" AS ip, e."source.geo.country_iso_code" AS country,
                               e."user_agent.original" AS user_agent, e."app.id" AS app_id,
                               e."rule.name" AS rule_name, e."email.to.address" AS recipients,
                               list_filter([{forwards}], lambda x: x IS NOT NULL) AS forwarded_to, {given} AS given
                        FROM indicator_events w JOIN events e ON e."event.id" = w.event_id)
                    WHERE given OR len(forwarded_to) > 0
                    ORDER BY ts, event_id, finding""", [])
        finally:
            self.db.unregister("indicator_events")

    # ------------------------------------------------------------ scopes and baselines

    def scope_coverage(self, scopes: list[Scope]) -> tuple[datetime | None, datetime | None]:
        """First and last time of these scopes' evidence."""
        if not scopes:
            return None, None
        where, params = _scope_condition(scopes, tenant="tenant", family="family")
        first, last = self._rows("scope_coverage", f"SELECT min(first_ts), max(last_ts) FROM scope_start WHERE {where}",
                                 params)[0]
        return first, last

    def actor_history(self, actor: str, scopes: list[Scope], since: datetime, before: datetime) -> list[HistoryRow]:
        """The actor's events in these scopes in [since, before), one row per distinct combination of action,
        UTC hour, address, country, application, agent, process, AS and target, with counts and first times."""
        return self.actor_histories([HistoryRequest(actor, tuple(scopes), since, before)])[0]

    def actor_histories(self, requests: list[HistoryRequest]) -> list[list[HistoryRow]]:
        """``actor_history`` of each request, in one pass over the people's events for all of them."""
        found: list[list[HistoryRow]] = [[] for _ in requests]
        wanted = _history_requests(requests)
        if not wanted.num_rows:
            return found
        rows = self._rows(
            "actor_histories",
            f"""SELECT w.request, e."event.action", hour(e."@timestamp"), e."source.ip",
                       e."source.geo.country_iso_code", e."app.id", e."user_agent.original", e."process.name",
                       e.labels['asn'], e."user.target.name", count(*), min(e."@timestamp")
                FROM history_requests w JOIN {PEOPLE_RELATION} e
                  ON e."user.name" = w.actor AND e."@timestamp" >= w.since AND e."@timestamp" < w.before
                 AND e.{sql_identifier(TENANT)} IS NOT DISTINCT FROM w.tenant
                 AND e.{sql_identifier(FAMILY)} IS NOT DISTINCT FROM w.family
                GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
                ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12""", inputs={"history_requests": wanted})
        for request, *row in rows:
            found[request].append(HistoryRow(*row))
        return found

    def app_first_seen(self, scopes: list[Scope]) -> dict[str, datetime]:
        """Application id (lower-cased) -> first time it appears in these scopes."""
        if not scopes:
            return {}
        where, params = _scope_condition(scopes, tenant="tenant", family="family")
        return dict(self._rows(
            "app_first_seen", f"SELECT lower(app_id), min(first_seen) FROM app_first_seen WHERE {where} GROUP BY 1 ORDER BY 1",
            params))

    # ------------------------------------------------------------ what the rules matched

    def matched_events(self, rule_ids: list[str], people: list[str]) -> list[MatchedEvent]:
        """Events matched by these rules, done by or on one of these resolved people, in time order."""
        if not rule_ids or not people:
            return []
        rows = self._rows(
            "matched_events",
            f"""SELECT DISTINCT e."event.id", e."@timestamp", e."event.action", e."user.name", e."user.target.name",
                       e."log.file.path", e."log.record", x.rule_id
                FROM matches x JOIN {PEOPLE_RELATION} e ON e."event.id" = x.event_id
                WHERE x.rule_id IN (SELECT unnest(CAST(? AS VARCHAR[])))
                  AND (e."user.name" IN (SELECT unnest(CAST(? AS VARCHAR[])))
                       OR e."user.target.name" IN (SELECT unnest(CAST(? AS VARCHAR[]))))
                ORDER BY 2, 1, 8""", [list(rule_ids), list(people), list(people)])
        return [MatchedEvent(*row) for row in rows]

    def matched_by_actor(self, actor: str, rule_ids: list[str], scopes: list[Scope], since: datetime,
                         before: datetime) -> dict[str, tuple[int, datetime]]:
        """Rule id -> (events, first time) the actor's events in these scopes matched in [since, before)."""
        return self.matched_by_actors([HistoryRequest(actor, tuple(scopes), since, before, tuple(rule_ids))])[0]

    def matched_by_actors(self, requests: list[HistoryRequest]) -> list[dict[str, tuple[int, datetime]]]:
        """``matched_by_actor`` of each request (its ``rule_ids``), in one query for all of them."""
        found: list[dict[str, tuple[int, datetime]]] = [{} for _ in requests]
        wanted = _history_requests(requests)
        rules = pa.table({"request": pa.array([i for i, r in enumerate(requests) for _ in r.rule_ids], pa.int64()),
                          "rule_id": pa.array([rule for r in requests for rule in r.rule_ids], pa.string())})
        if not wanted.num_rows or not rules.num_rows:
            return found
        rows = self._rows(
            "matched_by_actors",
            f"""SELECT w.request, x.rule_id, count(DISTINCT e."event.id"), min(e."@timestamp")
                FROM history_requests w
                JOIN history_rules r ON r.request = w.request
                JOIN {PEOPLE_RELATION} e
                  ON e."user.name" = w.actor AND e."@timestamp" >= w.since AND e."@timestamp" < w.before
                 AND e.{sql_identifier(TENANT)} IS NOT DISTINCT FROM w.tenant
                 AND e.{sql_identifier(FAMILY)} IS NOT DISTINCT FROM w.family
                JOIN matches x ON x.event_id = e."event.id" AND x.rule_id = r.rule_id
                GROUP BY 1, 2 ORDER BY 1, 2""", inputs={"history_requests": wanted, "history_rules": rules})
        for request, rule_id, count, first in rows:
            found[request][rule_id] = (count, first)
        return found

    # ------------------------------------------------------------ correlations

    def record_correlation_steps(self, rule_id: str, steps: tuple[str, ...]) -> None:
        """Note which rules a correlation that ran correlates, in their order."""
        self.db.execute("DELETE FROM correlation_steps WHERE rule_id = ?", [rule_id])
        self.db.executemany("INSERT INTO correlation_steps VALUES (?, ?, ?)",
                            [(rule_id, position, step) for position, step in enumerate(steps)])

    def correlation_steps(self, rule_ids: list[str]) -> dict[str, tuple[str, ...]]:
        """Correlation rule id -> the rules it correlates, in order, for those of ``rule_ids`` that ran."""
        steps: dict[str, list[str]] = {}
        for rule_id, step in self.db.execute(
                """SELECT rule_id, step_rule_id FROM correlation_steps WHERE rule_id IN (SELECT unnest(CAST(? AS VARCHAR[])))
                   ORDER BY rule_id, position""", [list(rule_ids)]).fetchall():
            steps.setdefault(rule_id, []).append(step)
        return {rule_id: tuple(found) for rule_id, found in steps.items()}

    def correlation_instances(self, rule_ids: list[str]) -> dict[tuple[str, str], list[MatchedEvent]]:
        """(correlation rule id, instance) -> its events, each with the correlated rule it matched as ``rule_id``,
        in time order."""
        recorded = self.db.sql(
            "SELECT rule_id, instance, event_id, step_rule_id FROM correlation_matches "
            "WHERE rule_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", params=[list(rule_ids)]).to_arrow_table()
        rows = self._rows(
            "correlation_instances",
            f"""SELECT c.rule_id, c.instance, e."event.id", e."@timestamp", e."event.action", e."user.name",
                       e."user.target.name", e."log.file.path", e."log.record", c.step_rule_id
                FROM correlation_instances_wanted c JOIN {RESOLVED_RELATION} e ON e."event.id" = c.event_id
                ORDER BY c.rule_id, c.instance, e."@timestamp", e."event.id", c.step_rule_id""",
            inputs={"correlation_instances_wanted": recorded})
        instances: dict[tuple[str, str], list[MatchedEvent]] = {}
        for rule_id, instance, *event in rows:
            instances.setdefault((rule_id, instance), []).append(MatchedEvent(*event))
        return instances


def _timeline_message_sql() -> str:
    """SQL for an entry's ``message`` (over the resolved event ``e``): "<action> by <actor>", then "on <target>"
    (a target other than the actor), "from <address>", "at <host>", "rule <name>", ": <subject>", each part
    only when its value is not empty."""
    def given(column: str) -> str:
        return f"coalesce(e.{sql_identifier(column)}, '') <> ''"

    parts = [f"""CASE WHEN {given('event.action')} THEN e."event.action" ELSE 'event' END || ' by ' ||
                 CASE WHEN {given('user.name')} THEN e."user.name" ELSE 'unknown actor' END""",
             f"""CASE WHEN {given('user.target.name')} AND e."user.target.name" IS DISTINCT FROM e."user.name"
                      THEN 'on ' || e."user.target.name" END"""]
    parts += [f"CASE WHEN {given(column)} THEN {sql_string(word + ' ')} || e.{sql_identifier(column)} END"
              for word, column in (("from", "source.ip"), ("at", "host.name"), ("rule", "rule.name"))]
    return (f"concat_ws(' ', {', '.join(parts)}) || "
            f"CASE WHEN {given('email.subject')} THEN ': ' || e.\"email.subject\" ELSE '' END")


# orjson writes the control characters without a short escape as \u00xx with lower-case hex digits, DuckDB's JSON
# with upper-case: these are the escapes where the two differ.
UPPER_HEX_ESCAPES = tuple(f"\\u{code:04X}" for code in range(0x20) if f"{code:04X}" != f"{code:04x}")


def orjson_escapes_sql(column: str) -> str:
    """SQL turning the JSON text ``column`` (DuckDB's ``to_json``) into the bytes orjson writes for the same value.

    The two differ only in the hex digits' case of ``UPPER_HEX_ESCAPES``. A
    raw control character never appears in JSON text, so each escaped
    backslash is first set aside as one (chr(1)): every backslash left
    starts an escape."""
    fixed = f"replace({column}, '\\\\', chr(1))"
    for escape in UPPER_HEX_ESCAPES:
        fixed = f"replace({fixed}, {sql_string(escape)}, {sql_string(escape.lower())})"
    return (f"CASE WHEN regexp_matches({column}, '\\\\u00[01][A-F]') "
            f"THEN replace({fixed}, chr(1), '\\\\') ELSE {column} END")


def _timeline_entries_sql() -> str:
    """SQL for the kept timeline's entries (``TIMELINE_KEPT``): ``position`` (from 0, in time order, then by
    event id) and ``entry``, its JSON text as orjson writes it (the keys of ``TIMELINE_FIELDS``, in order);
    one parameter, the ids of the escalated findings.

    An event kept in several copies (the same id from two files) is one entry."""
    def column(name: str) -> str:
        return f"e.{sql_identifier(name)}"

    values = {
        "datetime": """CASE WHEN strftime(e."@timestamp", '%f') = '000000'
                            THEN strftime(e."@timestamp", '%Y-%m-%dT%H:%M:%SZ')
                            ELSE strftime(e."@timestamp", '%Y-%m-%dT%H:%M:%S.%fZ') END""",
        "timestamp_desc": sql_string(TIMELINE_TIMESTAMP_DESC),
        "message": _timeline_message_sql(),
        "timestamp": 'epoch_us(e."@timestamp")',
        "finding_ids": "k.findings",
        "escalated": "list_has_any(k.findings, CAST(? AS VARCHAR[]))",
        "event_id": column("event.id"), "action": column("event.action"), "outcome": column("event.outcome"),
        "actor": column("user.name"), "actor_logged": column("user.name_logged"),
        "target": column("user.target.name"), "source_ip": column("source.ip"),
        "country": column("source.geo.country_iso_code"), "host": column("host.name"), "app_id": column("app.id"),
        "user_agent": column("user_agent.original"), "subject": column("email.subject"),
        "rule_name": column("rule.name"), "command_line": column("process.command_line"),
        "dataset": column("event.dataset"), "source_family": column(FAMILY), "source_file": column("log.file.path"),
        "source_sha256": column("log.file.sha256"),
        "locator": """CASE WHEN e."log.record" IS NULL THEN 'unknown'
                           ELSE coalesce(i.locator_unit, 'line') || ' ' || CAST(e."log.record" AS VARCHAR) END""",
    }
    fields = ", ".join(f"{sql_identifier(name)} := {values[name]}" for name in TIMELINE_FIELDS)
    return f"""SELECT row_number() OVER (ORDER BY ts, id) - 1 AS position, {orjson_escapes_sql('json')} AS entry
               FROM (SELECT DISTINCT ON (e."event.id") e."@timestamp" AS ts, e."event.id" AS id,
                            CAST(to_json(struct_pack({fields})) AS VARCHAR) AS json
                     FROM {RESOLVED_RELATION} e JOIN {TIMELINE_KEPT} k ON k.event_id = e."event.id"
                     LEFT JOIN (SELECT DISTINCT path, sha256, locator_unit FROM inputs) i
                            ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256")"""


def _history_requests(requests: list[HistoryRequest]) -> pa.Table:
    """One row per request and scope: request (its index), actor, tenant, family, since, before."""
    rows = [(index, r.actor, scope.tenant, scope.family, r.since, r.before)
            for index, r in enumerate(requests) for scope in r.scopes]
    names = ("request", "actor", "tenant", "family", "since", "before")
    types = (pa.int64(), pa.string(), pa.string(), pa.string(), pa.timestamp("us"), pa.timestamp("us"))
    return pa.table({name: pa.array([row[i] for row in rows], kind) for i, (name, kind) in enumerate(zip(names, types))})


def _scope_condition(scopes: list[Scope], tenant: str = TENANT, family: str = FAMILY) -> tuple[str, list]:
    """SQL (and its parameters) true for a row of one of ``scopes``; ``tenant``/``family`` name the columns."""
    clauses = [f"({sql_identifier(tenant)} IS NOT DISTINCT FROM ? AND {sql_identifier(family)} IS NOT DISTINCT FROM ?)"
               for _ in scopes]
    params = [value for scope in scopes for value in (scope.tenant, scope.family)]
    return " OR ".join(clauses), params
