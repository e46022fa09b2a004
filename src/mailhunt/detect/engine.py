"""Run the rule set over a case: single-event rules first, then correlations.

Every rule's matched events are written to the ``matches`` table, so that a
correlation can refer to a rule or to another correlation alike. A rule that
cannot run on mailhunt's events is reported with its reason, never dropped
silently.

Rules may come from strangers, so one rule can only fail itself: a rule that
does not compile, whose SQL fails ``mailhunt.detect.sqlcheck``, or whose SQL
fails in DuckDB is listed in ``DetectionRun.skipped`` with the reason, and
every other rule runs and keeps its matches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pyarrow as pa
from sigma.correlations import SigmaCorrelationRule, SigmaRuleReference
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from mailhunt.case_queries import (
    DETECTION_RELATION,
    ask_case_database,
    keep_in_case_database,
)
from mailhunt.detect.backend import CONDITION_COLUMNS, EventSQLBackend
from mailhunt.detect.correlation import CorrelationPlan, correlation_sql
from mailhunt.detect.identities import build_identity_table
from mailhunt.detect.pipeline import build_pipeline, datasets_for
from mailhunt.detect.rules import LoadedRule
from mailhunt.detect.sqlcheck import UnsafeSQL, check_condition, check_query
from mailhunt.sql_text import sql_list
from mailhunt.store import CaseStore


@dataclass(frozen=True)
class DetectionSettings:
    exclude_rules: frozenset[str] = frozenset()
    include_system_accounts: bool = False
    thresholds: dict[str, int] = field(default_factory=dict)
    timespans: dict[str, int] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)
    org_domains: tuple[str, ...] = ()


@dataclass
class Detection:
    """One occurrence of one rule: a single matched event, or one correlation instance."""

    rule: LoadedRule
    event_ids: list[str]


@dataclass
class DetectionRun:
    detections: list[Detection]
    skipped: dict[str, str]
    matched: dict[str, int]


MAX_REASON = 300


def failure_reason(exc: BaseException) -> str:
    """Why a rule cannot run, in one line: pySigma's own words, or what failed and its first line."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, UnsafeSQL):
        message = f"its SQL failed the safety check: {message}"
    elif isinstance(exc, duckdb.Error):
        message = f"its SQL failed in DuckDB: {message}"
    elif isinstance(exc, EngineError):
        message = f"its SQL failed in {exc.engine}: {message}"
    elif not isinstance(exc, SigmaError):
        message = f"cannot be compiled ({type(exc).__name__}: {message})"
    return message if len(message) <= MAX_REASON else message[:MAX_REASON - 3] + "..."


def rule_condition_sql(rule: LoadedRule, backend: EventSQLBackend) -> str:
    """The SQL condition of a single-event rule; raises SigmaError when it cannot run on our events."""
    if not isinstance(rule.rule, SigmaRule):
        raise SigmaError("a correlation has no single-event condition")
    if not datasets_for(rule.rule.logsource):
        ls = rule.rule.logsource
        described = ", ".join(f"{k}={v}" for k, v in (("product", ls.product), ("service", ls.service),
                                                        ("category", ls.category)) if v)
        raise SigmaError(f"no mailhunt reader produces logsource {described or '(empty)'}")
    working_copy = copy.deepcopy(rule.rule)
    backend.convert_rule(working_copy)
    queries = working_copy.get_conversion_result()
    if len(queries) != 1:
        raise SigmaError(f"rule converts to {len(queries)} queries, expected one")
    check_condition(queries[0], CONDITION_COLUMNS)
    return queries[0]


def correlated_rules(rule: LoadedRule) -> list[SigmaRuleReference]:
    """The rules a correlation refers to; none for a single-event rule or a correlation without ``rules:``."""
    return (rule.rule.rules or []) if isinstance(rule.rule, SigmaCorrelationRule) else []


