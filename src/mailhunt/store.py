"""The case database: one DuckDB file per case.

Tables:
- ``events``: one row per normalized event, columns from ``mailhunt.events``;
  deduplicated by ``event.id`` (the copy with the smallest provenance wins,
  so the result does not depend on load order).
- ``inputs``: every evidence file seen, its SHA-256, format, counts and the
  hunt that added it (``hunt``).
- ``hunts``: one row per hunt into the case: number, UTC start, events before and after.
- ``event_sources``: every (file, SHA-256, record) each event was seen in; a
  record read from several files keeps them all, though ``events`` keeps one copy.
- ``report_parts``: the parts of findings.json not held elsewhere (rules skipped,
  matches of rules without an indicator), so ``mailhunt report`` can re-render.
- ``timeline_entries``: the case timeline (``case/timeline.py``), one entry's JSON
  a row in timeline order: it grows with the events of the findings' people and
  hosts, so it is neither one value nor held whole in memory.
- ``rejections``: every bad record (file, locator, reason).
- ``matches`` and ``findings``: written by the detection stage; ``correlation_matches``
  (each correlation instance's events and the referenced rule each matched) and
  ``correlation_steps`` (the rules each correlation that ran correlates, in order) too.
- ``identities``: every logged name resolved to an actor (``detect/identities.py``).
- ``analyst_actions``: dispositions, verification answers and sign-offs recorded by an analyst
  (``case/review.py``, written by ``mailhunt serve``; a hunt never changes it).

The events with resolved actors, tenant and source family (the relation
detection and triage read) and the questions asked of them are
``CaseStore.resolved`` (``mailhunt.case_queries``).
- ``loading``: one row while a hunt loads evidence. A load cut short (Ctrl-C,
  a crash) may have committed part of a file's events without the file's
  ``inputs`` row, which is written last; ``drop_unrecorded_events`` removes
  such rows, so a file is either in the case whole, with its ``inputs`` row,
  or not at all, and a later hunt reads it again.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt import memory
from mailhunt.case_queries import ResolvedEvents
from mailhunt.events import COLUMNS, SCHEMA, out_of_range, sql_within_time_range
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.base import Batch
from mailhunt.sql_text import sql_identifier

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.timestamp("us"): "TIMESTAMP",
}


def quote(name: str) -> str:
    """``name`` as a quoted DuckDB identifier."""
    return sql_identifier(name)


def _duck_type(column) -> str:
    if pa.types.is_map(column.type):
        return "MAP(VARCHAR, VARCHAR)"
    return _DUCK_TYPES[column.type]


# The raw records are most of the bytes: zstd stores a typical audit export in
# about a seventh of its size and writes faster than DuckDB's default string
# compression, or than no compression, because so much less reaches the disk.
COMPRESSION = {"event.original": "zstd"}

EVENTS_DDL = "CREATE TABLE IF NOT EXISTS events (" + ", ".join(
    f"{quote(c.name)} {_duck_type(c)}"
    + (f" USING COMPRESSION {COMPRESSION[c.name]}" if c.name in COMPRESSION else "")
    for c in COLUMNS
) + ")"

OTHER_DDL = (
    """CREATE TABLE IF NOT EXISTS inputs (
        path VARCHAR, sha256 VARCHAR, format VARCHAR, records BIGINT, rejected BIGINT,
        new_events BIGINT, skipped_reason VARCHAR, locator_unit VARCHAR, PRIMARY KEY (path, sha256))""",
    "CREATE TABLE IF NOT EXISTS rejections (path VARCHAR, sha256 VARCHAR, locator VARCHAR, reason VARCHAR)",
    "CREATE TABLE IF NOT EXISTS matches (rule_id VARCHAR, event_id VARCHAR)",
    "CREATE TABLE IF NOT EXISTS correlation_matches (rule_id VARCHAR, instance VARCHAR, event_id VARCHAR, step_rule_id VARCHAR)",
    "CREATE TABLE IF NOT EXISTS correlation_steps (rule_id VARCHAR, position INTEGER, step_rule_id VARCHAR)",
    "CREATE TABLE IF NOT EXISTS identities (alias VARCHAR PRIMARY KEY, actor VARCHAR, basis VARCHAR, note VARCHAR)",
    "CREATE TABLE IF NOT EXISTS findings (id VARCHAR PRIMARY KEY, indicator VARCHAR, document JSON)",
    "CREATE TABLE IF NOT EXISTS loading (since VARCHAR)",
    """CREATE TABLE IF NOT EXISTS hunts (id INTEGER PRIMARY KEY, started_at VARCHAR, events_before BIGINT,
        events_after BIGINT)""",
    "CREATE TABLE IF NOT EXISTS event_sources (event_id VARCHAR, path VARCHAR, sha256 VARCHAR, record BIGINT)",
    "CREATE TABLE IF NOT EXISTS report_parts (name VARCHAR PRIMARY KEY, document JSON)",
    "CREATE TABLE IF NOT EXISTS timeline_entries (position BIGINT, entry VARCHAR)",
)
# Columns added to tables after cases were first written: (table, column, type). An older case
# gains them when opened (empty for its rows; ``_upgrade_to_hunts`` fills what can be known).
ADDED_COLUMNS = (
    ("inputs", "hunt", "INTEGER"),
    ("inputs", "notes", "VARCHAR[]"),
    ("rejections", "seq", "BIGINT"),
    ("findings", "position", "INTEGER"),
)


# DuckDB would otherwise cache up to 80% of the machine's memory; a case must
# stay well inside a responder's laptop, so it spills to disk past its share of
# the hunt's memory budget (``mailhunt.memory``; 512 MB unless --memory-limit).
BULK_ROWS = 2 * ROW_GROUP_ROWS
# Staged batches are mapped and inserted by this many connections at once: one
# batch's mapping runs mostly on one core (its intermediate tables are a single
# row group), so two at a time keep both cores busy.
STAGED_WORKERS = 2
# Each of those connections commits once it has appended at least
# ``memory.budget().committed_rows`` rows (a row group, unless --memory-limit
# is below 1 GiB): every second audit-log batch, every sixth EVTX batch. A
# commit of a whole row group is written to the database file compressed,
# once; a smaller one goes through the write-ahead log first, which cost 6%
# more CPU in a 1M-record hunt (bench/README.md). What a transaction appended
# stays in DuckDB's memory until it commits (about 130 MB a half row group of
# audit records); the staged batches' Arrow buffers do not, as they are scanned
# through relations.


# Staged batches smaller than this (the records of small files) are mapped together, as one batch,
# with the next ones, when their class can ``combine`` them: the mapping's cost is mostly per batch.
COMBINED_ROWS = 20_000


# Rows the store writes in one statement for many files, as the Arrow tables they are scanned from
# (through a relation: a view registered inside the loading transaction would live until it commits).
_INPUT_ROWS = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("format", pa.string()),
                         ("records", pa.int64()), ("rejected", pa.int64()), ("new_events", pa.int64()),
                         ("skipped_reason", pa.string()), ("locator_unit", pa.string()), ("hunt", pa.int32()),
                         ("notes", pa.list_(pa.string()))])
_REJECTION_ROWS = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("locator", pa.string()),
                             ("reason", pa.string()), ("seq", pa.int64())])
_FLAGGED_ROWS = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("record", pa.int64()),
                           ("keys", pa.string())])
_COUNT_ROWS = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("new_events", pa.int64())])


def _rows_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Python rows (one value per field of ``schema``, in its order) as an Arrow table of ``schema``."""
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(column, field.type) for column, field in zip(columns, schema, strict=True)],
                                schema=schema)


