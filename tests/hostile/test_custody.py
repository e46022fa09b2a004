"""Issue 16, "evidence preserved": the forensic copy of the inputs, its manifest, the custody chain,
``mailhunt verify`` and ``mailhunt show``, driven the way an analyst runs them on real-format fixtures.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import threading
import zipfile
from pathlib import Path

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

import mailhunt.hunt as mailhunt_hunt
from mailhunt.case import custody, evidence
from mailhunt.case.acquisition import acquire
from mailhunt.case.evidence import preserve_evidence
from mailhunt.cli import app
from mailhunt.config import Config

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AUDIT = FIXTURES / "m365" / "audit.ndjson"
CMDLETS = FIXTURES / "m365" / "cmdlets.ndjson"
MAIL_LOG = FIXTURES / "unix" / "syslog" / "mail.log"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hunt(*args) -> object:
    result = runner.invoke(app, ["hunt", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def verify(case: Path) -> object:
    return runner.invoke(app, ["verify", str(case)])


@pytest.fixture
def evidence_folder(tmp_path: Path) -> Path:
    """A folder as an analyst receives it: two audit exports, one in a subfolder, and a zip of a syslog file."""
    folder = tmp_path / "incident"
    (folder / "exchange").mkdir(parents=True)
    shutil.copy(AUDIT, folder / "audit.ndjson")
    shutil.copy(CMDLETS, folder / "exchange" / "cmdlets.ndjson")
    with zipfile.ZipFile(folder / "logs.zip", "w") as archive:
        archive.write(MAIL_LOG, "var/log/mail.log")
    return folder


@pytest.fixture
def case(tmp_path: Path, evidence_folder: Path) -> Path:
    out = tmp_path / "case"
    hunt(evidence_folder, "--out", out)
    return out


def manifest(case: Path) -> dict:
    return json.loads((case / "evidence" / "manifest.json").read_text())


def custody_lines(case: Path) -> list[dict]:
    return [json.loads(line) for line in (case / "custody.jsonl").read_text().splitlines()]


def test_hunt_copies_every_input_read_only_with_its_layout_and_manifest(case: Path, evidence_folder: Path):
    files = {f["evidence_path"]: f for f in manifest(case)["files"]}
    assert set(files) == {"incident/audit.ndjson", "incident/exchange/cmdlets.ndjson", "incident/logs.zip"}
    for relative, entry in files.items():
        copy = case / "evidence" / relative
        original = evidence_folder / relative.removeprefix("incident/")
        assert copy.read_bytes() == original.read_bytes()  # the archive as it came, not its members
        assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert entry["sha256"] == sha256(original) and entry["size"] == original.stat().st_size
        assert entry["original_path"] == str(original)
        assert entry["acquired"].endswith("Z") and entry["modified"].endswith("Z")
        assert entry["mailhunt_version"] and entry["command_line"][0] == "mailhunt"
    # the loader's digest of a plain file is the one the manifest keeps
    inputs = {i["path"]: i["sha256"] for i in json.loads((case / "findings.json").read_text())["inputs"]}
    assert inputs[str(evidence_folder / "audit.ndjson")] == files["incident/audit.ndjson"]["sha256"]


def test_custody_chain_records_the_hunt_and_what_it_added(case: Path):
    (entry,) = custody_lines(case)
    assert entry["previous"] == "0" * 64 and entry["seq"] == 1 and entry["action"] == "hunt"
    assert entry["time"].endswith("Z")
    assert sorted(a["sha256"] for a in entry["added"]) == sorted(f["sha256"] for f in manifest(case)["files"])


def test_rehunt_adds_nothing_twice_and_chains_to_the_hunt(case: Path, evidence_folder: Path):
    hunt(evidence_folder, "--out", case)
    first, second = custody_lines(case)
    assert first["action"] == "hunt"
    assert second["action"] == "re-hunt" and second["added"] == []
    assert second["previous"] == hashlib.sha256((case / "custody.jsonl").read_bytes().splitlines()[0]).hexdigest()
    assert len(manifest(case)["files"]) == 3


def test_other_commands_record_into_the_same_chain(case: Path):
    entry = custody.record(case, "report", {"outputs": ["report.md"]}, command_line=["mailhunt", "report", str(case)])
    assert entry["seq"] == 2 and entry["action"] == "report"
    lines = (case / "custody.jsonl").read_bytes().splitlines()
    assert json.loads(lines[1])["previous"] == hashlib.sha256(lines[0]).hexdigest()
    assert verify(case).exit_code == 0


def test_verify_intact_case_exits_0(case: Path):
    result = verify(case)
    assert result.exit_code == 0, result.output
    assert "3 evidence file(s) hashed, 1 custody entries checked: intact" in result.output


def _writable(path: Path) -> None:
    os.chmod(path, 0o644)


def test_verify_one_byte_changed_exits_1_naming_the_file(case: Path):
    copy = case / "evidence" / "incident" / "audit.ndjson"
    _writable(copy)
    data = bytearray(copy.read_bytes())
    data[10] ^= 1
    copy.write_bytes(bytes(data))
    result = verify(case)
    assert result.exit_code == 1
    assert "evidence/incident/audit.ndjson: modified" in result.output


def test_verify_file_removed_exits_1(case: Path):
    (case / "evidence" / "incident" / "logs.zip").unlink()
    result = verify(case)
    assert result.exit_code == 1
    assert "evidence/incident/logs.zip: missing" in result.output


def test_verify_file_added_exits_1(case: Path):
    (case / "evidence" / "incident" / "planted.csv").write_text("CreationDate,UserIds\n")
    result = verify(case)
    assert result.exit_code == 1
    assert "evidence/incident/planted.csv: added (not in the manifest)" in result.output


def test_verify_manifest_rewritten_to_match_a_changed_file_exits_1(case: Path):
    copy = case / "evidence" / "incident" / "audit.ndjson"
    _writable(copy)
    copy.write_bytes(copy.read_bytes().replace(b"alice", b"mallo"))
    document = manifest(case)
    for entry in document["files"]:
        if entry["evidence_path"] == "incident/audit.ndjson":
            entry["sha256"] = sha256(copy)
    (case / "evidence" / "manifest.json").write_text(json.dumps(document))
    result = verify(case)
    assert result.exit_code == 1
    assert "which no custody.jsonl entry records" in result.output


def _three_entries(case: Path, evidence_folder: Path) -> list[bytes]:
    hunt(evidence_folder, "--out", case)
    custody.record(case, "report", {}, command_line=["mailhunt", "report", str(case)])
    return (case / "custody.jsonl").read_bytes().splitlines(keepends=True)


def test_verify_custody_line_edited_exits_1_naming_the_line(case: Path, evidence_folder: Path):
    lines = _three_entries(case, evidence_folder)
    lines[1] = lines[1].replace(b'"re-hunt"', b'"hunt"')
    (case / "custody.jsonl").write_bytes(b"".join(lines))
    result = verify(case)
    assert result.exit_code == 1
    assert "custody.jsonl line 3: the previous-entry hash does not match line 2: line 2 was edited" in result.output


def test_verify_custody_line_deleted_exits_1_naming_the_line(case: Path, evidence_folder: Path):
    lines = _three_entries(case, evidence_folder)
    (case / "custody.jsonl").write_bytes(lines[0] + lines[2])
    result = verify(case)
    assert result.exit_code == 1
    assert "custody.jsonl line 2: entry 3 follows entry 1: entries were removed" in result.output


def test_verify_first_custody_line_deleted_exits_1(case: Path, evidence_folder: Path):
    lines = _three_entries(case, evidence_folder)
    (case / "custody.jsonl").write_bytes(lines[1] + lines[2])
    result = verify(case)
    assert result.exit_code == 1
    assert "custody.jsonl line 1: is the first line but names a previous entry" in result.output
    assert "which no custody.jsonl entry records" in result.output  # the files the removed hunt added


def test_zip_member_named_to_escape_stays_inside_the_case(tmp_path: Path):
    incoming = tmp_path / "in" / "deep"
    incoming.mkdir(parents=True)
    with zipfile.ZipFile(incoming / "export.zip", "w") as archive:
        archive.writestr("../../x", AUDIT.read_bytes())
    out = tmp_path / "case"
    hunt(incoming, "--out", out)
    assert not (tmp_path / "x").exists() and not (tmp_path / "in" / "x").exists() and not (out / "x").exists()
    kept = sorted(str(p.relative_to(out / "evidence")) for p in (out / "evidence").rglob("*") if p.is_file())
    assert kept == ["deep/export.zip", "manifest.json"]
    assert verify(out).exit_code == 0


def test_file_named_with_control_characters_is_copied_inside_and_shown_escaped(tmp_path: Path):
    incoming = tmp_path / "in"
    incoming.mkdir()
    hostile = "audit\n\x1b[2J..\x07.ndjson"
    shutil.copy(AUDIT, incoming / hostile)
    out = tmp_path / "case"
    hunt(incoming, "--out", out)
    copy = out / "evidence" / "in" / hostile
    assert copy.read_bytes() == AUDIT.read_bytes()
    assert copy.resolve().parent == (out / "evidence" / "in").resolve()
    (copy.parent / hostile).chmod(0o644)
    copy.write_bytes(b"{}\n")
    result = verify(out)
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "audit\\n\\x1b[2J..\\x07.ndjson: modified" in result.output


def test_same_relative_path_from_two_roots_does_not_overwrite(tmp_path: Path):
    first, second = tmp_path / "a" / "logs", tmp_path / "b" / "logs"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    shutil.copy(AUDIT, first / "audit.ndjson")
    shutil.copy(CMDLETS, second / "audit.ndjson")
    out = tmp_path / "case"
    hunt(first, second, "--out", out)
    files = {f["evidence_path"]: f["sha256"] for f in manifest(out)["files"]}
    assert files == {"logs/audit.ndjson": sha256(AUDIT), "logs~2/audit.ndjson": sha256(CMDLETS)}
    assert verify(out).exit_code == 0


def test_a_link_planted_in_the_evidence_folder_is_not_written_through(case: Path, evidence_folder: Path,
                                                                     tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    planted = case / "evidence" / "incident"
    for copy in planted.rglob("*"):
        copy.chmod(0o755 if copy.is_dir() else 0o644)
    shutil.rmtree(planted)
    planted.symlink_to(outside)
    hunt(evidence_folder, "--out", case)
    assert list(outside.iterdir()) == []
    assert (case / "evidence" / "incident~2" / "audit.ndjson").read_bytes() == AUDIT.read_bytes()
    assert not (case / "evidence" / "incident~2").is_symlink()
    result = verify(case)
    assert result.exit_code == 1
    assert "evidence/incident: added" in result.output
    assert "evidence/incident/audit.ndjson: missing" in result.output


def test_a_link_in_a_fresh_evidence_folder_is_refused(tmp_path: Path, evidence_folder: Path):
    out, outside = tmp_path / "case", tmp_path / "outside"
    outside.mkdir()
    (out / "evidence").mkdir(parents=True)
    (out / "evidence" / "incident").symlink_to(outside)
    preservation = preserve_evidence(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"])
    assert list(outside.iterdir()) == []
    assert preservation.problems == []
    assert sorted(f.evidence_path for f in preservation.added) == [
        "incident~2/audit.ndjson", "incident~2/exchange/cmdlets.ndjson", "incident~2/logs.zip"]
    assert (out / "evidence" / "incident").is_symlink() and not (out / "evidence" / "incident~2").is_symlink()


def test_a_file_changed_between_reading_and_copying_is_noted(tmp_path: Path, evidence_folder: Path):
    out = tmp_path / "case"
    out.mkdir()
    read_as = "f" * 64
    preservation = preserve_evidence(out, [evidence_folder], False, {str(evidence_folder / "audit.ndjson"): read_as},
                                     True, ["mailhunt", "hunt"])
    (entry,) = [f for f in preservation.added if f.evidence_path == "incident/audit.ndjson"]
    assert entry.sha256 == sha256(AUDIT)  # what is preserved is what was copied
    assert entry.note is not None and read_as in entry.note


def test_no_copy_keeps_hashes_and_paths_and_says_so(tmp_path: Path, evidence_folder: Path, monkeypatch):
    hashed = []
    real_hash = evidence._hash
    monkeypatch.setattr(evidence, "_hash", lambda walked, stop=None: hashed.append(walked.display) or real_hash(walked, stop))
    out = tmp_path / "case"
    hunt(evidence_folder, "--out", out, "--no-copy")
    assert sorted(p.name for p in (out / "evidence").iterdir()) == ["manifest.json"]
    files = {f["original_path"]: f for f in manifest(out)["files"]}
    assert {Path(p).name: f["sha256"] for p, f in files.items()} == {
        "audit.ndjson": sha256(AUDIT), "cmdlets.ndjson": sha256(CMDLETS),
        "logs.zip": sha256(evidence_folder / "logs.zip")}
    assert all(f["evidence_path"] is None and f["copied"] is False for f in files.values())
    assert hashed == [str(evidence_folder / "logs.zip")]  # the loader's digests reused; only the archive hashed
    document = json.loads((out / "findings.json").read_text())
    assert document["evidence_preservation"]["copied"] is False
    assert "evidence NOT copied (--no-copy)" in (out / "report.md").read_text()
    assert "evidence NOT copied (--no-copy)" in (out / "report.html").read_text()
    result = verify(out)
    assert result.exit_code == 0, result.output
    assert "3 input(s) were hunted with --no-copy" in result.output and "cannot be checked" in result.output


def test_reports_state_the_copy(case: Path):
    document = json.loads((case / "findings.json").read_text())
    assert document["evidence_preservation"]["copied"] is True and document["evidence_preservation"]["files"] == 3
    assert "3 evidence file(s) copied read-only to evidence/" in (case / "report.md").read_text()


def test_show_prints_the_raw_record_with_file_hash_and_locator(case: Path, evidence_folder: Path):
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        event_id, line = db.execute("""SELECT "event.id", "log.record" FROM events
                                       WHERE "log.file.path" LIKE '%audit.ndjson' ORDER BY "log.record" LIMIT 1
                                       OFFSET 1""").fetchone()
    result = runner.invoke(app, ["show", str(case), event_id])
    assert result.exit_code == 0, result.output
    raw = AUDIT.read_text().splitlines()[line - 1]
    assert raw in result.output
    assert f"file: {evidence_folder / 'audit.ndjson'}" in result.output
    assert f"sha256: {sha256(AUDIT)}" in result.output
    assert f"locator: line {line}" in result.output
    assert "preserved as: evidence/incident/audit.ndjson" in result.output


def test_show_writes_out_terminal_controls_in_the_raw_record(tmp_path: Path):
    incoming = tmp_path / "in"
    incoming.mkdir()
    line = ("Oct 14 09:31:40 mx1 dovecot: imap(alice)<4242><abc>: expunge: box=INBOX, uid=7, msgid=<m7@example.com>, "
            "size=1234, subject=\x1b]52;c;SGVsbG8=\x07pwned\x1b[2J")
    (incoming / "mail.log").write_text(MAIL_LOG.read_text() + line + "\n")
    out = tmp_path / "case"
    hunt(incoming, "--out", out, "--year", "2026")
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        (event_id,) = db.execute("""SELECT "event.id" FROM events WHERE "event.original" LIKE '%pwned%'""").fetchone()
    result = runner.invoke(app, ["show", str(out), event_id])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "subject=\\x1b]52;c;SGVsbG8=\\x07pwned\\x1b[2J" in result.output


def test_show_unknown_event_exits_1(case: Path):
    result = runner.invoke(app, ["show", str(case), "no-such-event"])
    assert result.exit_code == 1
    assert "no event no-such-event" in result.output


def test_a_case_inside_the_evidence_folder_does_not_preserve_its_own_copies(evidence_folder: Path):
    out = evidence_folder / "case"
    hunt(evidence_folder, "--out", out)
    hunt(evidence_folder, "--out", out)
    assert sorted(f["evidence_path"] for f in manifest(out)["files"]) == [
        "incident/audit.ndjson", "incident/exchange/cmdlets.ndjson", "incident/logs.zip"]
    inputs = {i["path"]: i for i in json.loads((out / "findings.json").read_text())["inputs"]}
    assert not [path for path in inputs if path.startswith(str(out / "evidence") + "/")]
    assert inputs[str(out / "evidence")]["skipped_reason"] == "part of this hunt's own case (--out): not evidence"
    assert inputs[str(out / "custody.jsonl")]["skipped_reason"] == "part of this hunt's own case (--out): not evidence"
    assert verify(out).exit_code == 0


def test_an_unusable_evidence_folder_is_stated_not_hidden(tmp_path: Path, evidence_folder: Path):
    out = tmp_path / "case"
    hunt(evidence_folder, "--out", out)
    shutil.rmtree(out / "evidence")
    (out / "evidence").write_text("not a folder")
    result = hunt(evidence_folder, "--out", out)
    document = json.loads((out / "findings.json").read_text())
    assert document["evidence_preservation"]["problems"][0].startswith("evidence not preserved:")
    assert "NOT preserved" in (out / "report.md").read_text()
    assert "evidence not preserved" in result.output


def test_copying_stopped_by_ctrl_c_keeps_manifest_and_custody_whole(tmp_path: Path, evidence_folder: Path,
                                                                   monkeypatch):
    out = tmp_path / "case"
    out.mkdir()
    real_copy = evidence._copy_hashing
    calls = []

    def stopped_on_second(walked, folder, name, incoming, stop=None):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_copy(walked, folder, name, incoming, stop=stop)

    monkeypatch.setattr(evidence, "_copy_hashing", stopped_on_second)
    with pytest.raises(KeyboardInterrupt):
        acquire(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"], 3, 0)
    (entry,) = custody_lines(out)
    assert entry["action"] == "hunt (interrupted)" and len(entry["added"]) == 1
    assert len(manifest(out)["files"]) == 1
    assert verify(out).exit_code == 0
    monkeypatch.setattr(evidence, "_copy_hashing", real_copy)
    acquire(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"], 3, 0)
    assert sorted(f["evidence_path"] for f in manifest(out)["files"]) == [
        "incident/audit.ndjson", "incident/exchange/cmdlets.ndjson", "incident/logs.zip"]
    assert custody_lines(out)[1]["action"] == "re-hunt"
    assert verify(out).exit_code == 0


def test_the_evidence_is_copied_while_the_analysis_runs(tmp_path: Path, evidence_folder: Path, monkeypatch):
    """The copy is not on the hunt's critical path: triage starts while a file is still being copied."""
    out = tmp_path / "case"
    real_copy, real_triage = evidence._copy_hashing, mailhunt_hunt.triage
    triage_started, copy_waited = threading.Event(), []

    def copy_after_triage_began(walked, folder, name, incoming, stop=None):
        if not copy_waited:
            copy_waited.append(triage_started.wait(timeout=120))
        return real_copy(walked, folder, name, incoming, stop=stop)

    def noting_triage(*args, **kwargs):
        triage_started.set()
        return real_triage(*args, **kwargs)

    monkeypatch.setattr(evidence, "_copy_hashing", copy_after_triage_began)
    monkeypatch.setattr(mailhunt_hunt, "triage", noting_triage)
    hunt(evidence_folder, "--out", out)
    assert copy_waited == [True]
    document = json.loads((out / "findings.json").read_text())
    assert document["evidence_preservation"]["added_by_this_hunt"] == 3
    assert custody_lines(out)[0]["action"] == "hunt"
    assert verify(out).exit_code == 0


