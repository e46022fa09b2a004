"""The case's events written as Parquet for the Spark engine (DuckDB alone: no Spark needed)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb

from mailhunt import memory
from mailhunt.events import new_event, to_arrow
from mailhunt.spark.parquet import write_events
from mailhunt.sql_text import sql_string
from mailhunt.store import CaseStore

DAYS = 90
EVENTS_A_DAY = 500


def _events(seed: int) -> list[dict]:
    chance = random.Random(seed)
    start = datetime(2026, 5, 1)
    events = []
    for number in range(DAYS * EVENTS_A_DAY):
        event = new_event()
        event.update({"event.id": f"{number:032x}", "@timestamp": start + timedelta(days=number // EVENTS_A_DAY, seconds=number % EVENTS_A_DAY),
                      "event.action": "MailItemsAccessed", "event.dataset": "m365.audit", "user.name": "a@corp.example",
                      "event.original": chance.randbytes(3000).hex()})
        events.append(event)
    return events


def test_the_export_of_many_days_fits_in_the_smallest_memory_budget(tmp_path):
    """Ninety days of records of 6 kB each (270 MB) written under ``--memory-limit 256MiB``, the smallest
    (128 MiB for the case database): DuckDB's own partitioned-write defaults need more than that and fail
    with an out-of-memory error."""
    with memory.limited_to(memory.MIN_LIMIT):
        store = CaseStore(tmp_path / "case.duckdb")
        try:
            store.append(to_arrow(_events(7)))
            folder = write_events(store, tmp_path / "events.parquet")
            settings = dict(store.db.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'partitioned_write%'").fetchall())
        finally:
            store.close()
    read = duckdb.connect()
    pattern = sql_string(str(folder / "**" / "*.parquet"))
    rows, days, sources, ids = read.execute(
        f"""SELECT count(*), count(DISTINCT "date"), count(DISTINCT "source"), count(DISTINCT "event.id")
            FROM read_parquet({pattern}, hive_partitioning = true)""").fetchall()[0]
    assert (rows, days, sources, ids) == (DAYS * EVENTS_A_DAY, DAYS, 1, DAYS * EVENTS_A_DAY)
    assert settings == {"partitioned_write_max_open_files": "100", "partitioned_write_flush_threshold": "524288"}
