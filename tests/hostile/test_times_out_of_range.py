"""A time outside years 1-9999 rejects its record at read time, in every reader path, and never
reaches the case (where Python, the baselines and the reports could not handle it)."""

import json

import duckdb
import pytest

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources import windows_stream
from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

FIXTURES = REPO / "tests" / "fixtures"
OUTSIDE = "is outside years 1-9999 (UTC)"
# Texts DuckDB reads as times but Python cannot hold: year 0 (1 BC), year -1, year 10000, a
# five-digit year, and the first instant of year 1 written five hours east of UTC (year 0 in UTC).
BAD_TIMES = ["0000-01-01T00:00:00", "-0001-01-01T00:00:00", "10000-01-01T00:00:00Z",
             "99999-12-31T00:00:00Z", "0001-01-01T00:00:00+05:00"]


def _audit_lines() -> list[str]:
    good = (FIXTURES / "m365" / "records.ndjson").read_text().splitlines()
    lines = []
    for index, line in enumerate(good):
        lines.append(line)
        if index < len(BAD_TIMES):
            record = json.loads(line)
            record["CreationTime"] = BAD_TIMES[index]
            record["Id"] = f"out-of-range-{index}"
            lines.append(json.dumps(record))
    return lines


def test_audit_records_with_times_outside_years_1_to_9999_are_rejected_and_the_hunt_completes(tmp_path):
    lines = _audit_lines()
    evidence = tmp_path / "audit.ndjson"
    evidence.write_text("\n".join(lines) + "\n")
    bad = [number for number, line in enumerate(lines, start=1) if '"out-of-range-' in line]

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.records == len(lines) and outcome.rejected == len(BAD_TIMES)
    assert [locator for locator, _ in outcome.rejections] == [f"line {n}" for n in bad]
    for (_, reason), text in zip(outcome.rejections, BAD_TIMES):
        assert reason == f"CreationTime: time '{text}' {OUTSIDE}"
    assert outcome.kept == [n for n in range(1, len(lines) + 1) if n not in bad]
    assert outcome.document["findings"], "the good records' findings are written"


def test_text_only_duckdb_reads_as_a_time_is_no_creation_time(tmp_path):
    good = (FIXTURES / "m365" / "records.ndjson").read_text().splitlines()
    lines = []
    for index, text in enumerate(["epoch", "infinity", "-infinity"]):
        record = json.loads(good[index])
        record["CreationTime"], record["Id"] = text, f"word-{index}"
        lines.append(json.dumps(record))
    evidence = tmp_path / "audit.ndjson"
    evidence.write_text("\n".join(lines + good) + "\n")

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.rejected == 3
    assert [reason for _, reason in outcome.rejections] == [
        f"CreationTime '{text}' is not an ISO-8601 time" for text in ("epoch", "infinity", "-infinity")]
    assert outcome.kept == list(range(4, 4 + len(good)))


def _windows_lines() -> list[str]:
    template = json.loads((FIXTURES / "windows" / "exch01_msexchange_management.jsonl").read_text().splitlines()[1])
    times = ["2026-10-03T22:14:05.123456Z", *BAD_TIMES, "2026-10-03T22:15:00Z"]
    lines = []
    for number, text in enumerate(times, start=1):
        record = json.loads(json.dumps(template))
        record["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"] = text
        record["Event"]["System"]["EventRecordID"] = 90210 + number
        lines.append(json.dumps(record))
    return lines


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_windows_records_outside_the_range_are_rejected_alike_by_python_and_sql(tmp_path, monkeypatch,
                                                                               sql_min_records):
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    evidence = tmp_path / "exch.jsonl"
    evidence.write_text("\n".join(_windows_lines()) + "\n")

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.records == len(BAD_TIMES) + 2 and outcome.rejected == len(BAD_TIMES)
    assert outcome.rejections == [
        (f"line {number}", f"not a Windows event record: TimeCreated: time '{text}' {OUTSIDE}")
        for number, text in enumerate(BAD_TIMES, start=2)]
    assert outcome.kept == [1, len(BAD_TIMES) + 2]


def test_python_readers_reject_a_time_that_leaves_the_range_once_made_utc(tmp_path):
    """Python cannot represent these either: converting one to UTC used to raise OverflowError,
    which ended the reader and lost every later line of the file."""
    syslog = tmp_path / "rfc5424.log"
    syslog.write_text(
        "<38>1 0001-01-01T00:00:00+05:00 mx1 sshd 901 - - Accepted password for eve\n"
        "<38>1 9999-12-31T23:30:00-05:00 mx1 sshd 902 - - Accepted password for eve\n"
        "<38>1 2026-10-14T09:34:05Z mx1 sshd 903 - - Accepted password for carol from 2001:db8::7 port 50000 ssh2\n")
    outcome = hunt_file(syslog, tmp_path / "syslog-case")
    assert (outcome.records, outcome.rejected, outcome.kept) == (3, 2, [3])
    assert [reason for _, reason in outcome.rejections] == [
        f"time '0001-01-01T00:00:00+05:00' {OUTSIDE}", f"time '9999-12-31T23:30:00-05:00' {OUTSIDE}"]

    trace = tmp_path / "message_trace.csv"
    rows = (FIXTURES / "exchange" / "message_trace.csv").read_text().splitlines()[:3]
    trace.write_text("\n".join([rows[0], rows[1].replace("2026-10-14T16:31:07.4470000Z", "0001-01-01T00:00:00+05:00"),
                                rows[2]]) + "\n")
    outcome = hunt_file(trace, tmp_path / "trace-case")
    assert outcome.rejections == [("line 2", f"Received: time '0001-01-01T00:00:00+05:00' {OUTSIDE}")]
    assert outcome.kept == [3]


def test_a_case_already_holding_such_an_event_is_hunted_again_without_failing(tmp_path):
    """A case loaded before the readers rejected these times: the event is moved to the rejections."""
    evidence = tmp_path / "audit.ndjson"
    evidence.write_text((FIXTURES / "m365" / "records.ndjson").read_text())
    out = tmp_path / "case"
    first = hunt([evidence], out, Config())
    [summary] = first.inputs
    with duckdb.connect(str(out / "case.duckdb")) as db:
        db.execute("""UPDATE events SET "@timestamp" = TIMESTAMP '10000-01-01 00:00:00' WHERE "log.record" = 2""")
        db.execute("""UPDATE events SET "@timestamp" = CAST('0000-06-01' AS TIMESTAMP) WHERE "log.record" = 3""")

    again = hunt([evidence], out, Config())

    document = json.loads((out / "findings.json").read_text())
    [input_summary] = document["inputs"]
    assert input_summary["records"] == summary.records and input_summary["rejected"] == summary.rejected + 2
    assert again.findings, "the other events still make their findings"
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        assert db.execute('SELECT count(*) FROM events WHERE "log.record" IN (2, 3)').fetchone()[0] == 0
        reasons = db.execute("SELECT locator, reason FROM rejections ORDER BY locator").fetchall()
    removed = "removed from the case (stored by an earlier mailhunt)"
    assert reasons == [("line 2", f"time '10000-01-01 00:00:00' {OUTSIDE}; {removed}"),
                       ("line 3", f"time '0001-06-01 (BC) 00:00:00' {OUTSIDE}; {removed}")]
