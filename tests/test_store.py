from datetime import datetime

from mailhunt.events import COLUMN_NAMES, new_event, to_arrow
from mailhunt.store import CaseStore


def event(event_id, path, record):
    e = new_event()
    e.update({"event.id": event_id, "@timestamp": datetime(2026, 10, 1, 12), "event.action": "HardDelete",
              "log.file.path": path, "log.record": record, "params": {"identity": "x"}})
    return e


def test_events_table_has_every_model_column(tmp_path):
    with CaseStore(tmp_path / "case.duckdb") as store:
        names = [row[0] for row in store.db.execute("DESCRIBE events").fetchall()]
    assert tuple(names) == COLUMN_NAMES


def test_deduplicate_keeps_first_provenance_whatever_the_load_order(tmp_path):
    with CaseStore(tmp_path / "case.duckdb") as store:
        store.append(to_arrow([event("a", "z.csv", 5), event("b", "z.csv", 6)]))
        store.append(to_arrow([event("a", "a.csv", 9)]))
        assert store.deduplicate() == 1
        rows = store.query('SELECT "event.id" AS id, "log.file.path" AS path FROM events ORDER BY 1')
    assert rows == [{"id": "a", "path": "a.csv"}, {"id": "b", "path": "z.csv"}]


def test_reopening_a_case_keeps_its_events(tmp_path):
    with CaseStore(tmp_path / "case.duckdb") as store:
        store.append(to_arrow([event("a", "x.csv", 1)]))
    with CaseStore(tmp_path / "case.duckdb") as store:
        store.append(to_arrow([event("a", "x.csv", 1)]))
        store.deduplicate()
        assert store.event_count() == 1
        assert store.query('SELECT "params"[\'identity\'] AS v FROM events')[0]["v"] == "x"


def test_every_column_and_derived_field_is_documented():
    from pathlib import Path

    from mailhunt.detect.baselines import DERIVED_FIELDS
    from mailhunt.events import COLUMNS

    text = (Path(__file__).parents[1] / "docs" / "events.md").read_text()
    for name in [c.name for c in COLUMNS] + [f.name for f in DERIVED_FIELDS]:
        assert f"| `{name}` |" in text, name
