"""Many small files in one hunt: their records are mapped together in shared batches and their inputs rows
written in groups (issue 17), and still every record keeps its own file, line and SHA-256, every bad record is
counted against its own file, and a stop keeps exactly the files read in full."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from mailhunt import hunt as hunt_module
from mailhunt.config import Config
from mailhunt.hunt import HuntInterrupted, hunt
from mailhunt.sources.inputs import iter_evidence
from mailhunt.sources.m365_normalize import StagedAuditRecords

FILES = 12
RECORDS = 6


def _record(file: int, line: int) -> dict:
    return {"CreationTime": f"2026-10-14T09:{file:02d}:{line:02d}", "Id": f"f{file}-l{line}",
            "Operation": "MailItemsAccessed", "Workload": "Exchange", "RecordType": 50, "ResultStatus": "Succeeded",
            "UserId": f"u{file % 3}@contoso.com", "ClientIP": f"203.0.113.{file}:443",
            "OrganizationId": "3f1c9a52-6b0e-4d7a-9e21-8c4b7f05d3e6"}


def _evidence(root: Path) -> dict[str, dict]:
    """FILES NDJSON files of RECORDS lines each; file 3 has a truncated line 4, file 7 names a key twice on line 2,
    plus an empty file. Returns each record id's expected (path, line)."""
    expected = {}
    for file in range(FILES):
        lines = []
        for line in range(1, RECORDS + 1):
            record = _record(file, line)
            text = json.dumps(record)
            if file == 3 and line == 4:
                text = text[:40]
            elif file == 7 and line == 2:
                text = text[:-1] + ', "UserId": "second@contoso.com"}'
            else:
                expected[record["Id"]] = (str(root / f"audit-{file:02d}.json"), line)
            lines.append(text)
        (root / f"audit-{file:02d}.json").write_text("\n".join(lines) + "\n")
    expected["f7-l2"] = (str(root / "audit-07.json"), 2)
    (root / "empty.json").write_text("")
    return expected


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def small_groups(monkeypatch):
    """Groups of a few files (a real hunt groups thousands), so that one hunt makes several."""
    monkeypatch.setattr(hunt_module, "COMBINED_ROWS", 15)
    monkeypatch.setattr(hunt_module, "STORE_EVERY_FILES", 5)


def _spy_on_mapping(monkeypatch) -> list[int]:
    """The number of files in each batch the store maps."""
    batches: list[int] = []
    real = StagedAuditRecords.insert_into

    def insert_into(self, db, table):
        batches.append(len(self.parts))
        return real(self, db, table)

    monkeypatch.setattr(StagedAuditRecords, "insert_into", insert_into)
    return batches


def test_records_mapped_together_keep_their_own_file_line_and_digest(tmp_path, monkeypatch, small_groups):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    expected = _evidence(evidence)
    batches = _spy_on_mapping(monkeypatch)
    result = hunt([evidence], tmp_path / "case", Config(), copy_evidence=False)

    assert sum(batches) == FILES and len(batches) < FILES and max(batches) > 1  # files shared batches
    assert [s.path for s in result.inputs] == [item.display for item in iter_evidence([evidence])]
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        events = db.execute("""SELECT "event.original", "log.file.path", "log.file.sha256", "log.record",
                                      "user.name", labels FROM events""").fetchall()
        rejections = db.execute("SELECT path, sha256, locator, reason FROM rejections").fetchall()
        inputs = db.execute("SELECT path, sha256, format, records, rejected, skipped_reason FROM inputs "
                            "ORDER BY path").fetchall()
    found = {json.loads(original)["Id"]: (path, line) for original, path, _, line, _, _ in events}
    assert found == expected
    assert all(sha256 == _sha256(path) for _, path, sha256, _, _, _ in events)
    marked = {(path, line, user) for _, path, _, line, user, labels in events if labels}
    assert marked == {(str(evidence / "audit-07.json"), 2, "second@contoso.com")}
    bad = str(evidence / "audit-03.json")
    assert rejections == [(bad, _sha256(bad), "line 4", "not valid JSON (truncated or corrupt record)")]
    for path, sha256, fmt, records, rejected, skipped in inputs:
        if path.endswith("empty.json"):
            assert (fmt, records, skipped) == (None, 0, "empty file")
            continue
        assert (sha256, fmt, records, rejected, skipped) == (
            _sha256(path), "ual_ndjson", RECORDS, 1 if path == bad else 0, None)
    assert len(inputs) == FILES + 1
    summary = {s.path: s for s in result.inputs}
    assert [str(r) for r in summary[bad].rejections] == [
        f"{bad}:line 4: not valid JSON (truncated or corrupt record)"]
    assert summary[str(evidence / "audit-07.json")].notes  # the duplicate key is said on its own file


