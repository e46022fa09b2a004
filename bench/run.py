#!/usr/bin/env python3
"""Benchmark mailhunt end to end against DuckDB's own NDJSON load of the same file.

    python bench/run.py --records 2000000            # the target run
    python bench/run.py --records 20000 --keep       # a quick one, keeping the case and the database

In one run it:

1. generates ``bench/out/ual-<N>-s<seed>.ndjson`` with ``bench/generate.py``
   (or reuses it when it is already there) and reads it once so both
   contenders start with the file in the page cache;
2. runs ``python -m mailhunt.cli hunt FILE --out DIR`` as a child process and
   measures its wall time and peak RSS (``os.wait4`` gives the rusage of that
   one child, ``ru_maxrss``);
3. runs ``bench/duckdb_load.py FILE DB`` (DuckDB ``read_json(...,
   format='newline_delimited')`` into a table of a file database) the same way;
4. prints a table, the mailhunt/DuckDB ratios for time and RSS, the exact
   command lines, and checks mailhunt against the targets (>= 50,000 records/s
   end to end, peak RSS < 2 GB, set for 2,000,000 records).

Results are also written to ``bench/out/results-<N>.json``. Exit code: 0 when
both ran, 1 when one failed, 3 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
TARGET_RECORDS_PER_SECOND = 50_000
TARGET_PEAK_RSS_MB = 2048
TARGET_RECORDS = 2_000_000

sys.path.insert(0, str(HERE))
import generate


def child_env() -> dict:
    """The environment of the measured children: this checkout's src/ first on the path."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def measure(cmd: list[str], workdir: Path, name: str) -> dict:
    """Run cmd, wait for exactly this child, and return wall time, peak RSS and its output."""
    stdout_path, stderr_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        began = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(),
                                    cwd=workdir)
        except OSError as exc:
            return {"ok": False, "returncode": None, "wall_s": 0.0, "peak_rss_mb": None, "stdout": "",
                    "stderr": f"cannot start: {exc}"}
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"ok": proc.returncode == 0, "returncode": proc.returncode, "wall_s": wall, "peak_rss_mb": rss_mb,
            "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "stdout": stdout_path.read_text(errors="replace"), "stderr": stderr_path.read_text(errors="replace")}


def warm(path: Path) -> None:
    with path.open("rb", buffering=0) as handle:
        while handle.read(1 << 24):
            pass


