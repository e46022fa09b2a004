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


def test_a_case_from_an_earlier_event_model_gains_the_new_columns_and_keeps_its_events(tmp_path):
    import duckdb
    older = [name for name in COLUMN_NAMES if name not in ("labels", "file.path", "winlog.record_id")]
    with duckdb.connect(str(tmp_path / "case.duckdb")) as db:
        db.execute('CREATE TABLE events ("event.id" VARCHAR, "@timestamp" TIMESTAMP, "event.action" VARCHAR, '
                   '"log.file.path" VARCHAR, "log.record" BIGINT)')
        db.execute("INSERT INTO events VALUES ('old', TIMESTAMP '2026-09-30 08:00:00', 'HardDelete', 'old.csv', 3)")
    with CaseStore(tmp_path / "case.duckdb") as store:
        names = [row[0] for row in store.db.execute("DESCRIBE events").fetchall()]
        assert set(names) == set(COLUMN_NAMES) and set(older) < set(names)
        store.append(to_arrow([event("new", "new.csv", 1)]))
        rows = store.query('SELECT "event.id" AS id, "log.file.path" AS path, "params"[\'identity\'] AS v '
                           'FROM events ORDER BY 1')
    assert rows == [{"id": "new", "path": "new.csv", "v": "x"}, {"id": "old", "path": "old.csv", "v": None}]


def test_every_column_and_derived_field_is_documented():
    from pathlib import Path

    from mailhunt.detect.baselines import DERIVED_FIELDS
    from mailhunt.events import COLUMNS

    text = (Path(__file__).parents[1] / "docs" / "events.md").read_text()
    for name in [c.name for c in COLUMNS] + [f.name for f in DERIVED_FIELDS]:
        assert f"| `{name}` |" in text, name


def test_events_appended_within_a_bulk_load_free_their_arrow_buffers_before_it_commits(tmp_path):
    """A bulk load commits every two row groups; the Arrow batches appended before then must be freed
    as each is stored (a view registered and dropped inside the transaction kept them until the commit)."""
    import pyarrow as pa

    pool = pa.proxy_memory_pool(pa.default_memory_pool())  # counts only the batch's own columns
    events = to_arrow([event(f"e{n}", "x.csv", n) | {"event.original": "x" * 2000} for n in range(2000)])
    batch = pa.Table.from_arrays([pa.concat_arrays(column.chunks, memory_pool=pool) for column in events.columns],
                                 schema=events.schema)
    del events
    with CaseStore(tmp_path / "case.duckdb") as store, store.bulk_load():
        assert pool.bytes_allocated() > 4_000_000
        store.append(batch)
        del batch
        assert pool.bytes_allocated() == 0
    with CaseStore(tmp_path / "case.duckdb") as store:
        assert store.event_count() == 2000
