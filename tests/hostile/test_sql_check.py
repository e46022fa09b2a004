"""The check of compiled rule SQL: what the compiler emits passes, anything else is refused before it runs."""

from __future__ import annotations

import pytest

from mailhunt.detect.backend import CONDITION_COLUMNS
from mailhunt.detect.engine import compile_rules
from mailhunt.detect.rules import load_rules
from mailhunt.detect.sqlcheck import UnsafeSQL, check_condition, check_query


def test_every_shipped_rule_passes_the_check():
    compiled = compile_rules(load_rules())
    assert compiled.skipped == {}
    for _, condition in compiled.single:
        check_condition(condition, CONDITION_COLUMNS)
    for _, sql in compiled.correlations:
        check_query(sql)


@pytest.mark.parametrize(("condition", "reason"), [
    # What the old backend made of a value with a quote in it: the backslash is an ordinary
    # character to DuckDB, so the quote after it ends the literal.
    ("""coalesce("parameters" ILIKE '%a\\', false); COPY (SELECT 1) TO $q$x.csv$q$; --%' ESCAPE '\\', false)""",
     "comment"),
    (("""coalesce("parameters" ILIKE '%a\\' OR (SELECT count(*) FROM read_text($q$/etc/hostname$q$)) > 0 """
     """OR $q$%' ESCAPE '\\', false)"""), "unbalanced parentheses"),
    ("""coalesce("parameters" ILIKE '%a' OR (SELECT count(*) FROM read_text('/etc/hostname')) > 0, false)""",
     "subquery"),
    ("""read_text('/etc/hostname') IS NULL""", "function 'read_text'"),
    ("""getvariable('x') = 1""", "function 'getvariable'"),
    ("""lower("parameters") = (SELECT 'a')""", "subquery"),
    ("""true) OR (true""", "unbalanced parentheses"),
    ("""true)) OR ((true""", "unbalanced parentheses"),
    (""""parameters" ILIKE 'a' /* x */""", "comment"),
    (""""parameters" """, "not a boolean expression"),
    ("""lower("parameters")""", "not a boolean expression"),
    ("""true, false""", "not allowed"),
    (""""secret_column" IS NULL""", "not an event column"),
    ("""e."parameters" IS NULL""", "not an event column"),
    ("""'it''s' = 'it''s'; DROP TABLE events""", "not parse"),
    ("""CAST("parameters" AS INTEGER) = 1""", "not allowed"),
    ("""CASE WHEN true THEN true END""", "not allowed"),
    ("""'a' = 'unterminated""", "not parse"),
])
def test_sql_other_than_the_compilers_is_refused(condition, reason):
    with pytest.raises(UnsafeSQL, match=reason):
        check_condition(condition, CONDITION_COLUMNS)


@pytest.mark.parametrize("condition", [
    """coalesce("parameters" ILIKE '%O''Brien%', false)""",
    """coalesce(lower("event.action") = lower('(( é )) ) ('), false)""",
    """coalesce("parameters" ILIKE '%$q$ -- /* ''; COPY %' ESCAPE '\\', false)""",
    """coalesce(regexp_matches("params"['o''key'], '(?i)a\\)b'), false) AND "user.type" IS NULL""",
])
def test_literals_may_hold_anything(condition):
    check_condition(condition, CONDITION_COLUMNS)


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT content AS instance, content AS event_id FROM read_text('/etc/hostname')", "table_function"),
    ("SELECT 1; COPY matches TO 'x.csv'", "not parse"),
    ("SELECT * FROM matches; SELECT * FROM matches", "2 statements"),
    ("COPY matches TO 'x.csv'", "not parse"),
    ("SELECT * FROM information_schema.tables", "table 'tables'"),
    ("SELECT * FROM events", "table 'events'"),
    ("WITH m AS (SELECT * FROM duckdb_settings()) SELECT * FROM m", "table_function"),
    ("SELECT getenv('HOME') AS instance FROM matches", "function 'getenv'"),
])
def test_correlation_sql_other_than_the_compilers_is_refused(sql, reason):
    with pytest.raises(UnsafeSQL, match=reason):
        check_query(sql)
