"""A person's names joined by what the evidence pairs, each against a look-alike that must stay apart.

Every case is read through the real readers from the exact formats the
systems write (audit.log with its enriched part, eslogger JSON, ``log show
--style ndjson``, Entra sign-in JSON, MSExchange Management and PowerShell
records as EVTX-derived JSON), then resolved by ``build_identity_table``.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from mailhunt.config import Config
from mailhunt.detect.identities import build_identity_table
from mailhunt.hunt import hunt
from mailhunt.sources import SNIFF_BYTES, ReadContext, identify, read_events
from mailhunt.store import CaseStore

FIXTURES = Path(__file__).parent / "fixtures"


def identities(files: dict[str, bytes], configured: dict[str, str] | None = None) -> dict[str, tuple[str, str, str]]:
    """alias -> (actor, basis, note) after reading ``files`` (path in the evidence -> content)."""
    store = CaseStore(":memory:")
    try:
        for path, data in sorted(files.items()):
            source = identify(data[:SNIFF_BYTES])
            assert source is not None, path
            ctx = ReadContext(path, "0" * 64, {})
            for table in read_events(source, io.BufferedReader(io.BytesIO(data)), ctx):
                store.append(table)
            assert ctx.rejected == 0, [(r.locator, r.reason) for r in ctx.rejections]
        build_identity_table(store, configured or {})
        return {alias: (actor, basis, note) for alias, actor, basis, note
                in store.db.execute("SELECT * FROM identities").fetchall()}
    finally:
        store.close()


# ---------------------------------------------------------------- Linux audit: enriched AUID= names

def audit_line(serial: int, node: str, auid: int, name: str | None, comm: str = "rm") -> str:
    line = (f'node={node} type=SYSCALL msg=audit(1791990000.{serial:03d}:{serial}): arch=c000003e syscall=263 '
            f'success=yes exit=0 a0=ffffff9c a1=7ffd0a1b2c30 a2=0 a3=0 items=2 ppid=2201 pid={2200 + serial} '
            f'auid={auid} uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=12 comm="{comm}" '
            f'exe="/usr/bin/{comm}" subj=unconfined key="mailstore"')
    if name is not None:
        line += (f'\x1dARCH=x86_64 SYSCALL=unlinkat AUID="{name}" UID="root" GID="root" EUID="root" SUID="root" '
                 f'FSUID="root" EGID="root" SGID="root" FSGID="root"')
    return line + "\n"


def test_a_raw_audit_record_takes_the_name_the_enriched_records_of_its_host_give_its_auid():
    log = audit_line(1, "mx01", 1001, "mallory") + audit_line(2, "mx01", 1001, None)
    found = identities({"evidence/mx01/audit.log": log.encode()})
    actor, basis, note = found["1001"]
    assert (actor, basis) == ("mallory", "inferred")
    assert note == "1001 taken as mallory: uid 1001 is mallory: on host mx01 records log it as mallory"


def test_the_same_auid_on_another_host_is_not_that_person():
    log = audit_line(1, "mx01", 1001, "mallory") + audit_line(2, "mx02", 1001, None)
    actor, basis, note = identities({"evidence/audit.log": log.encode()})["1001"]
    assert (actor, basis) == ("1001", "as logged")
    assert note == ("1001 left as logged: uid 1001 is paired with mallory on host mx01, but nothing pairs it on "
                    "host mx02 (uids are per host)")


def test_an_auid_paired_with_two_names_on_one_host_stays_unresolved_and_says_so():
    log = audit_line(1, "mx01", 1001, "mallory") + audit_line(2, "mx01", 1001, "alice") + audit_line(3, "mx01", 1001, None)
    actor, basis, note = identities({"evidence/audit.log": log.encode()})["1001"]
    assert (actor, basis) == ("1001", "as logged")
    assert note == "1001 left as logged: uid 1001 on host mx01 is paired with alice and mallory"


def test_a_name_the_enriched_record_gives_resolves_to_the_one_address_of_that_user():
    log = audit_line(1, "mx01", 1001, "mallory") + audit_line(2, "mx01", 1001, None)
    entra = entra_sign_in("mallory@corp.example.com", "Mallory Jones")
    found = identities({"evidence/mx01/audit.log": log.encode(), "evidence/signins.json": entra})
    assert found["1001"][:2] == ("mallory@corp.example.com", "inferred")
    assert found["mallory"][:2] == ("mallory@corp.example.com", "inferred")


# ---------------------------------------------------------------- macOS: eslogger and the unified log

DELETE_INBOX = ("osascript", "-e", 'tell application "Mail" to delete (every message of inbox)')


def eslogger_exec(uid: int, cwd: str, seq: int, args: tuple[str, ...] = DELETE_INBOX) -> str:
    token = {"asid": 100017, "pid": 4410 + seq, "ruid": uid, "euid": uid, "rgid": 20, "egid": 20,
             "pidversion": 23000 + seq, "auid": uid}
    return json.dumps({
        "schema_version": 1, "mach_time": 118812932391 + seq, "event_type": 9, "thread": {"thread_id": 1244512},
        "version": 7, "seq_num": seq, "global_seq_num": 1000 + seq, "action_type": 1,
        "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "time": f"2026-10-14T09:42:{seq:02d}.123456789Z",
        "process": {"audit_token": token, "executable": {"path": "/bin/zsh", "path_truncated": False},
                    "ppid": 4400, "original_ppid": 4400, "signing_id": "com.apple.zsh", "is_platform_binary": True,
                    "session_id": 100017, "group_id": 4410},
        "event": {"exec": {"target": {"audit_token": token,
                                      "executable": {"path": "/usr/bin/osascript", "path_truncated": False},
                                      "ppid": 4400, "original_ppid": 4400, "signing_id": "com.apple.osascript",
                                      "is_platform_binary": True},
                           "args": list(args), "cwd": {"path": cwd, "path_truncated": False}, "script": None}}},
        separators=(",", ":")) + "\n"


def unified_entry(uid: int) -> str:
    return json.dumps({
        "traceID": 62127, "eventMessage": "AUTHREQ_ATTRIBUTION: msgID=180.1, attribution={responsible="
        "{identifier=com.apple.osascript, pid=4410}}, service=kTCCServiceAppleEvents, target=com.apple.mail",
        "eventType": "logEvent", "source": None, "formatString": "%{public}s", "activityIdentifier": 0,
        "subsystem": "com.apple.TCC", "category": "access", "threadID": 1204,
        "processImagePath": "/System/Library/PrivateFrameworks/TCC.framework/Support/tccd",
        "senderImagePath": "/System/Library/PrivateFrameworks/TCC.framework/Support/tccd",
        "timestamp": "2026-10-14 11:42:00.123456+0200", "machTimestamp": 118812932391, "messageType": "Default",
        "processID": 171, "senderProgramCounter": 123, "parentActivityIdentifier": 0, "userID": uid}) + "\n"


def test_uid_501_of_a_mac_is_the_user_whose_home_folder_its_records_work_in():
    found = identities({
        "evidence/mac1/eslogger.ndjson": (eslogger_exec(501, "/Users/alice", 1)
                                          + eslogger_exec(501, "/Users/alice/Documents", 2)).encode(),
        "evidence/mac1/unified.ndjson": unified_entry(501).encode()})
    actor, basis, note = found["501"]
    assert (actor, basis) == ("alice", "inferred")
    assert note == ("501 taken as alice: uid 501 is alice: in evidence folder evidence/mac1 its records work in the "
                    "home folder of alice")


def test_uid_501_of_two_macs_is_two_people():
    found = identities({
        "evidence/mac1/eslogger.ndjson": eslogger_exec(501, "/Users/alice", 1).encode(),
        "evidence/mac2/eslogger.ndjson": eslogger_exec(501, "/Users/bob", 1).encode()})
    actor, basis, note = found["501"]
    assert (actor, basis) == ("501", "as logged")
    assert note == ("501 left as logged: uid 501 is alice in evidence folder evidence/mac1, bob in evidence folder "
                    "evidence/mac2 (uids are per host)")


def test_a_uid_working_in_two_home_folders_on_one_mac_is_not_guessed():
    found = identities({"evidence/mac1/eslogger.ndjson": (eslogger_exec(501, "/Users/alice", 1)
                                                          + eslogger_exec(501, "/Users/bob", 2)).encode()})
    assert found["501"] == ("501", "as logged",
                            "501 left as logged: uid 501 in evidence folder evidence/mac1 is paired with alice and bob")


def test_root_in_a_home_folder_is_not_that_user_nor_is_the_shared_folder_anyone():
    found = identities({"evidence/mac1/eslogger.ndjson": (eslogger_exec(0, "/Users/alice", 1)
                                                          + eslogger_exec(502, "/Users/Shared", 2)).encode()})
    assert found["0"] == ("0", "as logged", "")
    assert found["502"] == ("502", "as logged", "")


# ---------------------------------------------------------------- canonical names, display names, SIDs

def entra_sign_in(upn: str, display: str, n: int = 1) -> bytes:
    return json.dumps([{
        "id": f"7c2e5f0a-3b1d-4c8e-9a10-2f6b7d4e1c{n:02d}", "createdDateTime": "2026-10-12T08:02:11.4839163Z",
        "userDisplayName": display, "userPrincipalName": upn, "userId": f"5f0b2c1d-8e4a-4b3c-9d2e-1a0f3e4b5c{n:02d}",
        "appId": "fb78d390-0c51-40cd-8e17-fdbfab77341b",
        "appDisplayName": "Microsoft Exchange REST API Based Powershell", "ipAddress": "198.51.100.24",
        "clientAppUsed": "Mobile Apps and Desktop clients", "userAgent": "Mozilla/5.0 PowerShell/7.4.1",
        "status": {"errorCode": 0, "failureReason": None}, "location": {"countryOrRegion": "US"},
        "resourceTenantId": "3e1a9c55-0b7d-4f1e-8a21-6c0d2f4b9e11", "homeTenantId": "3e1a9c55-0b7d-4f1e-8a21-6c0d2f4b9e11",
    } for _ in (1,)], indent=2).encode()


def entra_sign_ins(*people: tuple[str, str]) -> bytes:
    members = [json.loads(entra_sign_in(upn, display, n))[0] for n, (upn, display) in enumerate(people, 1)]
    return json.dumps(members, indent=2).encode()


LEGAL = "corp.example.com/IT/Admins/Legal Compliance"
LEGAL_UPN = "legal.compliance@corp.example.com"


def admin_audit_xml(caller: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<SearchResults>
  <Event Caller="{caller}" Cmdlet="New-MailboxExportRequest" ObjectModified="corp.example.com/Users/jdoe\\MailboxExport" RunDate="2026-10-14T08:02:11-07:00" Succeeded="true" Error="None" OriginatingServer="EXCH01 (15.02.1544.004)">
    <CmdletParameters>
      <Parameter Name="Mailbox" Value="jdoe" />
      <Parameter Name="FilePath" Value="\\\\EXCH01\\exports$\\jdoe.pst" />
    </CmdletParameters>
    <ModifiedProperties />
  </Event>
</SearchResults>
""".encode()


