"""A rule set from a stranger runs as data: it neither touches a file outside the case nor
takes the other rules' findings with it, and a rule with an apostrophe finds what it names.

Three defences are tested each on its own: the backend's quoting (the malicious
rules run as harmless literals), the check of the compiled SQL (with the old
quoting bug put back, the rules fail the check instead of running), and the
sealed database (SQL that reaches DuckDB anyway cannot read, write, attach or
load a file).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sigma.conversion.base import TextQueryBackend

import mailhunt.hunt as hunt_module
from mailhunt.config import Config
from mailhunt.detect.backend import EventSQLBackend
from mailhunt.detect.examples import run_rule_examples
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from mailhunt.hunt import OUTPUT_FILES, hunt
from mailhunt.store import CaseStore
from tests.hostile.rule_sets import (
    SECRET,
    apostrophe_rules,
    malicious_rules,
    write_evidence,
    write_rules,
)

CASE_FILES = {"case.duckdb", "evidence", "custody.jsonl", *OUTPUT_FILES}


def _canary(base):
    canary = base / "canary"
    canary.mkdir()
    (canary / "secret.csv").write_text(SECRET + "\n", encoding="utf-8")
    return canary


def _findings(document: dict) -> list[tuple]:
    return [(f["id"], f["indicator"], f["actor"], f["event_count"], f["rule"]["id"], f["severity"])
            for f in document["findings"]]


def _assert_nothing_outside_touched(canary, case) -> None:
    assert sorted(p.name for p in canary.iterdir()) == ["secret.csv"]
    assert {p.name for p in case.iterdir()} == CASE_FILES
    for path in case.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the canary's secret reached {path.relative_to(case)}"


@pytest.fixture(scope="module")
def hunts(tmp_path_factory):
    """The same evidence hunted with the shipped rules alone, and with a hostile rule set beside them."""
    base = tmp_path_factory.mktemp("hostile-rules")
    canary = _canary(base)
    evidence = write_evidence(base / "purview_audit_export.csv")
    rules = write_rules(base / "rules", malicious_rules(canary) | apostrophe_rules())
    plain = hunt([evidence], base / "plain", Config())
    hostile = hunt([evidence], base / "hostile", Config(), rule_dirs=[shipped_rules_dir(), rules])
    return canary, plain, hostile


def test_malicious_rules_touch_no_file_outside_the_case(hunts):
    canary, _, hostile = hunts
    _assert_nothing_outside_touched(canary, hostile.out)


def test_the_shipped_rules_findings_are_intact_beside_malicious_rules(hunts):
    _, plain, hostile = hunts
    assert plain.document["findings"], "the evidence must give findings for this comparison to mean anything"
    assert _findings(hostile.document) == _findings(plain.document)
    assert plain.document["skipped_rules"] == []


def test_rules_that_cannot_run_are_listed_with_their_reason_and_the_rest_run(hunts):
    _, _, hostile = hunts
    skipped = {entry["id"]: entry["reason"] for entry in hostile.document["skipped_rules"]}
    ids = {name: rule["id"] for name, rule in malicious_rules(hostile.out).items()}
    assert "failed in DuckDB" in skipped[ids["g_regex_runtime_failure"]]
    assert "Evil'Field" in skipped[ids["h_unknown_field"]]
    assert skipped[ids["i_correlation_on_failure"]].startswith("refers to a rule that cannot run")
    assert set(skipped) == {ids["g_regex_runtime_failure"], ids["h_unknown_field"], ids["i_correlation_on_failure"]}
    # The others compiled to literals that no event holds: they ran and matched nothing.
    matched = {m["rule"]["id"] for m in hostile.document["rule_matches"]}
    assert not matched & set(ids.values())


def test_a_value_with_an_apostrophe_matches_the_record_that_holds_it(hunts):
    _, _, hostile = hunts
    matches = {m["rule"]["id"]: m for m in hostile.document["rule_matches"]}
    for rule in apostrophe_rules().values():
        found = matches[rule["id"]]
        assert found["event_count"] == 1
        assert "O'Brien" in found["evidence"][0]["parameters"]  # the one record of the export that names him


def test_a_quoting_bug_is_caught_by_the_sql_check(tmp_path, monkeypatch):
    """With pySigma's default quoting back (a backslash before the quote, the old bug), the
    compiled SQL of every rule with a quote in its value fails the check and never runs."""
    monkeypatch.setattr(EventSQLBackend, "convert_value_str", TextQueryBackend.convert_value_str)
    monkeypatch.setattr(EventSQLBackend, "quote_string", TextQueryBackend.quote_string)
    canary = _canary(tmp_path)
    evidence = write_evidence(tmp_path / "purview_audit_export.csv")
    rules = write_rules(tmp_path / "rules", malicious_rules(canary) | apostrophe_rules())
    result = hunt([evidence], tmp_path / "case", Config(), rule_dirs=[shipped_rules_dir(), rules])
    _assert_nothing_outside_touched(canary, result.out)
    skipped = {entry["id"]: entry["reason"] for entry in result.document["skipped_rules"]}
    everything = malicious_rules(canary) | apostrophe_rules()
    for name in ("a_copy_breakout", "b_dollar_read_text", "d_attach", "e_install_load", "obrien_contains",
                 "its_keyword"):
        assert "failed the safety check" in skipped[everything[name]["id"]], name


def test_rules_run_on_a_sealed_database(tmp_path, monkeypatch):
    """By the time rules run, the hunt's connection can touch no file but the case."""
    seen = {}
    real_run_rules = hunt_module.run_rules

    def run_rules(store, compiled, *args, **options):
        seen.update(dict(store.db.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration')"
        ).fetchall()))
        return real_run_rules(store, compiled, *args, **options)

    monkeypatch.setattr(hunt_module, "run_rules", run_rules)
    hunt([write_evidence(tmp_path / "purview_audit_export.csv")], tmp_path / "case", Config())
    assert seen == {"enable_external_access": "false", "lock_configuration": "true"}


@pytest.mark.parametrize("statement", [
    "SELECT content FROM read_text('{canary}/secret.csv')",
    "SELECT * FROM read_csv('{canary}/secret.csv')",
    "COPY (SELECT 1) TO '{canary}/copied.csv'",
    "COPY events TO '{canary}/events.parquet' (FORMAT parquet)",
    "ATTACH '{canary}/attached.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{canary}/evil.duckdb_extension'",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "EXPORT DATABASE '{canary}/exported'",
])
def test_a_sealed_case_refuses_file_access(tmp_path, statement):
    canary = _canary(tmp_path)
    with CaseStore(tmp_path / "case.duckdb") as store:
        store.seal_external_access()
        with pytest.raises(duckdb.Error):
            store.db.execute(statement.format(canary=canary))
        assert store.event_count() == 0
        store.db.execute("INSERT INTO matches VALUES ('rule', 'event')")
    assert sorted(p.name for p in canary.iterdir()) == ["secret.csv"]


def test_rule_examples_say_when_a_rule_fails_in_duckdb():
    """``mailhunt rules test``: each case of a rule that DuckDB refuses says why, not "matched nothing"."""
    results = run_rule_examples(load_rules([Path(__file__).parent / "fixtures" / "lookahead_rule"]))
    assert [r.case for r in results] == ["export", "other"]
    for result in results:
        assert not result.passed
        assert result.detail.startswith("rule cannot run: its SQL failed in DuckDB: ")
