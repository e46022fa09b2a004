"""Registry writes (Sysmon 12/13/14, Security 4657) and System records' numbered insertion strings
(Service Control Manager 7036/7040) as events: the SQL mapping and the record-by-record one agree,
and third-party Sigma rules address them by their log-native names.

The values are those of OTRF's psh_disable_eventlog_service_startuptype_modification and
reg_cmd_process_commandline_logging_disabled datasets, in the evtx_dump form.
"""

import copy

import orjson
import pyarrow as pa
import pytest

from mailhunt.detect.engine import compile_rules
from mailhunt.detect.rules import load_rules
from mailhunt.sources import windows_stream
from mailhunt.sources.windows_normalize import WindowsNormalizer
from mailhunt.sources.windows_stream import text_array
from tests.test_sigmahq_windows import sigma_matches
from tests.test_windows_text_fields_sql import read_jsonl

SYSMON = ("Microsoft-Windows-Sysmon", "Microsoft-Windows-Sysmon/Operational")
SECURITY = ("Microsoft-Windows-Security-Auditing", "Security")
SCM = ("Service Control Manager", "System")
AUDIT_KEY = "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit"
AUDIT_VALUE = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\Audit\\ProcessCreationIncludeCmdLine_Enabled"


def windows_record(source: tuple[str, str], code: int, event_data, record_id: int = 100) -> dict:
    provider, channel = source
    return {"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, "System": {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": code} if source == SCM else code,
        "TimeCreated": {"#attributes": {"SystemTime": "2022-08-18T05:35:58.817Z"}}, "EventRecordID": record_id,
        "Channel": channel, "Computer": "pedro-computer",
        "Security": {"#attributes": {"UserID": "S-1-5-21-968647429-258479840-2507984072-1001"}}},
        "EventData": event_data}}


SET_VALUE = windows_record(SYSMON, 13, {"RuleName": "-", "EventType": "SetValue", "UtcTime": "2022-08-19 00:35:58.812",
                                        "ProcessId": "4964", "Image": "C:\\Windows\\system32\\reg.exe",
                                        "TargetObject": AUDIT_VALUE, "Details": "DWORD (0x00000000)"})
VALUE_4657 = windows_record(SECURITY, 4657, {
    "SubjectUserSid": "S-1-5-21-3768430097-3400800235-1714852860-1001", "SubjectUserName": "pedro-admin",
    "SubjectDomainName": "PEDRO-COMPUTER", "SubjectLogonId": "0xfeff35", "ObjectName": AUDIT_KEY,
    "ObjectValueName": "ProcessCreationIncludeCmdLine_Enabled", "HandleId": "0xa8", "OperationType": "%%1905",
    "OldValueType": "%%1876", "OldValue": "1", "NewValueType": "%%1876", "NewValue": "0", "ProcessId": "0x1364",
    "ProcessName": "C:\\Windows\\System32\\reg.exe"})
START_TYPE = windows_record(SCM, 7040, {"param1": "Windows Event Log", "param2": "auto start", "param3": "disabled",
                                        "param4": "EventLog"}, record_id=102)
STOPPED = windows_record(SCM, 7036, {"param1": "Windows Event Log", "param2": "stopped",
                                     "Binary": "4500760065006E0074004C006F0067002F0031000000"})


def variant(record: dict, **event_data) -> dict:
    """The record with EventData members changed (None: left out), as the next record of its log."""
    changed = copy.deepcopy(record)
    changed["Event"]["System"]["EventRecordID"] += 1
    for key, value in event_data.items():
        if value is None:
            changed["Event"]["EventData"].pop(key, None)
        else:
            changed["Event"]["EventData"][key] = value
    return changed


def replaced_data(record: dict, event_data) -> dict:
    changed = copy.deepcopy(record)
    changed["Event"]["EventData"] = event_data
    return changed


