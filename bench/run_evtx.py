#!/usr/bin/env python3
"""Benchmark mailhunt on EVTX against the evtx package's own parse of the same file.

    python bench/run_evtx.py                        # 48,000 and 320,000 records (~200 MB and ~1.3 GB)
    python bench/run_evtx.py --chunks 3000          # one size: ~48,000 records
    python bench/run_evtx.py --chunks 20000 --keep  # keeps the case in bench/out/run-evtx-20000/
    python bench/run_evtx.py --mix exchange --chunks 8000   # an Exchange server's logs: ~40,000 records

For each size it builds ``bench/out/evtx-<chunks>.evtx`` (``evtx-exchange-<chunks>.evtx``
for ``--mix exchange``: MSExchange Management and PowerShell records only) with
``bench/evtx_data.py`` (or reuses it), reads it once into the page cache, then
measures as child processes, each with wall time and peak RSS (``os.wait4``):

1. ``bench/evtx_parse.py FILE``: the evtx package turning every record into
   JSON (the parser's own rate, the floor);
2. ``python -m mailhunt.cli hunt FILE --out DIR``: the whole hunt (hash,
   parse, normalize, load, deduplicate, rules, triage, reports);
3. ``bench/evtx_parse_store.py FILE``: the parser plus storing each record's
   JSON in a DuckDB table, nothing else: a lower bound for any hunt whose case
   store keeps every record's original;
4. ``python -m mailhunt.cli hunt SAMPLE --out DIR`` on one public sample of
   91 records (``FIXED_COST_SAMPLE``): what a hunt costs besides its records
   (interpreter, imports, rules, case, reports).

With ``--peer-cmd "CMD … {file} …"`` a peer tool (Zircolite, Hayabusa) runs on the
same file as a fifth child: the command is split as a shell would (``shlex``)
but run without one, ``{file}`` replaced by the EVTX path, in a temporary
folder (so give its rules and program as absolute paths). It is optional:
without it, or when its program is not found, the peer is skipped with a
message. Issue 17's targets against it: mailhunt's records/s at least
``PEER_SPEED_TARGET`` times the peer's, peak RSS at most ``PEER_RSS_TARGET``
times the peer's.

Both sizes are reported: a hunt has fixed costs (interpreter start, imports,
rules) that weigh on the small file and not on the large one. Target:
mailhunt's records/s at least half the parser's. Results also go to
``bench/out/results-evtx-<chunks>.json``. Exit 3 with ``--check`` when a size
misses it.
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
import evtx_data
from run import OUT, measure, warm

TARGET_RATIO = 0.5
PEER_SPEED_TARGET = 4.0
PEER_RSS_TARGET = 1.5
FIXED_COST_SAMPLE = evtx_data.SAMPLES / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"
DEFAULT_CHUNKS = (3000, 20000)


def peer_command(template: str | None, data: Path) -> tuple[list[str] | None, str]:
    """The peer's argument list for ``data`` and "", or None and why the peer is skipped."""
    if not template:
        return None, "no --peer-cmd given (Zircolite installs from its repository, not the package index)"
    if "{file}" not in template:
        return None, "--peer-cmd has no {file} where the EVTX path goes"
    command = [part.replace("{file}", str(data)) for part in shlex.split(template)]
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        return None, f"{command[0]} is not found"
    return command, ""


