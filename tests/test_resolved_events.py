"""The case's resolved-events relation: baselines scoped to the finding's tenant and source family, "usual for
the account" comparing the operation, one definition of "new app", question 1 from the correlations' matches.

Evidence is written in the formats the real systems write (unified audit log AuditData NDJSON, evtx_dump-style
PowerShell 4104 records, eslogger NDJSON, auditd lines from the public corpus) and hunted with the shipped rules.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.store import CaseStore
from tests.corpus import PUBLIC
from tests.triage_records import ORG_ID, _id, cmdlet, hard_delete, login

T0 = datetime(2026, 10, 14, 15, 0, 0)
OFFICE = "198.51.100.10"
OTHER_ORG = "9d0b7e21-4c3a-4f5e-8a61-0b2c3d4e5f60"
NEW_APP = "9b1d7c4e-2f63-4a58-b0e1-6c3d8a7f2e95"
OUTLOOK = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
COMPLIANCE = "compliance-admin@fabrikam-labs.com"
HELPDESK = "helpdesk@fabrikam-labs.com"
MALLORY = "mallory@fabrikam-labs.com"
GOLDEN_SAML = PUBLIC / "otrf-security-datasets" / "GoldenSAMLADFSMailAccess_Microsoft365DefenderEvents.json"
RHEL7 = PUBLIC / "go-libaudit" / "auparse_testdata_audit-rhel7.log"


def hunt_files(tmp_path: Path, files: dict[str, str], config: Config | None = None,
               extra: list[Path] = ()) -> tuple[list[dict], Path]:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name, text in files.items():
        (evidence / name).write_text(text, encoding="utf-8")
    case = tmp_path / "case"
    result = hunt([evidence, *extra], case, config or Config())
    return result.document["findings"], case


def ndjson(records: list[dict]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def in_tenant(record: dict, tenant: str) -> dict:
    """The same record as another tenant's audit log writes it."""
    text = json.dumps(record).replace(ORG_ID, tenant)
    copy = json.loads(text)
    copy["Id"] = _id(copy["Id"], tenant)
    return copy


def rhel7_two_lines(tmp_path: Path) -> Path:
    path = tmp_path / "audit-rhel7-2lines.log"
    path.write_text("".join(RHEL7.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    return path


def only(findings, indicator, actor=None, last=False):
    matching = [f for f in findings if f["indicator"] == indicator and (actor is None or f["actor"] == actor)]
    assert matching, f"no {indicator} finding: {[(f['indicator'], f['actor']) for f in findings]}"
    return matching[-1] if last else matching[0]


# ---------------------------------------------------------------- item 1: baselines scoped

needs_corpus = pytest.mark.skipif(not GOLDEN_SAML.exists() or not RHEL7.exists(), reason="public corpus not present")


@needs_corpus
def test_unrelated_auditd_file_does_not_make_a_defender_app_new(tmp_path):
    alone = hunt([GOLDEN_SAML], tmp_path / "alone", Config()).document["findings"]
    assert alone == []
    auditd = rhel7_two_lines(tmp_path)
    together = hunt([GOLDEN_SAML, auditd], tmp_path / "together", Config()).document["findings"]
    assert [f["indicator"] for f in together] == [], "an unrelated 2016 auditd file made an app new to the tenant"
    with CaseStore(tmp_path / "together" / "case.duckdb") as store:
        store.resolved.refresh()
        rows = store.db.execute('SELECT "scope.family", count(*), bool_or("app.new") FROM detection_events '
                                "GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("m365", 1, False), ("unix", 2, False)]


@needs_corpus
def test_a_baseline_never_covers_another_source_family(tmp_path):
    records = [login(T0 - timedelta(days=d), MALLORY, OFFICE) for d in range(40, 0, -1)]
    records.append(cmdlet(T0, MALLORY, "New-MailboxExportRequest",
                          [("Mailbox", "cfo@fabrikam-labs.com"), ("FilePath", "\\\\fs01\\pst$\\cfo.pst")], OFFICE,
                          object_id="cfo@fabrikam-labs.com"))
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)}, extra=[rhel7_two_lines(tmp_path)])
    finding = only(findings, "mailbox_export", MALLORY)
    baseline = finding["baseline"]
    assert baseline["scope"] == [{"tenant": ORG_ID, "family": "m365"}] and baseline["lookback_days"] == 30
    assert baseline["statement"].startswith("baseline covers 2026-09-14 .. 2026-10-14, 30 days, 30 earlier events")
    assert "2016" not in json.dumps(finding["answers"]) and "2016" not in baseline["statement"]
    sequence = finding["answers"]["export_followed_by_deletion"]
    assert "m365 evidence of tenant 3f1c9a52" in sequence["because"] or sequence["answer"] == "unknown"


