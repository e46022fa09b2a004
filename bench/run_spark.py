#!/usr/bin/env python3
"""The Spark engine's scale series: the same audit-log files hunted with the DuckDB engine and with
``--engine spark`` on Spark local[2]; it measures and checks the findings agree (no target).

    python bench/run_spark.py                         # 10,000 and 100,000 records
    python bench/run_spark.py --records 1000000 --records 10000000 --master local[2]

For each size it generates (or reuses) ``bench/out/ual-<N>-s<seed>.ndjson``
with ``bench/generate.py``, runs ``python -m mailhunt.cli hunt FILE --out DIR
--no-copy`` and the same with ``--engine spark --spark-master MASTER`` as child
processes (wall time; peak RSS and CPU seconds of the mailhunt process with
all its descendants, Spark's JVM included: ``process_tree.py``), and compares the two findings.json without the run-specific
``evidence_preservation``. Results go to ``bench/out/spark-<N>.json``. Exit
code 0 when every size ran and agreed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate
from process_tree import TreeSampler
from run import OUT, child_env, tail, warm

RUN_FIELDS = ("evidence_preservation",)


def measure_tree(command: list[str], workdir: Path, name: str) -> dict:
    """Run ``command`` like ``run.measure``, with the peak RSS and CPU time of its whole process tree."""
    stdout_path, stderr_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env(),
                                cwd=workdir)
        sampler = TreeSampler(proc.pid).start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            sampler.stop()
        wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"ok": proc.returncode == 0, "wall_s": wall,
            "peak_rss_mb": max(sampler.peak_rss_mb, usage.ru_maxrss / 1024),
            "cpu_s": sampler.cpu_s(usage.ru_utime + usage.ru_stime),
            "stderr": stderr_path.read_text(errors="replace")}


def findings(case: Path) -> dict | None:
    path = case / "findings.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    kept = {key: value for key, value in document.items() if key not in RUN_FIELDS}
    kept["hunts"] = [{**h, "started_at": None} for h in document.get("hunts") or []]  # each run starts at its time
    return kept


def one_size(records: int, seed: int, master: str, mailhunt: list[str], keep: bool) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"ual-{records}-s{seed}.ndjson"
    if not data.exists() or not Path(str(data) + ".truth.json").exists():
        print(f"generating {records:,} records -> {data}", flush=True)
        generate.generate(records, data, seed=seed, quiet=True)
    data = data.resolve()  # a file linked into bench/out (a shared copy) is read where it lies
    warm(data)
    workdir = OUT / f"spark-run-{records}" if keep else Path(tempfile.mkdtemp(prefix="mailhunt-spark-bench-"))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    commands = {
        "duckdb": [*mailhunt, "hunt", str(data), "--out", str(workdir / "duckdb"), "--no-copy"],
        "spark": [*mailhunt, "hunt", str(data), "--out", str(workdir / "spark"), "--no-copy",
                  "--engine", "spark", "--spark-master", master],
    }
    result: dict = {"records": records, "bytes": data.stat().st_size, "master": master, "runs": {}}
    try:
        for engine, command in commands.items():
            print(f"  {engine}: {shlex.join(command)}", flush=True)
            run = measure_tree(command, workdir, engine)
            result["runs"][engine] = {"ok": run["ok"], "wall_s": round(run["wall_s"], 1),
                                      "peak_rss_mb": round(run["peak_rss_mb"]),
                                      "cpu_s": round(run["cpu_s"], 1),
                                      "command": shlex.join(command)}
            if not run["ok"]:
                result["runs"][engine]["stderr"] = tail(run["stderr"])
        duck, spark = findings(workdir / "duckdb"), findings(workdir / "spark")
        result["findings"] = len(duck["findings"]) if duck else None
        result["agree"] = duck is not None and duck == spark
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    (OUT / f"spark-{records}.json").write_text(json.dumps(result, indent=2))
    return result


def _cells(run: dict) -> str:
    return f"{run['wall_s']} s, {run['cpu_s']} s, {run['peak_rss_mb']:,}" if run["ok"] else "failed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the Spark engine's scale series against the DuckDB engine")
    parser.add_argument("--records", type=int, action="append", help="records (repeat; default 10,000 and 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]", help="Spark master URL (default local[2])")
    parser.add_argument("--mailhunt", default=f"{shlex.quote(sys.executable)} -m mailhunt.cli",
                        help="how to start mailhunt (default: this Python, -m mailhunt.cli)")
    parser.add_argument("--keep", action="store_true", help="keep both cases in bench/out/spark-run-<N>/")
    args = parser.parse_args(argv)
    sizes = args.records or [10_000, 100_000]
    rows = []
    for records in sizes:
        print(f"{records:,} records", flush=True)
        rows.append(one_size(records, args.seed, args.master, shlex.split(args.mailhunt), args.keep))
    print()
    print(f"| records | MB | findings | DuckDB engine: wall s, CPU s, peak MiB | Spark ({args.master}): wall s, "
          "CPU s, peak MiB (JVM included) | Spark/DuckDB wall | same findings |")
    print("|---:|---:|---:|---:|---:|---:|:---:|")
    for row in rows:
        duck, spark = row["runs"]["duckdb"], row["runs"]["spark"]
        ratio = f"{spark['wall_s'] / duck['wall_s']:.1f}x" if duck["ok"] and spark["ok"] and duck["wall_s"] else "-"
        print(f"| {row['records']:,} | {row['bytes'] / 1e6:,.0f} | {row['findings']} | {_cells(duck)} | "
              f"{_cells(spark)} | {ratio} | {'yes' if row['agree'] else 'NO'} |")
        for engine in ("duckdb", "spark"):
            if not row["runs"][engine]["ok"]:
                print(f"\n{engine} failed:\n{row['runs'][engine].get('stderr', '')}")
    return 0 if all(row["agree"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