def mailhunt_summary(case: Path, truth: dict) -> dict:
    """What the hunt produced, from its findings.json, and which injected incidents it escalated."""
    findings_path = case / "findings.json"
    if not findings_path.exists():
        return {"error": "no findings.json in the case"}
    document = json.loads(findings_path.read_text())
    inputs = document.get("inputs", [])
    findings = document.get("findings", [])
    escalated_actors = {(f.get("actor") or "").lower() for f in findings if f.get("escalate")}
    incidents = truth.get("incidents", [])
    found = sum(1 for i in incidents if i["actor"].lower() in escalated_actors)
    return {
        "records_read": sum(int(i.get("records") or 0) for i in inputs),
        "rejected": sum(int(i.get("rejected") or 0) for i in inputs),
        "skipped": [i.get("skipped_reason") for i in inputs if i.get("skipped_reason")],
        "findings": len(findings),
        "escalated": sum(1 for f in findings if f.get("escalate")),
        "incidents_escalated": found,
        "incidents": len(incidents),
    }


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mailhunt end-to-end benchmark against DuckDB's own NDJSON load")
    parser.add_argument("--records", type=int, default=TARGET_RECORDS, help="records to benchmark (default 2,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the mailhunt case and the DuckDB database in bench/out/")
    parser.add_argument("--regenerate", action="store_true", help="write the data file again even if cached")
    parser.add_argument("--mailhunt", default=f"{shlex.quote(sys.executable)} -m mailhunt.cli",
                        help="how to start mailhunt (default: this Python, -m mailhunt.cli; e.g. 'mailhunt')")
    parser.add_argument("--check", action="store_true", help="exit 3 when mailhunt misses a target")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"ual-{args.records}-s{args.seed}.ndjson"
    truth_path = Path(str(data) + ".truth.json")
    if args.regenerate or not data.exists() or not truth_path.exists():
        print(f"generating {args.records:,} records -> {data}", flush=True)
        made = generate.generate(args.records, data, seed=args.seed, quiet=True)
        print(f"  {made['bytes'] / 1e6:,.1f} MB, {made['bytes'] / made['records']:.0f} B/record, "
              f"{len(made['incidents'])} injected incidents, {made['seconds']:.1f} s", flush=True)
    else:
        print(f"reusing {data}", flush=True)
    truth = json.loads(truth_path.read_text())
    size_mb = data.stat().st_size / 1e6
    warm(data)

    if args.keep:
        workdir = OUT / f"run-{args.records}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="mailhunt-bench-"))
    case, database = workdir / "case", workdir / "duckdb-load.duckdb"

    mailhunt_cmd = shlex.split(args.mailhunt) + ["hunt", str(data), "--out", str(case)]
    duckdb_cmd = [sys.executable, str(HERE / "duckdb_load.py"), str(data), str(database)]
    try:
        print(f"running mailhunt on {args.records:,} records ({size_mb:,.0f} MB) ...", flush=True)
        hunt = measure(mailhunt_cmd, workdir, "mailhunt")
        summary = mailhunt_summary(case, truth) if hunt["ok"] else {}
        print("running DuckDB read_json on the same file ...", flush=True)
        duck = measure(duckdb_cmd, workdir, "duckdb")
        duck_out = {}
        if duck["ok"]:
            try:
                duck_out = json.loads(duck["stdout"].strip().splitlines()[-1])
            except (ValueError, IndexError):
                duck_out = {}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    def rate(result: dict) -> float | None:
        return args.records / result["wall_s"] if result["ok"] and result["wall_s"] > 0 else None

    rows = [("mailhunt hunt", hunt), ("duckdb read_json", duck)]
    print()
    print(f"{'':18} {'wall s':>9} {'records/s':>11} {'MB/s':>8} {'peak RSS MB':>12} {'exit':>5}")
    for label, result in rows:
        r = rate(result)
        per_second = f"{r:,.0f}" if r else "n/a"
        throughput = f"{size_mb / result['wall_s']:.1f}" if result["ok"] and result["wall_s"] > 0 else "n/a"
        rss = f"{result['peak_rss_mb']:,.0f}" if result["peak_rss_mb"] is not None else "n/a"
        code = result["returncode"] if result["returncode"] is not None else "-"
        print(f"{label:18} {result['wall_s']:9.2f} {per_second:>11} {throughput:>8} {rss:>12} {code:>5}")
    ratios = {}
    if hunt["ok"] and duck["ok"]:
        ratios = {"time": hunt["wall_s"] / duck["wall_s"], "rss": hunt["peak_rss_mb"] / duck["peak_rss_mb"]}
        print(f"\nmailhunt / duckdb: time x{ratios['time']:.2f}, peak RSS x{ratios['rss']:.2f}")
    else:
        print("\nmailhunt / duckdb: n/a (a run failed)")

    print(f"\ndata:     {data} ({args.records:,} records, {size_mb:,.1f} MB, seed {args.seed}, "
          f"{len(truth.get('incidents', []))} injected incidents)")
    print(f"mailhunt: {shlex.join(mailhunt_cmd)}")
    print(f"duckdb:   {shlex.join(duckdb_cmd)}")
    print(f"          ({generate_sql()})")
    print(f"          PYTHONPATH={child_env()['PYTHONPATH']}")
    if args.keep:
        print(f"kept:     {workdir}")

    failed = False
    if not hunt["ok"]:
        failed = True
        print(f"\nmailhunt FAILED (exit {hunt['returncode']}); last lines of its stderr:\n{tail(hunt['stderr'])}")
    else:
        if summary.get("error"):
            print(f"\nmailhunt: {summary['error']}")
        else:
            print(f"\nmailhunt read {summary['records_read']:,} records ({summary['rejected']:,} rejected), "
                  f"{summary['findings']} findings, {summary['escalated']} escalated; injected incidents escalated: "
                  f"{summary['incidents_escalated']}/{summary['incidents']}")
            if summary["records_read"] != args.records:
                print(f"WARNING: mailhunt read {summary['records_read']:,} of {args.records:,} records"
                      + (f" (skipped: {'; '.join(summary['skipped'])})" if summary["skipped"] else "")
                      + ": its time is not comparable")
    if not duck["ok"]:
        failed = True
        print(f"\nDuckDB FAILED (exit {duck['returncode']}):\n{tail(duck['stderr'])}")
    elif duck_out:
        print(f"DuckDB loaded {duck_out.get('records', '?'):,} records into {duck_out.get('columns', '?')} columns "
              f"(duckdb {duck_out.get('duckdb', '?')})")

    missed = []
    if hunt["ok"]:
        r = rate(hunt)
        if r is not None and r < TARGET_RECORDS_PER_SECOND:
            missed.append(f"{r:,.0f} records/s < {TARGET_RECORDS_PER_SECOND:,}")
        if hunt["peak_rss_mb"] >= TARGET_PEAK_RSS_MB:
            missed.append(f"peak RSS {hunt['peak_rss_mb']:,.0f} MB >= {TARGET_PEAK_RSS_MB:,} MB")
        scale = "" if args.records == TARGET_RECORDS else f" (targets are set for {TARGET_RECORDS:,} records)"
        print(f"\ntargets: >= {TARGET_RECORDS_PER_SECOND:,} records/s, peak RSS < {TARGET_PEAK_RSS_MB:,} MB{scale}: "
              + ("met" if not missed else "MISSED: " + "; ".join(missed)))

    result = {
        "records": args.records, "bytes": data.stat().st_size, "seed": args.seed, "data": str(data),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "mailhunt": {k: v for k, v in hunt.items() if k not in ("stdout", "stderr")} | {"command": mailhunt_cmd,
                                                                                          "summary": summary},
        "duckdb": {k: v for k, v in duck.items() if k not in ("stdout", "stderr")} | {"command": duckdb_cmd,
                                                                                      "load": duck_out},
        "ratios": ratios, "targets_missed": missed,
    }
    (OUT / f"results-{args.records}.json").write_text(json.dumps(result, indent=2))
    if failed:
        return 1
    return 3 if args.check and missed else 0


def generate_sql() -> str:
    sys.path.insert(0, str(HERE))
    import duckdb_load

    return duckdb_load.SQL.replace("?", "FILE")


if __name__ == "__main__":
    sys.exit(main())
