"""A large finding keeps its events as one Arrow table; it must read exactly as the list of events it replaces."""

from pathlib import Path

from mailhunt.config import Config
from mailhunt.detect import grouping
from mailhunt.findings import EvidenceList
from mailhunt.hunt import hunt
from tests.corpus import PUBLIC

EVIDENCE = [PUBLIC / "evtx-to-mitre-attack", PUBLIC / "evtx-attack-samples"]


def test_columnar_evidence_reads_and_reports_like_the_event_list(tmp_path: Path, monkeypatch):
    as_objects = hunt(EVIDENCE, tmp_path / "objects", Config())
    monkeypatch.setattr(grouping, "COLUMNAR_EVIDENCE", 0)
    as_table = hunt(EVIDENCE, tmp_path / "table", Config())

    assert as_table.document["findings"] == as_objects.document["findings"]
    assert all(isinstance(f.events, EvidenceList) for f in as_table.findings)
    assert not any(isinstance(f.events, EvidenceList) for f in as_objects.findings)
    largest = max(as_table.findings, key=lambda f: len(f.events))
    same = next(f for f in as_objects.findings if f.id == largest.id)
    assert len(largest.events) == len(same.events) > 50
    assert list(largest.events) == same.events and largest.events == same.events
    assert largest.events[0] == same.events[0] and largest.events[-1] == same.events[-1]
    assert largest.events[3:9] == same.events[3:9] and largest.events[::7] == same.events[::7]
    assert (largest.targets, largest.host, largest.actions, largest.event_ids) == \
           (same.targets, same.host, same.actions, same.event_ids)
