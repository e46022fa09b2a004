"""Every reader gives the same UTC times whatever zone the machine running mailhunt is in.

Each fixture is read under ``TZ=UTC`` and again under ``TZ=America/New_York``
(and a zone east of UTC); the ``@timestamp`` of every record, and which records
are rejected, must not change: a time without a zone is either UTC by its
format's definition or rejected, never read in the machine's zone.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from mailhunt.sources import SNIFF_BYTES, ReadContext, identify, read_events
from tests.corpus import PUBLIC, REPO

# The project's fixtures and the public samples (real EVTX, UAL, Purview, auditd, Sysmon) where present.
FIXTURE_DIRS = (REPO / "tests" / "fixtures", REPO / "tests" / "hostile" / "fixtures", PUBLIC)
# Only files a reader recognizes on their own (not archives, golden outputs or rule files).
FIXTURES = sorted(p for d in FIXTURE_DIRS if d.is_dir() for p in d.rglob("*")
                  if p.is_file() and not p.name.endswith((".yml", ".md")) and not p.name.startswith("bad_")
                  and identify(p.read_bytes()[:SNIFF_BYTES]) is not None)


def _read(path: Path) -> tuple[str, list, list]:
    data = path.read_bytes()
    source = identify(data[:SNIFF_BYTES])
    if source is None:
        return "", [], []
    ctx = ReadContext(str(path), "0" * 64, {}, local_path=str(path))
    times = [row["@timestamp"] for table in read_events(source, io.BufferedReader(io.BytesIO(data)), ctx)
             for row in table.select(["@timestamp"]).to_pylist()]
    return source.name, times, [(r.locator, r.reason) for r in ctx.rejections]


@pytest.fixture
def machine_zone(monkeypatch):
    def set_zone(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


def _label(path: Path) -> str:
    return str(path.relative_to(PUBLIC.parent) if path.is_relative_to(PUBLIC) else path.relative_to(REPO / "tests"))


@pytest.mark.parametrize("path", FIXTURES, ids=_label)
def test_a_reader_reads_the_same_utc_times_in_any_machine_zone(path, machine_zone):
    machine_zone("UTC")
    name, in_utc, rejected_in_utc = _read(path)
    assert name, f"no reader recognizes {path.name}"
    assert in_utc or rejected_in_utc, f"{name} read nothing from {path.name}"
    for zone in ("America/New_York", "Asia/Kolkata"):
        machine_zone(zone)
        assert _read(path) == (name, in_utc, rejected_in_utc), zone


SENTINEL_ZONE_LESS = (b'{"TimeGenerated":"2026-10-14T00:00:00","EventTime":"2026-10-14T00:00:00","Computer":"mx01",'
                      b'"HostName":"mx01","Facility":"mail","SyslogMessage":"postsuper: Deleted: 12 messages",'
                      b'"ProcessName":"postfix/postsuper","ProcessID":2301,"Type":"Syslog"}\n')


def test_a_sentinel_row_without_a_zone_is_utc_by_the_table_definition_not_the_machine_zone(machine_zone):
    machine_zone("America/New_York")
    path = Path("row.json")
    ctx = ReadContext(str(path), "0" * 64, {})
    source = identify(SENTINEL_ZONE_LESS)
    assert source is not None and source.name == "sentinel_syslog"
    rows = [row for table in read_events(source, io.BufferedReader(io.BytesIO(SENTINEL_ZONE_LESS)), ctx)
            for row in table.to_pylist()]
    assert [row["@timestamp"].isoformat() for row in rows] == ["2026-10-14T00:00:00"]


ZONE_LESS_REJECTED = {
    "eslogger": (b'{"schema_version":1,"event_type":32,"time":"2026-10-14T09:31:02.123456789",'
                 b'"process":{"audit_token":{"auid":501,"euid":501,"pid":10},"executable":{"path":"/bin/rm"}},'
                 b'"event":{"unlink":{"target":{"path":"/Users/alice/Library/Mail/V10/x.emlx"}}},'
                 b'"global_seq_num":1}\n'),
    "macos_unified_log_ndjson": (b'{"timestamp":"2026-10-14 09:31:02.123456","eventMessage":"x",'
                                 b'"processImagePath":"/usr/bin/osascript","userID":501}\n'),
}


@pytest.mark.parametrize("name", sorted(ZONE_LESS_REJECTED))
def test_a_time_without_a_zone_where_the_format_writes_one_is_rejected_in_any_machine_zone(name, machine_zone):
    machine_zone("America/New_York")
    data = ZONE_LESS_REJECTED[name]
    source = identify(data)
    assert source is not None and source.name == name
    ctx = ReadContext("evidence", "0" * 64, {})
    rows = [row for table in read_events(source, io.BufferedReader(io.BytesIO(data)), ctx) for row in table.to_pylist()]
    assert rows == []
    written = "2026-10-14T09:31:02.123456789" if name == "eslogger" else "2026-10-14 09:31:02.123456"
    assert [r.locator for r in ctx.rejections] == ["line 1"]
    assert ctx.rejections[0].reason.endswith(f"time '{written}' has no time zone")
