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
but run without one, ``{file}`` replaced by the EVTX path, ``{rules}`` by the
folder of the ``--rules`` files and ``{out}`` by a file in the run's folder
for its detections, in a temporary folder (so give its program and
configuration as absolute paths). It is optional: without it, or when its
program is not found, the peer is skipped with a message. Issue 17's targets
against it: mailhunt's records/s at least ``PEER_SPEED_TARGET`` times the
peer's, peak RSS at most ``PEER_RSS_TARGET`` times the peer's.

``--rules FILE_OR_FOLDER…`` gives both tools the same Sigma rules (mailhunt
through ``hunt --rules``, beside its own): the files are copied into one
folder of the run. When the peer wrote Zircolite's JSON detections to
``{out}``, the run prints each rule's matched records for the peer and for
mailhunt side by side, so a comparison where the peer matched nothing, or
something else, shows. ``--before-src DIR`` measures a second mailhunt from
another checkout's ``src/`` in the same run; ``--no-floors`` leaves out the
parser, parse+store and fixed-cost children.

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

import duckdb
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import evtx_data
from run import OUT, measure, warm

TARGET_RATIO = 0.5
PEER_SPEED_TARGET = 4.0
PEER_RSS_TARGET = 1.5
FIXED_COST_SAMPLE = evtx_data.SAMPLES / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"
DEFAULT_CHUNKS = (3000, 20000)


def peer_command(template: str | None, data: Path, rules: Path | None = None,
                 out: Path | None = None) -> tuple[list[str] | None, str]:
    """The peer's argument list for ``data`` (``rules``, ``out``) and "", or None and why the peer is skipped."""
    if not template:
        return None, "no --peer-cmd given (Zircolite installs from its repository, not the package index)"
    if "{file}" not in template:
        return None, "--peer-cmd has no {file} where the EVTX path goes"
    if "{rules}" in template and rules is None:
        return None, "--peer-cmd has {rules} but no --rules were given"
    places = {"{file}": str(data), "{rules}": str(rules or ""), "{out}": str(out or "")}
    command = []
    for part in shlex.split(template):
        for place, value in places.items():
            part = part.replace(place, value)
        command.append(part)
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        return None, f"{command[0]} is not found"
    return command, ""


def gather_rules(sources: list[Path], folder: Path) -> dict[str, str]:
    """Copy the Sigma rule files of ``sources`` (files, or folders searched for .yml/.yaml) into ``folder``;
    return their titles by rule id."""
    folder.mkdir(parents=True)
    files = [f for s in sources for f in ([s] if s.is_file() else sorted(s.rglob("*.y*ml")))]
    titles: dict[str, str] = {}
    for number, path in enumerate(files):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        titles[str(rule["id"])] = str(rule["title"])
        shutil.copyfile(path, folder / f"{number:03d}-{path.name}")
    return titles


def mailhunt_matches(case: Path, rule_ids: set[str]) -> dict[str, int]:
    """Records each of ``rule_ids`` matched in the case."""
    connection = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        rows = connection.execute("SELECT rule_id, count(*) FROM matches GROUP BY rule_id").fetchall()
    finally:
        connection.close()
    return {rule_id: count for rule_id, count in rows if rule_id in rule_ids}


def peer_matches(out: Path) -> dict[str, int] | None:
    """Records each rule matched, by rule id, from Zircolite's JSON detections; None when there are none to read."""
    if not out.is_file():
        return None
    try:
        detections = json.loads(out.read_text(encoding="utf-8"))
        return {str(d["id"]): int(d["count"]) for d in detections}
    except (ValueError, KeyError, TypeError):
        return None


