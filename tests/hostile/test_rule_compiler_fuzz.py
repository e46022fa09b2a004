"""Property: any string, as the value of a Sigma rule, reaches DuckDB as that string.

Random text (quotes, dollar signs, backslashes, LIKE and Sigma wildcards,
unicode, NUL) under each modifier compiles to a condition that passes the SQL
check, and that condition finds an event holding exactly that text: the
literal round-trips through the pattern escaping and the SQL quoting.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from mailhunt.detect.backend import CONDITION_COLUMNS, EventSQLBackend
from mailhunt.detect.baselines import DETECTION_RELATION, create_detection_view
from mailhunt.detect.engine import rule_condition_sql
from mailhunt.detect.identities import build_identity_table
from mailhunt.detect.pipeline import build_pipeline
from mailhunt.detect.rules import LoadedRule
from mailhunt.detect.sqlcheck import check_condition
from mailhunt.events import SCHEMA
from mailhunt.store import CaseStore

SQL_AND_SIGMA_SPECIALS = "'\"$\\%_*?;-()[]{}`\x00\n\t\u202e\u0130\u00df"
TEXT = st.text(st.characters(exclude_categories=("Cs",)) | st.sampled_from(SQL_AND_SIGMA_SPECIALS), max_size=40)
BACKEND = EventSQLBackend(processing_pipeline=build_pipeline())


def sigma_escape(text: str) -> str:
    """``text`` as a Sigma string value that stands for exactly ``text`` (wildcards and backslash escaped)."""
    return re.sub(r"([*?\\])", r"\\\1", text)


def re2_escape(text: str) -> str:
    """A regular expression matching ``text`` literally, escaped as both Python's re and RE2 read it."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


# modifier -> (the Sigma detection for the text, the parameters value of an event it must match)
MODIFIERS = {
    "equals": (lambda t: {"sel": {"Parameters": sigma_escape(t)}, "condition": "sel"}, lambda t: t),
    "contains": (lambda t: {"sel": {"Parameters|contains": sigma_escape(t)}, "condition": "sel"},
                 lambda t: f"<<{t}>>"),
    "startswith": (lambda t: {"sel": {"Parameters|startswith": sigma_escape(t)}, "condition": "sel"},
                   lambda t: f"{t}>>"),
    "endswith": (lambda t: {"sel": {"Parameters|endswith": sigma_escape(t)}, "condition": "sel"},
                 lambda t: f"<<{t}"),
    "cased": (lambda t: {"sel": {"Parameters|cased": sigma_escape(t)}, "condition": "sel"}, lambda t: t),
    "contains_cased": (lambda t: {"sel": {"Parameters|contains|cased": sigma_escape(t)}, "condition": "sel"},
                       lambda t: f"<<{t}>>"),
    "re": (lambda t: {"sel": {"Parameters|re": re2_escape(t)}, "condition": "sel"}, lambda t: f"<<{t}>>"),
    "keyword": (lambda t: {"keywords": [sigma_escape(t)], "condition": "keywords"}, lambda t: f"<<{t}>>"),
}
# Where equality is exact, an event holding a different text must not match.
EXACT = {"equals", "cased"}


def _rule(detection: dict) -> LoadedRule:
    rule = SigmaCollection.from_dicts([{
        "title": "fuzzed value", "id": "6f0c8d52-1b7e-4c39-9a40-2d8e5f7a1c93",
        "logsource": {"product": "m365", "service": "audit"}, "detection": detection, "level": "low",
    }]).rules[0]
    return LoadedRule(rule, Path("fuzzed.yml"))


@pytest.fixture(scope="module")
def store():
    with CaseStore(":memory:") as case:
        build_identity_table(case, {}, ())
        create_detection_view(case)
        yield case


def _hold(store: CaseStore, values: dict[str, str]) -> None:
    store.db.execute("DELETE FROM events")
    store.append(pa.Table.from_pylist([
        {"event.id": event_id, "@timestamp": datetime(2026, 10, 1, 12), "event.dataset": "m365.audit",
         "event.action": "Set-Mailbox", "user.name": "megan.bowen@contoso.com", "parameters": value}
        for event_id, value in values.items()], schema=SCHEMA))


@pytest.mark.parametrize("modifier", sorted(MODIFIERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_a_value_round_trips_as_a_literal(store, modifier, text):
    detection, holding = MODIFIERS[modifier]
    condition = rule_condition_sql(_rule(detection(text)), BACKEND)
    check_condition(condition, CONDITION_COLUMNS)
    events = {"target": holding(text)}
    if modifier in EXACT:
        events["other"] = text + "\u2603"
    _hold(store, events)
    found = {row[0] for row in store.db.execute(
        f'SELECT "event.id" FROM {DETECTION_RELATION} WHERE ({condition})').fetchall()}
    assert found == {"target"}, condition
