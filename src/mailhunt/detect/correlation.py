"""SQL for Sigma correlation rules over the events their referenced rules matched.

Each query reads ``matches`` (rule id, event id) joined to ``events`` and
returns one row per (instance, event id, step): an instance is one occurrence of
the correlation (one burst for counting rules, one sequence for temporal
rules), and the step is the id of the referenced rule the event matched in it.

Semantics, after the Sigma correlation specification:
- ``event_count`` / ``value_count`` / ``value_sum``: for every matched event,
  the window [its time, its time + timespan] within its group-by group is
  measured; windows meeting the condition are merged where they overlap, and
  every event inside a merged window belongs to that instance.
- ``temporal``: every referenced rule matched within one timespan, same group.
- ``temporal_ordered``: as ``temporal``, and the matches occur in the order
  the rules are listed (equal timestamps count as in order; one event never
  plays two parts).
Group-by values must be equal and not null: an event without the value does
not take part.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.correlations import (
    CorrelationConditionAND,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError

from mailhunt.case_queries import DETECTION_RELATION
from mailhunt.detect.backend import sql_field
from mailhunt.detect.pipeline import FIELD_MAPPING
from mailhunt.sql_text import sql_string

_OPS = {
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.EQ: "=",
    SigmaCorrelationConditionOperator.NEQ: "<>",
}


@dataclass(frozen=True)
class CorrelationPlan:
    """A correlation rule with its references resolved to rule ids and settings applied."""

    rule: SigmaCorrelationRule
    rule_ids: tuple[str, ...]
    timespan_seconds: int
    threshold: int | None


def _field(name: str) -> str:
    mapped = FIELD_MAPPING.get(name, name)
    return sql_field(mapped if isinstance(mapped, str) else mapped[0])


def _group_expressions(plan: CorrelationPlan) -> list[str]:
    rule = plan.rule
    aliases = {alias.alias: alias for alias in rule.aliases}
    expressions = []
    for name in rule.group_by or []:
        if name in aliases:
            cases = []
            for reference, field_name in aliases[name].mapping.items():
                rule_id = _rule_id_of(reference, plan)
                cases.append(f"WHEN {sql_string(rule_id)} THEN CAST({_field(field_name)} AS VARCHAR)")
            expressions.append("CASE x.rule_id " + " ".join(cases) + " END")
        else:
            expressions.append(f"CAST({_field(name)} AS VARCHAR)")
    return expressions


def _rule_id_of(reference, plan: CorrelationPlan) -> str:
    if plan.rule.rules is None:
        raise SigmaFeatureNotSupportedByBackendError("correlation without a rules list is not supported")
    for ref, rule_id in zip(plan.rule.rules, plan.rule_ids):
        if ref.reference == reference.reference:
            return rule_id
    raise SigmaFeatureNotSupportedByBackendError(f"alias refers to '{reference.reference}', not a rule of this correlation")


def _matched_events_cte(plan: CorrelationPlan, value_field: str | None) -> tuple[str, list[str]]:
    groups = _group_expressions(plan)
    cols = [f"{expr} AS g{i}" for i, expr in enumerate(groups)]
    if value_field is not None:
        cols.append(f"{_field(value_field)} AS v")
    ids = ", ".join(sql_string(r) for r in plan.rule_ids)
    select = ", ".join(["x.rule_id AS rule_id", 'e."event.id" AS event_id', 'e."@timestamp" AS ts', *cols])
    not_null = "".join(f" AND g{i} IS NOT NULL" for i in range(len(groups)))
    cte = (f"m AS (SELECT * FROM (SELECT DISTINCT {select} FROM matches x JOIN {DETECTION_RELATION} e "
           f"ON e.\"event.id\" = x.event_id WHERE x.rule_id IN ({ids})) WHERE ts IS NOT NULL{not_null})")
    return cte, [f"g{i}" for i in range(len(groups))]


def correlation_sql(plan: CorrelationPlan) -> str:
    kind = plan.rule.type
    if kind in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.VALUE_SUM):
        return _window_sql(plan)
    if kind in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
        _require_all_rules(plan)
        return _sequence_sql(plan, ordered=kind == SigmaCorrelationType.TEMPORAL_ORDERED)
    raise SigmaFeatureNotSupportedByBackendError(f"correlation type {kind.name.lower()} is not supported")


def _require_all_rules(plan: CorrelationPlan) -> None:
    """A temporal correlation runs as "every referenced rule matched"; a boolean condition that asks
    for anything else (``a and not b``, ``a or b``) is refused rather than run as if it said that."""
    condition = plan.rule.condition
    if not isinstance(condition, SigmaExtendedCorrelationCondition):
        return
    named: set[str] = set()
    pending: list = [condition.parsed]
    while pending:
        item = pending.pop()
        if isinstance(item, SigmaRuleReference):
            named.add(item.reference)
        elif isinstance(item, CorrelationConditionAND):
            pending.extend(item.args)
        else:
            raise SigmaFeatureNotSupportedByBackendError(
                f"temporal condition '{condition.expression}' is not supported: only 'and' of the referenced rules")
    if named != {ref.reference for ref in plan.rule.rules or []}:
        raise SigmaFeatureNotSupportedByBackendError(
            f"temporal condition '{condition.expression}' must name every referenced rule, and only those")


def _window_sql(plan: CorrelationPlan) -> str:
    rule = plan.rule
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise SigmaFeatureNotSupportedByBackendError("extended conditions apply to temporal correlations only")
    value_field = condition.fieldref if rule.type != SigmaCorrelationType.EVENT_COUNT else None
    if isinstance(value_field, list):
        if len(value_field) != 1:
            raise SigmaFeatureNotSupportedByBackendError("value correlation over several fields is not supported")
        value_field = value_field[0]
    if rule.type != SigmaCorrelationType.EVENT_COUNT and not value_field:
        raise SigmaFeatureNotSupportedByBackendError("value correlation without a field")
    cte, groups = _matched_events_cte(plan, value_field)
    aggregate = {
        SigmaCorrelationType.EVENT_COUNT: "count(*) {over}",
        # Spark has no distinct window aggregate: its SQL gets size(collect_set(v) OVER ...) instead
        # (spark.rules.spark_sql). Not a distinct list here too: DuckDB builds one per row over its whole
        # window, which grows with events x window size (bench/README.md, "Mappings").
        SigmaCorrelationType.VALUE_COUNT: "count(DISTINCT v) {over}",
        SigmaCorrelationType.VALUE_SUM: "sum(v) {over}",
    }[rule.type]
    span = f"INTERVAL '{plan.timespan_seconds} seconds'"
    partition = f"PARTITION BY {', '.join(groups)} " if groups else ""
    measure = aggregate.format(over=f"OVER ({partition}ORDER BY ts RANGE BETWEEN CURRENT ROW AND {span} FOLLOWING)")
    threshold = plan.threshold if plan.threshold is not None else condition.count
    group_cols = "".join(f"{g}, " for g in groups)
    join_groups = "".join(f" AND m.{g} = s.{g}" for g in groups)
    # The 'T' stands outside the format patterns: a letter inside one is not a literal in every dialect.
    started = "strftime(s.start_ts, '%Y-%m-%d') || 'T' || strftime(s.start_ts, '%H:%M:%S')"
    instance_key = " || '|' || ".join([*(f"s.{g}" for g in groups), started])
    return f"""WITH {cte},
