#!/usr/bin/env python3
"""A lower bound for any EVTX hunt with a DuckDB case store: parse every record and store its JSON, nothing else.

    python bench/evtx_parse_store.py FILE

The ``evtx`` package turns every record into JSON (as ``evtx_parse.py``
does); each record's number and JSON text go into one DuckDB table of a fresh
database file, compressed with zstd as the case store compresses
``event.original``, in inserts of one whole row group while the parser goes
on in the main thread; a checkpoint ends it. No field is read out of the
JSON, no rule runs, nothing else is kept: a hunt that keeps each record's
original in its case store cannot be faster than this. Prints the number of
records. It imports nothing of mailhunt, so its start-up is only the
parser's and DuckDB's.
"""

import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
from evtx import PyEvtxParser

# DuckDB's row group, as ``mailhunt.memory.ROW_GROUP_ROWS`` (not imported, see above).
ROW_GROUP_ROWS = 122_880


def main(path: str) -> int:
    folder = Path(tempfile.mkdtemp(prefix="mailhunt-bench-store-"))
    try:
        db = duckdb.connect(str(folder / "store.duckdb"))
        db.execute("CREATE TABLE records (record_id BIGINT, original VARCHAR USING COMPRESSION zstd)")

        def insert(batch: pa.Table) -> None:
            db.cursor().execute("INSERT INTO records SELECT * FROM batch")

        count = 0
        numbers: list[int] = []
        texts: list[str] = []
        pending = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            for record in PyEvtxParser(path).records_json():
                numbers.append(record["event_record_id"])
                texts.append(record["data"])
                if len(numbers) == ROW_GROUP_ROWS:
                    table = pa.table({"record_id": numbers, "original": texts})
                    count += len(numbers)
                    numbers, texts = [], []
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(insert, table)
            if pending is not None:
                pending.result()
        if numbers:
            insert(pa.table({"record_id": numbers, "original": texts}))
            count += len(numbers)
        db.execute("CHECKPOINT")
        stored = db.execute("SELECT count(*) FROM records").fetchall()[0][0]
        db.close()
        if stored != count:
            raise SystemExit(f"stored {stored} of {count} records")
        return count
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(main(sys.argv[1]))