def test_a_canonical_caller_is_the_account_whose_display_name_it_ends_with():
    found = identities({"evidence/admin_audit.xml": admin_audit_xml(LEGAL),
                        "evidence/signins.json": entra_sign_in(LEGAL_UPN, "Legal Compliance")})
    actor, basis, note = found[LEGAL.lower()]
    assert (actor, basis) == (LEGAL_UPN, "inferred")
    assert note == (f"{LEGAL.lower()} taken as {LEGAL_UPN}: Legal Compliance is the display name the sign-in log "
                    f"gives {LEGAL_UPN} and the last part of {LEGAL.lower()}")


def test_a_display_name_that_only_starts_alike_or_belongs_to_two_accounts_joins_nothing():
    found = identities({"evidence/admin_audit.xml": admin_audit_xml(LEGAL),
                        "evidence/signins.json": entra_sign_in(LEGAL_UPN, "Legal Compliance Team")})
    assert found[LEGAL.lower()] == (LEGAL.lower(), "as logged", "")
    found = identities({"evidence/admin_audit.xml": admin_audit_xml(LEGAL),
                        "evidence/signins.json": entra_sign_ins((LEGAL_UPN, "Legal Compliance"),
                                                                ("lc-archive@corp.example.com", "Legal Compliance"))})
    actor, basis, note = found[LEGAL.lower()]
    assert (actor, basis) == (LEGAL.lower(), "as logged")
    assert note == (f"{LEGAL.lower()} left as logged: its last part 'Legal Compliance' is the display name of 2 "
                    f"accounts (lc-archive@corp.example.com, legal.compliance@corp.example.com)")