def test_baseline_days_bounds_the_look_back(tmp_path):
    records = [login(T0 - timedelta(days=d), MALLORY, OFFICE) for d in range(40, 0, -1)]
    records.append(cmdlet(T0, MALLORY, "New-MailboxExportRequest", [("Mailbox", "cfo@fabrikam-labs.com")], OFFICE,
                          object_id="cfo@fabrikam-labs.com"))
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)}, Config(baseline_days=10))
    baseline = only(findings, "mailbox_export", MALLORY)["baseline"]
    assert baseline["statement"].startswith("baseline covers 2026-10-04 .. 2026-10-14, 10 days, 10 earlier events")
    assert baseline["lookback_days"] == 10


def _new_app_burst(tenant: str) -> list[dict]:
    return [in_tenant(hard_delete(T0 + timedelta(minutes=m), COMPLIANCE, "cfo@fabrikam-labs.com", 20, OFFICE,
                                  NEW_APP), tenant) for m in range(4)]


def test_app_new_to_a_tenant_with_30_days_of_its_own_evidence_is_new(tmp_path):
    history = [login(T0 - timedelta(days=d), COMPLIANCE, OFFICE) for d in range(30, 0, -1)]
    history += [hard_delete(T0 - timedelta(days=d), COMPLIANCE, COMPLIANCE, 1, OFFICE, OUTLOOK) for d in (30, 10)]
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(history + _new_app_burst(ORG_ID))},
                             Config(admins=(COMPLIANCE,)))
    finding = only(findings, "new_app_mail_access", COMPLIANCE)
    assert len([f for f in findings if f["indicator"] == "new_app_mail_access"]) == 1, "Outlook is in use from day one"
    assert finding["escalate"] is True
    assert any(r.startswith("scripts or tools not used by authorized personnel: application new to the tenant "
                            f"{NEW_APP}") for r in finding["reasons"])
    assert finding["baseline"]["apps_first_seen_in_tenant"][NEW_APP] == "2026-10-14T15:00:00Z"


def test_app_is_not_new_when_only_another_tenant_has_history(tmp_path):
    other_tenant = [in_tenant(login(T0 - timedelta(days=d), COMPLIANCE, OFFICE), OTHER_ORG) for d in range(30, 0, -1)]
    findings, _ = hunt_files(tmp_path, {"other-tenant.ndjson": ndjson(other_tenant),
                                        "audit.ndjson": ndjson(_new_app_burst(ORG_ID))},
                             Config(admins=(COMPLIANCE,)))
    assert not [f for f in findings if f["indicator"] == "new_app_mail_access"]
    for finding in findings:
        assert "new to the tenant" not in " ".join(finding["reasons"])
        assert finding["baseline"]["scope"] == [{"tenant": ORG_ID, "family": "m365"}]


# ---------------------------------------------------------------- item 4: one definition of "new app"

