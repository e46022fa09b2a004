#!/usr/bin/env python3
"""What the value-count correlation's windowed list costs against ``count(DISTINCT v)``, on a kept case.

    python bench/value_count_forms.py CASE_DIR [--repeat N]
    python bench/value_count_forms.py --synthetic ROWS [--groups G] [--hours H] [--repeat N]

The value-count correlations count distinct values over a time window as
``array_length(list_distinct(list(v) OVER w))``, a form Spark SQL also runs;
the earlier form was ``count(DISTINCT v) OVER w``, which Spark lacks. On the
case database of a finished hunt (``bench/phases.py FILE --out CASE_DIR``),
this runs every rule once (``run_rules``, timed: the share to compare with),
then each value-count correlation in both forms, alternately, ``--repeat``
times, checking that both give the same instances. Wall and CPU seconds of
this process; the case is opened as it is, and its matches rewritten the way
a hunt writes them.

A case's value-count correlations see only the events their rules matched,
a few in a realistic case. ``--synthetic ROWS`` measures the window itself
on that many matched events instead: G actors (groups), each event a distinct
value (as ``m365_inbox_rule_burst`` counts ``event.id``), spread evenly over
H hours, counted over the shipped one-hour window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from sigma.correlations import SigmaCorrelationType

from mailhunt.config import Config
from mailhunt.detect.engine import compile_rules, run_rules
from mailhunt.detect.rules import load_rules
from mailhunt.hunt import detection_settings
from mailhunt.store import CaseStore

WINDOWED_LIST = "array_length(list_distinct(list(v) OVER ("
COUNT_DISTINCT = "count(DISTINCT v) OVER ("


def earlier_form(sql: str) -> str:
    """The same correlation with the distinct count as ``count(DISTINCT v)`` over the same window."""
    start = sql.index(WINDOWED_LIST)
    end = sql.index(")) AS measure", start)  # the window's own parenthesis stays
    return sql[:start] + COUNT_DISTINCT + sql[start + len(WINDOWED_LIST):end] + sql[end + len("))"):]


def timed(db, sql: str) -> tuple[float, float, list[tuple]]:
    wall, cpu = time.perf_counter(), time.process_time()
    rows = db.execute(f"SELECT * FROM ({sql}) ORDER BY ALL").fetchall()
    return time.perf_counter() - wall, time.process_time() - cpu, rows


SYNTHETIC = """
CREATE OR REPLACE TEMP TABLE m AS
SELECT 'actor' || (i % ?) AS g0, TIMESTAMP '2026-10-01' + to_microseconds(CAST(i * ? AS BIGINT)) AS ts,
       'event' || i AS v
FROM range(?) t(i)
"""
WINDOW = "OVER (PARTITION BY g0 ORDER BY ts RANGE BETWEEN CURRENT ROW AND INTERVAL '3600 seconds' FOLLOWING)"


def synthetic(rows: int, groups: int, hours: float, repeat: int) -> None:
    import duckdb

    db = duckdb.connect(":memory:")
    db.execute(SYNTHETIC, [groups, hours * 3600e6 / rows, rows])
    per_window = rows / groups / hours
    print(f"{rows:,} matched events, {groups:,} actors over {hours:g} h: about {per_window:,.0f} events "
          "per actor-hour window")
    print(f"{'form':16} {'wall s':>8} {'CPU s':>8}   (mean of {repeat})")
    forms = {"windowed list": f"array_length(list_distinct(list(v) {WINDOW}))",
             "count(DISTINCT)": f"count(DISTINCT v) {WINDOW}"}
    answers = {}
    totals = {name: [0.0, 0.0] for name in forms}
    for _ in range(repeat):
        for name, measure in forms.items():
            wall, cpu, result = timed(db, f"SELECT max(measure), sum(measure) FROM (SELECT {measure} AS measure FROM m)")
            answers.setdefault(name, result)
            totals[name][0] += wall
            totals[name][1] += cpu
    assert answers["windowed list"] == answers["count(DISTINCT)"], answers
    for name, (wall, cpu) in totals.items():
        print(f"{name:16} {wall / repeat:8.3f} {cpu / repeat:8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", type=Path, nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", type=int, metavar="ROWS")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=720.0)
    args = parser.parse_args(argv)
    if args.synthetic:
        synthetic(args.synthetic, args.groups, args.hours, args.repeat)
        return 0
    if args.case is None:
        parser.error("give CASE_DIR or --synthetic ROWS")
    compiled = compile_rules(load_rules(None), detection_settings(Config()))
    value_counts = [(rule, sql) for rule, sql in compiled.correlations
                    if rule.rule.type == SigmaCorrelationType.VALUE_COUNT]
    with CaseStore(args.case / "case.duckdb") as store:
        wall, cpu = time.perf_counter(), time.process_time()
        run_rules(store, compiled)
        print(f"run_rules (every rule and correlation): {time.perf_counter() - wall:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU; {len(value_counts)} value-count correlations")
        print(f"{'correlation':48} {'form':16} {'wall s':>8} {'CPU s':>8} {'rows':>6}")
        totals = {"windowed list": [0.0, 0.0], "count(DISTINCT)": [0.0, 0.0]}
        for rule, sql in value_counts:
            forms = {"windowed list": sql, "count(DISTINCT)": earlier_form(sql)}
            results = {}
            for _ in range(args.repeat):
                for name, text in forms.items():
                    wall, cpu, rows = timed(store.db, text)
                    results.setdefault(name, rows)
                    assert rows == results[name], f"{rule.id}: {name} changed between runs"
                    totals[name][0] += wall
                    totals[name][1] += cpu
                    print(f"{rule.id[:48]:48} {name:16} {wall:8.3f} {cpu:8.3f} {len(rows):6}")
            assert results["windowed list"] == results["count(DISTINCT)"], f"{rule.id}: the forms disagree"
        for name, (wall, cpu) in totals.items():
            print(f"{'all, ' + str(args.repeat) + ' runs each':48} {name:16} {wall:8.3f} {cpu:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