def correlation_plan(rule: LoadedRule, ids_by_object: dict[int, str], settings: DetectionSettings) -> CorrelationPlan:
    corr = rule.rule
    if not isinstance(corr, SigmaCorrelationRule):
        raise SigmaError("a single-event rule has no correlation plan")
    rule_ids = [ids_by_object[id(ref.rule)] for ref in correlated_rules(rule)]
    attrs = corr.custom_attributes
    timespan_name, threshold_name = attrs.get("timespan_setting"), attrs.get("threshold_setting")
    timespan = (corr.timespan.seconds if timespan_name is None
                else settings.timespans.get(timespan_name, corr.timespan.seconds))
    threshold = None if threshold_name is None else settings.thresholds.get(threshold_name)
    return CorrelationPlan(corr, tuple(rule_ids), timespan, threshold)


def _skip_reason(skipped: dict[str, str], rule_id: str | None) -> str:
    return skipped.get(rule_id, "not loaded") if rule_id is not None else "not loaded"


@dataclass
class CompiledRules:
    """Rules turned into SQL once, in the order they must run.

    ``references`` names, for each correlation, the rules whose matches it reads."""

    single: list[tuple[LoadedRule, str]]
    correlations: list[tuple[LoadedRule, str]]
    skipped: dict[str, str]
    settings: DetectionSettings = field(default_factory=DetectionSettings)
    references: dict[str, tuple[str, ...]] = field(default_factory=dict)


def compile_rules(rules: list[LoadedRule], settings: DetectionSettings | None = None,
                  on_rule: Callable[[], None] = lambda: None) -> CompiledRules:
    """Each rule as SQL (``on_rule`` called once per rule, for progress)."""
    settings = settings or DetectionSettings()
    # pySigma's Backend.__new__ types **kwargs as dict values; __init__ takes a ProcessingPipeline here.
    backend = EventSQLBackend(processing_pipeline=build_pipeline(  # type: ignore[arg-type]
        settings.include_system_accounts))
    ids_by_object = {id(r.rule): r.id for r in rules}
    skipped: dict[str, str] = {}
    single: list[tuple[LoadedRule, str]] = []
    for rule in rules:
        if rule.id in settings.exclude_rules:
            skipped[rule.id] = "excluded by tuning.exclude_rules"
        elif not rule.is_correlation:
            try:
                single.append((rule, rule_condition_sql(rule, backend)))
            except Exception as exc:  # noqa: BLE001 - a stranger's rule can make pySigma raise anything; it fails alone
                skipped[rule.id] = failure_reason(exc)
        if rule.id in settings.exclude_rules or not rule.is_correlation:
            on_rule()
    ready_ids = {r.id for r, _ in single}
    correlations: list[tuple[LoadedRule, str]] = []
    references: dict[str, tuple[str, ...]] = {}
    pending = [r for r in rules if r.is_correlation and r.id not in skipped]
    for rule in [r for r in pending if not correlated_rules(r)]:
        skipped[rule.id] = "a correlation must list the rules it correlates (rules:)"
        pending.remove(rule)
        on_rule()
    while pending:
        progressed = False
        for rule in list(pending):
            references_of_rule = correlated_rules(rule)
            refs = [ids_by_object.get(id(getattr(ref, "rule", None))) for ref in references_of_rule]
            unusable = _unusable_references(
                [(ref.reference, rid) for ref, rid in zip(references_of_rule, refs, strict=True)], skipped)
            if unusable:
                skipped[rule.id] = unusable
            elif all(rid in ready_ids for rid in refs):
                try:
                    plan = correlation_plan(rule, ids_by_object, settings)
                    sql = correlation_sql(plan)
                    check_query(sql)
                except Exception as exc:  # noqa: BLE001 - as for single rules: this correlation fails alone
                    skipped[rule.id] = failure_reason(exc)
                else:
                    correlations.append((rule, sql))
                    references[rule.id] = plan.rule_ids
                    ready_ids.add(rule.id)
            else:
                continue
            pending.remove(rule)
            on_rule()
            progressed = True
        if not progressed:
            for rule in pending:
                skipped[rule.id] = "correlation references form a cycle"
                on_rule()
            break
    return CompiledRules(single, correlations, skipped, settings, references)


