#!/usr/bin/env python3
"""The DuckDB reference for the benchmark: load an NDJSON file into a table of a file database.

    python bench/duckdb_load.py FILE.ndjson OUT.duckdb

This is what DuckDB does on its own with the same file (schema detection,
JSON parsing, columnar storage), the floor mailhunt's own load is compared with.
Prints one JSON line: records loaded and columns detected.
"""

from __future__ import annotations

import json
import sys

import duckdb

SQL = "CREATE TABLE audit AS SELECT * FROM read_json(?, format = 'newline_delimited')"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, database = argv
    con = duckdb.connect(database)
    con.execute(SQL, [source])
    records = con.execute("SELECT count(*) FROM audit").fetchone()[0]
    columns = len(con.execute("DESCRIBE audit").fetchall())
    con.close()
    print(json.dumps({"records": records, "columns": columns, "duckdb": duckdb.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
