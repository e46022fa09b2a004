"""The rule engine on Spark: the detection SQL, written once in DuckDB's dialect, transpiled and run over
the events in Parquet; what it finds is written back into the case store (``detect.engine.RuleEngine``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from mailhunt.case_queries import (
    DETECTION_RELATION,
    ORGANIZATION_DOMAINS,
    organization_domains_table,
    relation_plan,
)
from mailhunt.detect.engine import EngineError
from mailhunt.spark.parquet import PARTITION_COLUMNS
from mailhunt.store import CaseStore

ENGINE = "Spark"


def _distinct_count_window(node: exp.Expression) -> exp.Expression:
    """``count(DISTINCT v) OVER w``, which Spark lacks, as ``size(collect_set(v) OVER w)``: the same count
    (both leave NULLs out)."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Count) and isinstance(node.this.this, exp.Distinct) \
            and len(node.this.this.expressions) == 1:
        window = node.copy()
        window.set("this", exp.ArrayUniqueAgg(this=node.this.this.expressions[0].copy()))
        return exp.ArraySize(this=window)
    return node


def spark_sql(duckdb_sql: str) -> str:
    """``duckdb_sql`` in Spark SQL (sqlglot); raises EngineError when a construct has no Spark form."""
    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_distinct_count_window)
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        raise EngineError(ENGINE, f"cannot be written in Spark SQL: {exc}") from exc


def _spark_errors() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return PySparkException, Py4JError


class SparkRules:
    """Runs the rules in a Spark session over the Parquet events of one case (``parquet.write_events``)."""

    name = ENGINE

    def __init__(self, store: CaseStore, spark: Any, events_folder: Path):
        self.store = store
        self.spark = spark
        self._errors = _spark_errors()
        self._cached: dict[str, Any] = {}
        self._narrowed = False
        events = spark.read.parquet(str(events_folder))
        events.drop(*[c for c in PARTITION_COLUMNS if c in events.columns]).createOrReplaceTempView("events")

    def _frame(self, duckdb_sql: str, params: Sequence[object] = ()) -> Any:
        """``duckdb_sql`` as a Spark frame, ``params`` bound to its ``?`` markers (Spark's own binding)."""
        try:
            return self.spark.sql(spark_sql(duckdb_sql), args=list(params) or None)
        except self._errors as exc:
            raise EngineError(ENGINE, _first_line(exc)) from exc

    def _arrow(self, duckdb_sql: str, params: Sequence[object] = ()) -> pa.Table:
        frame = self._frame(duckdb_sql, params)
        try:
            return frame.toArrow()
        except self._errors as exc:
            raise EngineError(ENGINE, _first_line(exc)) from exc

    def _register(self, name: str, table: pa.Table) -> None:
        """A small table of the case (identities, domains, matches) as a Spark view of the same name."""
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def _cache(self, name: str, frame: Any) -> Any:
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()
        self._cached[name] = frame.cache()
        return self._cached[name]

    def rows(self, sql: str) -> list[tuple]:
        frame = self._frame(sql)
        try:
            return [tuple(row) for row in frame.collect()]
        except self._errors as exc:
            raise EngineError(ENGINE, _first_line(exc)) from exc

    def build_relations(self, org_domains: tuple[str, ...]) -> None:
        """The resolved-events plan in Spark, and in the case database for grouping and triage."""
        self.store.resolved.refresh(org_domains)
        self._register("identities", self.store.db.sql("SELECT * FROM identities").to_arrow_table())
        self._register(ORGANIZATION_DOMAINS, organization_domains_table(org_domains))
        self._narrowed = False
        for relation in relation_plan(org_domains):
            frame = self._frame(relation.sql)
            if relation.materialized:
                frame = self._cache(relation.name, frame)
            frame.createOrReplaceTempView(relation.name)

    def insert_matches(self, sql: str, rule_index: pa.Table) -> None:
        self._register("rule_index", rule_index)
        found = self._arrow(sql)
        self.store.db.register("spark_matches", found)
        try:
            self.store.db.execute("INSERT INTO matches SELECT rule_id, event_id FROM spark_matches")
        finally:
            self.store.db.unregister("spark_matches")
        self.matches_changed()

    def _narrow_to_matched(self) -> None:
        """Point ``detection_events`` at the matched events alone, cached, once the single-event rules ran.

        A correlation reads ``detection_events`` only joined to ``matches``, and
        every event a correlation matches was matched by a single-event rule
        first, so this changes no answer; it spares each correlation the
        resolved-events join over every event of the case."""
        if self._narrowed:
            return
        matched = self._cache("matched_detection_events", self._frame(
            f'SELECT * FROM {DETECTION_RELATION} WHERE "event.id" IN (SELECT event_id FROM matches)'))
        matched.createOrReplaceTempView(DETECTION_RELATION)
        self._narrowed = True

    def stage_correlation(self, sql: str) -> None:
        self._narrow_to_matched()
        found = self._arrow(sql)
        self.store.db.register("spark_instances", found)
        try:
            self.store.db.execute("CREATE OR REPLACE TEMP TABLE correlation_instances AS "
                                  "SELECT instance, event_id, step FROM spark_instances")
        finally:
            self.store.db.unregister("spark_instances")

    def matches_changed(self) -> None:
        self._register("matches", self.store.db.sql("SELECT rule_id, event_id FROM matches").to_arrow_table())

    def ask(self, sql: str, params: Sequence[object], inputs: Mapping[str, pa.Table]) -> tuple[list[str], list[tuple]]:
        """A question of triage (``case_queries.EventQuestions``) over the Spark relations, ``inputs`` registered
        as views; the rows as the case database returns them (maps and structs as dicts)."""
        for name, table in inputs.items():
            self._register(name, table)
        found = self._arrow(sql, params)
        columns = [_python_values(column) for column in found.columns]
        return found.column_names, list(zip(*columns, strict=True)) if columns else []

    def keep(self, relation: str, sql: str, inputs: Mapping[str, pa.Table]) -> None:
        """Keep the rows of ``sql`` cached as the view ``relation``."""
        for name, table in inputs.items():
            self._register(name, table)
        self._cache(relation, self._frame(sql)).createOrReplaceTempView(relation)

    def close(self) -> None:
        for frame in self._cached.values():
            frame.unpersist()
        self._cached.clear()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _python_values(column: pa.ChunkedArray) -> list:
    """The values of an Arrow column as DuckDB's ``fetchall`` gives them: a map as a dict."""
    values = column.to_pylist()
    if pa.types.is_map(column.type):
        return [dict(value) if value is not None else None for value in values]
    return values