def test_the_configured_mapping_of_a_canonical_caller_wins():
    found = identities({"evidence/admin_audit.xml": admin_audit_xml(LEGAL)}, {LEGAL: LEGAL_UPN})
    assert found[LEGAL.lower()][:2] == (LEGAL_UPN, "configured")


ADMIN_SID = "S-1-5-21-3623811015-3361044348-30300820-500"


def exchange_management_line(caller: str, sid: str) -> str:
    """The first record of the MSExchange Management fixture with another caller and SID."""
    record = json.loads((FIXTURES / "windows" / "exch01_msexchange_management.jsonl").read_text().splitlines()[0])
    data = record["Event"]["EventData"]["Data"]["#text"]
    data[2], data[3], data[4] = caller, sid, sid
    return json.dumps(record) + "\n"


def script_block_line(name: str, domain: str, sid: str) -> str:
    """The first record of the Winlogbeat PowerShell fixture with another user."""
    record = json.loads((FIXTURES / "windows" / "ws042_powershell.winlogbeat.ndjson").read_text().splitlines()[0])
    record["winlog"]["user"] = {"identifier": sid, "name": name, "domain": domain, "type": "User"}
    return json.dumps(record) + "\n"


def test_an_exchange_caller_written_as_its_canonical_name_is_the_account_its_sid_names_elsewhere():
    found = identities({
        "evidence/exch01.jsonl": exchange_management_line("contoso.com/Users/Administrator", ADMIN_SID).encode(),
        "evidence/ws042.ndjson": script_block_line("Administrator", "CONTOSO", ADMIN_SID).encode()})
    actor, basis, note = found["contoso.com/Users/Administrator"]
    assert (actor, basis) == ("Administrator", "inferred")
    assert f"SID {ADMIN_SID} is logged with" in note