def test_rule_and_assessment_agree_on_a_new_app_first_seen_hours_before_the_deletion(tmp_path):
    history = [login(T0 - timedelta(days=d), COMPLIANCE, OFFICE) for d in range(30, 0, -1)]
    first_use = hard_delete(T0 - timedelta(hours=3), COMPLIANCE, COMPLIANCE, 1, OFFICE, NEW_APP)
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson([*history, first_use, *_new_app_burst(ORG_ID)])},
                             Config(admins=(COMPLIANCE,)))
    later = only(findings, "new_app_mail_access", COMPLIANCE, last=True)
    assert later["evidence"][0]["@timestamp"] == "2026-10-14T15:00:00Z", "the rule: new within 24 h of first use"
    assert ("application new to the tenant: 9b1d7c4e-2f63-4a58-b0e1-6c3d8a7f2e95 (first seen in the tenant "
            "2026-10-14T12:00:00Z)") in later["answers"]["legitimate_admin_activity"]["because"]


# ---------------------------------------------------------------- item 2: usual for the account is the operation

SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
COM_DELETE = ('$outlook = New-Object -ComObject Outlook.Application\r\n$ns = $outlook.GetNamespace("MAPI")\r\n'
              '$inbox = $ns.GetDefaultFolder(6)\r\nforeach ($item in @($inbox.Items)) { if ($item.Subject -like '
              '"*sign-in*") { $item.Delete() } }')
UNRELATED = ("Get-Process | Sort-Object CPU -Descending | Select-Object -First 5",
             "Get-ChildItem C:\\Users\\jsmith\\Documents -Recurse -Filter *.xlsx | Measure-Object",
             "Test-NetConnection fs01.corp.example -Port 445", "Get-Service -Name Spooler | Restart-Service")


def script_block(record: int, when: datetime, text: str) -> dict:
    """A PowerShell 4104 record as evtx_dump writes it (JSON), logged with the user's SID only."""
    return {"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, "System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-PowerShell",
                                     "Guid": "A0C1853B-5C40-4B15-8766-3CF1C58F985A"}},
        "EventID": 4104, "Version": 1, "Level": 5 if text in UNRELATED else 4, "Task": 1, "Opcode": 15,
        "Keywords": "0x0", "TimeCreated": {"#attributes": {"SystemTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
        "EventRecordID": record, "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 4120, "ThreadID": 5532}},
        "Channel": "Microsoft-Windows-PowerShell/Operational", "Computer": "WS042.corp.example",
        "Security": {"#attributes": {"UserID": SID}}},
        "EventData": {"MessageNumber": 1, "MessageTotal": 1, "ScriptBlockText": text,
                      "ScriptBlockId": _id("sb", record), "Path": ""}}}


def _powershell_user(com_deletions_before: int) -> list[dict]:
    records, number = [], 1000
    for day in range(10, 0, -1):
        for k, text in enumerate(UNRELATED * 3):
            number += 1
            records.append(script_block(number, T0 - timedelta(days=day, minutes=5 * k), text))
    for week in range(com_deletions_before, 0, -1):
        number += 1
        records.append(script_block(number, T0 - timedelta(days=2 * week, minutes=1), COM_DELETE))
    records.append(script_block(number + 1, T0, COM_DELETE))
    return records


def test_outlook_com_deletion_by_a_busy_powershell_user_is_not_usual(tmp_path):
    findings, _ = hunt_files(tmp_path, {"powershell.ndjson": ndjson(_powershell_user(0))})
    finding = only(findings, "mail_cmdlet_execution", last=True)
    usual = finding["answers"]["usual_for_account"]
    assert usual["answer"] == "no"
    assert ("never did this operation before: no rule of indicator mail_cmdlet_execution matched their earlier "
            "events ('Outlook Automated Through COM To Delete Mail Items')") in usual["because"]
    assert "other activity before, context only: script-block-logged 120x" in usual["because"]
    assert "script-block-logged" not in usual["because"].split("; other activity before")[0]


def test_outlook_com_deletion_the_user_runs_regularly_is_usual(tmp_path):
    findings, _ = hunt_files(tmp_path, {"powershell.ndjson": ndjson(_powershell_user(4))})
    finding = only(findings, "mail_cmdlet_execution", last=True)
    usual = finding["answers"]["usual_for_account"]
    assert usual["answer"] == "yes"
    assert ("did this operation before: rule 'Outlook Automated Through COM To Delete Mail Items' matched 4x "
            "since 2026-10-06T14:59:00Z") in usual["because"]


