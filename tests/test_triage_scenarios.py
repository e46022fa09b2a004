"""The issue's triage scenarios and each escalation criterion, positive and negative, end to end.

Evidence is written as unified audit log NDJSON (AuditData records) and Entra
ID sign-in JSON downloads, then hunted with the shipped rules: the answers come
from the real readers, rules, baselines and triage.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mailhunt.config import ChangeWindow, Config, Iocs
from mailhunt.hunt import hunt
from tests.triage_records import (
    cmdlet,
    directory,
    entra_sign_in,
    hard_delete,
    login,
    write_json_array,
    write_ndjson,
)

T0 = datetime(2026, 10, 14, 15, 0, 0)
OFFICE = "198.51.100.10"       # trusted network (documentation range: no country)
HOME = "73.170.20.5"           # a US residential address (COMCAST)
NIGERIA = "102.89.0.1"         # MTN Nigeria
COMPLIANCE = "compliance-admin@fabrikam-labs.com"
MALLORY = "mallory@fabrikam-labs.com"
HELPDESK = "helpdesk@fabrikam-labs.com"
ITADMIN = "it-admin@fabrikam-labs.com"
SVC = "svc-retention@fabrikam-labs.com"
RETENTION_APP = "0f4e2a6c-7d1b-4b2b-9c11-5a0b2f7e9d01"
OUTLOOK = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
BASE_CONFIG = {"domains": ("fabrikam-labs.com",), "home_countries": ("US",), "trusted_networks": ("198.51.100.0/24",),
               "admins": (COMPLIANCE, ITADMIN)}


def export(when, user, mailbox, ip, path=None):
    return cmdlet(when, user, "New-MailboxExportRequest",
                  [("Mailbox", mailbox), ("FilePath", path or f"\\\\FAB-LEGAL01\\exports$\\{mailbox.split('@')[0]}.pst"),
                   ("Name", f"Export-{mailbox.split('@')[0]}")], ip, object_id=mailbox)


def remove_export(when, user, mailbox, ip):
    return cmdlet(when, user, "Remove-MailboxExportRequest",
                  [("Identity", f"{mailbox}\\Export-{mailbox.split('@')[0]}"), ("Confirm", "False")], ip,
                  object_id=mailbox)


def daily_logins(user, ip, days=20, hour=14):
    return [login(T0.replace(hour=hour) - timedelta(days=d), user, ip) for d in range(days, 0, -1)]


def run(tmp_path, records, config: Config, entra: list[dict] | None = None) -> list[dict]:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    write_ndjson(evidence / "audit.ndjson", records)
    if entra:
        write_json_array(evidence / "InteractiveSignIns.json", entra)
    return hunt([evidence], tmp_path / "case", config).document["findings"]


def only(findings, indicator, actor, last=False):
    matching = [f for f in findings if f["indicator"] == indicator and f["actor"] == actor]
    assert matching, f"no {indicator} finding for {actor}: {[(f['indicator'], f['actor']) for f in findings]}"
    return matching[-1] if last else matching[0]


# ---------------------------------------------------------------- the scenarios

def test_authorized_admin_who_exports_every_week_is_not_escalated(tmp_path):
    records = daily_logins(COMPLIANCE, OFFICE, days=40)
    records += [export(T0 - timedelta(days=7 * w), COMPLIANCE, f"leaver{w}@fabrikam-labs.com", OFFICE)
                for w in range(5, -1, -1)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    latest = only(findings, "mailbox_export", COMPLIANCE, last=True)
    assert latest["answers"]["legitimate_admin_activity"]["answer"] == "yes"
    usual = latest["answers"]["usual_for_account"]
    # the export five weeks back is outside the 30-day look-back (tuning.baseline_days)
    assert usual["answer"] == "yes" and ("New-MailboxExportRequest on another user's mailbox 4x since "
                                         "2026-09-16T15:00:00Z") in usual["because"]
    assert "rule 'Mailbox Export Request Created' matched 4x since 2026-09-16T15:00:00Z" in usual["because"]
    sequence = latest["answers"]["export_followed_by_deletion"]
    assert sequence["answer"] == "unknown" and "the evidence ends 0.0 h after it" in sequence["because"]
    earlier = only(findings, "mailbox_export", COMPLIANCE)
    assert earlier["answers"]["export_followed_by_deletion"]["answer"] == "no"
    assert earlier["answers"]["usual_for_account"]["answer"] == "no"      # the first export ever
    # an operation new for the admin is an adverse signal when no change window covers it (issue 14, item 4)
    assert earlier["escalate"] is True
    assert any(r.startswith("no legitimate justification: ") and "adverse signal: unusual for the account" in r
               for r in earlier["reasons"])
    assert latest["escalate"] is False
    assert latest["reasons"] == [(f"authorized: {COMPLIANCE} is an authorized admin; no change windows are "
                                  "configured for the account")]
    assert latest["baseline"]["sufficient"] and "baseline covers 2026-09-14 .. 2026-10-14" in latest["baseline"]["statement"]
    assert "(m365 evidence of tenant 3f1c9a52-6b0e-4d7a-9e21-8c4b7f05d3e6, look-back 30 days)" in \
        latest["baseline"]["statement"]


def test_export_by_account_that_never_exported_from_new_country_then_removed_is_escalated(tmp_path):
    records = daily_logins(MALLORY, HOME, days=20)
    records += [hard_delete(T0 - timedelta(days=d, hours=1), MALLORY, MALLORY, 1, HOME, OUTLOOK,
                            client="Client=MSExchangeRPC") for d in (12, 8, 3)]
    records += [login(T0 - timedelta(minutes=20), MALLORY, NIGERIA),
                export(T0, MALLORY, "cfo@fabrikam-labs.com", NIGERIA),
                remove_export(T0 + timedelta(minutes=14), MALLORY, "cfo@fabrikam-labs.com", NIGERIA)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    finding = only(findings, "mailbox_export", MALLORY)
    q1, q2, q3 = (finding["answers"][q] for q in
                  ("export_followed_by_deletion", "legitimate_admin_activity", "usual_for_account"))
    assert q1["answer"] == "yes" and "14 minutes later by Remove-MailboxExportRequest" in q1["because"]
    assert q2["answer"] == "no" and "not among the authorized admins" in q2["because"]
    assert q3["answer"] == "no" and "never did New-MailboxExportRequest" in q3["because"]
    assert "from a new country NG (before: US)" in q3["because"]
    assert "with a client new for the account: app:fb78d390-0c51-40cd-8e17-fdbfab77341b" in q3["because"]
    assert finding["baseline"]["apps_first_seen_in_tenant"] == {
        "fb78d390-0c51-40cd-8e17-fdbfab77341b": "2026-10-14T15:00:00Z"}
    assert finding["escalate"] is True and finding["severity"] == "critical"
    reasons = finding["reasons"]
    assert any(r.startswith("no legitimate justification: ") for r in reasons)
    assert any(r.startswith("known threat pattern: export followed by deletion: ") for r in reasons)
    assert any(r.startswith("supporting: unusual for the account: ") and "new country NG" in r for r in reasons)
    sign_ins = next(s for s in finding["l1"] if s["step"] == "sign_ins")
    assert sign_ins["result"] == "flag" and "country new for the actor: NG" in sign_ins["detail"]
    assert "outside the home countries US: NG" in sign_ins["detail"]


def _retention_nights(app_id):
    records = []
    for night in range(10, 0, -1):
        start = T0.replace(hour=2) - timedelta(days=night)
        records += [hard_delete(start + timedelta(minutes=3 * b), SVC, "support@fabrikam-labs.com", 10,
                                "198.51.100.40", app_id) for b in range(6)]
    return records


def test_retention_system_account_hard_deletes_are_not_escalated(tmp_path):
    automation = ({"account": SVC, "app_id": RETENTION_APP, "command_pattern": "^HardDelete"},)
    findings = run(tmp_path, _retention_nights(RETENTION_APP), Config(**BASE_CONFIG, automation=automation))
    sweeps = [f for f in findings if f["actor"] == SVC]
    assert len(sweeps) == 10 and {f["indicator"] for f in sweeps} == {"bulk_item_deletion"}
    for finding in sweeps:
        assert finding["escalate"] is False
        assert finding["reasons"][0].startswith(f"authorized: known automation {SVC} (app_id={RETENTION_APP}")


def test_retention_account_used_through_another_app_is_escalated(tmp_path):
    automation = ({"account": SVC, "app_id": RETENTION_APP},)
    records = _retention_nights(RETENTION_APP)[:-6]
    records += [hard_delete(T0.replace(hour=2) - timedelta(days=1, minutes=-b), SVC, "support@fabrikam-labs.com",
                            10, "198.51.100.40", "d3590ed6-52b3-4102-aeff-aad2292ab01c") for b in range(6)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG, automation=automation))
    last = only(findings, "bulk_item_deletion", SVC, last=True)
    legit = last["answers"]["legitimate_admin_activity"]
    assert legit["answer"] == "no" and "is not the entry's 0f4e2a6c" in legit["because"]
    assert last["escalate"] is True


def _phish_cleanup(when):
    return cmdlet(when, HELPDESK, "Search-Mailbox",
                  [("Identity", "sales@fabrikam-labs.com"), ("SearchQuery", 'subject:"Overdue invoice 4471"'),
                   ("DeleteContent", "True"), ("Force", "True")], OFFICE, object_id="sales@fabrikam-labs.com")


def test_helpdesk_search_mailbox_delete_inside_change_window_is_not_escalated(tmp_path):
    window = ChangeWindow(T0 - timedelta(hours=1), T0 + timedelta(hours=2), "CHG-3100", (HELPDESK,))
    records = daily_logins(HELPDESK, OFFICE) + [_phish_cleanup(T0)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG, change_windows=(window,)))
    finding = only(findings, "mailbox_purge", HELPDESK)
    assert finding["answers"]["legitimate_admin_activity"]["answer"] == "yes"
    assert finding["escalate"] is False
    assert finding["reasons"] == [(f"authorized: CHG-3100 by {HELPDESK} "
                                   "(change window 2026-10-14T14:00:00Z .. 2026-10-14T17:00:00Z)")]


def test_helpdesk_search_mailbox_delete_outside_its_window_is_escalated(tmp_path):
    window = ChangeWindow(T0 - timedelta(hours=1), T0 + timedelta(hours=2), "CHG-3100", (HELPDESK,))
    records = daily_logins(HELPDESK, OFFICE) + [_phish_cleanup(T0 + timedelta(days=1))]
    findings = run(tmp_path, records, Config(**BASE_CONFIG, change_windows=(window,)))
    finding = only(findings, "mailbox_purge", HELPDESK)
    legit = finding["answers"]["legitimate_admin_activity"]
    assert legit["answer"] == "no" and "outside all 1 change window(s) that name the account" in legit["because"]
    assert finding["escalate"] is True
    assert any(r.startswith("no legitimate justification: ") for r in finding["reasons"])


def _transport_rule(when, user):
    return cmdlet(when, user, "New-TransportRule",
                  [("Name", "Finance routing"), ("SubjectContainsWords", "Overdue invoice"),
                   ("DeleteMessage", "True")], OFFICE)


def test_transport_rule_without_change_window_is_escalated(tmp_path):
    records = daily_logins(MALLORY, HOME) + [_transport_rule(T0, MALLORY)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    finding = only(findings, "transport_rule_change", MALLORY)
    assert finding["escalate"] is True
    assert any(r.startswith("transport-rule change without operational necessity: ") for r in finding["reasons"])


def test_transport_rule_inside_its_change_window_is_not_escalated(tmp_path):
    window = ChangeWindow(T0 - timedelta(hours=1), T0 + timedelta(hours=1), "CHG-3200", (ITADMIN,))
    records = daily_logins(ITADMIN, OFFICE) + [_transport_rule(T0, ITADMIN)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG, change_windows=(window,)))
    finding = only(findings, "transport_rule_change", ITADMIN)
    assert finding["escalate"] is False and finding["reasons"][0].startswith(f"authorized: CHG-3200 by {ITADMIN}")


# ---------------------------------------------------------------- criteria: tools, IOCs, clients, networks

def test_offensive_tool_in_client_string_is_escalated_as_critical(tmp_path):
    records = daily_logins(COMPLIANCE, OFFICE) + [
        hard_delete(T0 + timedelta(minutes=m), COMPLIANCE, "cfo@fabrikam-labs.com", 20, OFFICE,
                    "d3590ed6-52b3-4102-aeff-aad2292ab01c", client="Client=WebServices;AADInternals;")
        for m in range(4)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    finding = only(findings, "bulk_item_deletion", COMPLIANCE)
    assert finding["answers"]["legitimate_admin_activity"]["answer"] == "no"
    assert "offensive tooling: AADInternals" in finding["answers"]["legitimate_admin_activity"]["because"]
    assert finding["escalate"] is True and finding["severity"] == "critical"
    assert any(r.startswith("scripts or tools not used by authorized personnel: offensive tooling AADInternals")
               for r in finding["reasons"])


def test_export_to_a_web_folder_is_a_known_threat_pattern_even_for_an_admin(tmp_path):
    path = "\\\\127.0.0.1\\c$\\inetpub\\wwwroot\\aspnet_client\\discover.aspx"
    records = daily_logins(COMPLIANCE, OFFICE) + [export(T0, COMPLIANCE, "cfo@fabrikam-labs.com", OFFICE, path)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    finding = only(findings, "mailbox_export", COMPLIANCE)
    assert finding["escalate"] is True and finding["severity"] == "critical"
    assert any(r.startswith("known threat pattern: ProxyShell-style export to a web-served folder")
               for r in finding["reasons"])


def test_ioc_address_is_a_known_threat_pattern(tmp_path):
    records = daily_logins(COMPLIANCE, OFFICE) + [export(T0, COMPLIANCE, "cfo@fabrikam-labs.com", "45.155.205.7")]
    config = Config(**{**BASE_CONFIG, "trusted_networks": ()}, iocs=Iocs(ips=("45.155.205.7",)))
    finding = only(run(tmp_path, records, config), "mailbox_export", COMPLIANCE)
    assert finding["escalate"] is True
    assert "known threat pattern: IOC match: IOC address 45.155.205.7" in finding["reasons"]


def test_authorized_admin_outside_trusted_networks_is_out_of_context(tmp_path):
    records = daily_logins(COMPLIANCE, OFFICE) + [export(T0, COMPLIANCE, "cfo@fabrikam-labs.com", NIGERIA)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG)), "mailbox_export", COMPLIANCE)
    legit = finding["answers"]["legitimate_admin_activity"]
    assert legit["answer"] == "no" and f"acted from {NIGERIA}, outside the trusted networks" in legit["because"]
    assert finding["escalate"] is True


def test_deletion_through_an_application_new_to_the_tenant_is_escalated(tmp_path):
    new_app = "9b1d7c4e-2f63-4a58-b0e1-6c3d8a7f2e95"
    records = daily_logins(COMPLIANCE, OFFICE) + [
        hard_delete(T0 + timedelta(minutes=m), COMPLIANCE, "cfo@fabrikam-labs.com", 20, OFFICE, new_app)
        for m in range(4)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG)), "bulk_item_deletion", COMPLIANCE)
    assert "application new to the tenant: 9b1d7c4e" in finding["answers"]["legitimate_admin_activity"]["because"]
    assert any(r.startswith("scripts or tools not used by authorized personnel: application new to the tenant")
               for r in finding["reasons"])


def test_no_authorization_configured_answers_unknown_not_no(tmp_path):
    records = daily_logins(MALLORY, HOME) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME)]
    finding = only(run(tmp_path, records, Config()), "mailbox_export", MALLORY)
    assert finding["answers"]["legitimate_admin_activity"]["answer"] == "unknown"


# ---------------------------------------------------------------- L1 steps

def test_impossible_travel_from_entra_sign_ins_and_failed_login_burst(tmp_path):
    entra = [entra_sign_in(T0 - timedelta(days=d), MALLORY, HOME, "US") for d in range(15, 0, -1)]
    entra += [entra_sign_in(T0 - timedelta(minutes=90), MALLORY, HOME, "US"),
              entra_sign_in(T0 - timedelta(minutes=30), MALLORY, NIGERIA, "NG")]
    records = [login(T0 - timedelta(minutes=40, seconds=-20 * n), MALLORY, NIGERIA, ok=False) for n in range(6)]
    records += [export(T0, MALLORY, "cfo@fabrikam-labs.com", NIGERIA)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG), entra), "mailbox_export", MALLORY)
    sign_ins = next(s for s in finding["l1"] if s["step"] == "sign_ins")
    assert sign_ins["result"] == "flag"
    assert "impossible travel US → NG" in sign_ins["detail"] and "in 1.0 h" in sign_ins["detail"]
    assert "failed-login burst: 6 failures 2026-10-14T14:20:00Z .. 2026-10-14T14:21:40Z" in sign_ins["detail"]
    assert any(r.startswith("supporting: sign ins: ") for r in finding["reasons"])


def test_sign_ins_from_usual_places_are_clear_and_missing_sign_ins_unknown(tmp_path):
    records = daily_logins(MALLORY, HOME) + [login(T0 - timedelta(minutes=30), MALLORY, HOME),
                                             export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME),
                                             export(T0, HELPDESK, "cfo@fabrikam-labs.com", OFFICE)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    usual = next(s for s in only(findings, "mailbox_export", MALLORY)["l1"] if s["step"] == "sign_ins")
    assert usual["result"] == "clear" and "countries US" in usual["detail"]
    missing = next(s for s in only(findings, "mailbox_export", HELPDESK)["l1"] if s["step"] == "sign_ins")
    assert missing["result"] == "unknown" and "no sign-in records" in missing["detail"]


def test_password_reset_mfa_change_and_consent_around_the_finding_are_flagged(tmp_path):
    records = daily_logins(MALLORY, HOME)
    records += [directory(T0 - timedelta(hours=30), HELPDESK, "Reset user password.", MALLORY),
                directory(T0 - timedelta(hours=29), MALLORY, "User registered security info.", MALLORY),
                directory(T0 - timedelta(minutes=10), MALLORY, "Consent to application.", "9b1d7c4e-app"),
                export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG)), "mailbox_export", MALLORY)
    steps = {s["step"]: s for s in finding["l1"]}
    assert steps["password_changes"]["result"] == "flag"
    assert f"Reset user password. at 2026-10-13T09:00:00Z by {HELPDESK} on {MALLORY}" in steps["password_changes"]["detail"]
    assert steps["mfa_changes"]["result"] == "flag"
    assert steps["consent_grants"]["result"] == "flag"
    assert any(r.startswith("known threat pattern: consent → read → delete chain: ") for r in finding["reasons"])


def test_quiet_account_has_clear_password_mfa_and_consent_steps(tmp_path):
    records = daily_logins(MALLORY, HOME) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG)), "mailbox_export", MALLORY)
    steps = {s["step"]: s["result"] for s in finding["l1"]}
    assert steps == {"sign_ins": "clear", "password_changes": "clear", "mfa_changes": "clear",
                     "consent_grants": "clear", "correlated_findings": "clear"}
    assert not any("consent" in r for r in finding["reasons"])


def test_other_findings_of_the_actor_are_correlated(tmp_path):
    records = daily_logins(MALLORY, HOME) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME),
                                             _transport_rule(T0 + timedelta(hours=3), MALLORY)]
    findings = run(tmp_path, records, Config(**BASE_CONFIG))
    export_finding = only(findings, "mailbox_export", MALLORY)
    rule_finding = only(findings, "transport_rule_change", MALLORY)
    correlated = next(s for s in export_finding["l1"] if s["step"] == "correlated_findings")
    assert correlated["result"] == "flag" and rule_finding["id"] in correlated["detail"]


@pytest.mark.parametrize("days", [0, 2])
def test_thin_history_answers_unknown_never_no(tmp_path, days):
    records = daily_logins(MALLORY, HOME, days=days) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME)]
    finding = only(run(tmp_path, records, Config(**BASE_CONFIG)), "mailbox_export", MALLORY)
    usual = finding["answers"]["usual_for_account"]
    assert usual["answer"] == "unknown"
    assert finding["baseline"]["sufficient"] is False


def test_same_evidence_and_config_give_the_same_decision(tmp_path):
    records = daily_logins(MALLORY, HOME) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", NIGERIA),
                                             remove_export(T0 + timedelta(minutes=5), MALLORY,
                                                           "cfo@fabrikam-labs.com", NIGERIA)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = run(tmp_path / "a", records, Config(**BASE_CONFIG))
    two = run(tmp_path / "b", records, Config(**BASE_CONFIG))
    assert one and json.dumps(one).replace(str(tmp_path / "a"), "") == json.dumps(two).replace(str(tmp_path / "b"), "")


# ---------------------------------------------------------------- transport rule and suspicious mail (question 4)

EXCHANGE = Path(__file__).parent / "fixtures" / "exchange"
RULE_CHANGE = datetime(2026, 10, 14, 15, 47, 30)       # 08:47:30-07:00 in the admin audit report


def test_transport_rule_an_hour_before_a_lookalike_burst_is_escalated_as_critical(tmp_path):
    evidence = [EXCHANGE / "transport_rule_report.xml", EXCHANGE / "message_trace_burst.csv"]
    config = Config(domains=("fabrikam.com",), admins=("exadmin@fabrikam.com",))
    [finding] = [f for f in hunt(evidence, tmp_path / "case", config).document["findings"]
                 if f["indicator"] == "transport_rule_change"]
    assert finding["answers"]["transport_rule_with_suspicious_mail"]["answer"] == "yes"
    assert finding["escalate"] is True and finding["severity"] == "critical"
    [reason] = [r for r in finding["reasons"] if r.startswith("transport-rule change without operational necessity: ")]
    assert "is not among the authorized admins" in reason
    assert "coincides with suspicious mail: 6 suspicious message(s)" in reason


def test_transport_rule_by_the_messaging_admin_in_a_window_is_not_escalated_despite_the_burst(tmp_path):
    evidence = [EXCHANGE / "transport_rule_report.xml", EXCHANGE / "message_trace_burst.csv"]
    window = ChangeWindow(RULE_CHANGE - timedelta(minutes=30), RULE_CHANGE + timedelta(hours=1), "CHG-4410", ())
    config = Config(domains=("fabrikam.com",), admins=("corp.fabrikam.com/users/administrator",),
                    change_windows=(window,))
    [finding] = [f for f in hunt(evidence, tmp_path / "case", config).document["findings"]
                 if f["indicator"] == "transport_rule_change"]
    assert finding["answers"]["transport_rule_with_suspicious_mail"]["answer"] == "yes"
    assert finding["escalate"] is False
    assert finding["reasons"][0].startswith("authorized: CHG-4410 by ")


def test_sshd_failures_of_the_same_person_on_a_mail_host_count_as_a_failed_login_burst(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    lines = [f"<38>1 {(T0 - timedelta(minutes=30, seconds=-15 * n)).strftime('%Y-%m-%dT%H:%M:%SZ')} mailhost sshd "
             f"{2200 + n} - - Failed password for mallory from {NIGERIA} port {50120 + n} ssh2" for n in range(5)]
    (evidence / "auth.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_ndjson(evidence / "audit.ndjson", daily_logins(MALLORY, HOME) + [export(T0, MALLORY, "cfo@fabrikam-labs.com", HOME)])
    findings = hunt([evidence], tmp_path / "case", Config(**BASE_CONFIG)).document["findings"]
    finding = only(findings, "mailbox_export", MALLORY)
    sign_ins = next(s for s in finding["l1"] if s["step"] == "sign_ins")
    assert sign_ins["result"] == "flag"
    assert "failed-login burst: 5 failures 2026-10-14T14:30:00Z .. 2026-10-14T14:31:00Z from 102.89.0.1" in sign_ins["detail"]