def report_not_stored(batch: Batch, exc: Exception) -> None:
    """Say in the batch's own report that its records were read but could not be stored, and why."""
    unit = getattr(batch, "unit", "record")
    stage = getattr(batch, "stage", None)  # None once stored
    locators = stage.column("locator") if stage is not None else None
    where = (f" ({unit}s {pc.min(locators).as_py()} to {pc.max(locators).as_py()})"
             if locators is not None and len(locators) else "")
    batch.context.reject("end", f"{batch.num_rows} records{where} were read but could not be stored "
                                f"({type(exc).__name__}: {str(exc)[:200]})")


class StagedInserts:
    """Staged batches mapped and inserted by several connections at once, each in bulk
    transactions of its own (appends to one table from several transactions never conflict).

    ``submit`` blocks while ``workers`` batches are in flight, so memory stays
    bounded; a batch's error is raised by a later ``submit`` or by ``wait``.

    With ``combine_rows``, small batches wait until those waiting hold that many
    rows, and are then mapped as one (``combine``). Such a batch is committed on
    its own, so that when it fails each of its parts can be stored alone; a part
    that still fails is reported in its own context (``failed``), so the file it
    came from, and only that file, says which of its records were not stored."""

    def __init__(self, db: duckdb.DuckDBPyConnection, workers: int = STAGED_WORKERS, combine_rows: int = 0):
        self._db = db
        self._workers = workers
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="mailhunt-load")
        self._pending: deque = deque()
        self._combine_rows = combine_rows
        self._waiting: list = []
        self._waiting_rows = 0

    def _connection(self):
        local = self._local
        if not hasattr(local, "cursor"):
            cursor = self._db.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute("BEGIN TRANSACTION")
            local.cursor, local.rows, local.uncommitted = cursor, 0, []
            with self._lock:
                self._cursors.append(cursor)
        return local

    def _commit(self, local) -> None:
        local.cursor.execute("COMMIT")
        local.cursor.execute("BEGIN TRANSACTION")
        local.rows, local.uncommitted = 0, []

    def _roll_back(self, local, exc: Exception) -> None:
        """Drop the connection's open transaction after ``exc``; every batch it held reports itself not stored."""
        local.cursor.execute("ROLLBACK")
        local.cursor.execute("BEGIN TRANSACTION")
        for lost in local.uncommitted:
            report_not_stored(lost, exc)
        local.rows, local.uncommitted = 0, []

    def _insert(self, batch: Batch) -> None:
        local = self._connection()
        if not self._combine_rows:
            batch.insert_into(local.cursor, "events")
        else:
            try:
                batch.insert_into(local.cursor, "events")
            except duckdb.InterruptException:
                raise
            except Exception as exc:  # noqa: BLE001 - reported against the file the batch came from
                self._roll_back(local, exc)
                report_not_stored(batch, exc)
                return
            local.uncommitted.append(batch)
        local.rows += batch.num_rows
        if local.rows >= memory.budget().committed_rows:
            self._commit(local)

    def _insert_combined(self, batch) -> None:
        local = self._connection()
        if local.rows:
            self._commit(local)  # what came before is kept whatever happens to this batch
        try:
            batch.insert_into(local.cursor, "events")
            self._commit(local)
        except duckdb.InterruptException:
            raise
        except Exception:  # noqa: BLE001 - one part's records must not cost the other files theirs
            local.cursor.execute("ROLLBACK")
            local.cursor.execute("BEGIN TRANSACTION")
            for part in batch.parts:
                try:
                    part.insert_into(local.cursor, "events")
                    self._commit(local)
                except duckdb.InterruptException:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported against the part's file
                    self._roll_back(local, exc)
                    report_not_stored(part, exc)

    def wait_for_room(self) -> None:
        """Wait until fewer than ``workers`` batches are in flight (raising the first error of one)."""
        while len(self._pending) >= self._workers:
            self._pending.popleft().result()

    def _submit(self, work, batch) -> None:
        self.wait_for_room()
        self._pending.append(self._pool.submit(work, batch))

    def _submit_waiting(self) -> None:
        if not self._waiting:
            return
        batches, self._waiting, self._waiting_rows = self._waiting, [], 0
        self._submit(self._insert_combined, type(batches[0]).combine(batches))

    def submit(self, batch: Batch) -> None:
        combinable = self._combine_rows and batch.num_rows < self._combine_rows and hasattr(batch, "combine")
        if self._waiting and not (combinable and type(batch) is type(self._waiting[0])):
            self._submit_waiting()
        if not combinable:
            self._submit(self._insert, batch)
            return
        self._waiting.append(batch)
        self._waiting_rows += batch.num_rows
        if self._waiting_rows >= self._combine_rows:
            self._submit_waiting()

    def wait(self) -> None:
        self._submit_waiting()
        while self._pending:
            self._pending.popleft().result()

    def commit(self) -> None:
        """Wait for every batch submitted, then commit each connection's transaction and begin the next."""
        self.wait()
        for cursor in self._cursors:
            cursor.execute("COMMIT")
            cursor.execute("BEGIN TRANSACTION")

    def close(self, commit: bool) -> None:
        """Wait for the batches in flight, then commit (or roll back) every connection's last transaction."""
        if commit:
            self._submit_waiting()
        self._waiting, self._waiting_rows = [], 0
        self._pool.shutdown(wait=True)
        self._pending.clear()
        for cursor in self._cursors:
            try:
                cursor.execute("COMMIT" if commit else "ROLLBACK")
            except duckdb.Error:  # a batch that failed left its transaction aborted
                cursor.execute("ROLLBACK")
            cursor.close()


