"""Server time of each ``mailhunt serve`` page on a big case.

```
python bench/web_pages.py --events 5000000            # builds bench/out/web-5000000/case once, then reuses it
```

The case is the bundled example incident hunted once, its events then
repeated with new ids, spread over a year (each copy shifted by whole hours)
until the case holds ``--events`` events; findings, identities and inputs are
the hunt's. Each page is then requested through the application in process
(no network), several times, and the median wall time printed: the time the
server spends, which the issue asks to stay under a second on 5M events.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

EXAMPLE = ROOT / "examples" / "incident-2026-10"


def build(out: Path, events: int) -> Path:
    case = out / "case"
    if (case / "case.duckdb").is_file():
        return case
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "mailhunt.cli", "hunt", str(EXAMPLE / "purview_audit_export.csv"),
                    "--config", str(EXAMPLE / "mailhunt.toml"), "--out", str(case)], check=True,
                   env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL)
    with duckdb.connect(str(case / "case.duckdb")) as db:
        base = db.execute("SELECT count(*) FROM events").fetchall()[0][0]
        db.execute("CREATE TEMP TABLE seed AS SELECT * FROM events")
        copies = -(-events // base) - 1
        step = 1000
        for start in range(1, copies + 1, step):
            stop = min(copies, start + step - 1)
            db.execute("""INSERT INTO events SELECT s.* REPLACE (md5(s."event.id" || '/' || c) AS "event.id",
                                  s."@timestamp" + to_hours(CAST(c * 3 AS BIGINT)) AS "@timestamp")
                          FROM seed s, range(?, ? + 1) r(c)""", [start, stop])
        db.execute("""DELETE FROM events WHERE rowid IN (SELECT rowid FROM events
                      ORDER BY "@timestamp" DESC LIMIT greatest((SELECT count(*) FROM events) - ?, 0))""", [events])
    return case


def measure(case: Path, repeat: int) -> None:
    from fastapi.testclient import TestClient

    from mailhunt.web import create_app

    client = TestClient(create_app(case, "bench"))
    client.get("/findings?token=bench")
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        total = db.execute("SELECT count(*) FROM events").fetchall()[0][0]
        finding, event, at = db.execute(
            """SELECT id, document->'evidence'->0->>'event_id', document->'evidence'->0->>'@timestamp'
               FROM findings WHERE indicator = 'inbox_rule_hiding'""").fetchall()[0]
    print(f"{total:,} events in {case}")
    pages = ["/findings", "/findings?escalate=yes&sort=severity&order=desc", f"/findings/{finding}",
             f"/findings/{finding}/allowlist", "/timeline", "/timeline?page=2000", "/timeline?q=185.220.101.47",
             "/timeline?q=no-such-text-anywhere", "/timeline?since=2026-10-13T00:00:00Z&until=2026-10-14T00:00:00Z",
             f"/events/{event}?at={at}", f"/events/{event}", "/evidence", "/review"]
    for page in pages:
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            response = client.get(page)
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, (page, response.status_code)
        print(f"{statistics.median(times) * 1000:8.0f} ms  (max {max(times) * 1000:6.0f})  {page}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="build the case again")
    args = parser.parse_args()
    out = ROOT / "bench" / "out" / f"web-{args.events}"
    if args.fresh and out.exists():
        shutil.rmtree(out)
    measure(build(out, args.events), args.repeat)


if __name__ == "__main__":
    main()