def eslogger_exec(when: datetime, seq: int, args: list[str], executable: str) -> dict:
    """One eslogger exec event (uid 501), as ``eslogger exec`` writes it."""
    token = {"asid": 100017, "pid": 4410 + seq, "ruid": 501, "euid": 501, "rgid": 20, "egid": 20,
             "pidversion": 23000 + seq, "auid": 501}
    return {"schema_version": 1, "mach_time": 118812932391 + seq, "event_type": 9, "thread": {"thread_id": 1244512},
            "version": 7, "seq_num": seq, "global_seq_num": 1000 + seq, "action_type": 1,
            "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
            "process": {"audit_token": token, "executable": {"path": "/bin/zsh", "path_truncated": False},
                        "ppid": 4400, "original_ppid": 4400, "signing_id": "com.apple.zsh", "is_platform_binary": True,
                        "session_id": 100017, "group_id": 4410},
            "event": {"exec": {"target": {"audit_token": token,
                                          "executable": {"path": executable, "path_truncated": False},
                                          "ppid": 4400, "original_ppid": 4400,
                                          "signing_id": "com.apple." + executable.rsplit("/", 1)[-1],
                                          "is_platform_binary": True},
                               "args": args, "cwd": {"path": "/Users/alice", "path_truncated": False},
                               "script": None}}}


def test_applescript_mail_deletion_by_a_uid_that_execs_many_programs_is_not_usual(tmp_path):
    programs = [(["ls", "-la"], "/bin/ls"), (["git", "status"], "/usr/bin/git"),
                (["python3", "build.py"], "/usr/bin/python3"), (["open", "-a", "Safari"], "/usr/bin/open")]
    lines, seq = [], 0
    for day in range(6, 0, -1):
        for k, (args, exe) in enumerate(programs * 5):
            seq += 1
            lines.append(eslogger_exec(T0 - timedelta(days=day, minutes=3 * k), seq, args, exe))
    deletion = 'tell application "Mail" to delete (every message of inbox whose sender contains "security@")'
    lines.append(eslogger_exec(T0, seq + 1, ["osascript", "-e", deletion], "/usr/bin/osascript"))
    findings, _ = hunt_files(tmp_path, {"eslogger.ndjson": ndjson(lines)})
    finding = only(findings, "applescript_mail_deletion")
    usual = finding["answers"]["usual_for_account"]
    assert usual["answer"] != "yes"
    assert ("never did this operation before: no rule of indicator applescript_mail_deletion matched their earlier "
            "events ('AppleScript or JXA Deletes Mail in Apple Mail')") in usual["because"]
    assert "other activity before, context only: exec 120x" in usual["because"]


def purge(when: datetime, user: str, search: str) -> dict:
    """New-ComplianceSearchAction -Purge as the unified audit log records it (SecurityComplianceCenter, type 18)."""
    return {"CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "Id": _id("purge", when, user),
            "Operation": "New-ComplianceSearchAction", "OrganizationId": ORG_ID, "RecordType": 18,
            "UserKey": "1003246870A79555", "UserType": 2, "Version": 1, "Workload": "SecurityComplianceCenter",
            "ClientIP": OFFICE, "ObjectId": "", "UserId": user, "ClientApplication": "EMC", "CmdletVersion": "",
            "EffectiveOrganization": "fabrikamlabs.onmicrosoft.com",
            "NonPIIParameters": "-SearchName -Purge -PurgeType -Confirm",
            "Parameters": f'-SearchName "{search}" -Purge -PurgeType "HardDelete" -Confirm:$false',
            "SessionId": _id("s", user), "StartTime": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "UserServicePlan": "Microsoft 365 E5"}


