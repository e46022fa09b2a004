#!/usr/bin/env python3
"""The Windows mapping's two implementations on the same records: SQL (DuckDB) and Python.

    python bench/windows_mapping.py bench/out/evtx-3000.evtx                 # the reader's batch size
    python bench/windows_mapping.py bench/out/evtx-3000.evtx --batch 500 2000 20480
    python bench/windows_mapping.py bench/out/evtx-exchange-800.evtx --records 12000

Reads the file's records with the ``evtx`` package as the EVTX reader does
(each record's JSON text and number), then, in this one process, maps the same
records in batches of ``--batch`` records through ``WindowsEventStream`` twice:
once as ``add_batch`` does (SQL for a batch of ``SQL_MIN_RECORDS`` or more,
Python for the records SQL leaves to it) and once in Python only (what a batch
below ``SQL_MIN_RECORDS`` gets). Both runs are single-threaded in the caller
(no parallel batches), so wall and CPU seconds are the mapping's own; DuckDB's
own threads count in the CPU seconds. The events of both runs are compared;
the run fails (exit 1) when they differ.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import pyarrow as pa
from evtx import PyEvtxParser

from mailhunt.sources import ReadContext
from mailhunt.sources.windows_evtx import BATCH_RECORDS
from mailhunt.sources.windows_stream import SQL_MIN_RECORDS, WindowsEventStream


def read_records(path: Path, limit: int | None) -> tuple[list[str], list[int]]:
    texts, locators = [], []
    for record in PyEvtxParser(str(path)).records_json():
        texts.append(record["data"])
        locators.append(record["event_record_id"])
        if limit and len(texts) >= limit:
            break
    return texts, locators


def map_all(texts: list[str], locators: list[int], batch: int, path: Path, python_only: bool
            ) -> tuple[pa.Table, float, float]:
    """All records mapped in batches of ``batch``; the events, wall and CPU seconds."""
    ctx = ReadContext(str(path), "0" * 64)
    stream = WindowsEventStream(ctx, "record")
    tables = []
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        part, numbers = texts[start:start + batch], locators[start:start + batch]
        if python_only:
            tables.extend(stream.add_normalized(part, numbers, None, [], [], None))
        else:
            tables.extend(stream.add_batch(part, numbers))
    tables.extend(stream.finish())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    events = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    return events, wall, cpu


def comparable(events: pa.Table) -> list[dict]:
    return sorted(events.to_pylist(), key=lambda event: (event["log.record"], event["event.action"] or ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("evtx", type=Path)
    parser.add_argument("--records", type=int, help="map only the first N records")
    parser.add_argument("--batch", type=int, nargs="+", default=[BATCH_RECORDS],
                        help=f"records a batch (default: the EVTX reader's {BATCH_RECORDS})")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each path, alternating")
    args = parser.parse_args(argv)
    texts, locators = read_records(args.evtx, args.records)
    print(f"{args.evtx.name}: {len(texts):,} records; SQL_MIN_RECORDS = {SQL_MIN_RECORDS:,}")
    print(f"{'batch':>7} {'path':>8} {'wall s':>8} {'CPU s':>8} {'records/s':>10} {'records/CPU s':>14} {'events':>8}")
    same = True
    for batch in args.batch:
        outputs = {}
        for _ in range(args.repeat):
            for label, python_only in (("SQL", False), ("Python", True)):
                events, wall, cpu = map_all(texts, locators, batch, args.evtx, python_only)
                outputs[label] = events
                sql_used = not python_only and batch >= SQL_MIN_RECORDS
                name = label if python_only or sql_used else "Python*"
                print(f"{batch:7,} {name:>8} {wall:8.2f} {cpu:8.2f} {len(texts) / wall:10,.0f} "
                      f"{len(texts) / cpu:14,.0f} {events.num_rows:8,}", flush=True)
        equal = comparable(outputs["SQL"]) == comparable(outputs["Python"])
        same = same and equal
        print(f"{batch:7,} events of both paths {'identical' if equal else 'DIFFER'}")
    print("(Python*: a batch below SQL_MIN_RECORDS, which add_batch maps in Python too)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