# (name, record, mapped in SQL)
VARIANTS = [
    ("sysmon 13 set value", SET_VALUE, True),
    ("sysmon 12 delete value", variant(SET_VALUE, EventType="DeleteValue", Details=None), True),
    ("sysmon 12 create key", variant(SET_VALUE, EventType="CreateKey", Details=None), True),
    ("sysmon 14 rename key", variant(SET_VALUE, EventType="RenameKey", NewName="HKLM\\x"), True),
    ("sysmon event type unknown", variant(SET_VALUE, EventType="setvalue "), True),
    ("4657 value modified", VALUE_4657, True),
    ("4657 value created", variant(VALUE_4657, OperationType="%%1904"), True),
    ("4657 value deleted", variant(VALUE_4657, OperationType="%%1906", NewValue=None), True),
    ("4657 without a value name", variant(VALUE_4657, ObjectValueName=""), True),
    ("7040 named params", START_TYPE, True),
    ("7036 named params and binary", STOPPED, True),
    ("7036 params out of order, one empty, one null", replaced_data(STOPPED, {"param2": "", "param1": None}), True),
    ("System record with unnamed data", replaced_data(STOPPED, {"Data": ["Windows Event Log", "stopped"],
                                                                "Binary": None}), True),
    ("System record with unnamed data as #text", replaced_data(STOPPED, {"Data": {"#text": ["a", None]}}), True),
    ("System record with named fields only (7045)", replaced_data(STOPPED, {"ServiceName": "x", "ImagePath": "y"}),
     True),
    ("System record without EventData", replaced_data(STOPPED, None), True),
    ("System record with one unnamed item", replaced_data(STOPPED, {"Data": "only"}), False),
    ("System record with a number for a param", replaced_data(STOPPED, {"param1": 5}), False),
]


@pytest.mark.parametrize("name, record, in_sql", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_sql_maps_registry_and_service_records_as_python_does(name, record, in_sql, monkeypatch):
    in_python = read_jsonl([record])
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    assert read_jsonl([record]) == in_python
    _, needs_python = WindowsNormalizer().normalize(text_array([orjson.dumps(record).decode()]),
                                                    pa.array([1], pa.int64()), "v", "0" * 64)
    assert needs_python == [not in_sql]


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_registry_write_fields(sql_min_records, monkeypatch):
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    [sysmon] = read_jsonl([SET_VALUE])
    assert (sysmon["event.action"], sysmon["registry.path"], sysmon["registry.data.strings"]) == (
        "SetValue", AUDIT_VALUE, "DWORD (0x00000000)")
    assert sysmon["process.name"] == "reg.exe" and sysmon["user.name"] is None
    [security] = read_jsonl([VALUE_4657])
    assert (security["event.action"], security["registry.path"], security["registry.data.strings"]) == (
        "SetValue", AUDIT_KEY + "\\ProcessCreationIncludeCmdLine_Enabled", "0")
    assert security["user.name"] == "pedro-admin"
    [deleted] = read_jsonl([variant(VALUE_4657, OperationType="%%1906")])
    assert deleted["event.action"] == "DeleteValue"


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_service_control_manager_insertion_strings_are_params(sql_min_records, monkeypatch):
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    [start_type] = read_jsonl([START_TYPE])
    assert dict(start_type["params"]) == {"param1": "Windows Event Log", "param2": "auto start",
                                          "param3": "disabled", "param4": "EventLog"}
    [stopped] = read_jsonl([STOPPED])
    assert dict(stopped["params"]) == {"param1": "Windows Event Log", "param2": "stopped"}
    [unnamed] = read_jsonl([replaced_data(STOPPED, {"Data": ["Windows Event Log", "running"], "Binary": None})])
    assert dict(unnamed["params"]) == {"param1": "Windows Event Log", "param2": "running"}


THIRD_PARTY = """
title: {title}
id: {id}
status: test
logsource:
    product: windows
    {logsource}
detection:
    selection:
{selection}
    condition: selection
level: high
"""


def third_party_rule(tmp_path, name: str, rule_id: str, logsource: str, selection: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.yml").write_text(THIRD_PARTY.format(title=name, id=rule_id, logsource=logsource,
                                                            selection=selection), encoding="utf-8")
    return load_rules([folder])


def test_a_registry_set_rule_in_sigma_terms_runs_on_sysmon_13(tmp_path):
    rules = third_party_rule(tmp_path, "cmdline_auditing_off", "3a0bd3e6-8d1f-4a8e-9a55-0d7f5c2b1e01",
                             "category: registry_set", "        TargetObject|endswith: "
                             "'\\ProcessCreationIncludeCmdLine_Enabled'\n        Details: 'DWORD (0x00000000)'")
    assert not compile_rules(rules).skipped
    assert sigma_matches([SET_VALUE, VALUE_4657, variant(SET_VALUE, EventType="DeleteValue")], rules) == {
        "cmdline_auditing_off": 1}


def test_a_service_rule_on_param1_param2_runs_on_7036(tmp_path):
    rules = third_party_rule(tmp_path, "eventlog_stopped", "6c1f9e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                             "service: system", "        EventID: 7036\n        param1: 'Windows Event Log'\n"
                             "        param2: 'stopped'")
    running = variant(STOPPED, param2="running", Binary="4500760065006E0074004C006F0067002F0034000000")
    assert sigma_matches([STOPPED, running, START_TYPE], rules) == {"eventlog_stopped": 1}