def test_compliance_admin_who_purges_every_week_does_it_usually(tmp_path):
    records = [login(T0 - timedelta(days=d, minutes=30), COMPLIANCE, OFFICE) for d in range(29, 0, -1)]
    records += [purge(T0 - timedelta(days=7 * w), COMPLIANCE, f"Phish week {w}") for w in range(4, -1, -1)]
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)}, Config(admins=(COMPLIANCE,)))
    latest = only(findings, "mailbox_purge", COMPLIANCE, last=True)
    usual = latest["answers"]["usual_for_account"]
    assert usual["answer"] == "yes"
    assert ("did this operation before: New-ComplianceSearchAction 4x since 2026-09-16T15:00:00Z; rule "
            "'Content Search Results Purged' matched 4x since 2026-09-16T15:00:00Z") in usual["because"]


def test_admin_busy_with_other_work_who_purges_for_the_first_time_does_not(tmp_path):
    records = [login(T0 - timedelta(days=d, minutes=30), HELPDESK, OFFICE) for d in range(29, 0, -1)]
    records += [cmdlet(T0 - timedelta(days=d), HELPDESK, "Set-Mailbox", [("Identity", "sales@fabrikam-labs.com"),
                                                                        ("ProhibitSendQuota", "49GB")], OFFICE,
                       object_id="sales@fabrikam-labs.com") for d in range(20, 0, -2)]
    records.append(purge(T0, HELPDESK, "Phish week 0"))
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)}, Config(admins=(HELPDESK,)))
    usual = only(findings, "mailbox_purge", HELPDESK)["answers"]["usual_for_account"]
    assert usual["answer"] == "no" and "never did New-ComplianceSearchAction before" in usual["because"]
    assert "other activity before, context only: UserLoggedIn 29x, Set-Mailbox 10x" in usual["because"]


# ---------------------------------------------------------------- item 5: question 1 from the correlation

def test_role_assignment_then_request_removal_is_no_export_followed_by_deletion(tmp_path):
    records = [login(T0 - timedelta(days=d), MALLORY, OFFICE) for d in range(10, 0, -1)]
    records += [cmdlet(T0, MALLORY, "New-ManagementRoleAssignment", [("Role", "Mailbox Import Export"),
                                                                     ("User", MALLORY)], OFFICE, object_id=MALLORY),
                cmdlet(T0 + timedelta(minutes=20), MALLORY, "Remove-MailboxExportRequest",
                       [("Identity", "cfo@fabrikam-labs.com\\Export-cfo"), ("Confirm", "False")], OFFICE,
                       object_id="cfo@fabrikam-labs.com")]
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)})
    assert not [f for f in findings if f["indicator"] == "export_then_deletion"]
    for finding in findings:
        assert finding["answers"]["export_followed_by_deletion"]["answer"] != "yes", finding["indicator"]


def test_export_then_removal_is_answered_from_the_correlation_instance(tmp_path):
    records = [login(T0 - timedelta(days=d), MALLORY, OFFICE) for d in range(10, 0, -1)]
    records += [cmdlet(T0, MALLORY, "New-MailboxExportRequest", [("Mailbox", "cfo@fabrikam-labs.com"),
                                                                 ("FilePath", "\\\\fs01\\pst$\\cfo.pst")], OFFICE,
                       object_id="cfo@fabrikam-labs.com"),
                cmdlet(T0 + timedelta(minutes=20), MALLORY, "Remove-MailboxExportRequest",
                       [("Identity", "cfo@fabrikam-labs.com\\Export-cfo"), ("Confirm", "False")], OFFICE,
                       object_id="cfo@fabrikam-labs.com")]
    findings, case = hunt_files(tmp_path, {"audit.ndjson": ndjson(records)})
    correlated = only(findings, "export_then_deletion", MALLORY)
    with CaseStore(case / "case.duckdb") as store:
        store.resolved.refresh()
        steps = store.resolved.correlation_steps([r["id"] for r in correlated["rules"]])
    assert steps, "the engine records which rules each correlation correlates"
    for indicator in ("mailbox_export", "export_request_removed", "export_then_deletion"):
        q1 = only(findings, indicator, MALLORY)["answers"]["export_followed_by_deletion"]
        assert q1["answer"] == "yes"
        assert q1["because"].startswith("New-MailboxExportRequest at 2026-10-14T15:00:00Z (")
        assert "audit.ndjson:11) by mallory@fabrikam-labs.com was followed 20 minutes later by " \
               "Remove-MailboxExportRequest at 2026-10-14T15:20:00Z (" in q1["because"]