class EngineError(Exception):
    """A statement failed in an engine other than the case database; ``engine`` names it."""

    def __init__(self, engine: str, message: str):
        self.engine = engine
        super().__init__(message)


class RuleEngine(Protocol):
    """Where the detection SQL runs: the case database itself (``DuckDBRules``) or another engine over the
    same events (``mailhunt.spark.SparkRules``).

    Every statement is written once, in DuckDB's SQL (``mailhunt.detect.backend``,
    ``correlation``, ``case_queries.relation_plan``); an engine that speaks
    another dialect transpiles it. Whatever an engine computes comes back into
    the case store (``matches``, ``correlation_matches``, ``identities``), so
    grouping and the reports read the same tables whichever engine ran the
    rules. Triage asks its questions over the events of the same engine
    (``ask``, ``keep``: a ``case_queries.EventQuestions``, given to
    ``TriageContext.build``)."""

    name: str

    def rows(self, sql: str) -> list[tuple]:
        """The rows of a read-only query over ``events``."""
        ...

    def build_relations(self, org_domains: tuple[str, ...]) -> None:
        """(Re)build the resolved-events relations from the events and the case's ``identities``."""
        ...

    def insert_matches(self, sql: str, rule_index: pa.Table) -> None:
        """Add the (rule_id, event_id) rows of ``sql`` (which joins ``rule_index``) to ``matches``; fails whole."""
        ...

    def stage_correlation(self, sql: str) -> None:
        """Leave the (instance, event_id, step) rows of a correlation's ``sql`` in the case database's temporary
        table ``correlation_instances``."""
        ...

    def matches_changed(self) -> None:
        """The case's ``matches`` gained rows outside ``insert_matches``."""
        ...

    def ask(self, sql: str, params: Sequence[object], inputs: Mapping[str, pa.Table]) -> tuple[list[str], list[tuple]]:
        """``case_queries.EventQuestions.ask``: a question of triage over the engine's relations."""
        ...

    def keep(self, relation: str, sql: str, inputs: Mapping[str, pa.Table]) -> None:
        """``case_queries.EventQuestions.keep``."""
        ...


class DuckDBRules:
    """The detection SQL run in the case database, as written."""

    name = "DuckDB"

    def __init__(self, store: CaseStore):
        self.store = store

    def rows(self, sql: str) -> list[tuple]:
        return self.store.db.execute(sql).fetchall()

    def build_relations(self, org_domains: tuple[str, ...]) -> None:
        self.store.resolved.refresh(org_domains)

    def insert_matches(self, sql: str, rule_index: pa.Table) -> None:
        db = self.store.db
        db.register("rule_index", rule_index)
        try:
            db.execute(f"INSERT INTO matches {sql}")
        finally:
            db.unregister("rule_index")

    def stage_correlation(self, sql: str) -> None:
        self.store.db.execute(f"CREATE OR REPLACE TEMP TABLE correlation_instances AS {sql}")

    def matches_changed(self) -> None:
        pass

    def ask(self, sql: str, params: Sequence[object], inputs: Mapping[str, pa.Table]) -> tuple[list[str], list[tuple]]:
        return ask_case_database(self.store.resolved.db, sql, params, inputs)

    def keep(self, relation: str, sql: str, inputs: Mapping[str, pa.Table]) -> None:
        keep_in_case_database(self.store.resolved.db, relation, sql, inputs)


ENGINE_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, EngineError)


