"""Message tracking in the forms responders receive it, and what transport rules wrote into it.

Fixtures (tests/fixtures/exchange), all one incident at contoso.com on 2026-10-15:
- ``MSGTRK2026101509-1.LOG``: the server's own log; a rule blind-copies payroll
  mail to protonmail.com, a journal rule copies mail to an internal mailbox, a
  rule deletes a sign-in warning, the same rule in audit mode does not.
- ``message_tracking_esi.csv``: the same fields as the plain CSV Sentinel's
  Exchange Security Insights exports (header of field names, no ``#`` lines),
  with a time without a zone and a row cut short.
- ``message_tracking_export.csv``: ``Get-MessageTrackingLog | Export-Csv``
  as it is, lists written as their type names, local times.
- ``message_tracking_export_expanded.csv``: the same after ``Select-Object``
  joined the lists (``EventData`` as PowerShell prints its pairs).
"""

from datetime import datetime
from pathlib import Path

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources.message_tracking_agent_data import agent_data
from tests.test_sources_exchange_admin_audit import FIXTURES, read

BCC_RULE = "3f2a5c1e-8b7d-4e2f-9a61-0c5d7e9b1a24"
DELETE_RULE = "c81d4e2f-6a5b-4c3d-9e8f-7a6b5c4d3e2f"
QUESTION = "transport_rule_with_suspicious_mail"


def _agentinfo(events):
    return [e for e in events if e["event.action"] == "AGENTINFO"]


def test_transport_rule_agent_entries():
    data = agent_data(
        "S:TRA=DC|dcid=41BFDBC6C9D811E0816A3CD34824019B|count=10|conf=77;"
        "S:TRA=ETR|ruleId=FC2AA60C|dlpid=1B81CC82|st=2010-11-03 15:30T|action=PrependSubject|action=Encrypt|sev=2|mode=audit;"
        "S:TRA=ETR|ruleId=AB2AA60C|st=7/17/2017 12:31:25 AM|action=BlindCopyTo|sev=1|mode=Enforce;"
        "S:TRA=ETRP|ruleId=C27D21EE|LoadW=200|LoadC=100|ExecW=5500|ExecC=200",
        "2026-10-15T09:02:48.101Z;SRV=EXCH01.corp.contoso.com;S:RecipientType=Bcc")
    assert data.rule_ids == ("FC2AA60C", "AB2AA60C")  # the ETRP timing line names no action
    assert data.actions == ("PrependSubject", "Encrypt", "BlindCopyTo")
    assert data.modes == ("audit", "Enforce") and data.recipient_type == "Bcc"
    pairs = agent_data("[TRA, ETR|ruleId=AB2AA60C|action=RedirectMessage|mode=Enforce];[DeliveryPriority, Normal]")
    assert pairs.actions == ("RedirectMessage",) and pairs.rule_ids == ("AB2AA60C",)
    assert agent_data("S:DeliveryPriority=Normal", None).labels() == {}


def test_native_log_names_the_rule_and_the_recipient_it_added():
    name, events, ctx = read("MSGTRK2026101509-1.LOG")
    assert name == "exchange_message_tracking" and (ctx.records, len(events), ctx.rejected) == (12, 12, 0)
    bcc, journal, delete, audit = _agentinfo(events)
    assert bcc["rule.name"] == BCC_RULE and bcc["labels"]["transport_rule_action"] == "BlindCopyTo"
    assert bcc["email.to.address"] == "archive.box@protonmail.com"  # cfo@contoso.com was on the RECEIVE
    assert bcc["labels"]["recipients_all"] == "cfo@contoso.com;archive.box@protonmail.com"
    assert bcc["labels"]["transport_rule_recipients"] == "added"
    assert journal["email.to.address"] == "journal@contoso.com"
    assert delete["rule.name"] == DELETE_RULE and delete["labels"]["transport_rule_action"] == "DeleteMessage"
    assert delete["labels"]["transport_rule_mode"] == "Enforce" and audit["labels"]["transport_rule_mode"] == "Audit"
    send = next(e for e in events if e["event.action"] == "SEND")
    assert send["labels"]["recipient_type"] == "Bcc" and send["email.to.address"] == "archive.box@protonmail.com"


def test_agentinfo_without_its_receive_keeps_all_recipients_and_says_so():
    lines = (FIXTURES / "MSGTRK2026101509-1.LOG").read_bytes().split(b"\r\n")
    data = b"\r\n".join(lines[:5] + [lines[6]]) + b"\r\n"  # the AGENTINFO record alone
    _, [event], _ = read("cut.LOG", data=data)
    assert event["email.to.address"] == "cfo@contoso.com;archive.box@protonmail.com"
    assert event["labels"]["transport_rule_recipients"].startswith("not known")


