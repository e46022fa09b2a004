"""Triage asks its questions of the case set-wise: one query for all findings, not one per finding.

Per-finding queries each scan the events, so their cost grows with findings
times events. Counted here as queries, not time: triaging every finding of the
example incident twice over (copies with the same actors and scopes) must take
no more queries over the case than triaging each once.
"""

import copy
from pathlib import Path

import duckdb

from mailhunt.config import load_config
from mailhunt.detect.engine import compile_rules, run_rules
from mailhunt.detect.grouping import group_detections
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from mailhunt.findings import Finding
from mailhunt.hunt import detection_settings, hunt
from mailhunt.store import CaseStore
from mailhunt.triage import TriageContext, triage

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "incident-2026-10"


class CountingConnection:
    """A DuckDB connection that counts the statements run through it."""

    def __init__(self, db: duckdb.DuckDBPyConnection):
        self._db = db
        self.statements = 0

    def execute(self, *args, **kwargs):
        self.statements += 1
        return self._db.execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        self.statements += 1
        return self._db.executemany(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._db, name)


def _statements(store: CaseStore, config, rules, findings: list[Finding]) -> int:
    ctx = TriageContext.build(store, config, {r.id: r.indicator for r in rules if r.indicator})
    counting = CountingConnection(store.db)
    ctx.store.resolved.db = counting
    try:
        triage(findings, ctx)
    finally:
        ctx.store.resolved.db = store.db
    return counting.statements


def test_triaging_each_finding_twice_costs_no_more_queries_than_once(tmp_path):
    config = load_config(EXAMPLE / "mailhunt.toml")
    hunt([EXAMPLE / "purview_audit_export.csv"], tmp_path / "case", config)
    rules = load_rules([shipped_rules_dir()])
    with CaseStore(tmp_path / "case" / "case.duckdb") as store:
        findings = group_detections(store, run_rules(store, compile_rules(rules, detection_settings(config))).detections)
        assert len(findings) >= 10
        once = _statements(store, config, rules, copy.deepcopy(findings))
        twice = _statements(store, config, rules, copy.deepcopy(findings) + copy.deepcopy(findings))
    assert twice <= once, f"{once} statements for {len(findings)} findings, {twice} for twice as many"