# ---------------------------------------------------------------- the L1 sign-in step reads the sign-ins' own scope

def process_creation(record: int, when: datetime, user: str, command: str, image: str) -> dict:
    """A Security 4688 record as evtx_dump writes it (JSON)."""
    return {"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, "System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing",
                                     "Guid": "54849625-5478-4994-A5BA-3E3B0328C30D"}},
        "EventID": 4688, "Version": 1, "Level": 4, "Task": 1, "Opcode": 0, "Keywords": "0x0",
        "TimeCreated": {"#attributes": {"SystemTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
        "EventRecordID": record, "Correlation": None, "Execution": {"#attributes": {"ProcessID": 4, "ThreadID": 5532}},
        "Channel": "Security", "Computer": "WS042.corp.example", "Security": None},
        "EventData": {"SubjectUserSid": SID, "SubjectUserName": user, "SubjectDomainName": "FABRIKAM",
                      "SubjectLogonId": "0x1caf291", "NewProcessId": hex(0x900 + record), "NewProcessName": image,
                      "TokenElevationType": "%%1936", "ProcessId": "0x8c", "CommandLine": command,
                      "TargetUserSid": "S-1-0-0", "TargetUserName": "-", "TargetDomainName": "-",
                      "TargetLogonId": "0x0", "ParentProcessName": "C:\\Windows\\explorer.exe",
                      "MandatoryLabel": "S-1-16-8192"}}}


def test_sign_ins_of_a_windows_finding_are_compared_with_earlier_sign_ins(tmp_path):
    home = "73.170.20.5"
    sign_ins = [login(T0 - timedelta(days=d, hours=1), MALLORY, home) for d in range(20, -1, -1)]
    processes = [process_creation(100 + d, T0 - timedelta(days=d), "mallory", "notepad.exe C:\\notes.txt",
                                  "C:\\Windows\\System32\\notepad.exe") for d in range(10, 0, -1)]
    processes.append(process_creation(200, T0, "mallory", 'cmd.exe /c del /s /q "C:\\Users\\mallory\\AppData\\Local\\'
                                      'Comms\\Unistore\\data\\*"', "C:\\Windows\\System32\\cmd.exe"))
    findings, _ = hunt_files(tmp_path, {"audit.ndjson": ndjson(sign_ins), "security.ndjson": ndjson(processes)},
                             Config(domains=("fabrikam-labs.com",)))
    finding = next(f for f in findings if f["actor"] == MALLORY and f["baseline"]["scope"][0]["family"] == "windows")
    step = next(s for s in finding["l1"] if s["step"] == "sign_ins")
    assert step["result"] == "clear" and "3 successful and 0 failed sign-ins" in step["detail"]
    assert "new for the actor" not in step["detail"], "earlier sign-ins from the same place are in their own scope"


def test_only_registered_questions_over_the_events_are_asked(tmp_path):
    """A question over the events must be registered (``EVENT_QUESTIONS``), so that the engine given to triage
    runs every one of them; an unregistered one is refused before any engine runs it."""
    from mailhunt.case_queries import EVENT_QUESTIONS

    with CaseStore(tmp_path / "case.duckdb") as store:
        store.resolved.refresh()
        with pytest.raises(ValueError, match="not a registered question"):
            store.resolved.ask("count_everything", "SELECT count(*) FROM events")
        assert store.resolved.asked == []
        assert store.resolved.case_span() == (None, None, 0)
        assert store.resolved.asked == [("DuckDB", "case_span")]
        assert "case_span" in EVENT_QUESTIONS
