"""EventRecordID gaps on the public log-cleared sample, as evtx_dump JSONL with records renumbered or dropped.

ID104-1102-Event_log_cleared.evtx holds, on FS03.offsec.lan, the System log's
own clear (System 104, EventRecordID 5073, by OFFSEC\\admmig), the Security
clear (1102) and 89 more System 104 records (5074..5162) clearing other
channels. The cases below change only record numbers or leave records out, as
an evidence collection merged from before and after a clear, or edited with a
record-deleting tool, would.
"""

import io
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from evtx import PyEvtxParser

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources import ReadContext, identify, windows_stream
from mailhunt.sources.windows_stream import GAP_ACTION
from tests.corpus import PUBLIC

CLEARED = PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"


def records() -> list[dict]:
    return [orjson.loads(r["data"]) for r in PyEvtxParser(str(CLEARED)).records_json()]


def system_id(record: dict) -> int | None:
    system = record["Event"]["System"]
    return system["EventRecordID"] if system["Channel"] == "System" else None


def jsonl(items: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in items)


def self_clear_after_a_gap() -> list[dict]:
    """The System log's own clear moved after the other System records and numbered 5170: records
    5163..5169 are missing and the next record is the clear of this very log."""
    items = records()
    [own_clear] = [r for r in items if system_id(r) == 5073]
    items.remove(own_clear)
    own_clear["Event"]["System"]["EventRecordID"] = 5170
    return items + [own_clear]


def record_5100_dropped() -> list[dict]:
    """System record 5100 left out; 5101 after it clears another channel, not System."""
    return [r for r in records() if system_id(r) != 5100]


def read_rows(data: bytes) -> list[dict]:
    source = identify(data[:65536])
    ctx = ReadContext("gaps.jsonl", "0" * 64)
    tables = list(source.read(io.BufferedReader(io.BytesIO(data)), ctx))
    assert source.name == "evtx_dump_jsonl" and ctx.rejected == 0
    return pa.concat_tables(tables).to_pylist()


def gap_events(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["event.action"] == GAP_ACTION]


@pytest.fixture(params=["python", "sql"])
def mapping(request, monkeypatch):
    """Both mappings: record by record (small batches) and in SQL (as large files are read)."""
    if request.param == "sql":
        monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    return request.param


def test_gap_before_the_channels_own_clear_is_attributed_to_who_cleared_it(mapping):
    [gap] = gap_events(read_rows(jsonl(self_clear_after_a_gap())))
    labels = dict(gap["labels"])
    assert (labels["first_missing_record_id"], labels["last_missing_record_id"]) == ("5163", "5169")
    assert (gap["user.name"], gap["user.domain"], gap["host.name"]) == ("admmig", "OFFSEC", "FS03.offsec.lan")
    assert labels["actor_source"] == "log-cleared event 104 at line 91"
    assert "account_before_gap" not in labels


def test_gap_not_followed_by_a_clear_of_its_channel_names_no_actor_only_who_came_before(mapping):
    [gap] = gap_events(read_rows(jsonl(record_5100_dropped())))
    labels = dict(gap["labels"])
    assert (labels["first_missing_record_id"], labels["last_missing_record_id"]) == ("5100", "5100")
    assert gap["user.name"] is None and gap["user.id"] is None and "actor_source" not in labels
    assert labels["account_before_gap"] == "OFFSEC\\admmig"


def test_gaps_without_an_account_before_them_say_nothing_of_one(mapping):
    """The 4688 sample is a filtered export: its records name admmig, so every gap has context, no actor."""
    path = PUBLIC / "evtx-to-mitre-attack" / "ID4688-Clear_event_log_attempt__native_.evtx"
    gaps = gap_events(read_rows(jsonl([orjson.loads(r["data"]) for r in PyEvtxParser(str(path)).records_json()])))
    assert gaps and all(g["user.name"] is None and dict(g["labels"])["account_before_gap"] == "OFFSEC\\admmig"
                        for g in gaps)


def test_attributed_gap_is_in_the_actors_audit_tampering_finding(tmp_path: Path):
    evidence = tmp_path / "fs03-merged.jsonl"
    evidence.write_bytes(jsonl(self_clear_after_a_gap()))
    result = hunt([evidence], tmp_path / "case", Config())
    [finding] = [f for f in result.findings if f.indicator == "audit_tampering" and f.actor == "admmig"]
    assert [e.action for e in finding.events].count(GAP_ACTION) == 1
    document = next(f for f in result.document["findings"] if f["id"] == finding.id)
    assert document["actor"] == "admmig"
