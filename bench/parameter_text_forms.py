#!/usr/bin/env python3
"""What the unified audit log's ``parameters`` text costs built in SQL against built by the Python rule.

    python bench/parameter_text_forms.py FILE.ndjson [--records N] [--repeat R]

The Exchange admin audit reader writes ``parameters`` with
``admin_audit_record._parameter_text`` (``-Name value``, the value quoted when
it is empty or holds a space); the unified audit log's ``PARAM_MAPS_SQL``
writes the same text with ``string_agg``. This stages the first N records of
FILE as one batch, prepares it as the loader does, then builds the text of
every record with parameters both ways, alternately, R times, and checks they
agree:

- SQL: the ``string_agg`` over ``param_rows``, as ``PARAM_MAPS_SQL`` does;
- Python: each record's ordered (name, value) list gathered in SQL, the
  Python rule called once per distinct list of the batch, its answers spread
  back to the records in Arrow and stored as a table (how the cmdlet target
  rule is joined back).

Wall and CPU seconds of this process.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import pyarrow as pa
import pyarrow.compute as pc

from mailhunt.sources.admin_audit_record import _parameter_text
from mailhunt.sources.m365_normalize import StagedAuditRecords, normalizer

SQL_FORM = """
CREATE OR REPLACE TEMP TABLE text_sql AS
SELECT row_index, string_agg('-' || name || ' ' || CASE WHEN value = '' OR contains(value, ' ')
                                                   THEN '"' || value || '"' ELSE value END, ' ' ORDER BY ord) AS parameters
FROM param_rows GROUP BY row_index
"""

LISTS = """
SELECT pairs, list(row_index) AS rows
FROM (SELECT row_index, list(struct_pack(name := name, value := value) ORDER BY ord) AS pairs
      FROM param_rows GROUP BY row_index)
GROUP BY pairs
"""


def python_form(db) -> None:
    keys = db.sql(LISTS).to_arrow_table()
    texts = [_parameter_text([(p["name"], p["value"]) for p in pairs]) for pairs in keys.column("pairs").to_pylist()]
    rows = keys.column("rows").combine_chunks()
    table = pa.table({"row_index": pc.list_flatten(rows),
                      "parameters": pa.array(texts, pa.string()).take(pc.list_parent_indices(rows))})
    db.register("text_rows", table)
    db.execute("CREATE OR REPLACE TEMP TABLE text_python AS SELECT * FROM text_rows")
    db.unregister("text_rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with args.file.open("rb") as stream:
        lines = [line.decode().rstrip("\n") for line in itertools.islice(stream, args.records)]
    batch = StagedAuditRecords(pa.array(lines, pa.large_string()), pa.array(range(1, len(lines) + 1), pa.int64()),
                               None, None, str(args.file), "0" * 64, "line")
    db = normalizer()
    db.register("stage", batch.stage)
    batch._prepare(db)
    with_parameters, distinct_lists = db.execute(
        "SELECT count(DISTINCT row_index), (SELECT count(*) FROM (" + LISTS + ")) FROM param_rows").fetchall()[0]
    print(f"{len(lines):,} records, {with_parameters:,} with listed parameters, {distinct_lists:,} distinct lists")
    totals = {"SQL": [0.0, 0.0], "Python": [0.0, 0.0]}
    for _ in range(args.repeat):
        for name, run in (("SQL", lambda: db.execute(SQL_FORM)), ("Python", lambda: python_form(db))):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            totals[name][0] += time.perf_counter() - wall
            totals[name][1] += time.process_time() - cpu
    differing = db.execute("SELECT count(*) FROM text_sql s FULL JOIN text_python p USING (row_index) "
                           "WHERE s.parameters IS DISTINCT FROM p.parameters").fetchall()[0][0]
    assert differing == 0, f"{differing} records' texts differ"
    print(f"{'form':8} {'wall s':>8} {'CPU s':>8}   (mean of {args.repeat}; both give the same text for every record)")
    for name, (wall, cpu) in totals.items():
        print(f"{name:8} {wall / args.repeat:8.3f} {cpu / args.repeat:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
