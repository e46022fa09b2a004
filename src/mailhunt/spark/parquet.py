"""The case's events as Parquet, partitioned by date and source, for an engine that reads files, not the case.

DuckDB writes them from the case database (``COPY ... PARTITION_BY``): one
folder per UTC day (``date=2026-10-03``) and, within it, per source
(``source=m365.audit``, the ``event.dataset``), so a cluster reads the days
and sources it needs and spreads the files over its executors. The folder is
rewritten whole by every hunt, after deduplication, so it holds exactly the
events of the case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mailhunt.sql_text import sql_string
from mailhunt.store import CaseStore, quote

PARTITION_COLUMNS = ("date", "source")
# Beside case.duckdb unless the analyst puts it on storage every executor reads (``--spark-data``).
DEFAULT_FOLDER = "events.parquet"
# Marks a folder as written here: only such a folder (or an empty one) is ever replaced.
MARKER = ".mailhunt-events"
# A case with no events is written as this one file of no rows, which carries the columns.
EMPTY_FILE = "no-events.parquet"


class EventsFolderInUse(Exception):
    """The folder named for the Parquet events holds files mailhunt did not write there."""


def check_events_folder(folder: Path) -> None:
    """Raise EventsFolderInUse unless ``folder`` is absent, empty, or one ``write_events`` wrote."""
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).is_file())):
        raise EventsFolderInUse(f"{folder} holds files mailhunt did not write; name an empty or new folder "
                                "for the events as Parquet")


def write_events(store: CaseStore, folder: Path) -> Path:
    """Write every event of the case to ``folder`` (replacing what it held); returns the folder.

    Must run before ``CaseStore.seal_external_access``: afterwards the case
    database writes no file but its own. Raises EventsFolderInUse for a folder it did not write."""
    check_events_folder(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    store.db.execute(
        f"""COPY (SELECT *, CAST({quote("@timestamp")} AS DATE) AS {quote("date")},
                         {quote("event.dataset")} AS {quote("source")} FROM events)
            TO {sql_string(str(folder))}
            (FORMAT parquet, PARTITION_BY ({", ".join(quote(c) for c in PARTITION_COLUMNS)}), COMPRESSION zstd)""")
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.rglob("*.parquet")):  # an empty case writes no partition: give the reader the columns
        store.db.execute(f"""COPY (SELECT * FROM events LIMIT 0) TO {sql_string(str(folder / EMPTY_FILE))}
                             (FORMAT parquet)""")
    (folder / MARKER).write_text("events of the case, as Parquet, written by mailhunt hunt --engine spark\n")
    return folder
