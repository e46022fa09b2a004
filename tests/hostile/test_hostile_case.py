"""Issue 13, "the case and the terminal": hostile names and values on screen and in the reports, outputs
replaced whole or not at all, a case in use or damaged, Ctrl-C, a hunt that read nothing, and bad read hints.

Each test drives ``mailhunt hunt`` the way an analyst does (typer's CliRunner in this process, or a
subprocess where a real signal is needed) on a few crafted lines in the exact formats the readers take.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mailhunt import atomic_files, memory
from mailhunt import hunt as hunt_module
from mailhunt import store as store_module
from mailhunt.cli import app
from mailhunt.sources import m365_audit
from mailhunt.terminal import VisibleConsole
from mailhunt.visible import is_hidden, visible_text
from tests.corpus import REPO

runner = CliRunner()

OSC52 = "\x1b]52;c;SGVsbG8=\x07"          # write "Hello" to the analyst's clipboard
CLEAR = "\x1b[2J"                          # clear the screen
LINK = "\x1b]8;;https:evil.example\x07"    # plant a hyperlink (no "/": it goes in a file name)
RLO, ZWSP = "\u202e", "\u200b"             # right-to-left override, zero-width space


def run_hunt(*args) -> object:
    return runner.invoke(app, ["hunt", *map(str, args)])


def audit_record(record_id: str, user: str, created: str = "2026-10-03T22:14:05", identity: str = "cfo") -> dict:
    """An M365 unified audit record that rule m365_audit_logging_disabled reports (audit bypass switched on)."""
    return {"CreationTime": created, "Id": record_id, "Operation": "Set-MailboxAuditBypassAssociation",
            "OrganizationId": "3f1c9a52-6b0e-4d7a-9e21-8c4b7f05d3e6", "RecordType": 1, "ResultStatus": "True",
            "UserKey": "1003246870A79555", "UserType": 2, "Version": 1, "Workload": "Exchange",
            "ClientIP": "203.0.113.45:54054", "ObjectId": f"{identity}@fabrikam-labs.com", "UserId": user,
            "Parameters": [{"Name": "Identity", "Value": f"{identity}@fabrikam-labs.com"},
                           {"Name": "AuditBypassEnabled", "Value": "True"}]}


def ordinary_record(number: int) -> dict:
    return {"CreationTime": f"2026-10-14T09:{number % 60:02d}:00", "Id": f"r{number}", "Operation": "MailItemsAccessed",
            "Workload": "Exchange", "UserId": f"u{number % 7}@contoso.com", "ClientIP": f"203.0.113.{number % 200}:443"}


def write_ndjson(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def hostile_evidence(root: Path) -> tuple[Path, str, str]:
    """A folder whose file names and records carry terminal escapes and bidi/zero-width characters.

    Returns the folder, the hostile actor as logged, and the hostile home-folder name."""
    actor = f"adm{OSC52}in{RLO}gpj.exe{ZWSP}@fabrikam-labs.com"
    home = f"mal{CLEAR}lory{RLO}gpj.exe"
    write_ndjson(root / f"audit{LINK}x.json", [
        audit_record("473f4e1a-495e-5fc1-8cfc-4204f8c29e34", actor),
        # rejected: the reason quotes the hostile time text
        {"CreationTime": f"{OSC52}2026", "Id": "bad", "Operation": "HardDelete", "RecordType": 2,
         "UserId": "a@b.c", "Workload": "Exchange"},
    ])
    history = root / "home" / home / ".bash_history"
    history.parent.mkdir(parents=True)
    history.write_text(f"#1791990000\nfind /home/bob/Maildir/cur -type f -delete{CLEAR}\n", encoding="utf-8")
    (root / f"notes{OSC52}.txt").write_text("not evidence\n", encoding="utf-8")
    return root, actor, home


# ------------------------------------------------------------------ what is printed and shown

def test_terminal_output_carries_no_escape_from_names_or_records(tmp_path):
    evidence, _, _ = hostile_evidence(tmp_path / "evidence")
    result = run_hunt(evidence, "--out", tmp_path / "case")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert RLO not in result.output and ZWSP not in result.output
    # ... yet every hostile value is still there to read, written out
    assert "notes\\x1b]52;c;SGVsbG8=\\x07.txt" in result.output           # skipped input (inputs table)
    assert "audit\\x1b]8;;https:evil.example\\x07x.json:line 2" in result.output  # a rejection
    assert "\\u202egpj.exe\\u200b@fabrikam-labs.com" in result.output          # an actor (findings table)


def test_rule_titles_are_shown_inert_by_the_rules_commands(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hostile.yml").write_text(
        'title: "Mail purge \\e]52;c;SGVsbG8=\\a\\e[2J"\n'
        "id: 0e8c5b2c-7a59-4a70-9d0c-3f7d2c1a9b11\nstatus: test\nlevel: high\n"
        "logsource: {product: m365, service: exchange}\n"
        "detection:\n  selection: {event.action: New-ComplianceSearchAction}\n  condition: selection\n",
        encoding="utf-8")
    result = runner.invoke(app, ["rules", "list", "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "Mail purge \\x1b]52;c;SGVsbG8=\\x07\\x1b[2J" in result.output


def test_reports_show_bidi_and_zero_width_characters_and_findings_json_keeps_them(tmp_path):
    evidence, actor, home = hostile_evidence(tmp_path / "evidence")
    out = tmp_path / "case"
    assert run_hunt(evidence, "--out", out).exit_code == 0
    document = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    actors = {f["actor"] for f in document["findings"]}
    assert actor.lower() in actors and home in actors                       # data for tools: the exact string
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for report in (html, markdown):
        assert not any(is_hidden(c) for c in report.replace("\n", "")), "a hidden character reached a report"
    assert "in\\u202egpj.exe\\u200b@fabrikam-labs.com" in html
    assert "mal\\x1b[2Jlory\\u202egpj.exe" in html
    assert "in\\\\u202egpj.exe\\\\u200b@fabrikam-labs.com" in markdown      # Markdown escapes the backslash
    assert "notes\\x1b]52;c;SGVsbG8=\\x07.txt" in html


@pytest.mark.parametrize("hidden", ["\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u200b", "\u200e", "\u202e", "\u2066",
                                    "\u2028", "\ufeff", "\u00ad", "\u3164", "\ufe0f", "\U000e0041", "\udcff"])
def test_every_kind_of_hidden_character_is_written_out(hidden):
    shown = visible_text(f"a{hidden}b")
    assert shown.startswith("a\\") and shown.endswith("b") and hidden not in shown


@given(st.text())
def test_visible_text_leaves_nothing_hidden_and_is_stable(value):
    shown = visible_text(value)
    assert not any(is_hidden(c) for c in shown)
    assert visible_text(shown) == shown
    if not any(is_hidden(c) for c in value):
        assert shown == value


def test_hidden_categories_match_unicode():
    for point in range(0x110000):
        char = chr(point)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            assert is_hidden(char), hex(point)


def test_the_console_writes_out_what_a_renderable_did_not(tmp_path):
    """The second line of defence: a raw value that reached rich without ``shown`` still cannot act."""
    from io import StringIO

    from rich.text import Text

    buffer = StringIO()
    console = VisibleConsole(file=buffer, force_terminal=True, color_system="standard", width=120)
    console.print("[red]styled[/]", Text(f"raw{OSC52}{CLEAR}x{RLO}"))
    printed = buffer.getvalue()
    assert "\x1b[31mstyled" in printed                                       # rich's own styling stays
    assert "raw\\x1b]52;c;SGVsbG8=" in printed and "\\x1b[2Jx\\u202e" in printed  # (rich itself drops BEL)
    assert "\x1b]" not in printed and "\x1b[2J" not in printed and RLO not in printed


# ------------------------------------------------------------------ outputs replaced together

def _outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("findings.json", "report.html", "report.md")}


def _first_case(tmp_path: Path) -> tuple[Path, Path]:
    evidence = write_ndjson(tmp_path / "first" / "audit.json", [audit_record("id-1", "adm-one@fabrikam-labs.com")])
    out = tmp_path / "case"
    assert run_hunt(evidence, "--out", out).exit_code == 0
    second = write_ndjson(tmp_path / "second" / "audit.json",
                          [audit_record("id-2", "adm-two@fabrikam-labs.com", "2026-10-04T08:00:00", "ceo")])
    return out, second


def test_a_read_only_report_is_refused_before_anything_is_hunted(tmp_path):
    out, second = _first_case(tmp_path)
    (out / "report.html").chmod(0o444)
    before = _outputs(out)
    result = run_hunt(second, "--out", out)
    assert result.exit_code == 2, result.output
    assert "report.html is read-only" in result.output
    assert _outputs(out) == before
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM inputs").fetchone()[0] == 1  # the second file was not loaded


def test_a_full_disk_replaces_no_output_and_says_which_file(tmp_path, monkeypatch):
    out, second = _first_case(tmp_path)
    before = _outputs(out)
    real_write = atomic_files._write_temporary

    def disk_full_at_markdown(target: Path, data: bytes) -> Path:
        if target.name == "report.md":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(target, data)

    monkeypatch.setattr(atomic_files, "_write_temporary", disk_full_at_markdown)
    result = run_hunt(second, "--out", out)
    assert result.exit_code == 4, result.output
    assert "report.md" in result.output and os.strerror(errno.ENOSPC) in result.output
    assert "Traceback" not in result.output
    assert _outputs(out) == before                                     # all three still agree, from the first hunt
    assert not list(out.glob(".*.tmp"))

    monkeypatch.setattr(atomic_files, "_write_temporary", real_write)
    assert run_hunt(second, "--out", out).exit_code == 0               # the evidence is in; outputs now written
    document = json.loads((out / "findings.json").read_text())
    assert {f["actor"] for f in document["findings"]} == {"adm-one@fabrikam-labs.com", "adm-two@fabrikam-labs.com"}
    assert "adm-two@fabrikam-labs.com" in (out / "report.md").read_text()


def test_an_output_given_in_pieces_is_written_as_they_come_and_replaced_with_the_others(tmp_path):
    """The timeline files (most of a large EVTX file) are not held whole: their pieces are written as the case
    gives them. A failure in the middle of the pieces replaces nothing; the digests returned are those of the
    files written."""
    small, pieces = tmp_path / "small.txt", tmp_path / "pieces.txt"
    small.write_bytes(b"old small")
    pieces.write_bytes(b"old pieces")

    def failing():
        yield b"first "
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(atomic_files.OutputError) as raised:
        atomic_files.replace_files({small: b"new small", pieces: failing()})
    assert raised.value.path == pieces and os.strerror(errno.ENOSPC) in raised.value.reason
    assert (small.read_bytes(), pieces.read_bytes()) == (b"old small", b"old pieces")
    assert not list(tmp_path.glob(".*.tmp"))

    digests = atomic_files.replace_files({small: b"new small", pieces: iter([b"one ", memoryview(b"two "), b"three"])})
    assert pieces.read_bytes() == b"one two three"
    assert digests == {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in (small, pieces)}


def test_a_report_that_is_a_folder_is_refused(tmp_path):
    out, second = _first_case(tmp_path)
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    result = run_hunt(second, "--out", out)
    assert result.exit_code == 2 and "report.html exists and is not a regular file" in result.output


# ------------------------------------------------------------------ the case database

def test_a_second_hunt_into_a_case_in_use_names_the_process(tmp_path):
    evidence = write_ndjson(tmp_path / "audit.json", [audit_record("id-1", "adm@fabrikam-labs.com")])
    out = tmp_path / "case"
    out.mkdir()
    hold_open = "import duckdb, sys; db = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold_open, str(out / "case.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run_hunt(evidence, "--out", out)
    finally:
        holder.stdin.close()
        holder.wait()
    assert result.exit_code == 2, result.output
    assert f"case.duckdb is in use by process {holder.pid}" in result.output
    assert "Traceback" not in result.output
    assert run_hunt(evidence, "--out", out).exit_code == 0             # once it is free, the hunt runs


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, b"this is not a database\n" * 300],
                         ids=["empty", "zeros", "text"])
def test_a_damaged_case_database_is_one_clear_error(tmp_path, content):
    evidence = write_ndjson(tmp_path / "audit.json", [audit_record("id-1", "adm@fabrikam-labs.com")])
    out = tmp_path / "case"
    out.mkdir()
    (out / "case.duckdb").write_bytes(content)
    result = run_hunt(evidence, "--out", out)
    assert result.exit_code == 2
    assert result.output.startswith("error: --out ") and "case.duckdb is not a DuckDB database" in result.output
    assert len(result.output.strip().splitlines()) <= 2 and "Traceback" not in result.output
    assert (out / "case.duckdb").read_bytes() == content               # left as it was, for the analyst to look at


# ------------------------------------------------------------------ Ctrl-C

def _events_and_inputs(out: Path) -> tuple[int, list[tuple]]:
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        return (db.execute("SELECT count(*) FROM events").fetchone()[0],
                db.execute("SELECT path, records FROM inputs ORDER BY path").fetchall())


def _finding_keys(out: Path) -> list[tuple]:
    document = json.loads((out / "findings.json").read_text())
    return [(f["id"], f["indicator"], f["actor"], f["event_count"]) for f in document["findings"]]


def test_ctrl_c_in_the_middle_of_a_file_stores_none_of_it_and_a_rerun_resumes(tmp_path, monkeypatch):
    """Parts of a file were committed (the store commits every few rows) when Ctrl-C came: they must go,
    the file must not count as loaded, and running again must give what an uninterrupted hunt gives."""
    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(m365_audit, "STAGED_RECORDS", 40)
    monkeypatch.setattr(memory.MemoryBudget, "committed_rows", property(lambda budget: 1))
    monkeypatch.setattr(store_module, "BULK_ROWS", 1)
    records = [audit_record("first", "adm-one@fabrikam-labs.com"),
               *(ordinary_record(n) for n in range(1, 600)),
               audit_record("last", "adm-two@fabrikam-labs.com", "2026-10-04T08:00:00", "ceo")]
    evidence = write_ndjson(tmp_path / "evidence" / "audit.json", records)
    assert run_hunt(evidence, "--out", tmp_path / "reference").exit_code == 0

    real_read_ahead = hunt_module.read_ahead

    def ctrl_c_after_five_batches(batches, depth=1, before_take=None):
        for number, batch in enumerate(real_read_ahead(batches, depth, before_take), start=1):
            yield batch
            if number == 5:
                raise KeyboardInterrupt

    monkeypatch.setattr(hunt_module, "read_ahead", ctrl_c_after_five_batches)
    out = tmp_path / "case"
    result = run_hunt(evidence.parent, "--out", out)
    assert result.exit_code == 130, result.output
    assert f"Interrupted while reading {evidence}" in result.output
    assert "was not stored" in result.output and "Run the same command again to resume" in result.output
    assert _events_and_inputs(out) == (0, [])                         # nothing half-loaded, nothing recorded
    assert not (out / "findings.json").exists()

    monkeypatch.setattr(hunt_module, "read_ahead", real_read_ahead)
    assert run_hunt(evidence.parent, "--out", out).exit_code == 0
    assert _events_and_inputs(out) == _events_and_inputs(tmp_path / "reference")
    assert _finding_keys(out) == _finding_keys(tmp_path / "reference") and len(_finding_keys(out)) == 2


def test_ctrl_c_while_the_rules_run_keeps_the_evidence_and_a_rerun_resumes(tmp_path, monkeypatch):
    """DuckDB turns Ctrl-C during a query into InterruptException: no traceback, exit 130, evidence kept."""
    evidence = write_ndjson(tmp_path / "audit.json", [audit_record("id-1", "adm@fabrikam-labs.com"),
                                                      *(ordinary_record(n) for n in range(1, 50))])
    assert run_hunt(evidence, "--out", tmp_path / "reference").exit_code == 0

    def interrupted(*args, **kwargs):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(hunt_module, "run_rules", interrupted)
    out = tmp_path / "case"
    result = run_hunt(evidence, "--out", out)
    assert result.exit_code == 130, result.output
    assert "Interrupted while running the rules" in result.output and "Traceback" not in result.output
    assert "Run the same command again to resume" in result.output
    assert _events_and_inputs(out) == _events_and_inputs(tmp_path / "reference")
    monkeypatch.undo()
    rerun = run_hunt(evidence, "--out", out)
    assert rerun.exit_code == 0 and "already in the case" in rerun.output
    assert _finding_keys(out) == _finding_keys(tmp_path / "reference")


def _ctrl_c_as_duckdb_surfaces_it(error: Exception):
    """A stage that gets a real SIGINT and, as DuckDB does, turns the KeyboardInterrupt into an error of its own."""

    def stage(*args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise error from None

    return stage


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals go to the main thread")
@pytest.mark.parametrize("where, error", [
    ("reading", duckdb.TransactionException("TransactionContext Error: Current transaction is aborted")),
    ("rules", RuntimeError("Query interrupted")),
])
def test_ctrl_c_is_recognized_whatever_error_duckdb_raises_for_it(tmp_path, monkeypatch, where, error):
    evidence = write_ndjson(tmp_path / "audit.json", [audit_record("id-1", "adm@fabrikam-labs.com")])
    if where == "reading":
        monkeypatch.setattr(store_module.CaseStore, "append", _ctrl_c_as_duckdb_surfaces_it(error))
    else:
        monkeypatch.setattr(hunt_module, "run_rules", _ctrl_c_as_duckdb_surfaces_it(error))
    out = tmp_path / "case"
    result = run_hunt(evidence, "--out", out)
    assert result.exit_code == 130, result.output
    assert "Run the same command again to resume" in result.output and "Traceback" not in result.output
    if where == "reading":
        assert _events_and_inputs(out) == (0, [])  # not recorded as "read up to an error"
    else:
        assert _events_and_inputs(out) == (1, [(str(evidence), 1)])
    monkeypatch.undo()
    assert run_hunt(evidence, "--out", out).exit_code == 0
    assert [a for _, _, a, _ in _finding_keys(out)] == ["adm@fabrikam-labs.com"]


def _history(path: Path, entries: int) -> Path:
    path.parent.mkdir(parents=True)
    with path.open("w") as handle:
        handle.write("#1791990000\nfind /home/bob/Maildir/cur -type f -delete\n")
        handle.writelines(f"#{1791990001 + n}\nls -la /tmp/d{n}\n" for n in range(entries))
        handle.write(f"#{1791990002 + entries}\nrm -rf /var/mail/alice\n")
    return path


def _read_position(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read ``path`` (the furthest of its open descriptors), None if not open."""
    positions = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                positions.append(int(info.split("pos:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            continue
    return max(positions) if positions else None


# The CLI with the store committing every 1,000 rows, so that a small file is part-committed when the signal
# comes (a real case commits every 245,760 rows; a file that large would make the test slow).
SMALL_COMMITS = ("import sys, mailhunt.store as store; store.BULK_ROWS = 1000; from mailhunt.cli import app; "
                 "app()")


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="reads the hunt's progress from /proc")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_hunt_stopped_while_parsing_keeps_no_part_of_the_file_and_a_rerun_resumes(tmp_path, stop):
    history = _history(tmp_path / "evidence" / "root" / ".bash_history", 60_000)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = tmp_path / "case"
    arguments = ["hunt", str(history.parent.parent), "--out", str(out)]
    hunt_process = subprocess.Popen([sys.executable, "-c", SMALL_COMMITS, *arguments], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the reader is past its first buffer (1 MiB) of the 2 MB file, then stop the hunt.
    while hunt_process.poll() is None and (_read_position(hunt_process.pid, history) or 0) <= 1 << 20:
        time.sleep(0.01)
    hunt_process.send_signal(stop)
    stdout, stderr = hunt_process.communicate()
    if stop == signal.SIGINT:
        assert hunt_process.returncode == 130, stdout + stderr
        stderr = " ".join(stderr.split())  # as one line, however the console wrapped it
        assert "Interrupted while" in stderr and "Run the same command again to resume" in stderr
        assert "Traceback" not in stderr
        # whole or nothing: either the file is recorded with all its events, or neither
        assert _events_and_inputs(out) in ((0, []), (60_002, [(str(history), 60_002)]))
    else:
        assert hunt_process.returncode == -signal.SIGKILL

    # Hunting other evidence into the case must not find what was left of the file.
    other = write_ndjson(tmp_path / "other" / "audit.json", [audit_record("id-1", "adm@fabrikam-labs.com")])
    assert run_hunt(other, "--out", out).exit_code == 0
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        assert db.execute('SELECT count(*) FROM events WHERE "log.file.path" = ?', [str(history)]).fetchone()[0] == 0
    assert {f["actor"] for f in json.loads((out / "findings.json").read_text())["findings"]} == {
        "adm@fabrikam-labs.com"}

    rerun = subprocess.run([sys.executable, "-m", "mailhunt.cli", *arguments], env=env, capture_output=True,
                           text=True, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    events, inputs = _events_and_inputs(out)
    assert events == 60_003 and (str(history), 60_002) in inputs
    assert sorted((i, a, n) for _, i, a, n in _finding_keys(out)) == [
        ("audit_tampering", "adm@fabrikam-labs.com", 1), *[("local_mail_store_tampering", "root", 1)] * 2]


# ------------------------------------------------------------------ nothing read, bad hints

def test_a_hunt_that_read_nothing_says_so_and_fails(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "notes.txt").write_text("just some notes\n")
    (evidence / "empty.log").write_bytes(b"")
    out = tmp_path / "case"
    result = run_hunt(evidence, "--out", out)
    assert result.exit_code == 3, result.output
    assert "no evidence was read: 2 input(s) (1 empty file; 1 format not recognized)" in result.output
    assert "no evidence was read" in (out / "report.md").read_text()
    assert "no evidence was read" in (out / "report.html").read_text()


def test_a_hunt_whose_every_record_was_rejected_read_nothing(tmp_path):
    evidence = write_ndjson(tmp_path / "audit.json", [
        {"CreationTime": "yesterday", "Id": "x", "Operation": "HardDelete", "RecordType": 2, "Workload": "Exchange"}])
    result = run_hunt(evidence, "--out", tmp_path / "case")
    assert result.exit_code == 3 and "1 record(s) rejected" in result.output


@pytest.mark.parametrize("hint, message", [
    ("timezone=Mars/Base", "timezone hint 'Mars/Base' is not UTC, an offset like +02:00 or an IANA zone name"),
    ("timezone=Europe/Berln", "did you mean 'Europe/Berlin'?"),
    ("timezon=Europe/Berlin", "'timezon' is not a read hint; did you mean 'timezone'?"),
    ("date_order=DMY", "date order 'DMY' is not one of mdy, dmy; did you mean 'dmy'?"),
    ("year=20x6", "year '20x6' is not a year from 1970 to 2100"),
    ("colour=blue", "'colour' is not a read hint; the hints are timezone, date_order, year, user"),
])
def test_a_bad_hint_is_a_usage_error_before_anything_is_read(tmp_path, hint, message):
    evidence = tmp_path / "messages"
    evidence.write_text("Oct 14 09:12:03 mx1 postfix/smtpd[4242]: connect from unknown[203.0.113.9]\n")
    result = run_hunt(evidence, "--out", tmp_path / "case", "--hint", hint)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "case").exists()


def test_a_good_hint_is_used(tmp_path):
    evidence = tmp_path / "messages"
    evidence.write_text("Oct 14 09:12:03 mx1 postfix/smtpd[4242]: connect from unknown[203.0.113.9]\n")
    out = tmp_path / "case"
    result = run_hunt(evidence, "--out", out, "--hint", "timezone=Europe/Berlin", "--year", "2026")
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        assert db.execute('SELECT strftime("@timestamp", \'%H:%M\') FROM events').fetchall() == [("07:12",)]
