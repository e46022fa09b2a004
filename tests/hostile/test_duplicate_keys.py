"""A JSON record naming a key twice in one object is read as jq, Python and orjson read it (the last
value wins), kept, marked labels.duplicate_keys, and its input noted: a sign of editing, never a
different actor or operation than another tool shows for the same record."""

import json

import duckdb
import orjson
import pytest

from mailhunt.sources import windows_stream
from mailhunt.sources.base import DUPLICATE_KEYS_NOTE
from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

FIXTURES = REPO / "tests" / "fixtures"


def _events(case) -> dict[int, dict]:
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        rows = db.execute("""SELECT "log.record", "user.name", "event.action", "email.subject", "host.name",
                                    "labels", "event.original" FROM events
                             WHERE "event.provider" IS DISTINCT FROM 'mailhunt'""").fetchall()
    return {row[0]: {"user": row[1], "action": row[2], "subject": row[3], "host": row[4],
                     "labels": dict(row[5] or {}), "original": row[6]} for row in rows}


def _repeat(line: str, key: str, first_value: str) -> str:
    """The record's JSON text with ``key`` written once more, before its own value, holding ``first_value``."""
    marker = f'"{key}": '
    at = line.index(marker)
    return line[:at] + marker + json.dumps(first_value) + ", " + line[at:]


def test_audit_log_lines_read_the_last_value_and_are_marked(tmp_path):
    lines = [json.dumps(json.loads(line)) for line in (FIXTURES / "m365" / "records.ndjson").read_text().splitlines()]
    last = json.loads(lines[0])
    lines[0] = _repeat(_repeat(lines[0], "UserId", "alice@contoso.com"), "Operation", "MailItemsAccessed")
    assert orjson.loads(lines[0])["UserId"] == last["UserId"]  # what other tools read
    evidence = tmp_path / "audit.ndjson"
    evidence.write_text("\n".join(lines) + "\n")

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, len(outcome.kept)) == (len(lines), 0, len(lines))
    assert outcome.notes == [DUPLICATE_KEYS_NOTE]
    events = _events(tmp_path / "case")
    assert events[1]["user"] == last["UserId"].lower() and events[1]["action"] == last["Operation"]
    assert events[1]["labels"] == {"duplicate_keys": "Operation,UserId"}
    assert events[1]["original"] == lines[0], "the record is kept as the file holds it"
    assert all("duplicate_keys" not in e["labels"] for n, e in events.items() if n != 1)
    shown = [(f["rule"]["title"], f["rule"]["level"], f["event_count"])
             for f in outcome.document["findings"] if f["indicator"] == "audit_tampering"]
    assert shown == [("Audit Record Naming A JSON Key Twice", "informational", 1)], "shown as context"


def test_audit_array_member_with_a_nested_repeat_reads_the_last_value(tmp_path):
    members = json.loads((FIXTURES / "m365" / "records.ndjson").read_text().splitlines()[0].join("[]"))
    text = json.dumps(members, indent=2)
    text = text.replace('"Subject": "Security alert: new sign-in"',
                        '"Subject": "Quarterly report", "Subject": "Security alert: new sign-in"', 1)
    evidence = tmp_path / "content_blob.json"
    evidence.write_text(text)

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, outcome.notes) == (1, 0, [DUPLICATE_KEYS_NOTE])
    [event] = _events(tmp_path / "case").values()
    assert event["subject"].startswith("Security alert: new sign-in")
    assert event["labels"] == {"duplicate_keys": "Subject"}


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_windows_records_read_the_last_value_in_python_and_sql_alike(tmp_path, monkeypatch, sql_min_records):
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    lines = (FIXTURES / "windows" / "exch01_msexchange_management.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"Computer":"EXCH01.corp.example"',
                                '"Computer":"DECOY.corp.example","Computer":"EXCH01.corp.example"')
    assert lines[1].count('"Computer"') == 2
    evidence = tmp_path / "exch01.jsonl"
    evidence.write_text("\n".join(lines) + "\n")

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, outcome.notes) == (2, 0, [DUPLICATE_KEYS_NOTE])
    events = _events(tmp_path / "case")
    assert events[2]["host"] == "EXCH01.corp.example" and events[2]["labels"].get("duplicate_keys") == "Computer"
    assert "duplicate_keys" not in events[1]["labels"]
    assert any(f["indicator"] == "mailbox_export" for f in outcome.document["findings"])


def test_sign_in_array_members_are_marked_too(tmp_path):
    text = (FIXTURES / "entra" / "signins.json").read_text()
    text = text.replace('"userPrincipalName": "Compliance-Admin@fabrikam-labs.com"',
                        '"userPrincipalName": "someone.else@fabrikam-labs.com", '
                        '"userPrincipalName": "Compliance-Admin@fabrikam-labs.com"', 1)
    evidence = tmp_path / "signins.json"
    evidence.write_text(text)

    before = hunt_file(FIXTURES / "entra" / "signins.json", tmp_path / "before")
    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejections) == (before.records, before.rejections)
    assert outcome.notes == [DUPLICATE_KEYS_NOTE]
    events = _events(tmp_path / "case")
    assert events[1]["user"] == "compliance-admin@fabrikam-labs.com"
    assert events[1]["labels"].get("duplicate_keys") == "userPrincipalName"
    assert sum("duplicate_keys" in e["labels"] for e in events.values()) == 1
