"""`mailhunt rules list` and `mailhunt rules test` on the shipped rules, a third-party folder and a small one of our own."""

import copy
import shutil

import yaml
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.config import load_config
from mailhunt.detect.catalog import describe_rules
from mailhunt.detect.examples import run_rule_examples
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from mailhunt.hunt import hunt
from tests.corpus import EXAMPLES, SIGMAHQ

runner = CliRunner()


def test_every_shipped_rule_runs_and_has_examples():
    infos = describe_rules(load_rules())
    assert len(infos) >= 20
    assert all(info.runs and info.reason is None for info in infos)
    assert all(info.example_cases >= 2 and info.example_records >= info.example_cases for info in infos)


def test_third_party_rules_list_with_the_reason_they_cannot_run():
    infos = {info.title: info for info in describe_rules(load_rules([SIGMAHQ]))}
    remove_export = infos["Remove Exported Mailbox from Exchange Webserver"]
    assert remove_export.runs and remove_export.logsource == "windows/msexchange-management"
    forwarding = [info for info in infos.values() if not info.runs and "OperationProperties" in (info.reason or "")]
    assert forwarding, "a rule on a field mailhunt does not produce says which field"
    pst = infos["PST Export Alert Using New-ComplianceSearchAction"]
    assert pst.runs and pst.logsource == "m365/threat_management"
    assert all(info.example_cases == 0 for info in infos.values())


def test_rules_list_command_prints_the_table():
    result = runner.invoke(app, ["rules", "list", "--rules", str(SIGMAHQ)])
    assert result.exit_code == 0, result.output
    assert "PST Export Alert" in result.output and "no pipeline maps it" in result.output


def _copy_rule(name, folder):
    for suffix in (".yml", ".examples.yml"):
        shutil.copy(shipped_rules_dir() / "m365" / f"{name}{suffix}", folder / f"{name}{suffix}")


def test_rules_test_passes_and_fails_as_the_examples_say(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _copy_rule("m365_audit_logging_disabled", good)
    result = runner.invoke(app, ["rules", "test", "--rules", str(good)])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output

    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    examples = bad / "m365_audit_logging_disabled.examples.yml"
    examples.write_text(examples.read_text().replace("expect: no_match", "expect: match", 1))
    result = runner.invoke(app, ["rules", "test", "--rules", str(bad)])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "1 failed" in result.output


def test_rules_folder_must_exist(tmp_path):
    result = runner.invoke(app, ["rules", "list", "--rules", str(tmp_path / "nope")])
    assert result.exit_code == 2


SIGMAHQ_INBOX_RULE = "microsoft365_susp_inbox_rule_creation_or_update_activity.yml"


def test_a_third_party_rule_is_tested_with_examples_its_user_adds(tmp_path):
    """A SigmaHQ rule, unchanged, tested against audit records an analyst put beside it."""
    shutil.copy(SIGMAHQ / SIGMAHQ_INBOX_RULE, tmp_path / SIGMAHQ_INBOX_RULE)
    shipped_cases = yaml.safe_load((shipped_rules_dir() / "m365" / "m365_inbox_rule_hides_mail.examples.yml").read_text())
    hides = shipped_cases["cases"][0]
    forwards_only = copy.deepcopy(hides)
    forwards_only["name"] = "rule that only forwards"
    forwards_only["expect"] = "no_match"
    record = forwards_only["records"][0]
    record["Id"] = "0f5e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
    record["Parameters"] = [{"Name": "ForwardTo", "Value": "someone@example.org"}, {"Name": "Name", "Value": "fwd"}]
    examples = tmp_path / SIGMAHQ_INBOX_RULE.replace(".yml", ".examples.yml")
    examples.write_text(yaml.safe_dump({"cases": [hides, forwards_only]}))
    result = runner.invoke(app, ["rules", "test", "--rules", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output


def test_third_party_rules_without_examples_fail_and_say_when_they_cannot_run():
    result = runner.invoke(app, ["rules", "test", "--rules", str(SIGMAHQ)])
    assert result.exit_code == 1
    assert "no examples" in result.output and "0 passed, 11 failed" in result.output
    details = {r.rule_id: r.detail for r in run_rule_examples(load_rules([SIGMAHQ]))}
    assert details["c726e007-2cd0-4a55-abfb-79730fbedee5"].endswith(
        "rule cannot run on mailhunt's events: field 'OperationProperties' is not in mailhunt's event model "
        "and no pipeline maps it")
    assert "cannot run" not in details["09570ae5-889e-43ea-aac0-0e1221fb3d95"], "the MSExchange rule runs on EVTX"
    assert "cannot run" not in details["d3577be1-42c9-44a7-b56e-2e8de97349d3"]


def test_third_party_rules_run_in_a_hunt_beside_the_shipped_ones(tmp_path):
    result = hunt([EXAMPLES / "incident-2026-10" / "purview_audit_export.csv"], tmp_path / "case",
                  load_config(EXAMPLES / "incident-2026-10" / "mailhunt.toml"), rule_dirs=[shipped_rules_dir(), SIGMAHQ])
    skipped = {entry["id"]: entry["reason"] for entry in result.document["skipped_rules"]}
    assert "OperationProperties" in skipped["c726e007-2cd0-4a55-abfb-79730fbedee5"]
    assert "09570ae5-889e-43ea-aac0-0e1221fb3d95" not in skipped
    assert "d3577be1-42c9-44a7-b56e-2e8de97349d3" not in skipped
    assert result.findings


def test_matches_of_third_party_rules_are_reported_not_dropped(tmp_path):
    result = hunt([EXAMPLES / "incident-2026-10" / "purview_audit_export.csv"], tmp_path / "case",
                  load_config(EXAMPLES / "incident-2026-10" / "mailhunt.toml"), rule_dirs=[shipped_rules_dir(), SIGMAHQ])
    matches = {m["rule"]["id"]: m for m in result.document["rule_matches"]}
    inbox = matches["d3577be1-42c9-44a7-b56e-2e8de97349d3"]
    assert inbox["event_count"] == len(inbox["evidence"]) >= 2
    assert {e["action"] for e in inbox["evidence"]} <= {"New-InboxRule", "Set-InboxRule", "UpdateInboxRules"}
    assert inbox["first_seen"] <= inbox["last_seen"]
    # shipped building blocks name no indicator either, but are not the analyst's rules
    assert all(not m["rule_file"].startswith(str(shipped_rules_dir())) for m in result.document["rule_matches"])
    assert "Inbox Rules Creation Or Update Activity in O365" in (tmp_path / "case" / "report.md").read_text()


def test_a_hostile_rule_title_is_escaped_in_the_report(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mine.yml").write_text("""
title: <script>alert(1)</script> exports
id: 5b0f5a0e-2f0e-4f43-9d3e-0c2b1f6a9e11
status: experimental
logsource: {product: m365, service: audit}
detection:
    selection:
        Operation: New-MailboxExportRequest
    condition: selection
level: high
""", encoding="utf-8")
    result = hunt([EXAMPLES / "incident-2026-10" / "purview_audit_export.csv"], tmp_path / "case",
                  load_config(EXAMPLES / "incident-2026-10" / "mailhunt.toml"), rule_dirs=[shipped_rules_dir(), rules])
    [match] = result.document["rule_matches"]
    assert match["event_count"] >= 1
    html = (tmp_path / "case" / "report.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; exports" in html