def test_ctrl_c_during_the_analysis_stops_the_copy_and_says_so(tmp_path: Path, evidence_folder: Path,
                                                               monkeypatch):
    out = tmp_path / "case"
    real_copy = evidence._copy_hashing
    copying = threading.Event()

    def slow_copy(walked, folder, name, incoming, stop=None):
        copying.set()
        assert stop is not None and stop.wait(timeout=120), "the copy was never told to stop"
        return real_copy(walked, folder, name, incoming, stop=stop)

    def interrupted_rules(*args, **kwargs):
        assert copying.wait(timeout=120)
        raise KeyboardInterrupt

    monkeypatch.setattr(evidence, "_copy_hashing", slow_copy)
    monkeypatch.setattr(mailhunt_hunt, "run_rules", interrupted_rules)
    with pytest.raises(mailhunt_hunt.HuntInterrupted):
        mailhunt_hunt.hunt([evidence_folder], out, Config(), command_line=["mailhunt", "hunt"])
    (entry,) = custody_lines(out)
    assert entry["action"] == "hunt (interrupted)" and entry["added"] == []
    assert manifest(out)["files"] == []
    assert [p.name for p in (out / "evidence").rglob("*") if p.is_file()] == ["manifest.json"]


def test_a_copy_hunt_after_a_no_copy_hunt_copies_the_files(tmp_path: Path, evidence_folder: Path):
    out = tmp_path / "case"
    hunt(evidence_folder, "--out", out, "--no-copy")
    hunt(evidence_folder, "--out", out)
    copied = sorted(f["evidence_path"] for f in manifest(out)["files"] if f["copied"])
    assert copied == ["incident/audit.ndjson", "incident/exchange/cmdlets.ndjson", "incident/logs.zip"]
    assert custody_lines(out)[1]["action"] == "re-hunt" and len(custody_lines(out)[1]["added"]) == 3
    assert verify(out).exit_code == 0


