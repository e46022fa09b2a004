"""What every triage question may read: the case's resolved events, what the rules matched, the configuration.

Actors are compared after identity resolution, and baselines are scoped to the
tenant and source family of the finding's events: every query goes through the
case store's resolved-events relation (``CaseStore.resolved``,
``mailhunt.case_queries``), never through SQL of its own, and is answered by
the engine that ran the rules (``TriageContext.build``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from mailhunt.case_queries import EventQuestions, MatchedEvent, Scope
from mailhunt.config import Config
from mailhunt.events import iso_z
from mailhunt.findings import Finding, event_column
from mailhunt.store import CaseStore
from mailhunt.triage.baselines import ActorBaseline, build_actor_baselines

DETAIL_COLUMNS = ("event.id", "@timestamp", "event.action", "event.outcome", "event.code", "event.dataset",
                  "user.name", "user.target.name", "source.ip", "source.geo.country_iso_code", "host.name",
                  "process.name", "process.executable", "process.command_line", "process.parent.name",
                  "process.parent.executable", "process.parent.command_line", "powershell.file.script_block_text", "app.id",
                  "user_agent.original", "parameters", "email.subject", "email.from.address", "labels",
                  "log.file.path", "log.record")

# Events of findings read in one pass for ``logged_rows``, at most.
LOGGED_CHUNK_EVENTS = 100_000

# The columns of a detail row: every detail column but the event's own identity, and the event's scope and
# application baseline (the resolved relation's detection fields).
VALUE_COLUMNS = tuple(c for c in DETAIL_COLUMNS if c not in ("event.id", "@timestamp", "log.file.path", "log.record")) + (
    "scope.tenant", "scope.family", "app.new", "app.first_seen")


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
    _instances: dict = field(default_factory=dict, repr=False)
    _person_events: dict = field(default_factory=dict, repr=False)
    _aliases: dict = field(default_factory=dict, repr=False)
    _app_first_seen: dict = field(default_factory=dict, repr=False)
    _coverage: dict = field(default_factory=dict, repr=False)
    _steps: dict = field(default_factory=dict, repr=False)
    _matched: dict = field(default_factory=dict, repr=False)
    _people: set = field(default_factory=set, repr=False)
    _findings: list = field(default_factory=list, repr=False)
    _rule_changes: dict = field(default_factory=dict, repr=False)
    _logged: dict = field(default_factory=dict, repr=False)
    _message_spans: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, store: CaseStore, config: Config, indicator_of_rule: dict[str, str],
              engine: EventQuestions | None = None) -> TriageContext:
        """The context of one triage; its questions over the events are asked of ``engine`` (the engine that ran
        the rules), or of the case database when None."""
        store.resolved.ask_with(engine)
        start, end, cmdlets = store.resolved.case_span()
        store.resolved.ensure(config.domains)
        return cls(store, config, indicator_of_rule, start, end, cmdlets)

    def prepare(self, findings: list[Finding]) -> None:
        """Keep once the events of every actor and target of the findings (the store's ``restrict_to_people``),
        and load their details: per-actor questions then read those alone instead of the whole case."""
        names = sorted({n for f in findings for n in (f.actor, *f.targets) if n})
        self._people |= set(names)
        self._findings = list(findings)
        self.store.resolved.restrict_to_people(names, DETAIL_COLUMNS)
        self._details.update(self._load_details(findings))
        self.prepare_baselines([(f, self.scopes(f)) for f in findings])

    def names_of(self, actor: str | None) -> set[str]:
        """Every name the actor goes by in the case (lower-cased): the actor and each logged alias resolved to it.

        Configured admins, automation accounts and change-window actors are
        compared with these, so ``CORP\\exadmin`` in mailhunt.toml covers the
        same person logged as ``exadmin@corp.com``."""
        if not actor:
            return set()
        if actor not in self._aliases:
            self._aliases[actor] = {actor.lower()} | {alias.lower() for alias in self.store.resolved.aliases_of(actor)}
        return set(self._aliases[actor])

    def scopes(self, finding: Finding) -> list[Scope]:
        """The tenants and source families of the finding's events: the evidence that could have seen it."""
        return self.scopes_of_rows(self.details(finding))

    def rules_of_indicator(self, indicator: str) -> list[str]:
        return sorted(rule_id for rule_id, ind in self.indicator_of_rule.items() if ind == indicator)

    def baseline(self, finding: Finding, scopes: list[Scope] | None = None) -> ActorBaseline:
        """The actor's history before the finding within the look-back, in the finding's own scopes or in
        ``scopes`` (e.g. those of the actor's sign-ins), built once per finding and scope."""
        scopes = self.scopes(finding) if scopes is None else scopes
        self.prepare_baselines([(finding, scopes)])
        return self._baselines[self._baseline_key(finding, scopes)]

    def prepare_baselines(self, wanted: list[tuple[Finding, list[Scope]]]) -> None:
        """Build the baselines of these (finding, scopes) not built yet, all in one pass over the events."""
        missing: dict[tuple, tuple] = {}
        for finding, scopes in wanted:
            key = self._baseline_key(finding, scopes)
            if key not in self._baselines and key not in missing:
                rule_ids = tuple(sorted({r.id for r in finding.rules} | set(self.rules_of_indicator(finding.indicator))))
                missing[key] = (finding.actor, finding.first_seen, scopes, rule_ids)
        if missing:
            built = build_actor_baselines(self.store.resolved, list(missing.values()), self.config.baseline_days)
            self._baselines.update(zip(missing, built, strict=True))

    @staticmethod
    def _baseline_key(finding: Finding, scopes: list[Scope]) -> tuple:
        return finding.actor, finding.first_seen, tuple(scopes), finding.indicator

    @staticmethod
    def scopes_of_rows(rows: list[dict]) -> list[Scope]:
        """The scopes of rows that carry ``scope.tenant`` and ``scope.family`` (details, ``actor_events``)."""
        found = {(r["scope.tenant"], r["scope.family"]) for r in rows}
        return [Scope(tenant, family) for tenant, family in sorted(found, key=lambda s: (s[0] or "", s[1] or ""))]

    def _load_details(self, findings: list[Finding]) -> dict[int, tuple[Finding, list[dict]]]:
        """The distinct detail rows of each finding, actors resolved, by ``id(finding)`` (one query).

        Rows that differ only in their event's identity (id, time, record)
        are one row, kept where its values first occur in time order: the
        answers only read the values, so a finding of 100,000 identical
        log-cleared records costs what a finding of a few does."""
        ids = [event_column(f.events, "event_id") for f in findings]
        rows = self.store.resolved.event_rows(pa.table({
            "finding": pa.chunked_array([pa.repeat(pa.scalar(index, pa.int64()), len(column))
                                         for index, column in enumerate(ids)], pa.int64()),
            "event_id": pa.chunked_array(ids, pa.string())}), VALUE_COLUMNS)
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

    def rule_changes(self, finding: Finding, indicators: Collection[str]) -> list[dict]:
        """The finding's events as rule changes (``ResolvedEvents.rule_changes``), read at the first call for
        every prepared finding of these indicators in one pass over the events."""
        cached = self._rule_changes.get(id(finding))
        if cached is None or cached[0] is not finding:
            among = [f for f in self._findings if f.indicator in indicators and f is not finding
                     and id(f) not in self._rule_changes]
            among.insert(0, finding)
            for f, rows in zip(among, self.store.resolved.rule_changes_of([list(f.event_ids) for f in among]),
                               strict=True):
                self._rule_changes[id(f)] = (f, rows)
        return self._rule_changes[id(finding)][1]

    def logged_rows(self, finding: Finding, limit: int, columns: tuple[str, ...]) -> list[dict]:
        """``columns`` of the finding's first ``limit`` events as logged, in time order. Read with those of the
        prepared findings after it, up to ``LOGGED_CHUNK_EVENTS`` events in one pass over the events; only the
        last such chunk is kept."""
        cached = self._logged.get(id(finding))
        if cached is None or cached[0] is not finding:
            start = next((i for i, f in enumerate(self._findings) if f is finding), None)
            following = self._findings[start + 1:] if start is not None else []
            chunk: list[tuple[Finding, list[str]]] = []
            total = 0
            for f in [finding, *following]:
                ids = f.first_event_ids(limit)
                if chunk and total + len(ids) > LOGGED_CHUNK_EVENTS:
                    break
                chunk.append((f, ids))
                total += len(ids)
            rows = self.store.resolved.logged_events_of([ids for _, ids in chunk], columns)
            self._logged = {id(f): (f, r) for (f, _), r in zip(chunk, rows, strict=True)}
        return self._logged[id(finding)][1]

    def message_log_spans(self, datasets: tuple[str, ...]) -> list[tuple]:
        """``ResolvedEvents.message_log_spans``, read once per set of datasets."""
        if datasets not in self._message_spans:
            self._message_spans[datasets] = self.store.resolved.message_log_spans(datasets)
        return list(self._message_spans[datasets])

    def records_naming(self, finding: Finding, text: str) -> int:
        """How many of the finding's raw records contain ``text`` (case-insensitive)."""
        return self.store.resolved.records_containing(list(finding.event_ids), text)

    def app_first_seen(self, finding: Finding) -> dict[str, datetime]:
        """Application id (lower-cased) -> first time it appears in the tenant and source family of the finding."""
        scopes = tuple(self.scopes(finding))
        if scopes not in self._app_first_seen:
            self._app_first_seen[scopes] = self.store.resolved.app_first_seen(list(scopes))
        return dict(self._app_first_seen[scopes])

    def new_apps(self, finding: Finding) -> dict[str, datetime]:
        """The finding's application ids that are new to their tenant (the ``app.new`` definition), with
        when each was first seen there."""
        new: dict[str, datetime] = {}
        for row in self.details(finding):
            if row["app.new"] and row.get("app.id"):
                app = row["app.id"].lower()
                new[app] = min(new.get(app, row["app.first_seen"]), row["app.first_seen"])
        return new

    def actor_events(self, actor: str, start: datetime, end: datetime, where: str, params: list) -> list[dict]:
        """Events of the resolved actor (as actor or as target) between start and end matching ``where`` (which
        may name the actor asked about as ``"request.person"``), with their scope."""
        self.prepare_actor_events([(actor, start, end)], where, params)
        return self._person_events[(where, repr(params))][(actor, start, end)]

    def prepare_actor_events(self, requests: list[tuple[str, datetime, datetime]], where: str, params: list) -> None:
        """Read ``actor_events`` of these (actor, start, end) for one ``where``, in one query for all of them."""
        asked = self._person_events.setdefault((where, repr(params)), {})
        missing = list(dict.fromkeys(r for r in requests if r not in asked))
        if not missing:
            return
        found = self.store.resolved.persons_events(missing, where, params,
                                                   (*DETAIL_COLUMNS, "scope.tenant", "scope.family"))
        for request, rows in zip(missing, found, strict=True):
            for row in rows:
                row["labels"] = dict(row["labels"]) if row["labels"] else {}
            asked[request] = rows

    def coverage(self, finding: Finding | None = None) -> str:
        """What the evidence covers: of the finding's tenant and source families, or of the whole case."""
        if finding is not None:
            scopes = self.scopes(finding)
            first, last = self.scope_coverage(scopes)
            if first is not None and last is not None:
                days = (last - first).total_seconds() / 86400
                described = "; ".join(s.describe() for s in scopes)
                return f"{described} covers {iso_z(first)} .. {iso_z(last)} ({days:.1f} days)"
        if self.evidence_start is None or self.evidence_end is None:  # both or neither: min and max of one column
            return "the case holds no events"
        days = (self.evidence_end - self.evidence_start).total_seconds() / 86400
        return f"evidence covers {iso_z(self.evidence_start)} .. {iso_z(self.evidence_end)} ({days:.1f} days)"

    def scope_coverage(self, scopes: list[Scope]) -> tuple[datetime | None, datetime | None]:
        """First and last time of these scopes' evidence (read once per set of scopes)."""
        key = tuple(scopes)
        if key not in self._coverage:
            self._coverage[key] = self.store.resolved.scope_coverage(scopes)
        return self._coverage[key]

    def correlation_steps(self, rule_ids: list[str]) -> dict[str, tuple[str, ...]]:
        """Correlation rule id -> the rules it correlates, for those of ``rule_ids`` that ran (read once per set)."""
        key = tuple(rule_ids)
        if key not in self._steps:
            self._steps[key] = self.store.resolved.correlation_steps(rule_ids)
        return dict(self._steps[key])

    def matched_events(self, rule_ids: list[str], people: list[str]) -> list[MatchedEvent]:
        """Events matched by these rules, done by or on one of these resolved people, in time order.

        The events of every person of the findings (``prepare``) are read once per set of rules."""
        key = tuple(rule_ids)
        if key not in self._matched or not set(people) <= self._people:
            self._people |= set(people)
            self._matched[key] = self.store.resolved.matched_events(rule_ids, sorted(self._people))
        wanted = set(people)
        return [e for e in self._matched[key] if e.actor in wanted or e.target in wanted]

    def correlation_instances(self, rule_ids: tuple[str, ...]) -> dict[tuple[str, str], list[MatchedEvent]]:
        """The instances these correlations recorded, with their events (read once per set of rules)."""
        if rule_ids not in self._instances:
            self._instances[rule_ids] = self.store.resolved.correlation_instances(list(rule_ids))
        return self._instances[rule_ids]


def describe(event: dict) -> str:
    return f"{event['action']} at {iso_z(event['ts'])} ({event['path']}:{event['record']})"
