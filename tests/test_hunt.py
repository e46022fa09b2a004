"""The main job end to end through the command line, on real and example evidence."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from tests.corpus import EXAMPLES, PUBLIC

runner = CliRunner()
HUNTRESS = PUBLIC / "huntress-ctf-2023" / "purview.csv"


def hunt(*args):
    return runner.invoke(app, ["hunt", *map(str, args)])


@pytest.fixture(scope="module")
def huntress_case(tmp_path_factory):
    out = tmp_path_factory.mktemp("case") / "case-42"
    result = hunt(HUNTRESS, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_case_folder_holds_every_output(huntress_case):
    out, _ = huntress_case
    for name in ("case.duckdb", "findings.json", "report.html", "report.md"):
        assert (out / name).stat().st_size > 0


def test_real_purview_export_yields_inbox_rule_findings(huntress_case):
    out, result = huntress_case
    document = json.loads((out / "findings.json").read_text())
    assert document["schema"] == "mailhunt.findings/1"
    [source] = document["inputs"]
    assert source["format"] == "purview_csv" and source["records"] == 219 and source["rejected"] == 0
    hiding = [f for f in document["findings"] if f["indicator"] == "inbox_rule_hiding"]
    assert hiding, "38 New-InboxRule records moving and marking mail as read must be found"
    assert all(f["first_seen"].endswith("Z") and f["last_seen"].endswith("Z") for f in document["findings"])
    assert sum(f["event_count"] for f in hiding) >= 10
    for finding in document["findings"]:
        assert set(finding["answers"]) == {"export_followed_by_deletion", "legitimate_admin_activity",
                                           "usual_for_account", "transport_rule_with_suspicious_mail"}
        assert all(a["answer"] in ("yes", "no", "unknown") and a["because"] for a in finding["answers"].values())
        assert finding["reasons"]
    assert "Findings" in result.output and "purview_csv" in result.output


def test_hunting_again_adds_nothing_and_keeps_finding_ids(huntress_case, tmp_path):
    out, _ = huntress_case
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    first = json.loads((copy / "findings.json").read_text())
    result = hunt(HUNTRESS, "--out", copy)
    assert result.exit_code == 0, result.output
    second = json.loads((copy / "findings.json").read_text())
    assert [f["id"] for f in second["findings"]] == [f["id"] for f in first["findings"]]
    import duckdb
    with duckdb.connect(str(copy / "case.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 219


def test_same_input_gives_byte_identical_findings(tmp_path):
    for name in ("a", "b"):
        assert hunt(HUNTRESS, "--out", tmp_path / name).exit_code == 0
    a = (tmp_path / "a" / "findings.json").read_bytes()
    b = (tmp_path / "b" / "findings.json").read_bytes()
    # Each case records when it was hunted (UTC, to the second); everything else is the same byte for byte.
    [hunt_a], [hunt_b] = json.loads(a)["hunts"], json.loads(b)["hunts"]
    assert hunt_a["started_at"].endswith("Z") and hunt_b["started_at"].endswith("Z")
    assert a == b.replace(hunt_b["started_at"].encode(), hunt_a["started_at"].encode())


def test_missing_path_is_a_usage_error(tmp_path):
    result = hunt(tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_non_empty_folder_that_is_no_case_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = hunt(HUNTRESS, "--out", out)
    assert result.exit_code == 2
    assert "not empty" in result.output


def test_invalid_toml_is_a_usage_error(tmp_path):
    config = tmp_path / "mailhunt.toml"
    config.write_text("[tuning\n")
    result = hunt(HUNTRESS, "--out", tmp_path / "out", "--config", config)
    assert result.exit_code == 2
    assert "invalid TOML" in result.output


def test_unknown_and_empty_files_are_skipped_not_fatal(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copy(HUNTRESS, evidence / "export.dat")
    (evidence / "empty.csv").write_bytes(b"")
    (evidence / "notes.txt").write_text("just some notes\nnothing to see\n")
    out = tmp_path / "out"
    result = hunt(evidence, "--out", out)
    assert result.exit_code == 0, result.output
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in json.loads((out / "findings.json").read_text())["inputs"]}
    assert inputs["export.dat"]["records"] == 219
    assert inputs["empty.csv"]["skipped_reason"] == "empty file"
    assert inputs["notes.txt"]["skipped_reason"] == "format not recognized"


def test_example_incident_produces_escalated_findings(tmp_path):
    incident = EXAMPLES / "incident-2026-10"
    result = hunt(incident, "--out", tmp_path / "case", "--config", incident / "mailhunt.toml")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "case" / "findings.json").read_text())
    escalated = {f["indicator"] for f in document["findings"] if f["escalate"]}
    assert {"export_then_deletion", "mailbox_export", "inbox_rule_hiding"} <= escalated
    legit = [f for f in document["findings"] if f["actor"] == "compliance-admin@fabrikam-labs.com"]
    assert legit and not any(f["escalate"] for f in legit)
    assert legit[0]["reasons"] == [("authorized: CHG-2026-1006-07 by compliance-admin@fabrikam-labs.com "
                                    "(change window 2026-10-06T20:00:00Z .. 2026-10-06T23:00:00Z)")]
    sweeps = [f for f in document["findings"] if f["actor"] == "svc-retention@fabrikam-labs.com"]
    assert len(sweeps) == 3 and {f["indicator"] for f in sweeps} == {"bulk_item_deletion"}
    assert all(not f["escalate"] and f["reasons"][0].startswith("authorized: known automation") for f in sweeps)
    attack = next(f for f in document["findings"] if f["indicator"] == "export_then_deletion")
    assert attack["severity"] == "critical" and attack["baseline"]["sufficient"]
    assert any(r.startswith("known threat pattern: export followed by deletion") for r in attack["reasons"])
    sign_ins = next(s for s in attack["l1"] if s["step"] == "sign_ins")
    assert sign_ins["result"] == "flag" and "outside the home countries US: DE" in sign_ins["detail"]
    tampering = next(f for f in document["findings"] if f["indicator"] == "audit_tampering")
    assert tampering["escalate"] and any(
        r.startswith("known threat pattern: audit evidence tampered with") and f"here: {tampering['rule']['title']}" in r
        for r in tampering["reasons"])