def test_show_names_the_preserved_archive_of_a_gzip_record(tmp_path: Path):
    incoming = tmp_path / "in"
    incoming.mkdir()
    (incoming / "audit.ndjson.gz").write_bytes(gzip.compress(AUDIT.read_bytes()))
    out = tmp_path / "case"
    hunt(incoming, "--out", out)
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        (event_id,) = db.execute('SELECT "event.id" FROM events LIMIT 1').fetchone()
    result = runner.invoke(app, ["show", str(out), event_id])
    assert result.exit_code == 0, result.output
    assert f"file: {incoming / 'audit.ndjson'}" in result.output
    assert "preserved as: evidence/in/audit.ndjson.gz" in result.output


def test_a_file_name_that_is_not_utf8_is_copied_and_verified(tmp_path: Path):
    incoming = tmp_path / "in"
    incoming.mkdir()
    name = os.fsdecode(b"caf\xe9.ndjson")
    shutil.copy(AUDIT, incoming / name)
    out = tmp_path / "case"
    hunt(incoming, "--out", out)
    (entry,) = manifest(out)["files"]
    assert entry["evidence_path"] == "in/caf\\xe9.ndjson"
    assert (out / "evidence" / "in" / name).read_bytes() == AUDIT.read_bytes()
    assert verify(out).exit_code == 0