def test_a_file_whose_records_cannot_be_stored_costs_only_itself(tmp_path, monkeypatch, small_groups):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    expected = _evidence(evidence)
    failing = str(evidence / "audit-05.json")
    real = StagedAuditRecords.insert_into

    def insert_into(self, db, table):
        if any(part.context.path == failing for part in self.parts):
            raise duckdb.ConversionException("Conversion Error: injected for this file")
        return real(self, db, table)

    monkeypatch.setattr(StagedAuditRecords, "insert_into", insert_into)
    result = hunt([evidence], tmp_path / "case", Config(), copy_evidence=False)

    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        paths = db.execute('SELECT "log.file.path", count(*) FROM events GROUP BY 1').fetchall()
        rejected = db.execute("SELECT path, rejected FROM inputs WHERE rejected > 0 ORDER BY path").fetchall()
    stored = {path: count for path, count in paths}
    assert failing not in stored
    assert stored == {path: sum(1 for p, _ in expected.values() if p == path)
                      for path in {p for p, _ in expected.values()} if path != failing}
    assert rejected == [(str(evidence / "audit-03.json"), 1), (failing, 1)]
    reasons = [r.reason for s in result.inputs if s.path == failing for r in s.rejections]
    assert len(reasons) == 1 and "6 records (lines 1 to 6) were read but could not be stored" in reasons[0]
    assert "injected for this file" in reasons[0]


def test_a_stop_keeps_the_files_read_in_full_and_a_rerun_gives_the_whole(tmp_path, monkeypatch, small_groups):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    _evidence(evidence)
    reference = hunt([evidence], tmp_path / "reference", Config(), copy_evidence=False)

    real_load = hunt_module.load_evidence_file
    read: list[str] = []

    def ctrl_c_at_the_ninth_file(store, item, *args, **kwargs):
        if len(read) == 8:
            raise KeyboardInterrupt
        read.append(item.display)
        return real_load(store, item, *args, **kwargs)

    monkeypatch.setattr(hunt_module, "load_evidence_file", ctrl_c_at_the_ninth_file)
    case = tmp_path / "case"
    with pytest.raises(HuntInterrupted) as stopped:
        hunt([evidence], case, Config(), copy_evidence=False)
    assert stopped.value.stored == read  # all eight, though the groups of five had stored only five
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        inputs = [path for (path,) in db.execute("SELECT path FROM inputs ORDER BY path").fetchall()]
        event_files = {path for (path,) in db.execute('SELECT DISTINCT "log.file.path" FROM events').fetchall()}
    assert inputs == sorted(read) and event_files == set(read)

    monkeypatch.undo()
    rerun = hunt([evidence], case, Config(), copy_evidence=False)
    assert rerun.events_in_case == reference.events_in_case
    assert [(s.path, s.already_loaded) for s in rerun.inputs] == [
        (s.path, s.path in read) for s in reference.inputs]


def test_the_terminal_lists_the_inputs_with_something_to_say_and_counts_the_rest(tmp_path, monkeypatch):
    """Past ``SHOWN_INPUTS`` the terminal's table of inputs (100,000 rows took minutes to draw) shows the
    files with rejected records or a note first and says how many are left out; findings.json keeps all."""
    from typer.testing import CliRunner

    from mailhunt import case_document, cli

    monkeypatch.setattr(case_document, "SHOWN_INPUTS", 5)
    root = tmp_path / "evidence"
    root.mkdir()
    _evidence(root)
    result = CliRunner().invoke(cli.app, ["hunt", str(root), "--out", str(tmp_path / "case"), "--no-copy"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    table = result.output.split("Inputs of the case", 1)[1].split("showing", 1)[0]
    rows = [word.rsplit("/", 1)[-1] for word in table.split() if word.endswith(".json")]
    assert rows == ["audit-03.json", "audit-07.json", "empty.json", "audit-00.json", "audit-01.json"]
    assert ("showing 5 of the case's 13 inputs (every input with rejected records or a note is shown); "
            "findings.json and the reports list every input. In all: 72 records, 1 rejected.") in " ".join(
        result.output.split())
    document = json.loads((tmp_path / "case" / "findings.json").read_text())
    assert len(document["inputs"]) == 13
