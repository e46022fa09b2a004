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

import duckdb
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


def evtx_dump_json(items: list[dict], numbers: list[int]) -> bytes:
    """What ``evtx_dump -o json`` writes: a ``Record <n>`` line (the record's number in the file), then the record."""
    return "".join(f"Record {n}\n{orjson.dumps(r, option=orjson.OPT_INDENT_2).decode()}\n"
                   for n, r in zip(numbers, items)).encode()


def hunt_gap_findings(tmp_path: Path, name: str, data: bytes):
    evidence = tmp_path / name
    evidence.write_bytes(data)
    result = hunt([evidence], tmp_path / "case", Config())
    gap_findings = [f for f in result.findings if GAP_ACTION in {e.action for e in f.events}]
    return result, gap_findings


def stored_gaps(case: Path) -> list[tuple[dict, int]]:
    """Labels and file locator of every gap event in the case store."""
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        return db.execute('SELECT labels, "log.record" FROM events WHERE "event.action" = ? ORDER BY 2',
                          [GAP_ACTION]).fetchall()


def test_gap_in_a_log_numbered_as_windows_writes_it_is_escalated(tmp_path: Path):
    """Record numbers equal to EventRecordID: the file is the log itself, so a gap is records taken out of it."""
    items = record_5100_dropped()
    numbers = [r["Event"]["System"]["EventRecordID"] for r in items]
    result, [finding] = hunt_gap_findings(tmp_path, "fs03-system.json", evtx_dump_json(items, numbers))
    [summary] = result.inputs
    assert summary.format == "evtx_dump_json" and not summary.notes
    [(labels, _)] = stored_gaps(tmp_path / "case")
    assert labels["first_missing_record_id"] == "5100" and "exported_log" not in labels
    assert [r.id for r in finding.rules] == ["844d30b4-6381-5494-8af6-ffc0ae0c9e97"]
    assert finding.escalate and finding.severity == "high"


def test_gap_in_a_saved_log_is_reported_as_context_not_escalated(tmp_path: Path):
    """The same records numbered from 1, as a saved or exported log numbers them: the gap may be the export's filter."""
    items = record_5100_dropped()
    result, [finding] = hunt_gap_findings(tmp_path, "fs03-system-saved.json",
                                          evtx_dump_json(items, list(range(1, len(items) + 1))))
    [summary] = result.inputs
    [note] = summary.notes
    assert note.startswith("a saved or exported log") and "EventRecordID 5101" in note
    [(labels, line)] = stored_gaps(tmp_path / "case")
    assert labels["exported_log"] == "true" and labels["first_missing_record_id"] == "5100"
    record_line = evtx_dump_json(items, list(range(1, len(items) + 1))).decode().splitlines()[line - 2]
    assert record_line == f"Record {labels['file_record_number']}" and labels["file_record_number"] != "5101"
    assert [r.level for r in finding.rules] == ["informational"]
    assert not finding.escalate and finding.severity == "low"
    assert finding.reasons[0].startswith("not escalated: only informational rules matched")
    assert "Saved Or Exported" in finding.reasons[0]


def test_public_filtered_exports_give_informational_gaps_and_the_real_clear_still_escalates(tmp_path: Path):
    """The public samples are filtered saves (records numbered from 1): their gaps are context; the
    log-cleared events in them are still an escalated finding."""
    samples = [PUBLIC / "evtx-to-mitre-attack" / name for name in (
        "ID4688-Clear_event_log_attempt__native_.evtx", "ID4756-Exchange_admin_group_change.evtx",
        "ID104-1102-Event_log_cleared.evtx")]
    result = hunt(samples, tmp_path / "case", Config())
    gap_findings = [f for f in result.findings if GAP_ACTION in {e.action for e in f.events}]
    assert len(gap_findings) == 2 and not any(f.escalate for f in gap_findings)
    gaps = stored_gaps(tmp_path / "case")
    assert len(gaps) == sum(len(f.events) for f in gap_findings)
    assert all(labels["exported_log"] == "true" for labels, _ in gaps)
    notes = {s.path.rsplit("/", 1)[-1]: s.notes for s in result.inputs}
    assert len(notes["ID4688-Clear_event_log_attempt__native_.evtx"]) == 1
    assert notes["ID104-1102-Event_log_cleared.evtx"] == []
    # admmig's clears: the 1102/104 records, and, a year earlier, the wevtutil cl attempts of the 4688 sample
    cleared, attempted = sorted((f for f in result.findings if f.actor == "admmig"), key=lambda f: f.events[0].timestamp,
                                reverse=True)
    assert cleared.escalate and cleared.indicator == "audit_tampering"
    assert {e.action for e in cleared.events} >= {"audit-log-cleared", "log-cleared"}
    assert attempted.escalate and attempted.indicator == "audit_tampering"
    assert {e.action for e in attempted.events} == {"process-created"}
