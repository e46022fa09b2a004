"""A JSON-lines file whose first line is longer than the sniffing buffer is still read line by line:
recognition does not depend on the first record fitting the buffer, and one bad line loses only itself."""

import json

import pytest

from mailhunt import sources
from mailhunt.sources import SNIFF_BYTES, identify, sniff_head
from tests.hostile.record_hunt import hunt_file

GOOD = 1000
BAD_LINE = 500


def _record(n: int, user_agent: str = "Mozilla/5.0") -> str:
    return json.dumps({"CreationTime": f"2026-10-14T09:{n % 60:02d}:00", "Id": f"r{n}", "Operation": "HardDelete",
                       "Workload": "Exchange", "RecordType": 3, "UserId": "mallory@contoso.com",
                       "MailboxOwnerUPN": "bob@contoso.com", "ResultStatus": "Succeeded", "UserAgent": user_agent,
                       "ClientIP": "203.0.113.9",
                       "AffectedItems": [{"Subject": f"alert {n}", "ParentFolder": {"Path": "\\Deleted Items"}}]})


def _evidence(tmp_path, first_line_bytes: int):
    lines = [_record(1, "Mozilla/5.0 " + "x" * first_line_bytes)]
    lines += [_record(n) for n in range(2, GOOD + 1)]
    lines.insert(BAD_LINE - 1, lines[BAD_LINE - 1][:60])  # a cut line in the middle
    path = tmp_path / "audit.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_first_line_longer_than_the_sniff_buffer_is_still_json_lines(tmp_path):
    evidence = _evidence(tmp_path, 100 * 1024)
    assert len(evidence.read_bytes().split(b"\n", 1)[0]) > SNIFF_BYTES

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.document["inputs"][0]["format"] == "ual_ndjson"
    assert outcome.records == GOOD + 1 and outcome.rejected == 1
    assert [locator for locator, _ in outcome.rejections] == [f"line {BAD_LINE}"]
    assert outcome.kept == [n for n in range(1, GOOD + 2) if n != BAD_LINE]


def test_first_line_longer_than_any_head_is_still_not_taken_for_an_array(tmp_path, monkeypatch):
    """Past the longest head read, the cut first line still says: one object a line."""
    monkeypatch.setattr(sources, "MAX_SNIFF_LINE", SNIFF_BYTES)
    evidence = _evidence(tmp_path, 100 * 1024)
    head = sniff_head(lambda size: evidence.read_bytes()[:size])
    assert b"\n" not in head
    assert identify(head).name == "ual_ndjson"


@pytest.mark.parametrize("size", [SNIFF_BYTES - 10, SNIFF_BYTES, 5 * SNIFF_BYTES, 40 * SNIFF_BYTES])
def test_the_head_reaches_the_end_of_a_long_first_json_line(tmp_path, size):
    data = _evidence(tmp_path, size).read_bytes()
    head = sniff_head(lambda n: data[:n])
    assert b"\n" in head and head == data[:len(head)]
    assert identify(head).name == "ual_ndjson"


def test_other_files_keep_the_usual_head():
    data = b"[" + b" " * (3 * SNIFF_BYTES)
    assert sniff_head(lambda n: data[:n]) == data[:SNIFF_BYTES]
