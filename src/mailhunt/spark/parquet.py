"""The case's events as Parquet, partitioned by date and source, for an engine that reads files, not the case.

DuckDB writes them from the case database (``COPY ... PARTITION_BY``, a day at a time): one
folder per UTC day (``date=2026-10-03``) and, within it, per source
(``source=m365.audit``, the ``event.dataset``), so a cluster reads the days
and sources it needs and spreads the files over its executors. The folder is
rewritten whole by every hunt, after deduplication, so it holds exactly the
events of the case.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from mailhunt import memory
from mailhunt.sql_text import sql_string
from mailhunt.store import CaseStore, quote

PARTITION_COLUMNS = ("date", "source")
# Beside case.duckdb unless the analyst puts it on storage every executor reads (``--spark-data``).
DEFAULT_FOLDER = "events.parquet"
# Marks a folder as written here: only such a folder (or an empty one) is ever replaced.
MARKER = ".mailhunt-events"
# What a partitioned write holds in memory, bounded so that the export fits in the case database's share
# of the hunt's memory. DuckDB keeps buffers for every partition it writes at once (blocks for each column
# of each), and by default flushes a thread's rows only every 524,288 rows, into row groups of 122,880
# rows: for a case of 10,000,000 audit records that was more than 512 MB, and the export failed
# (bench/README.md, "Spark"). So the events are written one UTC day at a time (a day's partitions are its
# sources), each thread's rows flushed every 4,096, into row groups of a quarter of the case database's
# share over 16 files (8 MB each by default).
OPEN_FILES = 16
PARTITIONED_WRITE_SETTINGS = {"partitioned_write_max_open_files": OPEN_FILES, "partitioned_write_flush_threshold": 4096}


# A case with no events is written as this one file of no rows, which carries the columns.
EMPTY_FILE = "no-events.parquet"


def row_group_bytes() -> int:
    """Bytes of each row group of the Parquet files, from the hunt's memory budget."""
    return memory.budget().case_database_bytes // 4 // OPEN_FILES


class EventsFolderInUse(Exception):
    """The folder named for the Parquet events holds files mailhunt did not write there."""


def check_events_folder(folder: Path) -> None:
    """Raise EventsFolderInUse unless ``folder`` is absent, empty, or one ``write_events`` wrote."""
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).is_file())):
        raise EventsFolderInUse(f"{folder} holds files mailhunt did not write; name an empty or new folder "
                                "for the events as Parquet")


def _write_day(store: CaseStore, folder: Path, day: date | None) -> None:
    """Add the events of one UTC day (None: of no time) to ``folder``'s partitions, in files of their own.

    Each day is one scan of the events: cheap when the case's events come in time order (each row group
    holds few days, the others are skipped), a whole read of the events a day when every row group holds
    every day."""
    timestamp = quote("@timestamp")
    if day is None:
        where = f"{timestamp} IS NULL"
    else:
        where = (f"{timestamp} >= CAST({sql_string(day.isoformat())} AS TIMESTAMP) "
                 f"AND {timestamp} < CAST({sql_string((day + timedelta(days=1)).isoformat())} AS TIMESTAMP)")
    store.db.execute(
        f"""COPY (SELECT *, CAST({timestamp} AS DATE) AS {quote("date")}, {quote("event.dataset")} AS {quote("source")}
                  FROM events WHERE {where})
            TO {sql_string(str(folder))}
            (FORMAT parquet, PARTITION_BY ({", ".join(quote(c) for c in PARTITION_COLUMNS)}), COMPRESSION zstd,
             ROW_GROUP_SIZE_BYTES {int(row_group_bytes())}, APPEND)""")


def write_events(store: CaseStore, folder: Path) -> Path:
    """Write every event of the case to ``folder`` (replacing what it held); returns the folder.

    Must run before ``CaseStore.seal_external_access``: afterwards the case
    database writes no file but its own. Raises EventsFolderInUse for a folder it did not write."""
    check_events_folder(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    days = [day for (day,) in store.db.execute(
        f"SELECT DISTINCT CAST({quote('@timestamp')} AS DATE) FROM events ORDER BY 1").fetchall()]
    for name, value in PARTITIONED_WRITE_SETTINGS.items():
        store.db.execute(f"SET {name} = {int(value)}")
    try:
        for day in days:
            _write_day(store, folder, day)
    finally:
        for name in PARTITIONED_WRITE_SETTINGS:
            store.db.execute(f"RESET {name}")
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.rglob("*.parquet")):  # an empty case writes no partition: give the reader the columns
        store.db.execute(f"""COPY (SELECT * FROM events LIMIT 0) TO {sql_string(str(folder / EMPTY_FILE))}
                             (FORMAT parquet)""")
    (folder / MARKER).write_text("events of the case, as Parquet, written by mailhunt hunt --engine spark\n")
    return folder