class CaseOpenError(Exception):
    """The case database cannot be opened: in use by another process, not a DuckDB file, or not a case."""


_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


def _open_error(path: str, exc: duckdb.Error) -> CaseOpenError:
    """One sentence for the analyst about why ``path`` did not open (DuckDB's own message is kept as the cause)."""
    name = Path(path).name
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Could not set lock" in message or "Conflicting lock" in message:
        holder = _LOCK_HOLDER.search(message)
        who = f"process {holder.group(1)}" if holder else "another process"
        return CaseOpenError(f"{name} is in use by {who} (another hunt, or a program reading the case); "
                             "wait for it to finish or stop it, then run again")
    if "not a valid DuckDB database" in message:
        return CaseOpenError(f"{name} is not a DuckDB database (damaged, emptied, or another file); "
                             "move it away or hunt into a new folder")
    return CaseOpenError(f"{name} cannot be opened as a case: {message}")


class CaseStore:
    """A case database opened for reading and writing.

    Raises CaseOpenError when the file cannot be opened or set up as a case."""

    def __init__(self, path: Path | str, read_only: bool = False):
        self.path = str(path)
        self._bulk_rows: int | None = None
        self._staged: StagedInserts | None = None
        try:
            self.db = duckdb.connect(self.path, read_only=read_only,
                                     config={"memory_limit": memory.budget().case_database,
                                             "preserve_insertion_order": False})
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from exc
        try:
            self.db.execute("SET TimeZone = 'UTC'")
            if not read_only:
                self.db.execute(EVENTS_DDL)
                self._add_new_columns()
                had_sources = self._has_table("event_sources")
                for ddl in OTHER_DDL:
                    self.db.execute(ddl)
                for table, column, duck_type in ADDED_COLUMNS:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(column)} {duck_type}")
                self._upgrade_to_hunts(had_sources)
                self._reject_times_out_of_range()
        except duckdb.Error as exc:
            self.db.close()
            raise _open_error(self.path, exc) from exc
        self.resolved = ResolvedEvents(self.db)

    def _add_new_columns(self) -> None:
        """Bring a case written by an earlier mailhunt up to this event model.

        Columns are only ever added to the model, so an older case gains the
        new ones (empty for the events it already holds) and keeps everything."""
        present = {row[0] for row in self.db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'").fetchall()}
        for column in COLUMNS:
            if column.name not in present:
                self.db.execute(f"ALTER TABLE events ADD COLUMN {quote(column.name)} {_duck_type(column)}")

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                               [name]).fetchall()[0][0] > 0

    def _upgrade_to_hunts(self, had_sources: bool) -> None:
        """Bring a case written before hunts were recorded up to date, in place.

        Its inputs become hunt 1, of unknown time (``started_at`` null), and each
        of its stored events gets the one source it kept (the other copies were
        removed by that mailhunt's deduplication and cannot be known)."""
        if not had_sources:
            self.db.execute("""INSERT INTO event_sources SELECT "event.id", "log.file.path", "log.file.sha256",
                               "log.record" FROM events""")
        if self.db.execute("SELECT count(*) FROM inputs WHERE hunt IS NULL").fetchall()[0][0]:
            first = self.db.execute("SELECT coalesce(min(id), 1) FROM hunts").fetchall()[0][0]
            if not self.db.execute("SELECT count(*) FROM hunts WHERE id = ?", [first]).fetchall()[0][0]:
                count = self.event_count()
                self.db.execute("INSERT INTO hunts VALUES (?, NULL, 0, ?)", [first, count])
            self.db.execute("UPDATE inputs SET hunt = ? WHERE hunt IS NULL", [first])

    def begin_hunt(self, started_at: str) -> int:
        """Record a new hunt into this case (``started_at``: its UTC start, ISO-8601 with ``Z``); returns its number."""
        number = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM hunts").fetchall()[0][0]
        self.db.execute("INSERT INTO hunts VALUES (?, ?, NULL, NULL)", [number, started_at])
        return number

    def hunts(self) -> list[dict]:
        return self.query("SELECT id, started_at, events_before, events_after FROM hunts ORDER BY id")

    def _reject_times_out_of_range(self) -> None:
        """Move out events an earlier mailhunt stored with a time outside years 1-9999.

        Readers reject such times now; a case loaded before they did may hold
        some, on which every later stage would fail. Each becomes a rejection
        of its input (counted in ``inputs.rejected``), as if read today."""
        outside = f'NOT {sql_within_time_range(quote("@timestamp"))}'
        rows = self.db.execute(
            f"""SELECT e."log.file.path", e."log.file.sha256",
                       coalesce(i.locator_unit, 'line') || ' ' || coalesce(CAST(e."log.record" AS VARCHAR), '?'),
                       CAST(e."@timestamp" AS VARCHAR)
                FROM events e LEFT JOIN inputs i ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256"
                WHERE {outside}""").fetchall()
        if not rows:
            return
        self.db.executemany("INSERT INTO rejections (path, sha256, locator, reason) VALUES (?, ?, ?, ?)", [
            (path, sha256, locator, f"{out_of_range(stamp)}; removed from the case (stored by an earlier mailhunt)")
            for path, sha256, locator, stamp in rows])
        self.db.execute(f"""UPDATE inputs SET rejected = rejected + n, new_events = greatest(new_events - n, 0)
                            FROM (SELECT "log.file.path" AS p, "log.file.sha256" AS h, count(*) AS n
                                  FROM events WHERE {outside} GROUP BY 1, 2) removed
                            WHERE inputs.path = removed.p AND inputs.sha256 = removed.h""")
        self.db.execute(f"DELETE FROM events WHERE {outside}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def event_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchall()[0][0]

    def append(self, batch: Batch) -> None:
        """Append a batch of events, or staged records mapped here; call ``deduplicate`` once loading is done.

        A staged batch reports what its mapping rejected in ``batch.context``; within
        ``bulk_load`` it is mapped concurrently with the next ones, and its report is
        complete after ``wait_staged``."""
        if self._staged is not None and not isinstance(batch, pa.Table):
            self._staged.submit(batch)
            return
        if isinstance(batch, pa.Table):
            if batch.schema != SCHEMA:
                batch = batch.cast(SCHEMA)
            # Scanned through a relation, not a registered view: a view dropped inside the loading
            # transaction would keep the batch's buffers alive until that transaction commits.
            self.db.from_arrow(batch).query("_batch", "INSERT INTO events BY NAME SELECT * FROM _batch")
        else:
            batch.insert_into(self.db, "events")
        if self._bulk_rows is not None:
            self._bulk_rows += batch.num_rows
            if self._bulk_rows >= BULK_ROWS:
                self.db.execute("COMMIT")
                self.db.execute("BEGIN TRANSACTION")
                self._bulk_rows = 0

    @contextmanager
    def bulk_load(self, combine_rows: int = 0):
        """Transactions of ``BULK_ROWS`` rows around a file's batches: DuckDB then writes
        full row groups straight to the database file instead of through its write-ahead
        log, while what a transaction holds in memory stays bounded.

        With ``combine_rows`` (a hunt's loading of many files, ``StagedInserts``) small staged
        batches are mapped together, and a batch that cannot be stored is reported in its own
        context instead of raised; ``commit_bulk`` makes everything appended so far permanent."""
        self._bulk_rows = 0
        self._staged = StagedInserts(self.db, combine_rows=combine_rows)
        # Loading is parallel already (a reader thread, STAGED_WORKERS connections):
        # DuckDB's own threads on top only contend with them for the two cores.
        threads = self.db.execute("SELECT current_setting('threads')").fetchall()[0][0]
        self.db.execute("SET threads = 1")
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self._staged.close(commit=False)
            self.db.execute("ROLLBACK")
            raise
        else:
            self._staged.close(commit=True)
            self.db.execute("COMMIT")
        finally:
            self.db.execute(f"SET threads = {threads}")
            self._bulk_rows, self._staged = None, None

    def wait_for_room(self) -> None:
        """Within ``bulk_load``: wait until a staged batch can be submitted without waiting, so that
        the caller reads the next batch only when there is room for it (outside, nothing to wait for)."""
        if self._staged is not None:
            self._staged.wait_for_room()

    def commit_bulk(self) -> None:
        """Within ``bulk_load``: wait for every staged batch appended so far, commit them and this
        connection's appends, and go on in new transactions."""
        assert self._staged is not None, "commit_bulk is for bulk_load"
        self._staged.commit()
        self.db.execute("COMMIT")
        self.db.execute("BEGIN TRANSACTION")
        self._bulk_rows = 0

    def wait_staged(self) -> None:
        """Wait until every staged batch appended so far is in; raises the first error one of them met."""
        if self._staged is not None:
            self._staged.wait()

    def seal_external_access(self) -> None:
        """From now on this database reads and writes no file but its own, and loads no extension.

        Called once the evidence is loaded, before rules run: the SQL compiled
        from a stranger's rule is checked, and this is the defence behind that
        check, so that a bug in it does not become file access (``read_text``,
        ``COPY ... TO``, ``ATTACH``, ``INSTALL``/``LOAD``). The configuration is
        locked, so no statement can switch it back. DuckDB still spills to its
        own temporary folder and writes the case file.
        """
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")

    def deduplicate(self) -> int:
        """Keep one row per event id; returns how many copies were removed.

        The copy kept is the one with the most parameter values (the same
        Exchange admin audit entry exported as XML keeps them, a plain CSV
        export loses them), then the one an earlier hunt read (a record keeps its
        source when it arrives again), then the first by file and record. Every
        copy's (file, record) stays in ``event_sources``. The ids that
        occur more than once are found first, so the ordering that picks the
        copy to keep only runs over those rows."""
        self.db.execute("""CREATE OR REPLACE TEMP TABLE duplicated_ids AS
                           SELECT "event.id" AS id FROM events GROUP BY 1 HAVING count(*) > 1""")
        try:
            if not self.db.execute("SELECT count(*) FROM duplicated_ids").fetchall()[0][0]:
                return 0
            return self.db.execute(
                """DELETE FROM events WHERE rowid IN (
                     SELECT rowid FROM (
                       SELECT e.rowid, row_number() OVER (
                         PARTITION BY e."event.id"
                         ORDER BY coalesce(len(list_filter(map_values(e."params"), lambda v: coalesce(v, '') <> '')), 0)
                                  DESC, i.hunt NULLS LAST, e."log.file.path", e."log.record", e.rowid) AS copy
                       FROM events e LEFT JOIN inputs i ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256"
                       WHERE e."event.id" IN (SELECT id FROM duplicated_ids)) WHERE copy > 1)"""
            ).fetchall()[0][0]
        finally:
            self.db.execute("DROP TABLE IF EXISTS duplicated_ids")

    def record_input(self, path: str, sha256: str, fmt: str | None, records: int, rejected: int,
                     new_events: int | None, skipped_reason: str | None, locator_unit: str = "line",
                     hunt: int | None = None, notes: list[str] | None = None) -> None:
        """Record an input of hunt ``hunt``; ``new_events`` None means not yet counted (``settle_sources``)."""
        self.db.execute(
            """INSERT OR REPLACE INTO inputs (path, sha256, format, records, rejected, new_events, skipped_reason,
                                              locator_unit, hunt, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [path, sha256, fmt, records, rejected, new_events, skipped_reason, locator_unit, hunt, notes or []],
        )

    def record_inputs(self, rows: list[tuple]) -> None:
        """Record many inputs in one statement; each row holds ``record_input``'s arguments in its order."""
        if not rows:
            return
        inputs = _rows_table([(*row[:9], list(row[9] or [])) for row in rows], _INPUT_ROWS)
        self.db.from_arrow(inputs).query("_inputs", """
            INSERT OR REPLACE INTO inputs (path, sha256, format, records, rejected, new_events, skipped_reason,
                                           locator_unit, hunt, notes)
            SELECT path, sha256, format, records, rejected, new_events, skipped_reason, locator_unit, hunt, notes
            FROM _inputs""")

    def record_rejections(self, sha256: str, rejections) -> None:
        if rejections:
            self.record_rejections_of_files([(rejections[0].path, sha256, rejections)])

    def record_rejections_of_files(self, files: list[tuple[str, str, list]]) -> None:
        """Each (path, sha256, rejections): the file's rejections replace any it had, in their order; in two
        statements for all the files (a statement per file would scan the table once per file)."""
        files = [(path, sha256, rejections) for path, sha256, rejections in files if rejections]
        if not files:
            return
        rows = _rows_table([(path, sha256, r.locator, r.reason, seq)
                            for path, sha256, rejections in files for seq, r in enumerate(rejections)], _REJECTION_ROWS)
        self.db.from_arrow(rows).query("_rejections", """
            DELETE FROM rejections WHERE (path, sha256) IN (SELECT DISTINCT (path, sha256) FROM _rejections)""")
        self.db.from_arrow(rows).query("_rejections", """
            INSERT INTO rejections (path, sha256, locator, reason, seq)
            SELECT path, sha256, locator, reason, seq FROM _rejections""")

    def settle_sources(self, hunt: int) -> dict[tuple[str, str], int]:
        """Once loading is done: note every (file, record) each new event was seen in, deduplicate, and
        count what the case gained, measured on the database.

        The inputs not yet counted (this hunt's, and those of a hunt stopped after
        storing them) get their ``new_events``: the events kept from the file whose id the
        case did not hold before. The hunt row gets the event count before and after,
        which those add up to. Returns (path, sha256) -> new events for those inputs."""
        unsettled = """(SELECT path, sha256 FROM inputs WHERE new_events IS NULL AND skipped_reason IS NULL)"""
        self.db.execute("CREATE OR REPLACE TEMP TABLE held_ids AS SELECT DISTINCT event_id AS id FROM event_sources")
        before = self.db.execute("SELECT count(*) FROM held_ids").fetchall()[0][0]
        # An anti-join, not EXCEPT: a set difference would first make the new rows distinct, one hash table
        # of every new row (10M rows spill under the case's memory limit). A row stored twice is harmless:
        # ``event_sources_of`` lists each once.
        self.db.execute(f"""INSERT INTO event_sources SELECT e."event.id", e."log.file.path", e."log.file.sha256",
                                   e."log.record"
                            FROM events e JOIN {unsettled} u
                              ON u.path = e."log.file.path" AND u.sha256 = e."log.file.sha256"
                            WHERE NOT EXISTS (SELECT 1 FROM event_sources s
                                              WHERE s.event_id = e."event.id" AND s.path = e."log.file.path"
                                                AND s.sha256 = e."log.file.sha256"
                                                AND s.record IS NOT DISTINCT FROM e."log.record")""")
        self.deduplicate()
        counted = {(path, sha256): count for path, sha256, count in self.db.execute(
            f"""SELECT u.path, u.sha256, count(e.id) FROM {unsettled} u
                LEFT JOIN (SELECT "event.id" AS id, "log.file.path" AS path, "log.file.sha256" AS sha256
                           FROM events ANTI JOIN held_ids h ON h.id = events."event.id") e
                  ON u.path = e.path AND u.sha256 = e.sha256 GROUP BY 1, 2""").fetchall()}
        self.db.execute("DROP TABLE IF EXISTS held_ids")
        self.db.execute("BEGIN TRANSACTION")
        if counted:  # one statement for all inputs: one UPDATE an input would take 270 s at 100,000 files
            counts = _rows_table([(path, sha256, count) for (path, sha256), count in counted.items()], _COUNT_ROWS)
            self.db.from_arrow(counts).query("counts", """
                UPDATE inputs SET new_events = c.new_events FROM counts c
                WHERE inputs.path = c.path AND inputs.sha256 = c.sha256""")
        self.db.execute("UPDATE hunts SET events_before = ?, events_after = (SELECT count(*) FROM events) "
                        "WHERE id = ?", [before, hunt])
        self.db.execute("COMMIT")
        return counted

    def event_sources_of(self, event_ids: list[str]) -> dict[str, list[tuple[str, str, int | None, str]]]:
        """Event id -> every (path, sha256, record, locator unit) it was seen in, in (path, record) order, each
        once (``settle_sources`` may have stored one twice: the rows come in order, so a repeat is the row
        before it)."""
        if not event_ids:
            return {}
        rows = self.db.execute(
            """SELECT s.event_id, s.path, s.sha256, s.record, coalesce(i.locator_unit, 'line')
               FROM event_sources s LEFT JOIN inputs i ON i.path = s.path AND i.sha256 = s.sha256
               WHERE s.event_id IN (SELECT unnest(?))
               ORDER BY s.event_id, s.path, s.record, s.sha256""", [event_ids]).fetchall()
        found: dict[str, list] = {}
        previous = None
        for row in rows:
            if row != previous:
                event_id, path, sha256, record, unit = previous = row
                found.setdefault(event_id, []).append((path, sha256, record, unit))
        return found

    def begin_loading(self) -> None:
        """Note that evidence is being loaded, until ``end_loading``; if a crash comes first, the next
        hunt finds the note (``loading_was_cut_short``) and drops what the cut-off load left."""
        self.db.execute("INSERT INTO loading VALUES (CAST(current_timestamp AS VARCHAR))")

    def end_loading(self) -> None:
        self.db.execute("DELETE FROM loading")

    def loading_was_cut_short(self) -> bool:
        return self.db.execute("SELECT count(*) FROM loading").fetchall()[0][0] > 0

    def drop_unrecorded_events(self, path: str | None = None) -> int:
        """Remove events of no loaded input (of ``path`` only, when given); returns how many.

        A file's ``inputs`` row is written after all its events, so these are
        the part-loaded events of a load that did not finish; an earlier,
        complete load of the same path is kept."""
        unrecorded = """NOT EXISTS (SELECT 1 FROM inputs WHERE inputs.path = events."log.file.path"
                          AND inputs.sha256 = events."log.file.sha256" AND inputs.skipped_reason IS NULL)"""
        if path is None:
            return self.db.execute(f"DELETE FROM events WHERE {unrecorded}").fetchall()[0][0]
        return self.db.execute(f'DELETE FROM events WHERE "log.file.path" = ? AND {unrecorded}', [path]).fetchall()[0][0]

    def mark_duplicate_keys(self, path: str, sha256: str, flagged: dict[int, str]) -> None:
        """Mark the events of ``flagged`` records (line or record number -> the keys a JSON object of
        the record names twice) with ``labels.duplicate_keys``."""
        self.mark_duplicate_keys_of_files([(path, sha256, flagged)])

    def mark_duplicate_keys_of_files(self, files: list[tuple[str, str, dict[int, str]]]) -> None:
        """``mark_duplicate_keys`` for each (path, sha256, flagged), in one statement for all the files."""
        rows = [(path, sha256, record, keys) for path, sha256, flagged in files for record, keys in flagged.items()]
        if not rows:
            return
        self.db.from_arrow(_rows_table(rows, _FLAGGED_ROWS)).query("_flagged", """
            UPDATE events SET labels = map_concat(coalesce(labels, MAP {}), MAP(['duplicate_keys'], [f.keys]))
            FROM _flagged f
            WHERE "log.file.path" = f.path AND "log.file.sha256" = f.sha256 AND "log.record" = f.record""")

    def known_path(self, path: str) -> bool:
        """Whether an input of this path, whatever its content, was hunted into this case before."""
        return self.db.execute("SELECT count(*) FROM inputs WHERE path = ?", [path]).fetchall()[0][0] > 0

    def known_input(self, path: str, sha256: str) -> bool:
        row = self.db.execute(
            "SELECT count(*) FROM inputs WHERE path = ? AND sha256 = ? AND skipped_reason IS NULL",
            [path, sha256]).fetchall()[0]
        return row[0] > 0

    def inputs(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM inputs ORDER BY path, sha256")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        cur = self.db.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