def single_rules_sql(single: list[tuple[LoadedRule, str]], datasets: tuple[str, ...]) -> tuple[str, pa.Table]:
    """One query giving the (rule_id, event_id) matches of all ``single`` rules, and the ``rule_index`` table it
    joins. Each condition stands between parentheses, as ``check_condition`` checked it.

    The query reads only the events of ``datasets``, which every one of these conditions requires already
    (the processing pipeline restricts each rule to its log source's datasets, ``datasets_for``, in the
    same case-blind way)."""
    rule_index = pa.table({"rule_index": list(range(len(single))), "rule_id": [rule.id for rule, _ in single]})
    hits = ", ".join(f"CASE WHEN ({condition}) THEN {index} END" for index, (_, condition) in enumerate(single))
    anywhere = " OR ".join(f"({condition})" for _, condition in single)
    return f"""SELECT r.rule_id, h.event_id
        FROM (SELECT "event.id" AS event_id, unnest(list_filter([{hits}], lambda i: i IS NOT NULL)) AS rule_index
              FROM {DETECTION_RELATION}
              WHERE lower("event.dataset") IN {sql_list(d.lower() for d in datasets)} AND ({anywhere})) h
        JOIN rule_index r USING (rule_index)""", rule_index


def rules_by_datasets(single: list[tuple[LoadedRule, str]]) -> dict[tuple[str, ...], list[tuple[LoadedRule, str]]]:
    """The single-event rules grouped by the datasets their log sources cover, in their order.

    One scan per group, not one for all: a scan reads the columns its conditions name for every event
    it reads, and a few rules of one source name costly ones (``event.original``, compressed, read by two
    rules of Windows and Linux logs) that the audit log's million events need not give up (a third of the
    rules' time at 1M audit records, bench/README.md)."""
    groups: dict[tuple[str, ...], list[tuple[LoadedRule, str]]] = {}
    for rule, condition in single:
        if not isinstance(rule.rule, SigmaRule):
            raise TypeError(f"{rule.id} is a correlation, not a single-event rule")
        groups.setdefault(datasets_for(rule.rule.logsource), []).append((rule, condition))
    return groups


def match_single_rules(engine: RuleEngine, single: list[tuple[LoadedRule, str]]) -> dict[str, str]:
    """Write the matches of every single-event rule to ``matches``, in one pass over the events of each
    group of ``rules_by_datasets``; returns the rules that failed in the engine, with the reason."""
    failed: dict[str, str] = {}
    for datasets, rules in rules_by_datasets(single).items():
        failed |= _match_rule_group(engine, rules, datasets)
    return failed


def _match_rule_group(engine: RuleEngine, single: list[tuple[LoadedRule, str]],
                      datasets: tuple[str, ...]) -> dict[str, str]:
    """One scan that tests each event against all conditions of the group costs a fraction of one scan per
    rule: the view's joins and the column reads happen once. When that statement fails, the rules are
    halved, and halved again, until each failing rule is alone: the others still get their matches, in a
    few more scans only."""
    if not single:
        return {}
    try:
        engine.insert_matches(*single_rules_sql(single, datasets))
        return {}
    except duckdb.InterruptException:
        raise
    except ENGINE_ERRORS as exc:
        if len(single) == 1:
            return {single[0][0].id: failure_reason(exc)}
    middle = len(single) // 2
    return (_match_rule_group(engine, single[:middle], datasets)
            | _match_rule_group(engine, single[middle:], datasets))


def _unusable_references(references: list[tuple[str, str | None]], skipped: dict[str, str]) -> str | None:
    """Why a correlation cannot run, from its references as (name shown, rule id or None when not
    loaded); None when every one of them can."""
    unusable = [(name, rule_id) for name, rule_id in references if rule_id is None or rule_id in skipped]
    if not unusable:
        return None
    return "refers to a rule that cannot run: " + ", ".join(
        f"{name} ({_skip_reason(skipped, rule_id)})" for name, rule_id in unusable)


def matching_steps(compiled: CompiledRules) -> int:
    """How many steps ``run_rules`` reports: the one pass of all single-event rules, then each correlation."""
    return 1 + len(compiled.correlations)


