"""The timeline's join of events to findings: what its definition says on the set with every indicator (people
and hosts of every log family), found by equality look-ups rather than by pairing events with time ranges."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mailhunt.case.timeline import HOST_FAMILIES, wanted_table
from mailhunt.case_queries import (
    FAMILY,
    RESOLVED_RELATION,
    TIMELINE_JOIN_SQL,
    TIMELINE_KEPT,
)
from mailhunt.config import load_config
from mailhunt.detect.rules import load_rules
from mailhunt.hunt import hunt
from mailhunt.store import CaseStore
from tests.indicator_set import write_indicator_set


def _expected(events: list[tuple], wanted: pa.Table) -> dict[str, list[str]]:
    """The timeline's definition read plainly: an event belongs to a wanted row's finding when it falls in the
    row's span and the row's person is its actor or target, or the row's host logged it on a host family."""
    kept: dict[str, set[str]] = {}
    for row in wanted.to_pylist():
        for event_id, ts, actor, target, host, family in events:
            if not row["start"] <= ts <= row["end"]:
                continue
            if (row["person"] is not None and row["person"] in (actor, target)) or (
                    row["host"] is not None and row["host"] == host and family in HOST_FAMILIES):
                kept.setdefault(event_id, set()).add(row["finding"])
    return {event_id: sorted(findings) for event_id, findings in kept.items()}


@pytest.fixture(scope="module")
def indicator_case(tmp_path_factory) -> tuple[Path, pa.Table]:
    """The case of the set with every indicator, and the timeline's wanted rows of its findings."""
    folder = tmp_path_factory.mktemp("timeline-join")
    evidence, config_path, hints = write_indicator_set(load_rules(), folder / "set")
    result = hunt([evidence], folder / "case", load_config(config_path), read_hints=hints, copy_evidence=False)
    return folder / "case" / "case.duckdb", wanted_table(result.document["findings"], 24)


def test_timeline_keeps_what_its_definition_says_for_people_and_hosts(indicator_case):
    database, wanted = indicator_case
    assert any(h is not None for h in wanted.column("host").to_pylist())
    assert any(p is not None for p in wanted.column("person").to_pylist())
    with CaseStore(database) as store:
        store.resolved.ensure()
        events = store.db.execute(
            f'''SELECT "event.id", "@timestamp", "user.name", "user.target.name", "host.name", "{FAMILY}"
                FROM {RESOLVED_RELATION}''').fetchall()
        counts = store.resolved.keep_timeline(wanted, HOST_FAMILIES)
        kept = dict(store.db.execute(f"SELECT event_id, findings FROM {TIMELINE_KEPT}").fetchall())
    expected = _expected(events, wanted)
    assert kept == expected
    assert {f for findings in expected.values() for f in findings} == set(counts)
    hosts = {row["host"] for row in wanted.to_pylist() if row["host"]}
    assert any(host == e[4] for e in events if e[0] in kept for host in hosts)


def test_the_timeline_join_looks_names_up_instead_of_pairing_time_ranges(indicator_case):
    """Joined on the time ranges first, every event in the case's span met every wanted row (139M pairs at 10M
    events) before the names were compared."""
    database, wanted = indicator_case
    with CaseStore(database) as store:
        store.resolved.ensure()
        store.db.register("timeline_wanted", wanted)
        plan = "\n".join(row[1] for row in store.db.execute(
            f"EXPLAIN {TIMELINE_JOIN_SQL}", [list(HOST_FAMILIES)]).fetchall()).lower().replace("_", " ")
    assert "hash join" in plan and "name = name" in plan
    assert "piecewise merge join" not in plan and "ie join" not in plan
