#!/usr/bin/env python3
"""Benchmark mailhunt end to end against DuckDB's own NDJSON load of the same file.

    python bench/run.py                                  # 1,000,000 records: the target run
    python bench/run.py --records 20000 --keep           # a quick one, keeping the case and the database
    python bench/run.py --ten-million                    # 1M and 10M (generates ~12 GB once; not committed)
    python bench/run.py --before-src /tmp/old/src        # another checkout's code measured in the same run
    python bench/run.py --memory-limit 1GB               # hunt --memory-limit

For each size N, in one run it:

1. generates ``bench/out/ual-<N>-s<seed>.ndjson`` with ``bench/generate.py``
   (or reuses it when it is already there) and reads it once so every
   contender starts with the file in the page cache;
2. runs ``python -m mailhunt.cli hunt FILE --out DIR`` as a child process and
   measures its wall time, CPU time (user + system) and peak RSS (``os.wait4``
   gives the rusage of that one child, ``ru_maxrss``); with ``--before-src``
   the same command again with that ``src/`` first on ``PYTHONPATH``;
3. runs ``bench/duckdb_load.py FILE DB`` (DuckDB ``read_json(...,
   format='newline_delimited')`` into a table of a file database) the same way;
4. prints a table, the mailhunt/DuckDB ratios for time and RSS, the exact
   command lines, and checks mailhunt against the targets (issue 17): end to
   end within 2.5x DuckDB's load of the same file, peak RSS <= 1 GiB, and the
   10M run within 11x the 1M run's time.

Results are also written to ``bench/out/results-<N>.json``. Exit code: 0 when
all ran, 1 when one failed, 3 with ``--check`` when a target is missed.
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
TARGET_TIME_RATIO = 2.5
TARGET_PEAK_RSS_MB = 1024
TARGET_TEN_X_RATIO = 11.0
DEFAULT_RECORDS = 1_000_000

sys.path.insert(0, str(HERE))
import generate


def child_env(src: Path | None = None) -> dict:
    """The environment of the measured children: ``src`` (default: this checkout's src/) first on the path."""
    env = dict(os.environ)
    first = str(src or REPO / "src")
    env["PYTHONPATH"] = first + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def measure(cmd: list[str], workdir: Path, name: str, src: Path | None = None) -> dict:
    """Run cmd, wait for exactly this child, and return wall time, CPU time, peak RSS and its output."""
    stdout_path, stderr_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        began = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(src),
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


def data_file(records: int, seed: int, regenerate: bool) -> tuple[Path, dict]:
    """The cached NDJSON file of ``records`` records and its truth (injected incidents); generated when missing."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"ual-{records}-s{seed}.ndjson"
    truth_path = Path(str(data) + ".truth.json")
    if regenerate or not data.exists() or not truth_path.exists():
        print(f"generating {records:,} records -> {data}", flush=True)
        made = generate.generate(records, data, seed=seed, quiet=True)
        print(f"  {made['bytes'] / 1e6:,.1f} MB, {made['bytes'] / made['records']:.0f} B/record, "
              f"{len(made['incidents'])} injected incidents, {made['seconds']:.1f} s", flush=True)
    else:
        print(f"reusing {data}", flush=True)
    return data, json.loads(truth_path.read_text())


def run_size(records: int, args: argparse.Namespace) -> dict:
    """Every contender on the file of ``records`` records, one after the other; prints the size's table."""
    data, truth = data_file(records, args.seed, args.regenerate)
    size_mb = data.stat().st_size / 1e6
    warm(data)
    if args.keep:
        workdir = OUT / f"run-{records}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="mailhunt-bench-"))
    limit = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    contenders = [("mailhunt hunt", None)] + ([("mailhunt (before)", Path(args.before_src).resolve())]
                                             if args.before_src else [])
    duckdb_cmd = [sys.executable, str(HERE / "duckdb_load.py"), str(data), str(workdir / "duckdb-load.duckdb")]
    rows, commands = [], []
    try:
        for index, (label, src) in enumerate(contenders):
            case = workdir / f"case-{index}"
            cmd = shlex.split(args.mailhunt) + ["hunt", str(data), "--out", str(case), *limit]
            print(f"running {label} on {records:,} records ({size_mb:,.0f} MB) ...", flush=True)
            result = measure(cmd, workdir, f"mailhunt-{index}", src)
            result["summary"] = mailhunt_summary(case, truth) if result["ok"] else {}
            rows.append((label, result))
            commands.append((label, cmd, src))
        print("running DuckDB read_json on the same file ...", flush=True)
        duck = measure(duckdb_cmd, workdir, "duckdb")
        rows.append(("duckdb read_json", duck))
        commands.append(("duckdb", duckdb_cmd, None))
        duck_out = {}
        if duck["ok"]:
            try:
                duck_out = json.loads(duck["stdout"].strip().splitlines()[-1])
            except (ValueError, IndexError):
                duck_out = {}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{records:,} records ({size_mb:,.1f} MB, seed {args.seed}, "
          f"{len(truth.get('incidents', []))} injected incidents): {data}")
    print(f"{'':18} {'wall s':>9} {'records/s':>11} {'MB/s':>8} {'CPU s':>8} {'CPU/wall':>9} {'peak RSS MB':>12} "
          f"{'x DuckDB':>9} {'exit':>5}")
    for label, result in rows:
        ok = result["ok"] and result["wall_s"] > 0
        wall = result["wall_s"]
        cpu = (result.get("user_s", 0) + result.get("sys_s", 0)) if ok else None
        ratio = wall / duck["wall_s"] if ok and duck["ok"] and duck["wall_s"] > 0 else None
        result["cpu_s"], result["time_ratio"] = cpu, ratio
        cells = (f"{records / wall:,.0f}" if ok else "n/a", f"{size_mb / wall:.1f}" if ok else "n/a",
                 f"{cpu:.1f}" if cpu is not None else "n/a", f"{cpu / wall:.2f}" if cpu is not None else "n/a",
                 f"{result['peak_rss_mb']:,.0f}" if result["peak_rss_mb"] is not None else "n/a",
                 f"{ratio:.2f}" if ratio else "-", result["returncode"] if result["returncode"] is not None else "-")
        print(f"{label:18} {wall:9.2f} {cells[0]:>11} {cells[1]:>8} {cells[2]:>8} {cells[3]:>9} {cells[4]:>12} "
              f"{cells[5]:>9} {cells[6]:>5}")
    for label, cmd, src in commands:
        print(f"  {label}: {shlex.join(cmd)}" + (f"   (PYTHONPATH={src})" if src else ""))
    print(f"  (DuckDB: {generate_sql()})")
    if args.keep:
        print(f"  kept: {workdir}")

    failed, missed = False, []
    for label, result in rows:
        if not result["ok"]:
            failed = True
            print(f"\n{label} FAILED (exit {result['returncode']}); last lines of its stderr:\n{tail(result['stderr'])}")
            continue
        summary = result.get("summary") or {}
        if summary.get("error"):
            print(f"{label}: {summary['error']}")
        elif summary:
            print(f"{label} read {summary['records_read']:,} records ({summary['rejected']:,} rejected), "
                  f"{summary['findings']} findings, {summary['escalated']} escalated; injected incidents escalated: "
                  f"{summary['incidents_escalated']}/{summary['incidents']}")
            if summary["records_read"] != records:
                print(f"WARNING: {label} read {summary['records_read']:,} of {records:,} records: "
                      "its time is not comparable")
    if duck["ok"] and duck_out:
        print(f"DuckDB loaded {duck_out.get('records', '?'):,} records into {duck_out.get('columns', '?')} columns "
              f"(duckdb {duck_out.get('duckdb', '?')})")
    hunt = rows[0][1]
    if hunt["ok"]:
        if hunt.get("time_ratio") and hunt["time_ratio"] > TARGET_TIME_RATIO:
            missed.append(f"{records:,}: time x{hunt['time_ratio']:.2f} DuckDB > x{TARGET_TIME_RATIO}")
        if hunt["peak_rss_mb"] > TARGET_PEAK_RSS_MB:
            missed.append(f"{records:,}: peak RSS {hunt['peak_rss_mb']:,.0f} MB > {TARGET_PEAK_RSS_MB:,} MB")

    result = {
        "records": records, "bytes": data.stat().st_size, "seed": args.seed, "data": str(data),
        "memory_limit": args.memory_limit,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": [{"label": label, "command": cmd, "src": str(src) if src else None}
                 | {k: v for k, v in res.items() if k not in ("stdout", "stderr")}
                 for (label, res), (_, cmd, src) in zip(rows, commands, strict=True)],
        "duckdb_load": duck_out, "targets_missed": missed, "failed": failed,
    }
    (OUT / f"results-{records}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mailhunt end-to-end benchmark against DuckDB's own NDJSON load")
    parser.add_argument("--records", type=int, nargs="+", default=[DEFAULT_RECORDS],
                        help="sizes to benchmark, in records (default 1,000,000)")
    parser.add_argument("--ten-million", action="store_true",
                        help="also run 10,000,000 records (about 12 GB of data, generated once) and check it "
                             "takes at most 11x the 1M run's time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the mailhunt case and the DuckDB database in bench/out/")
    parser.add_argument("--regenerate", action="store_true", help="write the data file again even if cached")
    parser.add_argument("--mailhunt", default=f"{shlex.quote(sys.executable)} -m mailhunt.cli",
                        help="how to start mailhunt (default: this Python, -m mailhunt.cli; e.g. 'mailhunt')")
    parser.add_argument("--before-src", help="a second mailhunt measured in the same run: this src/ folder "
                                             "(e.g. of an older checkout) first on PYTHONPATH")
    parser.add_argument("--memory-limit", help="pass --memory-limit SIZE to the hunts")
    parser.add_argument("--check", action="store_true", help="exit 3 when mailhunt misses a target")
    args = parser.parse_args(argv)
    sizes = sorted(set(args.records) | ({DEFAULT_RECORDS, 10_000_000} if args.ten_million else set()))
    if sizes[0] < 1:
        parser.error("--records must be at least 1")
    results = [run_size(n, args) for n in sizes]
    missed = [m for r in results for m in r["targets_missed"]]
    by_size = {r["records"]: r["runs"][0] for r in results}
    if {DEFAULT_RECORDS, 10_000_000} <= set(by_size) and by_size[DEFAULT_RECORDS]["ok"] and by_size[10_000_000]["ok"]:
        growth = by_size[10_000_000]["wall_s"] / by_size[DEFAULT_RECORDS]["wall_s"]
        print(f"\n10M / 1M time: x{growth:.2f} (target <= x{TARGET_TEN_X_RATIO:.0f})")
        if growth > TARGET_TEN_X_RATIO:
            missed.append(f"10M took x{growth:.2f} the 1M time")
    print(f"\ntargets (within x{TARGET_TIME_RATIO} DuckDB's load, peak RSS <= {TARGET_PEAK_RSS_MB:,} MB"
          + (", 10M <= 11x 1M" if args.ten_million else "") + "): " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    if any(r["failed"] for r in results):
        return 1
    return 3 if args.check and missed else 0


def generate_sql() -> str:
    sys.path.insert(0, str(HERE))
    import duckdb_load

    return duckdb_load.SQL.replace("?", "FILE")


if __name__ == "__main__":
    sys.exit(main())