def test_sentinel_csv_of_the_log_fields():
    name, events, ctx = read("message_tracking_esi.csv")
    assert name == "exchange_message_tracking_csv"
    assert (ctx.records, len(events), ctx.rejected) == (8, 6, 2)
    assert events[0]["@timestamp"] == datetime(2026, 10, 15, 9, 2, 48, 101000)
    assert events[0]["event.dataset"] == "exchange.message_tracking" and events[0]["email.direction"] == "outbound"
    bcc, delete = _agentinfo(events)
    assert bcc["email.to.address"] == "archive.box@protonmail.com" and bcc["rule.name"] == BCC_RULE
    assert delete["labels"]["transport_rule_action"] == "DeleteMessage"
    assert [(r.locator, r.reason) for r in ctx.rejections] == [
        ("line 8", "date-time '2026-10-15 09:25:40.100' has no zone (message tracking writes UTC with Z)"),
        ("line 9", "12 fields where the header has 30")]


def test_sentinel_csv_and_native_log_records_are_one_event():
    _, native, _ = read("MSGTRK2026101509-1.LOG")
    _, sentinel, _ = read("message_tracking_esi.csv")
    assert {e["event.id"] for e in sentinel} <= {e["event.id"] for e in native}


def test_export_csv_times_need_the_exporting_sessions_zone():
    name, events, ctx = read("message_tracking_export.csv")
    assert name == "exchange_message_tracking_export"
    assert (ctx.records, len(events), ctx.rejected) == (3, 0, 3)
    assert ctx.rejections[0].locator == "line 3"  # the #TYPE line and the header come first
    assert ctx.rejections[0].reason.startswith("Timestamp '10/15/2026 5:02:48 AM' has no time zone")
    assert "give the hint timezone=" in ctx.rejections[0].reason


def test_export_csv_with_zone_hint_and_lists_lost_to_type_names():
    _, events, ctx = read("message_tracking_export.csv", {"timezone": "America/New_York"})
    assert (ctx.records, len(events), ctx.rejected) == (3, 3, 0)
    receive, agent, deliver = events
    assert receive["@timestamp"] == datetime(2026, 10, 15, 9, 2, 48)  # 5:02:48 AM EDT
    assert receive["labels"]["time_zone_source"] == "hint America/New_York"
    assert receive["email.to.address"] is None and agent["rule.name"] is None
    assert agent["labels"]["values_lost"] == "recipient-address, recipient-status, custom-data"
    assert deliver["email.subject"] == "Q3 payroll and bank details"
    assert deliver["email.from.address"] == "alice@contoso.com" and deliver["host.name"] == "EXCH01"


def test_export_csv_with_lists_joined():
    name, events, ctx = read("message_tracking_export_expanded.csv", {"timezone": "America/New_York"})
    assert name == "exchange_message_tracking_export" and (ctx.records, ctx.rejected) == (6, 0)
    bcc, journal, delete = _agentinfo(events)
    assert bcc["email.to.address"] == "archive.box@protonmail.com" and bcc["rule.name"] == BCC_RULE
    assert journal["email.to.address"] == "journal@contoso.com"
    assert delete["labels"]["transport_rule_action"] == "DeleteMessage"
    assert events[4]["source.ip"] == "40.107.22.51" and events[4]["email.direction"] == "inbound"


def test_bad_zone_hint_rejects_with_its_reason():
    _, events, ctx = read("message_tracking_export.csv", {"timezone": "Mars/Olympus"})
    assert not events and "timezone hint 'Mars/Olympus'" in ctx.rejections[0].reason


def _hunt(tmp_path: Path, config: Config):
    result = hunt([FIXTURES / "MSGTRK2026101509-1.LOG"], tmp_path / "case", config)
    return [f for f in result.document["findings"] if f["indicator"] == "transport_rule_change"]


def test_rules_and_question_4_see_the_outside_copy_and_the_deletion(tmp_path):
    [finding] = _hunt(tmp_path, Config(domains=("contoso.com",)))
    assert {r["title"] for r in finding["rules"]} == {"Transport Rule Copies Or Redirects Mail To An External Address",
                                                      "Transport Rule Deletes Messages"}
    answer = finding["answers"][QUESTION]
    assert answer["answer"] == "yes", answer
    because = answer["because"]
    assert f"BlindCopyTo to archive.box@protonmail.com by rule {BCC_RULE}" in because
    assert f"DeleteMessage by rule {DELETE_RULE}" in because
    assert "journal@contoso.com" not in because and "2 silently copied, redirected or deleted" in because


def test_without_organization_domains_only_the_deletion_is_found(tmp_path):
    [finding] = _hunt(tmp_path, Config())
    assert [r["title"] for r in finding["rules"]] == ["Transport Rule Deletes Messages"]
