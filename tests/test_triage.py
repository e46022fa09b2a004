"""The four questions and the escalation decision, on a small case built event by event."""

from datetime import datetime, timedelta

import pytest

from mailhunt.config import ChangeWindow, Config
from mailhunt.detect.engine import compile_rules, run_rules
from mailhunt.detect.grouping import group_detections
from mailhunt.detect.rules import load_rules
from mailhunt.events import new_event, to_arrow
from mailhunt.store import CaseStore
from mailhunt.triage import TriageContext, triage

RULES = """
title: Export
id: 0b6f0c3e-1d0c-5c39-9a0c-000000000001
name: t_export
status: test
logsource: {product: m365, service: audit}
indicator: mailbox_export
tags: [attack.t1070.008]
detection:
  sel: {event.action: New-MailboxExportRequest}
  condition: sel
level: medium
---
title: Removal
id: 0b6f0c3e-1d0c-5c39-9a0c-000000000002
name: t_removal
status: test
logsource: {product: m365, service: audit}
indicator: export_request_removed
detection:
  sel: {event.action: Remove-MailboxExportRequest}
  condition: sel
level: medium
---
title: Transport rule changed
id: 0b6f0c3e-1d0c-5c39-9a0c-000000000003
name: t_transport
status: test
logsource: {product: m365, service: audit}
indicator: transport_rule_change
detection:
  sel: {event.action: Set-TransportRule}
  condition: sel
level: medium
---
title: Export then removal
id: 0b6f0c3e-1d0c-5c39-9a0c-000000000004
name: t_export_then_removal
status: test
indicator: export_then_deletion
correlation:
  type: temporal_ordered
  rules: [t_export, t_removal]
  group-by: [user.name]
  timespan: 24h
level: high
"""

T0 = datetime(2026, 10, 14, 9, 0)


def ev(n, when, action, actor, target=None, agent=None, **columns):
    e = new_event()
    e.update(columns)
    e.update({"event.id": f"e{n}", "@timestamp": when, "event.action": action, "user.name": actor,
              "user.target.name": target, "event.dataset": "m365.audit", "user.type": "regular",
              "event.code": "1", "user_agent.original": agent, "log.file.path": "audit.csv",
              "log.file.sha256": "0" * 64, "log.record": n, "params": {}})
    e["event.original"] = columns.get("event.original") or f"record {n}"
    return e


