"""The shipped rules compile to SQL that DuckDB runs and sqlglot can carry to Spark SQL.

The Spark engine comes later; this keeps the SQL inside what both engines parse,
so that work starts from queries that transpile, not from a rewrite.
"""

import sqlglot

from mailhunt.detect.engine import compile_rules
from mailhunt.detect.rules import load_rules
from mailhunt.store import CaseStore


def test_every_shipped_rule_compiles_and_none_is_skipped():
    compiled = compile_rules(load_rules())
    assert compiled.skipped == {}
    assert len(compiled.single) >= 10 and len(compiled.correlations) >= 4


def test_compiled_sql_runs_on_an_empty_case():
    from mailhunt.detect.engine import run_rules

    store = CaseStore(":memory:")
    run = run_rules(store, compile_rules(load_rules()))
    assert run.detections == [] and all(count == 0 for count in run.matched.values())


def test_compiled_sql_transpiles_to_spark():
    compiled = compile_rules(load_rules())
    for rule, condition in compiled.single:
        sqlglot.transpile(f'SELECT "event.id" FROM detection_events WHERE {condition}', read="duckdb",
                          write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    for rule, sql in compiled.correlations:
        sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
