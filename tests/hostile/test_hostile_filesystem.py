"""A hostile file system under the evidence folder: links that lead nowhere, loop, or out of
the evidence; FIFOs and devices that never end; names that are not UTF-8; mailhunt's own
cases. Each must be listed with its reason while every good file is still read, and
nothing outside the evidence named may be read unless the analyst asks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

import mailhunt
from mailhunt.cli import app
from mailhunt.sources.evidence_walk import EvidenceChanged, EvidenceWalk

SRC = Path(mailhunt.__file__).resolve().parents[1]
HANG_LIMIT_S = 120
RECORDS = 3
# A shell history in the format bash writes with HISTTIMEFORMAT set: the analyst's own,
# with a secret on the command line, which must never end up in the case.
ANALYST_HISTORY = b"#1791990000\nmysql -u root -pS3cretOfTheAnalyst\n#1791990060\nls ~/cases\n"


def audit_lines(first_id: int, count: int = RECORDS) -> bytes:
    """Unified audit log AuditData records, one JSON object a line, as the Management API gives them."""
    lines = []
    for number in range(first_id, first_id + count):
        lines.append(orjson.dumps({
            "CreationTime": f"2026-10-14T09:{number % 60:02d}:00Z", "Id": f"10000000-0000-0000-0000-{number:012d}",
            "Operation": "MoveToDeletedItems", "OrganizationId": "11111111-2222-3333-4444-555555555555",
            "RecordType": 2, "ResultStatus": "Succeeded", "UserType": 0, "UserId": "bob@contoso.com",
            "MailboxOwnerUPN": "bob@contoso.com", "Workload": "Exchange", "Version": 1,
            "ClientIPAddress": "198.51.100.20", "Folder": {"Id": "LgAAAAB1", "Path": "\\Inbox"},
            "AffectedItems": [{"Id": f"RgAAAA{number}", "Subject": "Weekly sync notes"}],
        }))
    return b"\n".join(lines) + b"\n"


def inputs_of(out: Path) -> dict[str, dict]:
    document = json.loads((out / "findings.json").read_text())
    return {entry["path"]: entry for entry in document["inputs"]}


def hunt_in_process(*args) -> CliRunner:
    result = CliRunner().invoke(app, ["hunt", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def hunt_in_child(*args) -> subprocess.CompletedProcess:
    """The hunt as its own process: one that hangs is killed and fails the test, not the test run."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    try:
        done = subprocess.run([sys.executable, "-m", "mailhunt.cli", "hunt", *map(str, args)], env=env,
                              capture_output=True, timeout=HANG_LIMIT_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the hunt hung for {HANG_LIMIT_S} s")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done


def stored_originals(out: Path) -> list[str]:
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        return [row[0] for row in db.execute('SELECT "event.original" FROM events').fetchall()]


def test_broken_links_and_link_loops_are_listed_and_the_rest_is_read(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "audit.ndjson").write_bytes(audit_lines(1))
    (evidence / "broken.ndjson").symlink_to(tmp_path / "gone.ndjson")
    (evidence / "loop-a").symlink_to("loop-b")
    (evidence / "loop-b").symlink_to("loop-a")
    (evidence / "itself").symlink_to("itself")
    named_broken = tmp_path / "named-broken.ndjson"
    named_broken.symlink_to(tmp_path / "also-gone")
    out = tmp_path / "case"

    hunt_in_process(evidence, named_broken, "--out", out)

    inputs = inputs_of(out)
    assert inputs[str(evidence / "audit.ndjson")]["records"] == RECORDS
    assert inputs[str(evidence / "broken.ndjson")]["skipped_reason"].startswith("broken symbolic link")
    assert inputs[str(named_broken)]["skipped_reason"].startswith("broken symbolic link")
    for name in ("loop-a", "loop-b", "itself"):
        assert inputs[str(evidence / name)]["skipped_reason"].startswith("symbolic link loop"), name


def test_fifo_and_link_to_dev_zero_are_skipped_without_hanging(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "a-audit.ndjson").write_bytes(audit_lines(1))
    os.mkfifo(evidence / "pipe.ndjson")
    (evidence / "zero.ndjson").symlink_to("/dev/zero")
    (evidence / "z-audit.ndjson").write_bytes(audit_lines(10))
    named_fifo = tmp_path / "named-pipe"
    os.mkfifo(named_fifo)

    out = tmp_path / "case"
    hunt_in_child(evidence, named_fifo, "--out", out)
    inputs = inputs_of(out)
    assert inputs[str(evidence / "a-audit.ndjson")]["records"] == RECORDS
    assert inputs[str(evidence / "z-audit.ndjson")]["records"] == RECORDS
    assert inputs[str(evidence / "pipe.ndjson")]["skipped_reason"] == "a FIFO (named pipe): only regular files are read"
    assert inputs[str(named_fifo)]["skipped_reason"] == "a FIFO (named pipe): only regular files are read"
    assert "outside the evidence named: not followed" in inputs[str(evidence / "zero.ndjson")]["skipped_reason"]

    # Followed on request, the link leads to a device: still not read.
    followed = tmp_path / "followed"
    hunt_in_child(evidence, "--out", followed, "--follow-symlinks")
    assert inputs_of(followed)[str(evidence / "zero.ndjson")]["skipped_reason"] == \
        "a character device: only regular files are read"


def test_links_out_of_the_evidence_are_not_followed_unless_asked(tmp_path):
    analyst_home = tmp_path / "analyst"
    analyst_home.mkdir()
    (analyst_home / ".bash_history").write_bytes(ANALYST_HISTORY)
    (analyst_home / "notes").mkdir()
    (analyst_home / "notes" / "audit.ndjson").write_bytes(audit_lines(20))
    evidence = tmp_path / "evidence"
    (evidence / "home" / "bob").mkdir(parents=True)
    (evidence / "home" / "bob" / ".bash_history").symlink_to(analyst_home / ".bash_history")
    (evidence / "linked-folder").symlink_to(analyst_home / "notes", target_is_directory=True)
    (evidence / "audit.ndjson").write_bytes(audit_lines(1))
    history_link = str(evidence / "home" / "bob" / ".bash_history")
    folder_link = str(evidence / "linked-folder")

    out = tmp_path / "case"
    hunt_in_process(evidence, "--out", out)
    inputs = inputs_of(out)
    assert inputs[str(evidence / "audit.ndjson")]["records"] == RECORDS
    assert inputs[history_link]["skipped_reason"] == (
        f"symbolic link to {analyst_home / '.bash_history'}, outside the evidence named: not followed "
        "(--follow-symlinks reads it)")
    assert "outside the evidence named: not followed" in inputs[folder_link]["skipped_reason"]
    assert not any("S3cretOfTheAnalyst" in text for text in stored_originals(out))

    followed = tmp_path / "followed"
    hunt_in_process(evidence, "--out", followed, "--follow-symlinks")
    inputs = inputs_of(followed)
    assert inputs[history_link]["format"] == "bash_history" and inputs[history_link]["records"] == 2
    assert inputs[f"{folder_link}/audit.ndjson"]["records"] == RECORDS
    assert any("S3cretOfTheAnalyst" in text for text in stored_originals(followed))


def test_a_link_inside_the_evidence_is_read_once_under_its_target_name(tmp_path):
    evidence = tmp_path / "evidence"
    (evidence / "logs").mkdir(parents=True)
    (evidence / "logs" / "audit.ndjson").write_bytes(audit_lines(1))
    (evidence / "current.ndjson").symlink_to("logs/audit.ndjson")
    (evidence / "logs-again").symlink_to("logs", target_is_directory=True)
    os.link(evidence / "logs" / "audit.ndjson", evidence / "hard-link.ndjson")

    out = tmp_path / "case"
    hunt_in_process(evidence, "--out", out)
    inputs = inputs_of(out)
    target = evidence / "logs" / "audit.ndjson"
    assert inputs[str(evidence / "current.ndjson")]["skipped_reason"] == (
        f"symbolic link to {target}, inside the evidence named: read there under its own name, not twice")
    assert "inside the evidence named" in inputs[str(evidence / "logs-again")]["skipped_reason"]
    # hard-link.ndjson sorts before logs/: it is read, the same file under its other name is not.
    assert inputs[str(evidence / "hard-link.ndjson")]["records"] == RECORDS
    assert inputs[str(target)]["skipped_reason"] == f"same file as {evidence / 'hard-link.ndjson'} (a link), read once"

    followed = tmp_path / "followed"
    hunt_in_process(evidence, "--out", followed, "--follow-symlinks")
    inputs = inputs_of(followed)
    read = [path for path, entry in inputs.items() if entry["records"]]
    assert read == [str(evidence / "current.ndjson")]
    # Links are entries of their folder, walked before its real subfolders: logs-again comes first.
    assert inputs[str(evidence / "logs-again" / "audit.ndjson")]["skipped_reason"] == \
        f"same file as {evidence / 'current.ndjson'} (a link), read once"
    assert inputs[str(evidence / "logs")]["skipped_reason"] == f"folder already read as {evidence / 'logs-again'}"


def test_a_name_that_is_not_utf8_is_kept_escaped_and_the_file_read(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    folder = os.path.join(os.fsencode(evidence), b"caf\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"audit-\xff\xfe.ndjson"), "wb") as handle:
        handle.write(audit_lines(1))
    out = tmp_path / "case"

    hunt_in_process(evidence, "--out", out)

    shown = f"{evidence}/caf\\xe9/audit-\\xff\\xfe.ndjson"
    assert inputs_of(out)[shown]["records"] == RECORDS
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        assert db.execute('SELECT DISTINCT "log.file.path" FROM events').fetchall() == [(shown,)]


def test_cases_inside_the_evidence_are_not_read_as_evidence(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "audit.ndjson").write_bytes(audit_lines(1))
    earlier = evidence / "earlier-case"
    hunt_in_process(evidence / "audit.ndjson", "--out", earlier)
    (earlier / "analyst-added.ndjson").write_bytes(audit_lines(30))

    # This hunt's own case is inside the evidence too.
    out = evidence / "case"
    hunt_in_process(evidence, "--out", out)

    inputs = inputs_of(out)
    assert inputs[str(evidence / "audit.ndjson")]["records"] == RECORDS
    assert inputs[str(earlier / "analyst-added.ndjson")]["records"] == RECORDS
    for name in ("case.duckdb", "findings.json", "report.html", "report.md"):
        assert inputs[str(earlier / name)]["skipped_reason"] == (
            "part of a mailhunt case (the folder holds a DuckDB case.duckdb): not evidence"), name
    own = [entry for path, entry in inputs.items() if path.startswith(f"{out}/")]
    assert own and all(entry["skipped_reason"] == "part of this hunt's own case (--out): not evidence" for entry in own)
    read = sorted(path for path, entry in inputs.items() if entry["format"])
    assert read == [str(evidence / "audit.ndjson"), str(earlier / "analyst-added.ndjson")]


def test_a_file_swapped_after_the_walk_is_refused_not_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(ANALYST_HISTORY)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("a.ndjson", "b.ndjson", "c.ndjson"):
        (evidence / name).write_bytes(audit_lines(1))
    walked = {Path(w.display).name: w for w in EvidenceWalk([evidence])}

    (evidence / "a.ndjson").unlink()
    (evidence / "a.ndjson").symlink_to(secret)
    (evidence / "b.ndjson").unlink()
    os.mkfifo(evidence / "b.ndjson")
    (evidence / "c.ndjson").unlink()
    os.link(secret, evidence / "c.ndjson")

    for name in ("a.ndjson", "b.ndjson", "c.ndjson"):
        with pytest.raises(OSError):
            walked[name].open().close()
    with pytest.raises(EvidenceChanged, match="replaced by another file"):
        walked["c.ndjson"].open()
