"""An EVTX file that holds one chunk twice (a carved or badly joined log): each record is one event, and each
piece of evidence names the place it was read once, however many times the file repeats it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mailhunt.cli import app
from tests.corpus import PUBLIC

CLEARED = PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"  # one chunk: records 1..91
HEADER, CHUNK = 4096, 65536


def test_a_repeated_chunk_gives_each_record_one_event_and_one_source(tmp_path):
    data = CLEARED.read_bytes()
    assert data[HEADER:HEADER + 8] == b"ElfChnk\x00" and len(data) == HEADER + CHUNK
    evidence = tmp_path / "repeated.evtx"
    evidence.write_bytes(data + data[HEADER:HEADER + CHUNK])
    result = CliRunner().invoke(app, ["hunt", str(evidence), "--out", str(tmp_path / "case")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "case" / "findings.json").read_text())
    [read] = document["inputs"]
    assert (read["records"], read["new_events"]) == (182, 91)
    evidence_entries = [entry for finding in document["findings"] for entry in finding["evidence"]]
    assert len(evidence_entries) == 91
    for entry in evidence_entries:
        [source] = entry["sources"]
        assert source["source"] == str(evidence) and source["locator"].startswith("record ")
    assert sorted(int(e["sources"][0]["locator"].split()[1]) for e in evidence_entries) == list(range(1, 92))