@pytest.fixture
def rules(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    return load_rules([tmp_path])


def triaged(events, rules, config):
    store = CaseStore(":memory:")
    store.append(to_arrow(events))
    run = run_rules(store, compile_rules(rules))
    findings = group_detections(store, run.detections)
    triage(findings, TriageContext.build(store, config, {r.id: r.indicator for r in rules if r.indicator}))
    return {(f.indicator, f.actor): f for f in findings}


def background(actor, days=10):
    return [ev(100 + d, T0 - timedelta(days=d), "UserLoggedIn", actor) for d in range(1, days)]


def test_export_then_removal_by_unknown_actor_escalates_as_critical(rules):
    events = background("mallory@x.com") + [
        ev(1, T0, "New-MailboxExportRequest", "mallory@x.com", "cfo@x.com"),
        ev(2, T0 + timedelta(minutes=12), "Remove-MailboxExportRequest", "mallory@x.com", "cfo@x.com")]
    findings = triaged(events, rules, Config(admins=("compliance@x.com",)))
    export = findings[("mailbox_export", "mallory@x.com")]
    q1 = export.answers["export_followed_by_deletion"]
    assert q1.answer == "yes" and "12 minutes later" in q1.because
    assert export.answers["legitimate_admin_activity"].answer == "no"
    usual = export.answers["usual_for_account"]
    assert usual.answer == "no" and "never did New-MailboxExportRequest" in usual.because
    assert export.escalate and export.severity == "critical"
    assert any("export followed by deletion" in r for r in export.reasons)


def test_authorized_admin_inside_change_window_is_not_escalated(rules):
    window = ChangeWindow(T0 - timedelta(hours=1), T0 + timedelta(hours=3), "CHG-2041", ("compliance@x.com",))
    events = background("compliance@x.com") + [ev(1, T0, "New-MailboxExportRequest", "compliance@x.com", "legal@x.com")]
    events += [ev(200, T0 + timedelta(days=2), "UserLoggedIn", "someone@x.com")]
    finding = triaged(events, rules, Config(admins=("compliance@x.com",), change_windows=(window,)))[
        ("mailbox_export", "compliance@x.com")]
    legit = finding.answers["legitimate_admin_activity"]
    assert legit.answer == "yes" and "CHG-2041" in legit.because
    assert finding.answers["export_followed_by_deletion"].answer == "no"
    assert not finding.escalate
    assert finding.reasons == [("authorized: CHG-2041 by compliance@x.com "
                                "(change window 2026-10-14T08:00:00Z .. 2026-10-14T12:00:00Z)")]


def test_authorized_admin_outside_window_is_escalated(rules):
    window = ChangeWindow(T0 + timedelta(days=1), T0 + timedelta(days=1, hours=2), "CHG-9", ())
    events = background("compliance@x.com") + [ev(1, T0, "New-MailboxExportRequest", "compliance@x.com", "legal@x.com")]
    finding = triaged(events, rules, Config(admins=("compliance@x.com",), change_windows=(window,)))[
        ("mailbox_export", "compliance@x.com")]
    assert finding.answers["legitimate_admin_activity"].answer == "no"
    assert finding.escalate


def test_thin_history_answers_unknown_never_no(rules):
    events = [ev(1, T0, "Set-TransportRule", "admin@x.com"), ev(2, T0 + timedelta(hours=1), "UserLoggedIn", "b@x.com")]
    finding = triaged(events, rules, Config())[("transport_rule_change", "admin@x.com")]
    assert finding.answers["usual_for_account"].answer == "unknown"
    assert finding.answers["legitimate_admin_activity"].answer == "unknown"
    assert finding.answers["transport_rule_with_suspicious_mail"].answer == "unknown"
    assert "message trace" in finding.answers["transport_rule_with_suspicious_mail"].because
    assert finding.escalate and any("operational necessity" in r for r in finding.reasons)


def test_offensive_tooling_in_user_agent_is_named(rules):
    events = background("admin@x.com") + [ev(1, T0, "Set-TransportRule", "admin@x.com", agent="AADInternals/0.9.7")]
    finding = triaged(events, rules, Config(admins=("admin@x.com",)))[("transport_rule_change", "admin@x.com")]
    legit = finding.answers["legitimate_admin_activity"]
    assert legit.answer == "no" and "AADInternals" in legit.because
    assert finding.escalate and finding.severity == "critical"


def test_usual_operation_is_recognized(rules):
    events = background("admin@x.com") + [
        ev(50, T0 - timedelta(days=5), "Set-TransportRule", "admin@x.com"),
        ev(1, T0, "Set-TransportRule", "admin@x.com")]
    finding = max(triaged(events, rules, Config()).values(), key=lambda f: f.first_seen)
    usual = finding.answers["usual_for_account"]
    assert usual.answer == "yes" and "Set-TransportRule 1x" in usual.because


EMS = ('"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -noexit -command ". '
       "'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\RemoteExchange.ps1'; Connect-ExchangeServer -auto\"")


def windows_export(n, when, actor, **process):
    return ev(n, when, "New-MailboxExportRequest", actor, "cfo@x.com", **{
        "event.dataset": "windows.powershell", "host.name": "EXCH01", "process.name": "powershell.exe",
        "parameters": "-Mailbox cfo@x.com -FilePath \\\\fs01\\pst$\\cfo.pst", **process})


def test_exchange_management_shell_is_what_admins_use(rules):
    # the admin exported before (an export new for them would be an adverse signal outside a change window)
    events = background("exadmin@x.com") + [
        windows_export(2, T0 - timedelta(days=3), "exadmin@x.com", **{"process.command_line": EMS}),
        windows_export(1, T0, "exadmin@x.com", **{"process.command_line": EMS})]
    finding = max((f for f in triaged(events, rules, Config(admins=("exadmin@x.com",))).values()
                   if f.indicator == "mailbox_export"), key=lambda f: f.first_seen)
    assert finding.answers["legitimate_admin_activity"].answer == "yes"
    assert not finding.escalate


def test_plain_powershell_or_the_iis_worker_is_not(rules):
    events = background("exadmin@x.com") + [
        windows_export(1, T0, "exadmin@x.com", **{"process.command_line": "pwsh.exe -File C:\\Users\\x\\e.ps1",
                                                 "process.name": "pwsh.exe"})]
    finding = triaged(events, rules, Config(admins=("exadmin@x.com",)))[("mailbox_export", "exadmin@x.com")]
    legit = finding.answers["legitimate_admin_activity"]
    assert legit.answer == "no" and "PowerShell outside the Exchange Management Shell" in legit.because
    assert finding.escalate
    assert any(r.startswith("scripts or tools not used by authorized personnel: PowerShell outside") for r in finding.reasons)

    events = background("exadmin@x.com") + [
        windows_export(1, T0, "exadmin@x.com", **{"process.command_line": EMS, "process.parent.name": "w3wp.exe"})]
    finding = triaged(events, rules, Config(admins=("exadmin@x.com",)))[("mailbox_export", "exadmin@x.com")]
    assert finding.escalate and finding.severity == "critical"
    assert any(r.startswith("known threat pattern: ProxyShell-style") and "w3wp.exe" in r for r in finding.reasons)


def test_automation_is_recognized_by_its_script_hash(rules):
    digest = "9f" * 32
    entry = {"account": "svc-export@x.com", "script_sha256": digest}
    run = ev(1, T0, "New-MailboxExportRequest", "svc-export@x.com", "legal@x.com",
             **{"event.original": f"Hashes: SHA256={digest.upper()}"})
    finding = triaged(background("svc-export@x.com") + [run], rules, Config(automation=(entry,)))[
        ("mailbox_export", "svc-export@x.com")]
    assert finding.answers["legitimate_admin_activity"].answer == "yes" and not finding.escalate

    other = ev(1, T0, "New-MailboxExportRequest", "svc-export@x.com", "legal@x.com",
               **{"event.original": "Hashes: SHA256=" + "00" * 32})
    finding = triaged(background("svc-export@x.com") + [other], rules, Config(automation=(entry,)))[
        ("mailbox_export", "svc-export@x.com")]
    legit = finding.answers["legitimate_admin_activity"]
    assert legit.answer == "no" and "no event names the script SHA-256 9f9f" in legit.because
    assert finding.escalate


def test_inferred_identity_is_stated_and_the_baseline_follows_the_person(rules):
    events = background("jsmith@x.com") + [
        ev(60, T0 - timedelta(days=3), "New-MailboxExportRequest", "jsmith@x.com", "legal@x.com"),
        windows_export(1, T0, "CORP\\jsmith", **{"process.command_line": EMS})]
    findings = triaged(events, rules, Config(admins=("jsmith@x.com",)))
    finding = max((f for f in findings.values() if f.actor == "jsmith@x.com"), key=lambda f: f.first_seen)
    usual = finding.answers["usual_for_account"]
    assert usual.answer == "yes" and "New-MailboxExportRequest on another user's mailbox 1x" in usual.because
    assert "identity: CORP\\jsmith taken as jsmith@x.com" in usual.because
    assert "identity: CORP\\jsmith" in finding.answers["legitimate_admin_activity"].because


def test_admin_configured_by_domain_name_covers_the_same_person_in_cloud_records(rules):
    events = background("exadmin@x.com") + [
        windows_export(60, T0 - timedelta(days=2), "CORP\\exadmin", **{"process.command_line": EMS}),
        ev(1, T0, "New-MailboxExportRequest", "exadmin@x.com", "legal@x.com")]
    findings = triaged(events, rules, Config(admins=("corp\\exadmin",)))
    latest = max((f for f in findings.values() if f.actor == "exadmin@x.com"), key=lambda f: f.first_seen)
    assert latest.answers["legitimate_admin_activity"].answer == "yes"
    assert not latest.escalate

    findings = triaged(events, rules, Config(admins=("corp\\someoneelse",)))
    latest = max((f for f in findings.values() if f.actor == "exadmin@x.com"), key=lambda f: f.first_seen)
    assert latest.answers["legitimate_admin_activity"].answer == "no" and latest.escalate
