#!/usr/bin/env python3
"""The floor under any hunt of an NDJSON audit log that keeps each raw record and preserves the evidence.

    python bench/audit_floor.py FILE

Times, one after the other, in one process and without mailhunt:

- **raw lines stored**: every line of FILE into a one-column table of a fresh
  DuckDB database file, compressed with zstd as the case store compresses
  ``event.original``, read by DuckDB's own CSV reader (its threads, no
  quoting, a delimiter no JSON line holds unescaped);
- **copy and hash**: FILE copied in 1 MiB chunks, hashing what is written,
  then synced (the evidence copy);
- **hash**: FILE hashed once more (the loader's SHA-256).

Each line shows wall and CPU seconds. A hunt that keeps every raw record
verbatim in its case and copies the evidence cannot do less than these
three; compare them with ``bench/duckdb_load.py`` on the same file
(``bench/run.py`` runs that) to see what is left of a ratio to DuckDB's load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

CHUNK = 1 << 20


def store_raw_lines(source: Path, folder: Path) -> int:
    db = duckdb.connect(str(folder / "raw.duckdb"))
    try:
        db.execute("CREATE TABLE raw (line VARCHAR USING COMPRESSION zstd)")
        db.execute("""INSERT INTO raw SELECT line FROM read_csv(?, columns = {'line': 'VARCHAR'}, delim = '\x01',
                      quote = '', escape = '', header = false, max_line_size = 100000000)""", [str(source)])
        return db.execute("SELECT count(*) FROM raw").fetchall()[0][0]
    finally:
        db.close()


def copy_and_hash(source: Path, folder: Path) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(folder / "copy", "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def hash_only(source: Path, folder: Path) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n")[2].strip(), file=sys.stderr)
        return 2
    source = Path(argv[0])
    folder = Path(tempfile.mkdtemp(prefix="mailhunt-floor-", dir=source.parent))
    try:
        for label, work in (("raw lines stored", store_raw_lines), ("copy and hash", copy_and_hash),
                            ("hash", hash_only)):
            wall, cpu = time.perf_counter(), time.process_time()
            result = work(source, folder)
            print(f"{label:18} wall {time.perf_counter() - wall:8.2f} s  CPU {time.process_time() - cpu:8.2f} s  "
                  f"({result})", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
