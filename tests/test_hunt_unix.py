"""A hunt over Linux and macOS evidence from the command line, with the --year and --user hints."""

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from tests.test_sources_unix import FIXTURES

runner = CliRunner()


@pytest.fixture(scope="module")
def unix_case(tmp_path_factory):
    out = tmp_path_factory.mktemp("unix-case")
    result = runner.invoke(app, ["hunt", str(FIXTURES), "--out", str(out), "--year", "2026", "--user", "mallory"])
    assert result.exit_code == 0, result.output
    return out, orjson.loads((out / "findings.json").read_bytes())


def _findings(document):
    return {(f["indicator"], f["actor"]) for f in document["findings"]}


def test_findings_name_the_person(unix_case):
    _, document = unix_case
    found = _findings(document)
    assert ("unix_mail_utility_deletion", "mallory") in found
    # Endpoint Security logs uid 501 only; its records on this Mac work in /Users/alice
    assert ("applescript_mail_deletion", "alice") in found
    [applescript] = [f for f in document["findings"] if f["indicator"] == "applescript_mail_deletion"]
    assert applescript["actor_resolution"] and all(
        note.startswith("501 taken as alice: uid 501 is alice") and "home folder of alice" in note
        for note in applescript["actor_resolution"])
    assert ("local_mail_store_tampering", "alice") in found
    assert ("local_mail_store_tampering", "bob") in found
    assert ("unix_mail_utility_deletion", "carol") in found


def test_hints_reach_the_readers(unix_case):
    out, _ = unix_case
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        years = db.execute("""SELECT DISTINCT "labels"['year_source'] FROM events
                              WHERE "event.dataset" = 'unix.syslog' AND "labels"['format'] = 'rfc3164'""").fetchall()
        ticket = db.execute("""SELECT "user.name", "labels"['user_source'] FROM events
                               WHERE "log.file.path" LIKE '%zsh_history_from_ticket'""").fetchall()
    assert years == [("--year",)]
    assert ticket == [("mallory", "--user")]


def test_a_sysadmin_mailing_a_report_is_no_finding(unix_case):
    out, document = unix_case
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        report_ids = {row[0] for row in db.execute(
            """SELECT "event.id" FROM events WHERE "process.command_line" LIKE 'mail -s %'""").fetchall()}
    assert len(report_ids) == 3
    in_findings = {e["event_id"] for f in document["findings"] for e in f["evidence"]}
    assert not report_ids & in_findings


def test_bad_year_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["hunt", str(FIXTURES), "--out", str(tmp_path / "c"), "--year", "26"])
    assert result.exit_code == 2