def test_a_caller_with_the_same_name_but_another_sid_is_not_joined():
    found = identities({
        "evidence/exch01.jsonl": exchange_management_line("contoso.com/Users/Administrator", ADMIN_SID).encode(),
        "evidence/ws042.ndjson": script_block_line("Administrator", "WS042",
                                                   "S-1-5-21-1111111111-2222222222-3333333333-500").encode()})
    assert found["contoso.com/Users/Administrator"] == ("contoso.com/Users/Administrator", "as logged", "")


# ---------------------------------------------------------------- the decision it changes

def run_case(tmp_path: Path, files: dict[str, bytes], config: Config) -> list[dict]:
    evidence = tmp_path / "evidence"
    for name, data in files.items():
        (evidence / name).parent.mkdir(parents=True, exist_ok=True)
        (evidence / name).write_bytes(data)
    try:
        return hunt([evidence], tmp_path / "case", config).document["findings"]
    finally:
        shutil.rmtree(evidence)


@pytest.mark.parametrize("display, joined", [("Legal Compliance", True), ("Legal Compliance Team", False)])
def test_an_export_by_the_canonical_caller_is_covered_by_the_authorized_upn_only_when_the_evidence_pairs_them(
        tmp_path, display, joined):
    findings = run_case(tmp_path, {"admin_audit.xml": admin_audit_xml(LEGAL),
                                   "signins.json": entra_sign_in(LEGAL_UPN, display)},
                        Config(admins=(LEGAL_UPN,)))
    [export] = [f for f in findings if f["indicator"] == "mailbox_export"]
    answer = export["answers"]["legitimate_admin_activity"]["because"]
    if joined:
        assert export["actor"] == LEGAL_UPN and export["actor_aliases"] == [LEGAL.lower()]
        assert "not among the authorized admins" not in answer
    else:
        assert export["actor"] == LEGAL.lower() and export["actor_aliases"] == []
        assert "not among the authorized admins" in answer


def test_a_sid_logged_with_two_sam_names_joins_neither_and_says_so():
    found = identities({
        "evidence/exch01.jsonl": exchange_management_line("CONTOSO\\alice", ADMIN_SID).encode(),
        "evidence/ws042.ndjson": script_block_line("bob", "CONTOSO", ADMIN_SID).encode(),
        "evidence/ws043.ndjson": script_block_line("alice", "CONTOSO",
                                                   "S-1-5-21-3623811015-3361044348-30300820-1105").encode()})
    assert found["CONTOSO\\alice"] == ("CONTOSO\\alice", "as logged", "")
    assert found["bob"] == ("bob", "as logged", "")