w AS (SELECT *, {measure} AS measure FROM m),
anchors AS (SELECT DISTINCT {group_cols}ts AS start_ts, ts + {span} AS end_ts FROM w WHERE measure {_OPS[condition.op]} {threshold}),
marked AS (SELECT *, CASE WHEN start_ts <= max(end_ts) OVER ({partition}ORDER BY start_ts ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS opens FROM anchors),
numbered AS (SELECT *, sum(opens) OVER ({partition}ORDER BY start_ts ROWS UNBOUNDED PRECEDING) AS island FROM marked),
spans AS (SELECT {group_cols}island, min(start_ts) AS start_ts, max(end_ts) AS end_ts FROM numbered GROUP BY {group_cols}island)
SELECT DISTINCT {instance_key} AS instance, m.event_id AS event_id, m.rule_id AS step
FROM spans s JOIN m ON m.ts >= s.start_ts AND m.ts <= s.end_ts{join_groups}"""


def _sequence_sql(plan: CorrelationPlan, ordered: bool) -> str:
    cte, groups = _matched_events_cte(plan, None)
    span = f"INTERVAL '{plan.timespan_seconds} seconds'"
    n = len(plan.rule_ids)
    joins = []
    for k in range(1, n):
        on = [f"m{k}.rule_id = {sql_string(plan.rule_ids[k])}"]
        on += [f"m{k}.{g} = m0.{g}" for g in groups]
        on += [f"m{k}.event_id <> m{j}.event_id" for j in range(k)]
        if ordered:
            on += [f"m{k}.ts >= m{k - 1}.ts", f"m{k}.ts <= m0.ts + {span}"]
        else:
            on += [f"m{k}.ts >= m0.ts - {span}", f"m{k}.ts <= m0.ts + {span}"]
        joins.append(f"JOIN m m{k} ON " + " AND ".join(on))
    where = [f"m0.rule_id = {sql_string(plan.rule_ids[0])}"]
    if not ordered and n > 1:
        stamps = ", ".join(f"m{k}.ts" for k in range(n))
        where.append(f"greatest({stamps}) - least({stamps}) <= {span}")
    instance = " || '|' || ".join(f"m{k}.event_id" for k in range(n))
    ids = ", ".join(f"m{k}.event_id AS e{k}" for k in range(n))
    combos = f"SELECT {instance} AS instance, {ids} FROM m m0 {' '.join(joins)} WHERE {' AND '.join(where)}"
    unions = " UNION ".join(f"SELECT instance, e{k} AS event_id, {sql_string(plan.rule_ids[k])} AS step FROM combos"
                            for k in range(n))
    return f"WITH {cte},\ncombos AS ({combos})\n{unions}"
