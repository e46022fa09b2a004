"""Question 4 on whole hunts: a rule change, and what the message logs show around it."""

from pathlib import Path

import pytest

from mailhunt.config import Config
from mailhunt.hunt import hunt

FIXTURES = Path(__file__).parent / "fixtures" / "exchange"
ORG = Config(domains=("fabrikam.com",))
QUESTION = "transport_rule_with_suspicious_mail"

INBOX_RULE = """<?xml version="1.0" encoding="utf-8"?>
<SearchResults>
  <Event Caller="corp.fabrikam.com/Users/jdoe" Cmdlet="New-InboxRule" ObjectModified="jdoe\\." RunDate="2026-10-14T15:20:00Z" Succeeded="true" Error="None" OriginatingServer="EXCH01 (15.02.1544.004)">
    <CmdletParameters>
      <Parameter Name="Mailbox" Value="jdoe@fabrikam.com" />
      <Parameter Name="Name" Value="." />
      <Parameter Name="SubjectContainsWords" Value="invoice" />
      <Parameter Name="MoveToFolder" Value="RSS Feeds" />
    </CmdletParameters>
    <ModifiedProperties />
  </Event>
</SearchResults>
"""


def answers(tmp_path, evidence, config=ORG, indicator="transport_rule_change"):
    result = hunt(evidence, tmp_path / "case", config)
    found = [f for f in result.document["findings"] if f["indicator"] == indicator]
    assert found, f"no {indicator} finding"
    return [f["answers"][QUESTION] for f in found]


def test_lookalike_burst_after_transport_rule_is_yes(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml", FIXTURES / "message_trace_burst.csv"])
    assert answer["answer"] == "yes", answer
    because = answer["because"]
    assert "6 suspicious message(s) among 6" in because
    assert "2026-10-14T16:31:07Z..2026-10-14T16:58:33Z" in because and "44 min after the change" in because
    assert "fabrikarn.com reads like fabrikam.com (homoglyph)" in because
    assert "fabrikam-labs-support.com adds words to fabrikam.com (added_words)" in because
    assert "FilteredAsSpam x1, Quarantined x1" in because and "a burst of 6 external messages" in because
    assert "<SN4PR11MB4100.inv0@fabrikarn.com>" in because


def test_lookalike_mail_in_message_tracking_is_yes(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml", FIXTURES / "MSGTRK2026101416-1.LOG"])
    assert answer["answer"] == "yes", answer
    assert "5 suspicious message(s)" in answer["because"]
    assert "fabrlkam.com is a typo of fabrikam.com" in answer["because"]


def test_no_matching_mail_with_full_coverage_is_no(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml", FIXTURES / "message_trace_quiet.csv"])
    assert answer["answer"] == "no", answer
    assert "no message meeting the rule's subject words 'Invoice overdue' arrived" in answer["because"]
    assert "cover the whole window 2026-10-14T09:47:30Z..2026-10-14T21:47:30Z" in answer["because"]


def test_no_message_logs_is_unknown(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml"])
    assert answer["answer"] == "unknown"
    assert "no message trace or message tracking records" in answer["because"]


def test_logs_covering_part_of_the_window_is_unknown(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml", FIXTURES / "MSGTRK20261014-1.LOG"])
    assert answer["answer"] == "unknown", answer
    assert "cover only 2026-10-14T09:31:02.337000Z..2026-10-14T09:31:03.002000Z" in answer["because"]


def test_inbox_rule_counts_only_mail_to_its_mailbox(tmp_path):
    rule = tmp_path / "inbox_rule_report.xml"
    rule.write_text(INBOX_RULE, encoding="utf-8")
    found = answers(tmp_path, [rule, FIXTURES / "message_trace_burst.csv"], indicator="inbox_rule_hiding")
    assert found and all(a["answer"] == "yes" for a in found), found
    because = found[0]["because"]
    assert "2 suspicious message(s) among 2 message(s) meeting the rule's subject words 'invoice'" in because
    assert "<SN4PR11MB4100.inv0@fabrikarn.com>, <SN4PR11MB4103.inv3@fabrikarn.com>" in because


def test_matching_mail_without_organization_domains_is_unknown(tmp_path):
    trace = tmp_path / "trace.csv"
    lines = (FIXTURES / "message_trace_burst.csv").read_text().splitlines()
    keep = [lines[0], lines[1]] + [line for line in lines[2:] if '"Delivered"' in line]
    trace.write_text("\r\n".join(keep) + "\r\n")
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml", trace], config=Config())
    assert answer["answer"] == "unknown", answer
    assert "organization.domains" in answer["because"]


@pytest.mark.parametrize("indicator", ["mailbox_export"])
def test_other_findings_do_not_apply(tmp_path, indicator):
    [answer] = answers(tmp_path, [FIXTURES / "admin_audit_report.xml"], indicator=indicator)
    assert answer["answer"] == "unknown" and answer["because"].startswith("does not apply")


def test_hunt_command_passes_the_timezone_hint(tmp_path):
    from typer.testing import CliRunner

    from mailhunt.cli import app

    evidence = str(FIXTURES / "admin_audit_export.csv")
    refused = CliRunner().invoke(app, ["hunt", evidence, "--out", str(tmp_path / "a")])
    assert refused.exit_code == 3 and "has no time zone" in refused.output  # every record refused: nothing read
    read = CliRunner().invoke(app, ["hunt", evidence, "--out", str(tmp_path / "b"), "--hint",
                                    "timezone=America/Los_Angeles"])
    assert read.exit_code == 0, read.output
    import json
    document = json.loads((tmp_path / "b" / "findings.json").read_text())
    assert [i["records"] - i["rejected"] for i in document["inputs"]] == [2]
    assert any(f["indicator"] == "export_then_deletion" and f["first_seen"] == "2026-10-14T15:02:11Z"
               for f in document["findings"])
    bad = CliRunner().invoke(app, ["hunt", evidence, "--out", str(tmp_path / "c"), "--hint", "timezone"])
    assert bad.exit_code == 2


def test_quarantine_in_a_summary_report_counts_as_suspicious(tmp_path):
    [answer] = answers(tmp_path, [FIXTURES / "transport_rule_report.xml",
                                  FIXTURES / "message_trace_summary_report.csv"])
    assert answer["answer"] == "yes", answer
    assert "2 suspicious message(s) among 2" in answer["because"]
    assert "Quarantine x1" in answer["because"]