def test_every_file_a_hunt_writes_is_known_to_the_evidence_walk_as_a_case_file():
    from mailhunt.hunt import OUTPUT_FILES
    from mailhunt.sources.evidence_walk import CASE_REPORTS
    assert set(OUTPUT_FILES) <= CASE_REPORTS


def test_the_spark_engines_parquet_folder_is_known_to_the_evidence_walk_as_case_data():
    from mailhunt.sources.evidence_walk import CASE_ENGINE_DATA
    from mailhunt.spark.parquet import DEFAULT_FOLDER
    assert DEFAULT_FOLDER in CASE_ENGINE_DATA


def test_copies_reach_the_disk_in_one_sync_before_the_manifest_names_them(tmp_path: Path, monkeypatch):
    """A sync of each copy as it was made waited for the disk once a file (100,000 small files: longer than
    the analysis); the copies must be synced together, and before the manifest that lists them is written."""
    folder = tmp_path / "many"
    for number in range(40):
        (folder / f"{number // 10}").mkdir(parents=True, exist_ok=True)
        (folder / f"{number // 10}" / f"audit-{number}.ndjson").write_text(f'{{"n": {number}}}\n')
    calls: list[str] = []
    real_fsync, real_sync, real_replace = os.fsync, os.sync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: (calls.append("sync"), real_sync())[1])
    monkeypatch.setattr(os, "replace", lambda *args: (calls.append(f"replace {Path(args[1]).name}"),
                                                      real_replace(*args))[1])
    out = tmp_path / "case"
    out.mkdir()
    preservation = preserve_evidence(out, [folder], False, {}, True, ["mailhunt", "hunt"])
    assert len(preservation.added) == 40 and not preservation.problems
    # the manifest's own fsync, and no file's; the manifest names the copies when it is put in place
    assert calls == ["sync", "fsync", "replace manifest.json"]
    for added in preservation.added:
        copy = out / "evidence" / added.evidence_path
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == added.sha256


