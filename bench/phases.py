#!/usr/bin/env python3
"""Where a hunt's time goes: wall and CPU seconds of each stage, in one process.

    python bench/phases.py FILE [--out DIR] [--no-copy]

Runs ``mailhunt.hunt.hunt`` on FILE (a fresh case in a temporary folder
unless ``--out`` is given) with a timer around each stage function:
loading each input, deduplication, rule loading and compiling, rules,
grouping, triage, findings.json and the reports (``case_outputs`` renders them;
the timeline files are read from the case as ``replace_files`` writes them,
so their time is that stage's). The evidence is copied in a
thread of its own beside the analysis: ``AcquisitionInBackground`` is only its
start; a copy that outlasts the analysis is waited for before the analysis is
saved, and counted only in the whole hunt. CPU seconds count every
thread of the process, so CPU above wall means the stage used both cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import mailhunt.hunt as stages
from mailhunt.config import Config

STAGES = ("load_evidence_file", "settle_new_events", "AcquisitionInBackground", "load_rules", "compile_rules",
          "run_rules", "group_detections", "triage", "rule_matches", "findings_document", "add_case_plans",
          "_add_case_views", "save_analysis", "case_outputs", "replace_files")


def timed(name: str, function, totals: dict):
    def run(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent = totals.get(name, (0.0, 0.0))
            totals[name] = (spent[0] + time.perf_counter() - wall, spent[1] + time.process_time() - cpu)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--out", type=Path, help="case folder (replaced); default: a temporary one")
    parser.add_argument("--no-copy", action="store_true", help="list the evidence with its SHA-256 instead of copying it")
    args = parser.parse_args(argv)
    workdir = None if args.out else Path(tempfile.mkdtemp(prefix="mailhunt-phases-"))
    out = args.out or workdir / "case"
    shutil.rmtree(out, ignore_errors=True)
    totals: dict[str, tuple[float, float]] = {}
    for name in STAGES:
        setattr(stages, name, timed(name, getattr(stages, name), totals))
    wall = time.perf_counter()
    result = stages.hunt([args.file], out, Config(), copy_evidence=not args.no_copy)
    wall = time.perf_counter() - wall
    print(f"{'stage':24} {'wall s':>8} {'CPU s':>8}")
    for name in STAGES:
        if name in totals:
            print(f"{name:24} {totals[name][0]:8.2f} {totals[name][1]:8.2f}")
    records = sum(s.records for s in result.inputs)
    print(f"{'whole hunt':24} {wall:8.2f}    ({records:,} records, {len(result.findings)} findings)")
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
