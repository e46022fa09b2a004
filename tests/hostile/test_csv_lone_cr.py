"""A lone CR ends a CSV row outside quotes and is data inside them, in every CSV reader: a row
ending in a lone CR no longer merges with the next one (both used to be lost)."""

import duckdb
import pytest

from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

FIXTURES = REPO / "tests" / "fixtures"
CSV_EXPORTS = {
    "purview_csv": FIXTURES / "m365" / "purview_bom_crlf.csv",
    "ual_csv": FIXTURES / "m365" / "search_unifiedauditlog.csv",
    "admin_audit_csv": FIXTURES / "exchange" / "admin_audit_export.csv",
    "m365_message_trace_csv": FIXTURES / "exchange" / "message_trace.csv",
}


def _with_lone_cr_row_ends(data: bytes) -> bytes:
    """Every row end after the header written as a lone CR (records still separated the same way)."""
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    header, _, rows = data.partition(newline)
    if header.startswith(b"#TYPE"):
        second, _, rows = rows.partition(newline)
        header += newline + second
    return header + newline + _outside_quotes(rows, newline, b"\r")


def _outside_quotes(data: bytes, old: bytes, new: bytes) -> bytes:
    parts = data.split(b'"')
    return b'"'.join(part.replace(old, new) if index % 2 == 0 else part for index, part in enumerate(parts))


@pytest.mark.parametrize("name", list(CSV_EXPORTS))
def test_rows_ended_by_a_lone_cr_are_each_kept(tmp_path, name):
    original = CSV_EXPORTS[name]
    variant = tmp_path / original.name
    variant.write_bytes(_with_lone_cr_row_ends(original.read_bytes()))
    assert variant.read_bytes().count(b"\r") > 2

    hints = {"timezone": "UTC"}  # the admin audit export's RunDate is the exporting session's local time
    before = hunt_file(original, tmp_path / "before", hints)
    after = hunt_file(variant, tmp_path / "after", hints)

    assert after.document["inputs"][0]["format"] == name
    assert (after.records, after.rejected) == (before.records, before.rejected)
    assert len(after.kept) == len(before.kept) > 1
    assert [f["indicator"] for f in after.document["findings"]] == [f["indicator"] for f in before.document["findings"]]


def test_a_lone_cr_inside_quotes_is_part_of_the_value(tmp_path):
    lines = (FIXTURES / "exchange" / "message_trace.csv").read_text().splitlines()[:3]
    lines[1] = lines[1].replace('"Invoice overdue - action required"', '"Invoice overdue\r- action required"')
    evidence = tmp_path / "message_trace.csv"
    evidence.write_bytes(("\r".join(lines[:2]) + "\r" + lines[2] + "\r\n").encode())

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected) == (2, 0)
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        subjects = sorted(row[0] for row in db.execute('SELECT "email.subject" FROM events').fetchall())
    assert subjects == ["Invoice overdue\r- action required", "Invoice overdue - action required"]


def test_message_tracking_log_lines_ended_by_a_lone_cr(tmp_path):
    original = FIXTURES / "exchange" / "MSGTRK20261014-1.LOG"
    data = original.read_bytes()
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    variant = tmp_path / original.name
    variant.write_bytes(_outside_quotes(data, newline, b"\r"))

    before = hunt_file(original, tmp_path / "before")
    after = hunt_file(variant, tmp_path / "after")

    assert (after.records, after.rejected, len(after.kept)) == (before.records, before.rejected, len(before.kept))
    assert after.records > 1