def run_rules(store: CaseStore, compiled: CompiledRules, engine: RuleEngine | None = None,
              on_step: Callable[[], None] = lambda: None) -> DetectionRun:
    """Run ``compiled`` over the case's events in ``engine`` (default: the case database itself); the matches,
    correlation instances and identities are written to the case store. ``on_step`` is called after each of
    ``matching_steps``."""
    db = store.db
    engine = engine or DuckDBRules(store)
    build_identity_table(store, compiled.settings.identities, compiled.settings.org_domains, engine.rows)
    engine.build_relations(compiled.settings.org_domains)
    db.execute("DELETE FROM matches")
    db.execute("DELETE FROM correlation_matches")
    db.execute("DELETE FROM correlation_steps")
    engine.matches_changed()
    detections: list[Detection] = []
    matched: dict[str, int] = {}
    skipped = dict(compiled.skipped)
    skipped.update(match_single_rules(engine, compiled.single))
    single = [(rule, condition) for rule, condition in compiled.single if rule.id not in skipped]
    counts = dict(db.execute("SELECT rule_id, count(*) FROM matches GROUP BY 1").fetchall())
    by_rule: dict[str, list[str]] = {}
    indicator_rules = [rule.id for rule, _ in single if rule.indicator]
    for rule_id, event_id in db.execute(
            'SELECT x.rule_id, x.event_id FROM matches x JOIN events e ON e."event.id" = x.event_id '
            'WHERE x.rule_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY x.rule_id, e."@timestamp", x.event_id',
            [indicator_rules]).fetchall():
        by_rule.setdefault(rule_id, []).append(event_id)
    for rule, _ in single:
        matched[rule.id] = counts.get(rule.id, 0)
        if rule.indicator:
            detections.extend(Detection(rule, [event_id]) for event_id in by_rule.get(rule.id, []))
    on_step()
    for rule, sql in compiled.correlations:
        detections.extend(_correlate(store, engine, compiled, rule, sql, skipped, matched))
        on_step()
    return DetectionRun(detections, skipped, matched)


def _correlate(store: CaseStore, engine: RuleEngine, compiled: CompiledRules, rule: LoadedRule, sql: str,
               skipped: dict[str, str], matched: dict[str, int]) -> list[Detection]:
    """Run one correlation: its detections, or none with the reason in ``skipped``."""
    unusable = _unusable_references([(rule_id, rule_id) for rule_id in compiled.references.get(rule.id, ())],
                                    skipped)
    if unusable:
        skipped[rule.id] = unusable
        return []
    try:
        matched[rule.id], instances = _run_correlation(engine, store.db, rule, sql)
    except duckdb.InterruptException:
        raise
    except ENGINE_ERRORS as exc:
        store.db.execute("DELETE FROM matches WHERE rule_id = ?", [rule.id])
        store.db.execute("DELETE FROM correlation_matches WHERE rule_id = ?", [rule.id])
        engine.matches_changed()
        skipped[rule.id] = failure_reason(exc)
        return []
    store.resolved.record_correlation_steps(rule.id, compiled.references.get(rule.id, ()))
    return [Detection(rule, ids) for _, ids in sorted(instances.items())] if rule.indicator else []


def _run_correlation(engine: RuleEngine, db: duckdb.DuckDBPyConnection, rule: LoadedRule,
                     sql: str) -> tuple[int, dict[str, list[str]]]:
    """Write a correlation's matches, and each instance with the part every event plays in it
    (``correlation_matches``); returns how many events it matched and its instances' event ids."""
    try:
        engine.stage_correlation(sql)
        db.execute("INSERT INTO matches SELECT DISTINCT ?, event_id FROM correlation_instances", [rule.id])
        engine.matches_changed()
        db.execute("INSERT INTO correlation_matches SELECT DISTINCT ?, instance, event_id, step FROM correlation_instances",
                   [rule.id])
        count = db.execute("SELECT count(DISTINCT event_id) FROM correlation_instances").fetchall()[0][0]
        instances: dict[str, list[str]] = {}
        if rule.indicator:
            for instance, event_id in db.execute(
                    "SELECT DISTINCT instance, event_id FROM correlation_instances ORDER BY instance, event_id").fetchall():
                instances.setdefault(instance, []).append(event_id)
        return count, instances
    finally:
        db.execute("DROP TABLE IF EXISTS correlation_instances")