def print_matches(titles: dict[str, str], ours: dict[str, int], peer: dict[str, int] | None) -> bool:
    """The --rules rules' matched records for both tools; True when the peer's output was read and both agree."""
    print(f"\n{'rule (--rules)':60} {'peer':>8} {'mailhunt':>9}")
    for rule_id, title in sorted(titles.items(), key=lambda item: item[1]):
        theirs = "-" if peer is None else f"{peer.get(rule_id, 0):,}"
        print(f"{title[:60]:60} {theirs:>8} {ours.get(rule_id, 0):9,}")
    if peer is None:
        print("the peer's detections were not read (no {out} in --peer-cmd, or not Zircolite's JSON)")
        return False
    agree = all(peer.get(rule_id, 0) == ours.get(rule_id, 0) for rule_id in titles)
    print("both tools matched the same records per rule" if agree else "the tools matched DIFFERENT counts")
    return agree


def run_size(chunks: int, keep: bool, mix: str = "all", peer: str | None = None, rules: list[Path] | None = None,
             before_src: Path | None = None, floors: bool = True) -> dict:
    """Build (or reuse) the file of ``chunks`` chunks, measure the contenders, print and save the result."""
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
    rules_dir = workdir / "rules" if rules else None
    titles = gather_rules(rules, rules_dir) if rules and rules_dir else {}
    extra_rules = ["--rules", str(rules_dir)] if rules_dir else []
    hunt = [sys.executable, "-m", "mailhunt.cli", "hunt", str(data)]
    commands: dict[str, tuple[list[str], Path | None]] = {}
    if floors:
        commands["evtx parser"] = ([sys.executable, str(HERE / "evtx_parse.py"), str(data)], None)
    commands["mailhunt"] = ([*hunt, "--out", str(case), *extra_rules], None)
    if before_src:
        commands["mailhunt before"] = ([*hunt, "--out", str(workdir / "case-before"), *extra_rules], before_src)
    if floors:
        commands["parse+store"] = ([sys.executable, str(HERE / "evtx_parse_store.py"), str(data)], None)
        commands["fixed cost"] = ([sys.executable, "-m", "mailhunt.cli", "hunt", str(FIXED_COST_SAMPLE),
                                   "--out", str(workdir / "one-chunk")], None)
    peer_out = workdir / "peer-detections.json"
    peer_cmd, peer_skipped = peer_command(peer, data, rules_dir, peer_out)
    if peer_cmd:
        commands["peer"] = (peer_cmd, None)
    else:
        print(f"peer skipped: {peer_skipped}", flush=True)
    results = {label: measure(cmd, workdir, label.replace(" ", "_"), src)
               for label, (cmd, src) in commands.items()}
    records = evtx_data.count_records(data)
    read_back = None
    if (case / "findings.json").exists():
        inputs = json.loads((case / "findings.json").read_text())["inputs"]
        read_back = sum(int(i.get("records") or 0) for i in inputs)
    print(f"\n{data.name}: {records:,} records, {size_mb:,.1f} MB")
    print(f"{'':15} {'wall s':>8} {'CPU s':>7} {'records/s':>11} {'MB/s':>7} {'peak RSS MB':>12} {'exit':>5}")
    for label, result in results.items():
        rate = records / result["wall_s"] if result["wall_s"] and label != "fixed cost" else 0
        result["records_per_s"] = rate
        mb_per_s = size_mb / result["wall_s"] if rate else 0
        cpu = (result.get("user_s") or 0) + (result.get("sys_s") or 0)
        result["cpu_s"] = cpu
        print(f"{label:15} {result['wall_s']:8.2f} {cpu:7.2f} {rate:11,.0f} {mb_per_s:7.1f} "
              f"{result['peak_rss_mb'] or 0:12.0f} {result['returncode']!s:>5}")
        if not result["ok"]:
            print("  stderr:\n" + result["stderr"][-2000:])
    ratio = floor = 0.0
    met = None
    if floors:
        parser_s = results["evtx parser"]["wall_s"]
        ratio = results["mailhunt"]["records_per_s"] / results["evtx parser"]["records_per_s"] \
            if results["evtx parser"]["records_per_s"] else 0.0
        met = ratio >= TARGET_RATIO and read_back == records
        print(f"mailhunt read {read_back} records; rate = {ratio:.0%} of the parser's own "
              f"(target >= {TARGET_RATIO:.0%}): {'met' if met else 'MISSED'}")
        floor = parser_s / results["parse+store"]["wall_s"] if results["parse+store"]["ok"] else 0.0
        print(f"parse+store alone: {floor:.0%} of the parser's rate; a hunt's fixed cost "
              f"{results['fixed cost']['wall_s']:.2f} s against the target's whole budget of {2 * parser_s:.2f} s")
    else:
        print(f"mailhunt read {read_back} of {records} records")
    against_peer = None
    if "peer" in results and results["peer"]["ok"] and results["peer"]["wall_s"]:
        peer_result, ours = results["peer"], results["mailhunt"]
        speed = peer_result["wall_s"] / ours["wall_s"]
        cpu_speed = peer_result["cpu_s"] / ours["cpu_s"] if ours["cpu_s"] else 0.0
        memory = (ours["peak_rss_mb"] or 0) / (peer_result["peak_rss_mb"] or 1)
        against_peer = {"speed": speed, "cpu_speed": cpu_speed, "rss": memory,
                        "met": speed >= PEER_SPEED_TARGET and memory <= PEER_RSS_TARGET}
        print(f"against the peer: {speed:.2f}x its speed (wall; {cpu_speed:.2f}x in CPU s; target >= "
              f"{PEER_SPEED_TARGET:g}x), {memory:.2f}x its peak RSS (target <= {PEER_RSS_TARGET:g}x): "
              f"{'met' if against_peer['met'] else 'MISSED'}")
    agree = None
    if titles and results["mailhunt"]["ok"]:
        peer_counts = peer_matches(peer_out) if "peer" in results else None
        ours_counts = mailhunt_matches(case, set(titles))
        agree = print_matches(titles, ours_counts, peer_counts)
        if against_peer is not None:
            against_peer.update(peer_matches=peer_counts, mailhunt_matches=ours_counts, same_matches=agree)
    print("commands:\n" + "\n".join(f"  {label}: {shlex.join(cmd)}" + (f"  (PYTHONPATH={src})" if src else "")
                                    for label, (cmd, src) in commands.items()))
    summary = {"file": str(data), "chunks": chunks, "mix": mix, "records": records, "size_mb": size_mb,
               "mailhunt_records_read": read_back, "ratio": ratio, "parse_store_ratio": floor,
               "target_ratio": TARGET_RATIO, "met": met, "against_peer": against_peer,
               "peer_skipped": peer_skipped or None, "rules": sorted(titles.values()),
               "ok": all(r["ok"] for r in results.values()) and read_back == records,
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
                                           "goes, {rules} the folder of the --rules files, {out} its detections, "
                                           "e.g. \"python zircolite.py --evtx {file} -r {rules} -o {out}\"")
    parser.add_argument("--rules", type=Path, nargs="+",
                        help="Sigma rule files or folders both mailhunt (beside its own) and the peer run")
    parser.add_argument("--before-src", type=Path, help="a second mailhunt measured in the same run: this src/ "
                                                        "folder (e.g. from git archive of an older commit)")
    parser.add_argument("--no-floors", action="store_true",
                        help="leave out the parser, parse+store and fixed-cost children")
    parser.add_argument("--check", action="store_true", help="exit 3 when mailhunt is below half the parser's rate")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for source in args.rules or []:
        if not source.exists():
            parser.error(f"--rules: {source} does not exist")
    before = args.before_src.resolve() if args.before_src else None
    summaries = [run_size(chunks, args.keep, args.mix, args.peer_cmd, args.rules, before, not args.no_floors)
                 for chunks in args.chunks]
    if len(summaries) > 1 and not args.no_floors:
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
