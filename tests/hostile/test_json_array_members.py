"""Each member of a JSON array stands alone: one the parser refuses is rejected with its offset,
and every member after it is kept."""

import io
import json

import pytest

from mailhunt.sources import base
from mailhunt.sources.base import ReadContext, json_array_members
from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

GOOD = 99
DEEP = 100_000


def _audit_record(n: int) -> dict:
    return {"CreationTime": f"2026-10-14T09:{n % 60:02d}:00", "Id": f"r{n}", "Operation": "HardDelete",
            "Workload": "Exchange", "RecordType": 3, "UserId": "mallory@contoso.com",
            "MailboxOwnerUPN": "bob@contoso.com", "ResultStatus": "Succeeded",
            "AffectedItems": [{"Subject": f"Security alert {n}", "ParentFolder": {"Path": "\\Deleted Items"}}]}


BAD_MEMBERS = {
    "nested 100,000 deep": '{"CreationTime":"2026-10-14T09:00:00","Operation":"HardDelete","X":'
                           + "[" * DEEP + "]" * DEEP + "}",
    "a 5,000-digit number": '{"CreationTime":"2026-10-14T09:00:00","Operation":"HardDelete","X":' + "7" * 5000 + "}",
    "a syntax error": '{"CreationTime":"2026-10-14T09:00:00","Operation":"HardDelete","X":[1,2,}',
}


def _array(bad: str, at: int = 40) -> str:
    members = [json.dumps(_audit_record(n), indent=2) for n in range(1, GOOD + 1)]
    members.insert(at, bad)
    return "[\n" + ",\n".join(members) + "\n]\n"


@pytest.mark.parametrize("kind", list(BAD_MEMBERS))
def test_one_bad_member_loses_only_itself(tmp_path, kind):
    text = _array(BAD_MEMBERS[kind])
    evidence = tmp_path / "content_blob.json"
    evidence.write_text(text)

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.records == GOOD + 1 and outcome.rejected == 1
    [(locator, reason)] = outcome.rejections
    assert locator == "record 41"
    assert reason.startswith(f"member at character {text.index(BAD_MEMBERS[kind][:30], 10)} is not valid JSON")
    assert outcome.kept == [n for n in range(1, GOOD + 2) if n != 41]
    assert outcome.document["findings"]


def test_members_split_across_reads_and_bad_ones_between_them(monkeypatch):
    """Small reads: members, strings and escapes cut at every point still come out whole."""
    members = [json.dumps({"Operation": "Send", "Subject": 'say "hi" \\ ' * n, "n": n}) for n in range(30)]
    members[7] = BAD_MEMBERS["a 5,000-digit number"]
    members[19] = "[" * 3000 + "]" * 3000
    text = "\ufeff[" + " ,\r\n".join(members) + "]"
    ctx = ReadContext("blob.json", "0" * 64)
    got = list(json_array_members(io.BytesIO(text.encode()), ctx, chunk_size=37))
    assert [index for index, _, _ in got] == [n + 1 for n in range(30) if n not in (7, 19)]
    assert all(json.loads(raw) == value for _, raw, value in got)
    assert ctx.records == 30 and [r.locator for r in ctx.rejections] == ["record 8", "record 20"]


def test_an_oversized_member_is_skipped_and_the_rest_kept(monkeypatch):
    monkeypatch.setattr(base, "MAX_MEMBER_CHARS", 500)
    members = [json.dumps({"Operation": "Send", "n": n}) for n in range(5)]
    members[2] = json.dumps({"Operation": "Send", "pad": "x" * 5000})
    ctx = ReadContext("blob.json", "0" * 64)
    got = list(json_array_members(io.BytesIO(("[" + ",".join(members) + "]").encode()), ctx, chunk_size=64))
    assert [index for index, _, _ in got] == [1, 2, 4, 5]
    assert ctx.records == 5 and [(r.locator, "longer than" in r.reason) for r in ctx.rejections] == [("record 3", True)]


def test_truncated_array_still_keeps_its_complete_members():
    path = REPO / "tests" / "fixtures" / "m365" / "bad_truncated_array.json"
    ctx = ReadContext(str(path), "0" * 64)
    got = list(json_array_members(io.BytesIO(path.read_bytes()), ctx))
    assert [index for index, _, _ in got] == [1, 2]
    assert [(r.locator, "file truncated" in r.reason) for r in ctx.rejections] == [("record 3", True)]
