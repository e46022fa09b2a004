#!/usr/bin/env python3
"""Benchmark a hunt of many small evidence files: does each file cost the same whatever the case size?

    python bench/run_many_files.py                       # 1,000 and 4,000 files of 20 records
    python bench/run_many_files.py --files 1000 4000 16000 --records-per-file 20
    python bench/run_many_files.py --files 2000 --keep   # keeps the case in bench/out/run-many-2000/
    python bench/run_many_files.py --files 1000 4000 10000 --before-src /tmp/old/src --before-files 1000 4000

For each size N it writes (or reuses) ``bench/out/many-<N>x<R>/``: N NDJSON files
of R unified audit log records each, cut in order from ``bench/generate.py``'s
records (so the files are real AuditData records, every record in one file only),
in folders of 1,000 files. Then it runs ``python -m mailhunt.cli hunt FOLDER
--out CASE`` as a child process and measures its wall time and peak RSS
(``os.wait4``), after reading every file once into the page cache.

It prints files/s, records/s and CPU milliseconds per file (user + system of
the hunt: on a shared machine a steadier measure than wall time) per size, and
the ratio of each size's files/s to the smallest size's: a steady rate keeps that ratio near 1 (the fixed cost
of a hunt, about 2 s, weighs more on the small size, so it tends to be a little
above 1). The marginal rate, files/s between one size and the next smaller one of the
same code ((N2 - N1) / (t2 - t1)), leaves that fixed cost out: a steady rate keeps it
the same at every size. ``--before-src`` runs another checkout's code too, in the
same invocation, so the two can be compared on the same loaded machine. Results also
go to ``bench/out/results-many-files.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate
from run import OUT, measure, warm

FILES_PER_FOLDER = 1000
DEFAULT_FILES = (1000, 4000)
DEFAULT_RECORDS_PER_FILE = 20


def build(files: int, per_file: int, seed: int) -> Path:
    """The folder of ``files`` NDJSON files of ``per_file`` records each; written once, then reused."""
    folder = OUT / f"many-{files}x{per_file}-s{seed}"
    done = folder / ".complete"
    if done.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    source = OUT / f"ual-{files * per_file}-s{seed}.ndjson"
    if not source.exists():
        generate.generate(files * per_file, source, seed=seed, quiet=True)
    with source.open("rb") as records:
        for number in range(files):
            part = folder / f"{number // FILES_PER_FOLDER:03d}" / f"audit-{number:06d}.ndjson"
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(b"".join(records.readline() for _ in range(per_file)))
    done.touch()
    return folder


def warm_folder(folder: Path) -> None:
    for path in sorted(folder.rglob("*.ndjson")):
        warm(path)


def run_size(files: int, per_file: int, seed: int, keep: bool, src: Path | None = None) -> dict:
    """One hunt of ``files`` files; ``src``: another checkout's src/ folder to run instead of this one."""
    folder = build(files, per_file, seed)
    warm_folder(folder)
    workdir = Path(tempfile.mkdtemp(prefix="mailhunt-bench-many-"))
    case = (OUT / f"run-many-{files}{'-before' if src else ''}") if keep else workdir / "case"
    if case.exists():
        shutil.rmtree(case)
    command = [sys.executable, "-m", "mailhunt.cli", "hunt", str(folder), "--out", str(case)]
    result = measure(command, workdir, "mailhunt", src)
    read_files = read_records = 0
    if (case / "findings.json").exists():
        inputs = json.loads((case / "findings.json").read_text())["inputs"]
        read_files = sum(1 for i in inputs if i.get("format"))
        read_records = sum(int(i.get("records") or 0) for i in inputs)
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    wall = result["wall_s"]
    return {"code": "before" if src else "this", "files": files, "records_per_file": per_file, "files_read": read_files, "records_read": read_records,
            "wall_s": round(wall, 2), "files_per_s": round(files / wall, 1) if wall else None,
            "records_per_s": round(files * per_file / wall) if wall else None,
            "cpu_s": round(result.get("user_s", 0) + result.get("sys_s", 0), 2),
            "peak_rss_mb": round(result["peak_rss_mb"] or 0), "returncode": result["returncode"],
            "command": shlex.join(command), "stderr_tail": result["stderr"][-2000:] if not result["ok"] else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=list(DEFAULT_FILES), help="sizes to run, in files")
    parser.add_argument("--records-per-file", type=int, default=DEFAULT_RECORDS_PER_FILE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep each case in bench/out/run-many-<N>/")
    parser.add_argument("--before-src", type=Path,
                        help="also run this src/ folder (another checkout, e.g. git archive of an older commit) "
                             "at the sizes given by --before-files, in the same invocation")
    parser.add_argument("--before-files", type=int, nargs="+", help="sizes for --before-src (default: --files)")
    args = parser.parse_args(argv)
    rows = [run_size(n, args.records_per_file, args.seed, args.keep) for n in sorted(args.files)]
    if args.before_src:
        before = sorted(args.before_files or args.files)
        rows += [run_size(n, args.records_per_file, args.seed, args.keep, args.before_src.resolve()) for n in before]
    print_table(rows)
    OUT.mkdir(exist_ok=True)
    (OUT / "results-many-files.json").write_text(json.dumps(rows, indent=2))
    return 0 if all(row["returncode"] == 0 for row in rows) else 1


def print_table(rows: list[dict]) -> None:
    """Each run's rate, and its files/s as a ratio of the smallest size's of the same code."""
    smallest: dict[str, float] = {}
    for row in rows:
        smallest.setdefault(row["code"], row["files_per_s"])
    print(f"\n{'code':>6} {'files':>8} {'records':>9} {'wall s':>8} {'files/s':>8} {'records/s':>10} {'CPU ms/file':>12} "
          f"{'peak RSS MB':>12} {'rate ratio':>11} {'marginal f/s':>13} {'exit':>5}")
    previous: dict[str, dict] = {}
    for row in rows:
        base = smallest[row["code"]]
        row["rate_ratio_to_smallest"] = round(row["files_per_s"] / base, 2) if base and row["files_per_s"] else None
        last = previous.get(row["code"])
        row["marginal_files_per_s"] = (round((row["files"] - last["files"]) / (row["wall_s"] - last["wall_s"]), 1)
                                       if last and row["wall_s"] > last["wall_s"] else None)
        previous[row["code"]] = row
        print(f"{row['code']:>6} {row['files']:>8,} {row['files'] * row['records_per_file']:>9,} {row['wall_s']:>8.1f} "
              f"{row['files_per_s'] or 0:>8.1f} {row['records_per_s'] or 0:>10,} {1000 * row['cpu_s'] / row['files']:>12.0f} "
              f"{row['peak_rss_mb']:>12,} "
              f"{row['rate_ratio_to_smallest'] or 0:>11.2f} "
              f"{row['marginal_files_per_s'] if row['marginal_files_per_s'] is not None else '-':>13} "
              f"{row['returncode']:>5}")
        if row["files_read"] != row["files"]:
            print(f"  warning: the case lists {row['files_read']:,} files read, not {row['files']:,}")
        if row["stderr_tail"]:
            print("  mailhunt failed:\n" + row["stderr_tail"])
    for row in rows:
        print(f"  {row['code']}: {row['command']}")


if __name__ == "__main__":
    sys.exit(main())
