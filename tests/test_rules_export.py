"""`mailhunt rules export` and `mailhunt rules coverage`: every rule to every target, or the reason why not."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.detect.rules import load_rules
from mailhunt.export.coverage import coverage_markdown, documented_table
from mailhunt.export.exporter import TARGETS, export_rules
from tests.corpus import REPO, SIGMAHQ

runner = CliRunner()
GOLDEN = Path(__file__).parent / "golden" / "export"
UPDATE_GOLDEN = os.environ.get("MAILHUNT_UPDATE_GOLDEN") == "1"

# A plain selection, cmdlet parameters (exists / not), a field of several platform fields (the subject), and the
# correlations each target can express.
GOLDEN_RULES = {
    "splunk": ["m365_mailbox_export_request", "m365_compliance_search_purge", "m365_security_notification_deletion",
               "m365_inbox_rule_burst", "windows_mail_store_tampering_in_process_creation"],
    "esql": ["m365_mailbox_export_request", "m365_compliance_search_purge", "m365_security_notification_deletion",
             "m365_inbox_rule_burst", "windows_script_block_cleanup_step"],
    "eql": ["m365_mailbox_export_request", "m365_compliance_search_purge", "m365_security_notification_deletion",
            "m365_export_then_cleanup_by_actor", "windows_mail_store_file_deleted"],
    "lucene": ["m365_mailbox_export_request", "m365_compliance_search_purge", "m365_security_notification_deletion",
               "windows_outlook_com_item_deletion"],
    "kusto": ["m365_mailbox_export_request", "m365_compliance_search_purge", "m365_inbox_rule_hides_mail",
              "windows_mail_cmdlet_in_process_creation"],
}


@pytest.fixture(scope="module")
def shipped():
    return load_rules()


@pytest.fixture(scope="module")
def exported(shipped):
    return {target: {r.name: r for r in export_rules(shipped, target)} for target in TARGETS}


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_shipped_rule_is_exported_or_says_why(target, shipped, exported):
    results = exported[target]
    assert sorted(results) == sorted(r.rule.name for r in shipped)
    for result in results.values():
        if result.exported:
            assert result.query and result.query.strip() and result.reason is None
        else:
            assert result.reason.startswith(f"not supported by {target}: ") and len(result.reason) > 30
    assert sum(r.exported for r in results.values()) >= 15


@pytest.mark.parametrize("target", list(TARGETS))
def test_golden_queries(target, exported):
    for name in GOLDEN_RULES[target]:
        result = exported[target][name]
        assert result.exported, result.reason
        path = GOLDEN / target / f"{name}.{TARGETS[target].extension}"
        if UPDATE_GOLDEN:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(result.query)
        assert result.query == path.read_text(), f"{path} differs"


def test_windows_rules_export_to_the_log_their_logsource_names(exported):
    script_block = exported["esql"]["windows_script_block_cleanup_step"].query
    assert script_block.startswith("from logs-windows.powershell_operational-*")
    assert 'winlog.channel=="Microsoft-Windows-PowerShell/Operational"' in script_block
    sysmon = exported["splunk"]["windows_mail_store_tampering_in_process_creation"].query
    assert sysmon.startswith('source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"') and "CommandLine" in sysmon
    assert exported["kusto"]["windows_mail_cmdlet_in_process_creation"].query.startswith("DeviceProcessEvents")
    # a rule over every Windows log cannot name one place its records are
    cleared = exported["esql"]["windows_event_log_cleared"]
    assert not cleared.exported and "stands for several datasets" in cleared.reason


def test_correlations_where_the_backend_supports_them(exported):
    sequence = exported["eql"]["m365_export_then_cleanup_by_actor"].query
    assert sequence.startswith("sequence by user.id with maxspan=24h")
    assert "runs=" not in sequence and sequence.count("[any where") == 2
    for target in ("splunk", "esql"):
        reason = exported[target]["m365_export_then_cleanup_by_actor"].reason
        assert "temporal_ordered" in reason and "not supported by backend" in reason
    for target in ("lucene", "kusto"):
        assert "does not support correlation rules" in exported[target]["m365_inbox_rule_burst"].reason
    assert "value_count" in exported["eql"]["m365_inbox_rule_burst"].reason
    assert "| stats dc(Id) as value_count by _time UserId" in exported["splunk"]["m365_inbox_rule_burst"].query
    assert "count_distinct(event.id) by timebucket, user.id" in exported["esql"]["m365_inbox_rule_burst"].query


def test_fields_without_a_counterpart_are_named(exported):
    for target in TARGETS:
        reason = exported[target]["m365_new_app_mail_access"].reason
        assert "app.new" in reason and "baseline" in reason
    assert "Subject" in exported["kusto"]["m365_security_notification_deletion"].reason
    assert "email.message_id" in exported["splunk"]["m365_sent_items_deletion"].reason
    parameters = exported["splunk"]["m365_compliance_search_purge"]
    assert parameters.fields == {"Operation": "Operation", "params.purge": "param_purge"}
    assert any("Security & Compliance" in note for note in parameters.notes)
    building_block = exported["esql"]["m365_export_step"]
    assert any(note.startswith("building block of m365_export_then_") for note in building_block.notes)


def test_export_writes_one_file_per_rule_and_an_index(tmp_path, shipped):
    out = tmp_path / "esql"
    result = runner.invoke(app, ["rules", "export", "--target", "esql", "--out", str(out)])
    assert result.exit_code == 0, result.output
    index = json.loads((out / "index.json").read_text())
    assert index["schema"] == "mailhunt.export/1" and index["target"] == "esql"
    assert len(index["rules"]) == len(shipped) == index["summary"]["rules"]
    for entry in index["rules"]:
        if entry["exported"]:
            index_pattern = ("from logs-o365.audit-*,filebeat-*" if entry["name"].startswith("m365_")
                             else "from logs-windows.")
            assert (out / entry["file"]).read_text().startswith(index_pattern)
        else:
            assert entry["file"] is None and entry["reason"].startswith("not supported by esql: ")
    written = {p.name for p in out.iterdir()} - {"index.json", "index.md"}
    assert written == {e["file"] for e in index["rules"] if e["exported"]}
    assert "not supported by esql" in (out / "index.md").read_text()

    again = runner.invoke(app, ["rules", "export", "--target", "esql", "--out", str(out)])
    assert again.exit_code == 0 and json.loads((out / "index.json").read_text()) == index

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = runner.invoke(app, ["rules", "export", "--target", "esql", "--out", str(foreign)])
    assert refused.exit_code == 2 and (foreign / "notes.txt").exists()
    assert runner.invoke(app, ["rules", "export", "--target", "qradar"]).exit_code == 2


@pytest.mark.parametrize("target", list(TARGETS))
def test_third_party_rules_export_what_maps_and_say_why_not(target):
    rules = load_rules([SIGMAHQ])
    results = {r.id: r for r in export_rules(rules, target)}
    assert len(results) == len(rules)
    windows = results["09570ae5-889e-43ea-aac0-0e1221fb3d95"]
    assert not windows.exported
    assert "logsource product=windows, service=msexchange-management" in windows.reason
    inbox = results["d3577be1-42c9-44a7-b56e-2e8de97349d3"]
    if target == "kusto":
        assert inbox.exported and "Parameters contains \"DeleteMessage\"" in inbox.query
    else:
        assert not inbox.exported and "Parameters" in inbox.reason


def test_coverage_table_in_docs_is_current(shipped):
    table = coverage_markdown(shipped)
    assert documented_table(REPO / "docs" / "rules.md") == table, \
        "docs/rules.md is stale: run `mailhunt rules coverage --update docs/rules.md`"
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| rule ", "| **"))]
    assert len(rows) == len(shipped)


def test_coverage_update_rewrites_only_the_marked_block(tmp_path):
    doc = tmp_path / "rules.md"
    shutil.copy(REPO / "docs" / "rules.md", doc)
    text = doc.read_text()
    doc.write_text(text.replace("| m365_audit_logging_disabled |", "| stale |"))
    result = runner.invoke(app, ["rules", "coverage", "--update", str(doc)])
    assert result.exit_code == 0, result.output
    assert doc.read_text() == text


EXTENDED_BASE_RULES = """\
title: Export request
name: ext_export
id: 8f0e4c52-4a1e-4c55-9a55-111111111111
status: experimental
logsource: {product: m365, service: audit}
detection:
  sel: {Operation: New-MailboxExportRequest}
  condition: sel