def run_size(chunks: int, keep: bool, mix: str = "all", peer: str | None = None) -> dict:
    """Build (or reuse) the file of ``chunks`` chunks, measure both contenders, print and save the result."""
    name = f"evtx-{chunks}" if mix == "all" else f"evtx-{mix}-{chunks}"
    data = OUT / f"{name}.evtx"
    if not data.exists():
        print(f"building {data} from the public samples' chunks", flush=True)
        evtx_data.build(chunks, data, mix)
    warm(data)
    size_mb = data.stat().st_size / 1e6
    workdir = Path(tempfile.mkdtemp(prefix="mailhunt-bench-evtx-"))
    case = (OUT / f"run-{name}") if keep else workdir / "case"
    if case.exists():
        shutil.rmtree(case)
    commands = {
        "evtx parser": [sys.executable, str(HERE / "evtx_parse.py"), str(data)],
        "mailhunt": [sys.executable, "-m", "mailhunt.cli", "hunt", str(data), "--out", str(case)],
        "parse+store": [sys.executable, str(HERE / "evtx_parse_store.py"), str(data)],
        "fixed cost": [sys.executable, "-m", "mailhunt.cli", "hunt", str(FIXED_COST_SAMPLE),
                       "--out", str(workdir / "one-chunk")],
    }
    peer_cmd, peer_skipped = peer_command(peer, data)
    if peer_cmd:
        commands["peer"] = peer_cmd
    else:
        print(f"peer skipped: {peer_skipped}", flush=True)
    results = {name: measure(cmd, workdir, name.replace(" ", "_")) for name, cmd in commands.items()}
    records = int(results["evtx parser"]["stdout"].strip() or 0) if results["evtx parser"]["ok"] else 0
    read_back = None
    if (case / "findings.json").exists():
        inputs = json.loads((case / "findings.json").read_text())["inputs"]
        read_back = sum(int(i.get("records") or 0) for i in inputs)
    print(f"\n{data.name}: {records:,} records, {size_mb:,.1f} MB")
    print(f"{'':12} {'wall s':>8} {'records/s':>11} {'MB/s':>7} {'peak RSS MB':>12} {'exit':>5}")
    for name, result in results.items():
        rate = records / result["wall_s"] if result["wall_s"] and name != "fixed cost" else 0
        result["records_per_s"] = rate
        mb_per_s = size_mb / result["wall_s"] if rate else 0
        print(f"{name:12} {result['wall_s']:8.2f} {rate:11,.0f} {mb_per_s:7.1f} "
              f"{result['peak_rss_mb'] or 0:12.0f} {result['returncode']!s:>5}")
        if not result["ok"]:
            print("  stderr:\n" + result["stderr"][-2000:])
    ratio = results["mailhunt"]["records_per_s"] / results["evtx parser"]["records_per_s"] \
        if results["evtx parser"]["records_per_s"] else 0.0
    met = ratio >= TARGET_RATIO and read_back == records
    print(f"mailhunt read {read_back} records; rate = {ratio:.0%} of the parser's own "
          f"(target >= {TARGET_RATIO:.0%}): {'met' if met else 'MISSED'}")
    parser_s = results["evtx parser"]["wall_s"]
    floor = parser_s / results["parse+store"]["wall_s"] if results["parse+store"]["ok"] else 0.0
    print(f"parse+store alone: {floor:.0%} of the parser's rate; a hunt's fixed cost "
          f"{results['fixed cost']['wall_s']:.2f} s against the target's whole budget of {2 * parser_s:.2f} s")
    against_peer = None
    if "peer" in results and results["peer"]["ok"] and results["peer"]["wall_s"]:
        speed = results["peer"]["wall_s"] / results["mailhunt"]["wall_s"]
        memory = (results["mailhunt"]["peak_rss_mb"] or 0) / (results["peer"]["peak_rss_mb"] or 1)
        against_peer = {"speed": speed, "rss": memory,
                        "met": speed >= PEER_SPEED_TARGET and memory <= PEER_RSS_TARGET}
        print(f"against the peer: {speed:.2f}x its speed (target >= {PEER_SPEED_TARGET:g}x), {memory:.2f}x its "
              f"peak RSS (target <= {PEER_RSS_TARGET:g}x): {'met' if against_peer['met'] else 'MISSED'}")
    print("commands:\n" + "\n".join(f"  {name}: {shlex.join(cmd)}" for name, cmd in commands.items()))
    summary = {"file": str(data), "chunks": chunks, "mix": mix, "records": records, "size_mb": size_mb,
               "mailhunt_records_read": read_back, "ratio": ratio, "parse_store_ratio": floor,
               "target_ratio": TARGET_RATIO, "met": met, "against_peer": against_peer,
               "peer_skipped": peer_skipped or None,
               "ok": all(r["ok"] for r in results.values()),
               "results": {n: {k: v for k, v in r.items() if k not in ("stdout", "stderr")} for n, r in results.items()}}
    (OUT / f"results-{name}.json").write_text(json.dumps(summary, indent=2))
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=list(DEFAULT_CHUNKS),
                        help="EVTX chunks in the file, about 16 records each; several sizes run one after the other "
                             f"(default: {' '.join(map(str, DEFAULT_CHUNKS))})")
    parser.add_argument("--mix", choices=sorted(evtx_data.MIXES), default="all",
                        help="which public samples' chunks make the file (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the cases in bench/out/")
    parser.add_argument("--peer-cmd", help="a peer tool's command on the same file, {file} where the EVTX path "
                                           "goes, e.g. \"python zircolite.py --evtx {file} --ruleset rules.json\"")
    parser.add_argument("--check", action="store_true", help="exit 3 when mailhunt is below half the parser's rate")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    summaries = [run_size(chunks, args.keep, args.mix, args.peer_cmd) for chunks in args.chunks]
    if len(summaries) > 1:
        print(f"\n{'records':>10} {'MB':>8} {'parser s':>9} {'mailhunt s':>11} {'ratio':>6} {'peak RSS MB':>12} "
              f"{'parse+store s':>14} {'ratio':>6} {'fixed s':>8}")
        for s in summaries:
            parser_s, hunt = s["results"]["evtx parser"]["wall_s"], s["results"]["mailhunt"]
            print(f"{s['records']:>10,} {s['size_mb']:8.1f} {parser_s:9.2f} {hunt['wall_s']:11.2f} "
                  f"{s['ratio']:6.0%} {hunt['peak_rss_mb'] or 0:12.0f} "
                  f"{s['results']['parse+store']['wall_s']:14.2f} {s['parse_store_ratio']:6.0%} "
                  f"{s['results']['fixed cost']['wall_s']:8.2f}")
    if not all(s["ok"] for s in summaries):
        return 1
    return 3 if args.check and not all(s["met"] for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
