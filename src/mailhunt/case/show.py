"""``mailhunt show CASE EVENT_ID``: the raw record of one event, with the file, SHA-256 and locator to find it by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from mailhunt.case.evidence import read_manifest
from mailhunt.store import CaseStore


@dataclass(frozen=True)
class RawRecord:
    event_id: str
    original: str | None
    file: str
    sha256: str
    locator: str
    preserved_as: list[str]


def raw_records(case_dir: Path, event_id: str) -> list[RawRecord]:
    """Every stored copy of the event (one per file it was kept from), in file order."""
    with CaseStore(case_dir / "case.duckdb", read_only=True) as store:
        return raw_records_of(store.db, case_dir, [event_id])


def raw_records_of(db: duckdb.DuckDBPyConnection, case_dir: Path, event_ids: list[str],
                   between: tuple[datetime, datetime] | None = None) -> list[RawRecord]:
    """Every stored copy of these events, by event id then file, from a case database already open.

    ``between`` (naive UTC, inclusive), when the caller knows the events' times, lets DuckDB skip every
    row group outside them instead of reading the whole id column of a large case."""
    since, until = between if between is not None else (None, None)
    cursor = db.execute(
        """SELECT e."event.id" AS event_id, e."event.original" AS original, e."log.file.path" AS file,
                  e."log.file.sha256" AS sha256, e."log.record" AS record, i.locator_unit AS unit
           FROM events e LEFT JOIN inputs i ON i.path = e."log.file.path" AND i.sha256 = e."log.file.sha256"
           WHERE e."event.id" IN (SELECT unnest(?::VARCHAR[]))
             AND (?::TIMESTAMP IS NULL OR e."@timestamp" BETWEEN ?::TIMESTAMP AND ?::TIMESTAMP)
           ORDER BY event_id, file, record""",
        [sorted(set(event_ids)), since, since, until])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    try:
        manifest = read_manifest(case_dir)["files"]
    except (ValueError, OSError):
        manifest = []
    records = []
    for row in rows:
        preserved = [f["evidence_path"] for f in manifest if isinstance(f, dict) and f.get("evidence_path")
                     and _holds(str(f.get("original_path")), row["file"])]
        locator = f"{row['unit'] or 'record'} {row['record']}" if row["record"] is not None else "unknown"
        records.append(RawRecord(row["event_id"], row["original"], row["file"], row["sha256"], locator, preserved))
    return records


def _holds(original: str, read_as: str) -> bool:
    """Whether the file preserved as ``original`` is ``read_as`` or holds it: an archive member is read as
    ``archive.zip!member``, a gzip stream as its name without ``.gz`` (or ``name!gunzip``)."""
    container = read_as.split("!", 1)[0]
    return original in (read_as, container, container + ".gz")
