"""The single-event rules run as one scan per group of datasets: the same matches as each rule run alone, and
an audit-log scan that does not read the columns only other sources' rules name."""

from __future__ import annotations

from pathlib import Path

from mailhunt.config import load_config
from mailhunt.detect.engine import (
    DuckDBRules,
    compile_rules,
    match_single_rules,
    rules_by_datasets,
    single_rules_sql,
)
from mailhunt.detect.identities import build_identity_table
from mailhunt.detect.rules import load_rules
from mailhunt.hunt import detection_settings, hunt
from mailhunt.store import CaseStore
from tests.indicator_set import write_indicator_set


def _ready_store(store: CaseStore, compiled) -> DuckDBRules:
    engine = DuckDBRules(store)
    build_identity_table(store, compiled.settings.identities, compiled.settings.org_domains, engine.rows)
    engine.build_relations(compiled.settings.org_domains)
    return engine


def test_grouped_scans_match_what_each_rule_matches_alone(tmp_path: Path):
    rules = load_rules()
    evidence, config_path, hints = write_indicator_set(rules, tmp_path / "set")
    config = load_config(config_path)
    hunt([evidence], tmp_path / "case", config, read_hints=hints, copy_evidence=False)
    compiled = compile_rules(rules, detection_settings(config))
    store = CaseStore(tmp_path / "case" / "case.duckdb")
    try:
        engine = _ready_store(store, compiled)
        store.db.execute("DELETE FROM matches")
        assert match_single_rules(engine, compiled.single) == {}
        grouped = set(store.db.execute("SELECT rule_id, event_id FROM matches").fetchall())
        alone = {(rule.id, event_id) for rule, condition in compiled.single
                 for (event_id,) in store.db.execute(
                     f'SELECT "event.id" FROM detection_events WHERE {condition}').fetchall()}
    finally:
        store.close()
    assert len(rules_by_datasets(compiled.single)) > 1
    assert {rule_id for rule_id, _ in alone} >= {"e1bed33c-af09-5a02-97d5-872ded6ef1c4",  # Search-Mailbox
                                                 "05b92a5e-8334-51ce-abc6-55dc08803796"}  # a 7036 read in event.original
    assert grouped == alone


def test_the_audit_log_scan_reads_no_raw_record():
    """Two rules of Windows and Linux logs search ``event.original``; the audit log's rules do not, so the scan
    of the audit log's events leaves that column (most of the case's bytes, compressed) unread."""
    compiled = compile_rules(load_rules())
    groups = rules_by_datasets(compiled.single)
    [audit_log] = [datasets for datasets in groups if "m365.audit" in datasets]
    assert any('"event.original"' in condition for datasets, rules in groups.items() if datasets != audit_log
               for _, condition in rules)
    store = CaseStore(":memory:")
    try:
        _ready_store(store, compiled)
        sql, rule_index = single_rules_sql(groups[audit_log], audit_log)
        store.db.register("rule_index", rule_index)
        plan = "\n".join(row[1] for row in store.db.execute(f"EXPLAIN {sql}").fetchall())
    finally:
        store.close()
    assert "events" in plan and "event.original" not in plan