def test_the_manifest_written_as_it_grows_is_the_whole_dump_and_keeps_what_it_held(tmp_path: Path,
                                                                                    evidence_folder: Path):
    """The manifest takes each file as it is preserved; its bytes are those of one dump of the whole document
    (sorted keys, indent 2), after the entries and the other keys of the manifest it replaces."""
    out = tmp_path / "case"
    (out / "evidence").mkdir(parents=True)
    earlier = {"schema": "mailhunt.evidence/1", "kept": {"by": "an earlier mailhunt", "list": []},
               "files": [{"original_path": "/old/a \u202e\n.csv", "sha256": "a" * 64, "evidence_path": None},
                         {"original_path": "/old/b.csv", "sha256": "b" * 64, "evidence_path": None, "size": 3}]}
    (out / "evidence" / "manifest.json").write_bytes(orjson.dumps(earlier))
    preservation = preserve_evidence(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"])
    written = (out / "evidence" / "manifest.json").read_bytes()
    document = orjson.loads(written)
    assert written == orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    assert document["kept"] == earlier["kept"] and document["files"][:2] == earlier["files"]
    assert [f["sha256"] for f in document["files"][2:]] == [f.sha256 for f in preservation.added]
    assert preservation.files_in_manifest == len(document["files"]) == 5
    assert sorted(p.name for p in (out / "evidence").iterdir()) == ["incident", "manifest.json"]


def test_a_manifest_that_cannot_be_finished_leaves_the_one_before(tmp_path: Path, evidence_folder: Path, monkeypatch):
    out = tmp_path / "case"
    out.mkdir()
    preserve_evidence(out, [evidence_folder / "audit.ndjson"], False, {}, True, ["mailhunt", "hunt"])
    before = (out / "evidence" / "manifest.json").read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        preserve_evidence(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"])
    assert (out / "evidence" / "manifest.json").read_bytes() == before
    assert not [p for p in (out / "evidence").iterdir() if p.name.endswith(".tmp")]
    assert not (out / evidence.INCOMING_DIR).exists()


def test_a_copy_being_written_and_the_next_manifest_are_outside_the_evidence_folder(
        tmp_path: Path, evidence_folder: Path, monkeypatch):
    """Until a copy is whole it is written beside the evidence folder, and so is the manifest being written: a
    hunt stopped hard (killed, power lost) leaves nothing half-written among the evidence for ``mailhunt
    verify`` to count as added."""
    out = tmp_path / "case"
    out.mkdir()
    real_chunks, seen = evidence._chunks, []

    def looking_chunks(source, stop):
        if not seen:
            seen.append(([p.name for p in (out / "evidence").rglob("*") if not p.is_dir()],
                         sorted(p.name.split("-")[0].split(".")[0] for p in (out / evidence.INCOMING_DIR).iterdir())))
        yield from real_chunks(source, stop)

    monkeypatch.setattr(evidence, "_chunks", looking_chunks)
    acquire(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"], 3, 0)
    assert seen == [([], ["copy", "manifest"])]
    assert not (out / evidence.INCOMING_DIR).exists()
    assert verify(out).exit_code == 0


def test_what_a_killed_hunt_left_on_its_way_in_is_not_evidence_and_goes_with_the_next_hunt(
        tmp_path: Path, evidence_folder: Path):
    out = tmp_path / "case"
    out.mkdir()
    acquire(out, [evidence_folder / "audit.ndjson"], False, {}, True, ["mailhunt", "hunt"], 3, 0)
    incoming = out / evidence.INCOMING_DIR
    incoming.mkdir()
    (incoming / "copy-0123456789ab").write_bytes(b"half a copy")
    (incoming / "manifest.json.01234567.tmp").write_bytes(b'{"schema": ')
    assert verify(out).exit_code == 0
    acquire(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"], 3, 0)
    assert not incoming.exists()
    assert len(manifest(out)["files"]) == 3
    assert verify(out).exit_code == 0
def test_a_link_in_place_of_the_incoming_folder_is_refused(tmp_path: Path, evidence_folder: Path):
    out = tmp_path / "case"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / evidence.INCOMING_DIR)
    with pytest.raises(ValueError, match="not a folder"):
        preserve_evidence(out, [evidence_folder], False, {}, True, ["mailhunt", "hunt"])
    assert list(elsewhere.iterdir()) == []