level: low
---
title: Purge
name: ext_purge
id: 8f0e4c52-4a1e-4c55-9a55-222222222222
status: experimental
logsource: {product: m365, service: audit}
detection:
  sel: {Operation: New-ComplianceSearchAction}
  condition: sel
level: low
---
title: Export then purge, as a boolean condition
name: ext_export_then_purge
id: 8f0e4c52-4a1e-4c55-9a55-333333333333
status: experimental
correlation:
  type: temporal
{rules}  condition: ext_export and ext_purge
  timespan: 1h
  group-by: [UserId]
level: high
"""


@pytest.mark.parametrize("target", list(TARGETS))
def test_extended_condition_correlation_without_rules_list_is_reported_not_a_crash(target, tmp_path):
    # pySigma leaves `rules` None when a temporal correlation names its rules only in the condition
    (tmp_path / "rules.yml").write_text(EXTENDED_BASE_RULES.replace("{rules}", ""))
    results = {r.name: r for r in export_rules(load_rules([tmp_path]), target)}
    assert sorted(results) == ["ext_export", "ext_export_then_purge", "ext_purge"]
    correlation = results["ext_export_then_purge"]
    assert not correlation.exported
    assert correlation.reason == f"not supported by {target}: a correlation without a rules list is not supported"


@pytest.mark.parametrize("target", list(TARGETS))
def test_extended_condition_correlation_fields_are_its_group_by(target, tmp_path):
    # an extended condition aggregates no field: the unit's fields are the group-by and the rules' own
    (tmp_path / "rules.yml").write_text(EXTENDED_BASE_RULES.replace("{rules}", "  rules: [ext_export, ext_purge]\n"))
    correlation = {r.name: r for r in export_rules(load_rules([tmp_path]), target)}["ext_export_then_purge"]
    assert "AttributeError" not in (correlation.reason or "")
    if correlation.exported:
        assert set(correlation.fields) == {"Operation", "UserId"}
    else:
        assert "not supported by backend" in correlation.reason or "does not support correlation" in correlation.reason
