"""Issue 14 items 4 and 5: authorized admins outside their change windows, and the playbook's criteria on endpoints.

Each scenario is a malicious / benign look-alike pair written in the exact
format the real system writes (unified audit log AuditData, auditd with
enriched names, syslog sshd lines, eslogger NDJSON, Winlogbeat 4104 records)
and hunted end to end with the shipped rules; the decision, the reasons, the
criterion ids and the evidence event ids are asserted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mailhunt.config import ChangeWindow, Config
from mailhunt.hunt import hunt
from tests.triage_records import cmdlet, login, write_ndjson

T0 = datetime(2026, 10, 14, 15, 0, 0)
OFFICE = "198.51.100.10"
NIGERIA = "102.89.0.1"
COMPLIANCE = "compliance-admin@fabrikam-labs.com"
WINDOW = ChangeWindow(T0 - timedelta(days=30, hours=1), T0 - timedelta(days=30) + timedelta(hours=2),
                      "CHG-2026-0914-02", (COMPLIANCE,))


def hunt_files(tmp_path, files: dict[str, str], config: Config | None = None) -> list[dict]:
    evidence = tmp_path / "evidence"
    for name, text in files.items():
        path = evidence / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return hunt([evidence], tmp_path / "case", config or Config()).document["findings"]


def only(findings, indicator, actor):
    matching = [f for f in findings if f["indicator"] == indicator and f["actor"] == actor]
    assert matching, f"no {indicator} finding for {actor}: {[(f['indicator'], f['actor']) for f in findings]}"
    return matching[-1]


def criterion(finding, criterion_id) -> dict:
    return next(c for c in finding["decision"]["criteria"] if c["id"] == criterion_id)


def event_ids(finding) -> set[str]:
    return {e["event_id"] for e in finding["evidence"]}


# ---------------------------------------------------------------- item 4: authorized administrators

def purge(when, ip):
    return cmdlet(when, COMPLIANCE, "New-ComplianceSearchAction",
                  [("SearchName", f"Leavers-retention-{when:%Y%m%d}"), ("Purge", "True"),
                   ("PurgeType", "SoftDelete"), ("Confirm", "False")], ip)


def weekly_purges(last_when, last_ip):
    records = [login(T0.replace(hour=14) - timedelta(days=d), COMPLIANCE, OFFICE) for d in range(40, 0, -1)]
    records += [purge(T0 - timedelta(days=7 * w), OFFICE) for w in range(5, 0, -1)]
    return records + [login(last_when - timedelta(minutes=20), COMPLIANCE, last_ip), purge(last_when, last_ip)]


def run_ual(tmp_path, records, config):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    write_ndjson(evidence / "audit.ndjson", records)
    findings = hunt([evidence], tmp_path / "case", config).document["findings"]
    return max((f for f in findings if f["indicator"] == "mailbox_purge" and f["actor"] == COMPLIANCE),
               key=lambda f: f["first_seen"])


TRUSTED = {"domains": ("fabrikam-labs.com",), "home_countries": ("US",), "trusted_networks": ("198.51.100.0/24",),
           "admins": (COMPLIANCE,), "change_windows": (WINDOW,)}


def test_weekly_purge_by_the_compliance_admin_outside_the_window_is_usual_work(tmp_path):
    """Before: escalated 'no legitimate justification: ... outside all 1 change window(s)'."""
    finding = run_ual(tmp_path, weekly_purges(T0, OFFICE), Config(**TRUSTED))
    assert finding["first_seen"] == "2026-10-14T15:00:00Z"
    assert finding["answers"]["usual_for_account"]["answer"] == "yes"
    assert finding["escalate"] is False
    [reason] = finding["reasons"]
    assert reason.startswith(f"authorized: {COMPLIANCE} is an authorized admin doing their usual work outside all 1 "
                             "change window(s) configured for the account: ")
    assert finding["answers"]["legitimate_admin_activity"]["answer"] == "yes"
    decision = finding["decision"]
    assert decision["legitimacy"]["justified"] is True and decision["legitimacy"]["adverse_signals"] == []
    assert not any(c["met"] for c in decision["criteria"])
    assert criterion(finding, "DE-1a")["checks"][0]["because"].startswith("justified: authorized: ")
    assert decision["reasons"][0]["events"] and set(decision["reasons"][0]["events"]) <= event_ids(finding)


def test_the_same_purge_from_a_new_country_at_three_in_the_morning_is_escalated(tmp_path):
    config = Config(**{**TRUSTED, "trusted_networks": ()})
    finding = run_ual(tmp_path, weekly_purges(T0.replace(hour=3), NIGERIA), config)
    assert finding["escalate"] is True
    unjustified = next(r for r in finding["reasons"] if r.startswith("no legitimate justification: "))
    assert "is an authorized admin, but acted (2026-10-14T03:00:00Z) outside all 1 change window(s)" in unjustified
    assert "adverse signal: unusual for the account: " in unjustified
    assert "from a new country NG" in unjustified
    assert "sign ins anomaly: country new for the actor: NG (first UserLoggedIn at 2026-10-14T02:40:00Z)" in unjustified
    unusual, sign_ins = finding["decision"]["legitimacy"]["adverse_signals"]
    assert unusual["signal"] == "unusual for the account" and set(unusual["events"]) == event_ids(finding)
    assert sign_ins["signal"] == "sign ins anomaly"
    met = [r for r in finding["decision"]["reasons"] if r["criterion"] == "DE-1a"]
    assert met and met[0]["sentence"] == "DE-1" and set(met[0]["events"]) == event_ids(finding)


def test_with_change_windows_mandatory_the_usual_purge_is_escalated(tmp_path):
    finding = run_ual(tmp_path, weekly_purges(T0, OFFICE), Config(**TRUSTED, require_change_window=True))
    assert finding["answers"]["usual_for_account"]["answer"] == "yes"
    assert finding["escalate"] is True
    assert any(r.startswith("no legitimate justification: ") and "tuning.require_change_window" in r
               for r in finding["reasons"])


def test_the_usual_purge_followed_by_audit_tampering_by_the_admin_is_escalated(tmp_path):
    records = weekly_purges(T0, OFFICE) + [
        cmdlet(T0 + timedelta(minutes=30), COMPLIANCE, "Set-AdminAuditLogConfig",
               [("AdminAuditLogEnabled", "False")], OFFICE)]
    finding = run_ual(tmp_path, records, Config(**TRUSTED))
    assert finding["escalate"] is True
    [adverse] = finding["decision"]["legitimacy"]["adverse_signals"]
    assert adverse["signal"] == "audit tampering by the same account" and adverse["events"]
    assert any("adverse signal: audit tampering by the same account" in r for r in finding["reasons"])


# ---------------------------------------------------------------- item 5: endpoint and Unix evidence, no mailhunt.toml

def _hex(text: str) -> str:
    return text.encode().hex().upper()


def _argument(text: str) -> str:
    """auditd writes an argument in hex when it holds a space, a quote or a control character."""
    return _hex(text) if any(c in text for c in " \"'") or not text.isprintable() else f'"{text}"'


def auditd_exec(when: datetime, serial: int, user: str, uid: int, args: list[str], cwd: str, euid: int | None = None,
                pid: int = 3100) -> str:
    """One execve event as auditd writes it with log_format=ENRICHED (GS-separated names after the raw fields)."""
    euid = uid if euid is None else euid
    stamp = f"{when.replace(tzinfo=UTC).timestamp():.3f}:{serial}"
    euser = "root" if euid == 0 else user
    program = args[0]
    argv = " ".join(f"a{n}={_argument(a)}" for n, a in enumerate(args))
    return "\n".join((
        (f"type=SYSCALL msg=audit({stamp}): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1a2b3c0 "
        f"a1=55d0c1a2b4a0 a2=55d0c1a2b5f0 a3=8 items=2 ppid=2201 pid={pid} auid={uid} uid={euid} gid={euid} "
        f"euid={euid} suid={euid} fsuid={euid} egid={euid} sgid={euid} fsgid={euid} tty=pts0 ses=12 "
        f'comm="{program}" exe="/usr/bin/{program}" subj=unconfined key="exec"\x1dARCH=x86_64 SYSCALL=execve '
        f'AUID="{user}" UID="{euser}" GID="{euser}" EUID="{euser}" SUID="{euser}" FSUID="{euser}" EGID="{euser}" '
        f'SGID="{euser}" FSGID="{euser}"'),
        f"type=EXECVE msg=audit({stamp}): argc={len(args)} {argv}",
        f'type=CWD msg=audit({stamp}): cwd="{cwd}"',
        (f"type=PATH msg=audit({stamp}): item=0 name=\"/usr/bin/{program}\" inode=1593 dev=08:01 mode=0100755 "
        "ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"),
        f"type=PROCTITLE msg=audit({stamp}): proctitle={_hex(chr(0).join(args))}",
        f"type=EOE msg=audit({stamp}):")) + "\n"


def sshd(when: datetime, method: str, user: str, ip: str, pid: int) -> str:
    return (f"<38>1 {when:%Y-%m-%dT%H:%M:%S}Z mx1 sshd {pid} - - Accepted {method} for {user} from {ip} "
            f"port {50000 + pid % 1000} ssh2\n")


def mutt_delete(mailbox: str, pattern: str) -> list[str]:
    return ["mutt", "-f", mailbox, "-e", f"push D{pattern}<enter>qy"]


def test_mutt_deleting_another_users_mailbox_with_no_config_is_escalated(tmp_path):
    """Before: found, not escalated ('no escalation criterion met ... no authorized admins ... configured')."""
    audit = auditd_exec(T0, 500, "mallory", 1001, mutt_delete("/var/mail/bob", "~A"), "/home/mallory")
    finding = only(hunt_files(tmp_path, {"audit.log": audit}), "unix_mail_utility_deletion", "mallory")
    assert finding["escalate"] is True
    tools = next(r for r in finding["reasons"] if r.startswith("scripts or tools not used by authorized personnel: "))
    assert "another user's mailbox" in tools and "/var/mail/bob" in tools
    assert any(r.startswith("known threat pattern: deletion in someone else's mailbox: bob by mallory")
               for r in finding["reasons"])
    de1b = criterion(finding, "DE-1b")
    assert de1b["met"] and de1b["sentence"] == "DE-1"
    assert "involve scripts or tools typically not used by authorized personnel" in de1b["quote"]
    met = next(c for c in de1b["checks"] if c["met"])
    assert met["id"] == "endpoint_mail_tool" and set(met["events"]) == event_ids(finding)


def test_a_users_own_mutt_deleting_their_own_read_mail_is_not_escalated(tmp_path):
    audit = auditd_exec(T0, 501, "bob", 1002, mutt_delete("/var/mail/bob", "~R"), "/home/bob")
    finding = only(hunt_files(tmp_path, {"audit.log": audit}), "unix_mail_utility_deletion", "bob")
    assert finding["escalate"] is False
    [reason] = finding["reasons"]
    assert reason.startswith("not escalated: no escalation criterion of the playbook is met: ")
    assert "endpoint_mail_tool: mail_utility_on_another_mailbox: no mail store of another account is named" in reason
    assert "deletion_in_another_mailbox: no event names a mail store of another account" in reason
    assert {c["id"]: c["met"] for c in finding["decision"]["criteria"]} == {
        "DE-1a": False, "DE-1b": False, "DE-1c": False, "DE-2": False}


def test_sudo_rewriting_a_spool_is_escalated(tmp_path):
    audit = auditd_exec(T0, 502, "mallory", 1001, ["sed", "-i", "/^From ceo/,/^$/d", "/var/mail/mallory"],
                        "/root", euid=0)
    syslog = ("<86>1 2026-10-14T14:59:59Z mx1 sudo - - - mallory : TTY=pts/0 ; PWD=/root ; USER=root ; "
              "COMMAND=/usr/bin/sed -i /^From ceo/,/^$/d /var/mail/mallory\n")
    finding = only(hunt_files(tmp_path, {"audit.log": audit, "auth.log": syslog}), "unix_mail_utility_deletion",
                   "mallory")
    assert finding["escalate"] is True
    assert any(r.startswith("scripts or tools not used by authorized personnel: sudo used to rewrite or empty a mail "
                            "spool: sudo_command") for r in finding["reasons"])


def test_password_log_in_from_a_new_address_just_before_an_own_deletion_is_escalated(tmp_path):
    history = "".join(sshd(T0 - timedelta(days=d), "publickey", "mallory", OFFICE, 700 + d) for d in range(10, 0, -1))
    history += sshd(T0 - timedelta(minutes=6), "password", "mallory", NIGERIA, 777)
    audit = auditd_exec(T0, 503, "mallory", 1001, mutt_delete("/var/mail/mallory", "~A"), "/home/mallory")
    findings = hunt_files(tmp_path, {"audit.log": audit, "auth.log": history})
    finding = only(findings, "unix_mail_utility_deletion", "mallory")
    assert finding["escalate"] is True
    reason = next(r for r in finding["reasons"] if r.startswith(
        "known threat pattern: password log-in from an address new for the account just before: "))
    assert f"from {NIGERIA} at 2026-10-14T14:54:00Z, 6 min before" in reason and OFFICE in reason
    [structured] = [r for r in finding["decision"]["reasons"] if r["check"] == "password_logon_from_new_address"]
    assert structured["criterion"] == "DE-1c" and len(structured["events"]) == 1
    assert structured["events"][0] not in event_ids(finding)      # the sshd record, not the deletion


def test_the_same_deletion_after_a_password_log_in_from_the_usual_address_is_not_escalated(tmp_path):
    history = "".join(sshd(T0 - timedelta(days=d), "publickey", "mallory", OFFICE, 700 + d) for d in range(10, 0, -1))
    history += sshd(T0 - timedelta(minutes=6), "password", "mallory", OFFICE, 777)
    audit = auditd_exec(T0, 503, "mallory", 1001, mutt_delete("/var/mail/mallory", "~A"), "/home/mallory")
    finding = only(hunt_files(tmp_path, {"audit.log": audit, "auth.log": history}), "unix_mail_utility_deletion",
                   "mallory")
    assert finding["escalate"] is False
    assert "password_logon_from_new_address: password log-in(s) from known addresses 198.51.100.10" in \
        finding["reasons"][0]


def eslogger_exec(when: datetime, seq: int, args: list[str], uid: int = 501, cwd: str = "/Users/alice") -> str:
    token = {"asid": 100017, "pid": 4410 + seq, "ruid": uid, "euid": uid, "rgid": 20, "egid": 20,
             "pidversion": 23000 + seq, "auid": uid}
    return json.dumps({
        "schema_version": 1, "mach_time": 118812932391 + seq, "event_type": 9, "thread": {"thread_id": 1244512},
        "version": 7, "seq_num": seq, "global_seq_num": 1000 + seq, "action_type": 1,
        "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        "process": {"audit_token": token, "executable": {"path": "/bin/zsh", "path_truncated": False}, "ppid": 4400,
                    "original_ppid": 4400, "signing_id": "com.apple.zsh", "is_platform_binary": True,
                    "session_id": 100017, "group_id": 4410},
        "event": {"exec": {"target": {"audit_token": token,
                                      "executable": {"path": f"/usr/bin/{args[0]}", "path_truncated": False},
                                      "ppid": 4400, "original_ppid": 4400, "signing_id": f"com.apple.{args[0]}",
                                      "is_platform_binary": True},
                           "args": args, "cwd": {"path": cwd, "path_truncated": False}, "script": None}}},
        separators=(",", ":")) + "\n"


def test_osascript_deleting_mail_messages_with_no_config_is_escalated(tmp_path):
    """Before: found, not escalated ('no escalation criterion met')."""
    log = eslogger_exec(T0, 1, ["osascript", "-e", ('tell application "Mail" to delete (every message of mailbox '
                                                   '"Security" of account "Work")')])
    # uid 501 works in /Users/alice, so the finding names the person
    finding = only(hunt_files(tmp_path, {"eslogger.ndjson": log}), "applescript_mail_deletion", "alice")
    assert finding["escalate"] is True and finding["severity"] == "high"
    [reason] = finding["reasons"]
    assert reason.startswith("scripts or tools not used by authorized personnel: osascript/AppleScript (or JXA) "
                             "driving Apple Mail to delete messages or empty mailboxes: exec 'osascript -e")
    [structured] = finding["decision"]["reasons"]
    assert structured == {"text": reason, "criterion": "DE-1b", "sentence": "DE-1", "check": "endpoint_mail_tool",
                          "events": sorted(event_ids(finding))}


def test_osascript_reading_mail_makes_no_finding_to_escalate(tmp_path):
    log = eslogger_exec(T0, 1, ["osascript", "-e", 'tell application "Mail" to get subject of every message of inbox'])
    assert hunt_files(tmp_path, {"eslogger.ndjson": log}) == []


def test_atomic_red_team_copy_and_delete_on_linux_is_a_known_threat_pattern(tmp_path):
    atomic = ('mkdir -p /var/spool/mail/copy && for file in /var/spool/mail/*; do if [ "$(basename "$file")" != '
              '"copy" ]; then cp -R "$file" /var/spool/mail/copy/; fi; done && rm -rf /var/spool/mail/copy/*')
    audit = auditd_exec(T0, 504, "mallory", 1001, ["bash", "-c", atomic], "/root", euid=0)
    finding = only(hunt_files(tmp_path, {"audit.log": audit}), "local_mail_store_tampering", "mallory")
    assert finding["escalate"] is True
    assert any(r.startswith("known threat pattern: the public T1070.008 procedure (Atomic Red Team") for r in
               finding["reasons"])
    de1c = criterion(finding, "DE-1c")
    assert de1c["met"] and "associated with known threat patterns" in de1c["clause"]


def test_a_user_emptying_their_own_maildir_is_not_a_known_threat_pattern(tmp_path):
    audit = auditd_exec(T0, 505, "bob", 1002, ["find", "/home/bob/Maildir/cur", "-type", "f", "-delete"], "/home/bob")
    finding = only(hunt_files(tmp_path, {"audit.log": audit}), "local_mail_store_tampering", "bob")
    assert finding["escalate"] is False
    threat = criterion(finding, "DE-1c")
    assert not threat["met"]
    assert any(c["id"] == "threat_pattern" and "no known threat pattern of the policy matches" in c["because"]
               for c in threat["checks"])


def winlogbeat_4104(when: datetime, record_id: int, script: str) -> str:
    return json.dumps({
        "@timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.402Z"),
        "event": {"code": "4104", "kind": "event", "provider": "Microsoft-Windows-PowerShell"},
        "host": {"name": "WS042.corp.example"},
        "winlog": {"channel": "Microsoft-Windows-PowerShell/Operational", "computer_name": "WS042.corp.example",
                   "event_id": "4104", "provider_name": "Microsoft-Windows-PowerShell",
                   "provider_guid": "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}", "record_id": record_id,
                   "process": {"pid": 7008, "thread": {"id": 6488}},
                   "user": {"identifier": "S-1-5-21-3623811015-3361044348-30300820-1013", "name": "jsmith",
                            "domain": "CORP", "type": "User"},
                   "event_data": {"MessageNumber": "1", "MessageTotal": "1", "ScriptBlockText": script,
                                  "ScriptBlockId": f"9e0b6c1a-3f4d-4e2b-8a7c-1d2e3f40{record_id:04d}", "Path": ""}}},
        separators=(",", ":")) + "\n"


OUTLOOK = ('$outlook = New-Object -ComObject Outlook.Application\r\n$ns = $outlook.GetNamespace("MAPI")\r\n'
           "$inbox = $ns.GetDefaultFolder(6)\r\n")


def test_outlook_com_automation_deleting_items_with_no_config_is_escalated(tmp_path):
    script = OUTLOOK + 'foreach ($item in @($inbox.Items)) { if ($item.Subject -like "*sign-in*") { $item.Delete() } }'
    findings = hunt_files(tmp_path, {"ws042.ndjson": winlogbeat_4104(T0, 4460, script)})
    [finding] = [f for f in findings if f["indicator"] == "mail_cmdlet_execution"]
    assert finding["escalate"] is True
    assert finding["reasons"][0].startswith("scripts or tools not used by authorized personnel: Outlook automated "
                                            "through COM (Outlook.Application) to delete mail items")


def test_outlook_com_automation_reading_items_makes_no_finding_to_escalate(tmp_path):
    script = OUTLOOK + "foreach ($item in @($inbox.Items)) { $item.Subject }"
    findings = hunt_files(tmp_path, {"ws042.ndjson": winlogbeat_4104(T0, 4461, script)})
    assert not [f for f in findings if f["escalate"]]


ATOMIC_WINDOWS = (
    'New-Item -Path "C:\\Users\\$env:USERNAME\\AppData\\Local\\Comms\\Unistore\\data\\copy" -ItemType Directory '
    "-ErrorAction Ignore\r\n"
    'Get-ChildItem -Path "C:\\Users\\$env:USERNAME\\AppData\\Local\\Comms\\Unistore\\data" -Exclude copy | '
    'ForEach-Object { Copy-Item -Path $_.FullName -Destination "C:\\Users\\$env:USERNAME\\AppData\\Local\\Comms\\'
    'Unistore\\data\\copy" -Recurse -Force -ErrorAction Ignore }\r\n'
    'Remove-Item -Path "C:\\Users\\$env:USERNAME\\AppData\\Local\\Comms\\Unistore\\data\\copy" -Recurse -Force '
    "-ErrorAction Ignore")


def test_atomic_red_team_copy_and_delete_on_windows_meets_both_tools_and_threat_pattern(tmp_path):
    findings = hunt_files(tmp_path, {"ws042.ndjson": winlogbeat_4104(T0, 4462, ATOMIC_WINDOWS)})
    [finding] = [f for f in findings if f["indicator"] == "local_mail_store_tampering"]
    assert finding["escalate"] is True
    met = {(r["criterion"], r["check"]) for r in finding["decision"]["reasons"]}
    assert {("DE-1b", "endpoint_mail_tool"), ("DE-1c", "threat_pattern")} <= met
    assert any("the public T1070.008 procedure" in r for r in finding["reasons"])
