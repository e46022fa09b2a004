"""Unified audit log readers, case by case: field mapping per record kind, container quirks, bad input, sniffing.

Complements ``test_sources_m365.py`` (real public samples). Every fixture in
``tests/fixtures/m365/`` is in the exact format its tool writes; records use
the documentation ranges (contoso.com, 203.0.113.0/24, 2001:db8::/32).
Tests go through the public surface only (``identify`` and ``Source.read``),
whatever the reader yields (event dicts or Arrow batches).
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from mailhunt.events import COLUMN_NAMES, event_id_from_record_id
from mailhunt.sources import SNIFF_BYTES, ReadContext, identify, read_events
from mailhunt.sources.m365_audit import M365_SOURCES
from tests.corpus import PUBLIC

FIXTURES = Path(__file__).parent / "fixtures" / "m365"
BY_NAME = {source.name: source for source in M365_SOURCES}


def _events(output) -> list[dict]:
    events = []
    for item in output:
        if isinstance(item, dict):
            events.append(item)
        else:
            events.extend(item.to_pylist())
    for event in events:
        if event["params"] is not None and not isinstance(event["params"], dict):
            event["params"] = dict(event["params"])
    return events


def read_bytes(data: bytes, name: str = "evidence") -> tuple[str, list[dict], ReadContext]:
    source = identify(data[:SNIFF_BYTES])
    assert source is not None, f"{name} not recognized"
    ctx = ReadContext(name, "0" * 64)
    events = _events(read_events(source, io.BufferedReader(io.BytesIO(data)), ctx))
    return source.name, events, ctx


def read(path: Path) -> tuple[str, list[dict], ReadContext]:
    return read_bytes(path.read_bytes(), str(path))


def by_action(events: list[dict]) -> dict[str, dict]:
    return {event["event.action"]: event for event in events}


def reasons(ctx: ReadContext) -> dict[str, str]:
    return {rejection.locator: rejection.reason for rejection in ctx.rejections}


# ---------------------------------------------------------------- the real Purview export (Huntress CTF 2023, Rogue Inbox)


def test_real_purview_export_counts_per_operation():
    name, events, ctx = read(PUBLIC / "huntress-ctf-2023" / "purview.csv")
    assert (name, len(events), ctx.records, ctx.rejected) == ("purview_csv", 219, 219, 0)
    counts = Counter(e["event.action"] for e in events)
    assert {op: counts[op] for op in (
        "New-InboxRule", "Reset user password.", "Update StsRefreshTokenValidFrom Timestamp.", "Set-MailboxPlan",
        "UserLoggedIn", "Set-Mailbox", "Set-TransportConfig", "Add-MailboxPermission", "UserLoginFailed")} == {
        "New-InboxRule": 38, "Reset user password.": 34, "Update StsRefreshTokenValidFrom Timestamp.": 34,
        "Set-MailboxPlan": 27, "UserLoggedIn": 20, "Set-Mailbox": 8, "Set-TransportConfig": 3,
        "Add-MailboxPermission": 1, "UserLoginFailed": 1}
    assert sum(counts.values()) == 219


def test_real_purview_inbox_rule_record():
    _, events, _ = read(PUBLIC / "huntress-ctf-2023" / "purview.csv")
    [rule] = [e for e in events if '"Id":"85d29e27-be28-4f2c-96c8-08dbbe33c473"' in e["event.original"]]
    assert rule["event.id"] == event_id_from_record_id("m365.audit", "85d29e27-be28-4f2c-96c8-08dbbe33c473")
    assert rule["@timestamp"] == datetime(2023, 9, 26, 1, 56, 15)
    assert rule["log.record"] == 145
    assert (rule["event.action"], rule["event.outcome"], rule["event.provider"], rule["event.code"]) == (
        "New-InboxRule", "success", "Exchange", "1")
    assert rule["user.name"] == "debrab@m365b132131.onmicrosoft.com" and rule["user.type"] == "admin"
    assert rule["source.ip"] == "185.73.124.135"
    assert rule["host.name"] == "CH3PR10MB7864 (15.20.6813.027)"
    assert rule["app.id"] == "00000002-0000-0ff1-ce00-000000000000"
    assert rule["organization.id"] == "df233d94-fed3-4436-bf9a-a799fb85a159"
    assert rule["rule.name"] == "f"
    assert rule["params"] == {"alwaysdeleteoutlookrulesblob": "False", "force": "False", "from": "flag@ctf.com",
                              "movetofolder": "Conversation History", "name": "f", "markasread": "True",
                              "stopprocessingrules": "True"}
    assert rule["parameters"] == ('-AlwaysDeleteOutlookRulesBlob False -Force False -From flag@ctf.com '
                                  '-MoveToFolder "Conversation History" -Name f -MarkAsRead True '
                                  '-StopProcessingRules True')


def test_real_purview_inbox_rule_names_in_time_order_spell_the_challenge_flag():
    """The CTF hid its flag one character per inbox rule name: order, names and times must all be right."""
    _, events, _ = read(PUBLIC / "huntress-ctf-2023" / "purview.csv")
    rules = sorted((e for e in events if e["event.action"] == "New-InboxRule"), key=lambda e: e["@timestamp"])
    assert len({e["@timestamp"] for e in rules}) == 38
    assert "".join(e["rule.name"] for e in rules) == "flag{24c4230fa7d50eef392b2c850f74b0f6}"
    assert Counter(e["params"]["movetofolder"] for e in rules) == {"Conversation History": 37, "Inbox": 1}


# ---------------------------------------------------------------- Exchange admin cmdlets


def test_cmdlet_targets_and_rule_names():
    name, events, ctx = read(FIXTURES / "cmdlets.ndjson")
    assert name == "ual_ndjson" and ctx.rejected == 0 and len(events) == 8
    e = by_action(events)
    assert e["New-MailboxExportRequest"]["user.target.name"] == "bob@contoso.com"
    assert e["Get-MailboxExportRequest"]["user.target.name"] == "bob@contoso.com"
    assert e["Remove-MailboxExportRequest"]["user.target.name"] == "bob@contoso.com"
    assert e["Remove-InboxRule"]["user.target.name"] == "dave@contoso.com"
    assert e["Remove-InboxRule"]["rule.name"] == "Spam cleanup"
    assert e["New-TransportRule"]["rule.name"] == "Bypass spam"
    assert e["Search-Mailbox"]["user.target.name"] == "erin@contoso.com"
    assert e["Set-Mailbox"]["user.target.name"] == "Frank"
    assert e["Set-InboxRule"]["rule.name"] == "Hide"
    assert e["New-MailboxExportRequest"]["rule.name"] is None


def test_set_inbox_rule_target_is_its_mailbox_parameter():
    _, events, _ = read(FIXTURES / "cmdlets.ndjson")
    assert by_action(events)["Set-InboxRule"]["user.target.name"] == "carol@contoso.com"


def test_cmdlet_params_and_parameter_text_keep_the_order_and_quote_spaces():
    _, events, _ = read(FIXTURES / "cmdlets.ndjson")
    e = by_action(events)
    rule = e["New-TransportRule"]
    assert rule["params"] == {"name": "Bypass spam", "senderdomainis": "evil.example", "setscl": "-1"}
    assert rule["parameters"] == '-Name "Bypass spam" -SenderDomainIs evil.example -SetSCL -1'
    search = e["Search-Mailbox"]
    assert search["params"]["deletecontent"] == "True"
    assert search["params"]["searchquery"] == 'subject:"security alert"'
    assert list(search["params"]) == ["identity", "searchquery", "deletecontent", "force"]
    assert e["Set-Mailbox"]["params"] == {"identity": "Frank", "auditenabled": "False"}
    export = e["New-MailboxExportRequest"]
    assert export["parameters"] == "-Mailbox Bob@Contoso.com -FilePath \\\\fs01\\pst$\\bob.pst -Name MailboxExport"


def test_cmdlet_common_fields():
    _, events, _ = read(FIXTURES / "cmdlets.ndjson")
    export = events[0]
    assert set(export) >= set(COLUMN_NAMES)
    assert export["event.id"] == event_id_from_record_id("m365.audit", "10000000-0000-0000-0000-000000000001")
    assert export["@timestamp"] == datetime(2026, 10, 14, 9, 1)
    assert export["user.name"] == "alice@contoso.com" and export["user.type"] == "admin"
    assert export["event.outcome"] == "success" and export["event.provider"] == "Exchange"
    assert export["event.code"] == "1" and export["event.dataset"] == "m365.audit"
    assert export["source.ip"] == "203.0.113.7"
    assert export["host.name"] == "DB8PR01MB5555 (15.20.6813.027)"
    assert export["app.id"] == "fb78d390-0c51-40cd-8e17-fdbfab77341b"
    assert export["organization.id"] == "11111111-2222-3333-4444-555555555555"
    assert export["log.record"] == 1 and export["log.file.sha256"] == "0" * 64
    first_line = (FIXTURES / "cmdlets.ndjson").read_text().splitlines()[0]
    assert export["event.original"] == first_line


# ---------------------------------------------------------------- mailbox items and other record kinds


def test_bulk_hard_delete_in_someone_elses_mailbox():
    _, events, ctx = read(FIXTURES / "records.ndjson")
    assert ctx.rejected == 0 and len(events) == 9
    hard = by_action(events)["HardDelete"]
    assert hard["user.name"] == "mallory@contoso.com" and hard["user.target.name"] == "bob@contoso.com"
    assert hard["email.item_count"] == 3
    assert hard["email.subject"] == "Security alert: new sign-in | Your password was changed | Re: lunch"
    assert hard["email.message_id"] == "<a1@contoso.com>"
    assert hard["email.folder"] == "\\Deleted Items"
    assert hard["@timestamp"] == datetime(2026, 10, 14, 9, 10, 0, 123456)
    assert hard["event.code"] == "3" and hard["user.type"] == "regular"
    assert hard["source.ip"] == "198.51.100.20"
    assert hard["host.name"] == "AM6PR01MB4535 (15.20.2729.032)"
    assert hard["user_agent.original"] == "Client=OWA;Action=ViaProxy"


def test_move_to_deleted_items_names_the_source_folder_and_converts_the_offset():
    _, events, _ = read(FIXTURES / "records.ndjson")
    move = by_action(events)["MoveToDeletedItems"]
    assert move["email.folder"] == "\\Sent Items"
    assert move["email.subject"] == "Wire transfer details" and move["email.item_count"] == 1
    assert move["@timestamp"] == datetime(2026, 10, 14, 9, 11)


def test_send_and_mail_items_accessed():
    _, events, _ = read(FIXTURES / "records.ndjson")
    e = by_action(events)
    send = e["Send"]
    assert (send["email.subject"], send["email.message_id"], send["email.item_count"]) == (
        "Invoice 4471", "<s2@contoso.com>", 1)
    assert send["user.target.name"] == "bob@contoso.com"
    accessed = e["MailItemsAccessed"]
    assert accessed["email.item_count"] == 5 and accessed["email.folder"] == "\\Inbox"
    assert accessed["app.id"] == "5a95e683-08ad-424e-a441-1d1aec52c02c"
    assert accessed["event.code"] == "50"


def test_outcomes_user_types_and_sign_in_fields():
    _, events, _ = read(FIXTURES / "records.ndjson")
    e = by_action(events)
    soft = e["SoftDelete"]
    assert soft["event.outcome"] == "success" and soft["user.type"] == "guest"
    assert soft["user.name"] == "guest_fabrikam.com#ext#@contoso.onmicrosoft.com"
    assert soft["email.item_count"] == 1 and soft["email.folder"] == "\\Inbox"
    failed = e["UserLoginFailed"]
    assert failed["event.outcome"] == "failure" and failed["source.ip"] == "2001:db8::20"
    assert failed["user_agent.original"] == "Mozilla/5.0 (Windows NT 10.0; Win64; x64) python-requests/2.31"
    assert e["Consent to application."]["event.outcome"] == "success"
    system = e["Set-Mailbox"]
    assert system["user.type"] == "system"
    assert system["user.name"] == "nt authority\\system (microsoft.exchange.servicehost)"
    assert e["UpdateInboxRules"]["event.outcome"] == "success"


def test_outlook_inbox_rule_properties_become_params():
    _, events, _ = read(FIXTURES / "records.ndjson")
    update = by_action(events)["UpdateInboxRules"]
    assert update["params"]["rulename"] == "."
    assert update["params"]["ruleoperation"] == "AddMailboxRule"
    assert "MoveToFolder" in update["params"]["ruleactions"]
    assert update["parameters"].startswith("-RuleActions ")
    assert update["user.target.name"] == "bob@contoso.com"


def test_outlook_inbox_rule_name():
    _, events, _ = read(FIXTURES / "records.ndjson")
    assert by_action(events)["UpdateInboxRules"]["rule.name"] == "."


def test_consent_scopes():
    _, events, _ = read(FIXTURES / "records.ndjson")
    consent = by_action(events)["Consent to application."]
    assert set(consent["params"]["scopes"].split()) == {"Mail.Read", "Mail.ReadWrite", "offline_access"}
    assert "Mail.ReadWrite" in consent["parameters"]
    assert consent["source.ip"] == "198.51.100.23"


def test_consent_app_id():
    _, events, _ = read(FIXTURES / "records.ndjson")
    assert by_action(events)["Consent to application."]["app.id"] == "9a2b0000-0000-4000-8000-0000000000bb"


@pytest.mark.parametrize("text, ip", [
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7:50123", "203.0.113.7"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"),
    ("::1", "::1"),
    ("Unknown", None),
    ("", None),
])
@pytest.mark.parametrize("field", ["ClientIP", "ClientIPAddress", "ActorIpAddress"])
def test_client_ip_forms_in_every_field(field, text, ip):
    line = orjson.dumps({"CreationTime": "2026-10-14T09:00:00", "Id": "ip", "Operation": "UserLoggedIn",
                         "RecordType": 15, "Workload": "AzureActiveDirectory", field: text}) + b"\n"
    _, [event], _ = read_bytes(line)
    assert event["source.ip"] == ip


def test_client_ip_that_only_looks_like_an_address_is_left_out():
    line = orjson.dumps({"CreationTime": "2026-10-14T09:00:00", "Id": "ip", "Operation": "UserLoggedIn",
                         "RecordType": 15, "Workload": "AzureActiveDirectory", "ClientIP": "300.1.1.1:443"}) + b"\n"
    _, [event], _ = read_bytes(line)
    assert event["source.ip"] is None


# ---------------------------------------------------------------- containers


def test_purview_csv_with_bom_crlf_iso_dates_and_a_cell_spanning_lines():
    name, events, ctx = read(FIXTURES / "purview_bom_crlf.csv")
    assert name == "purview_csv" and ctx.rejected == 0 and ctx.records == 3
    assert [e["log.record"] for e in events] == [2, 3, 44]
    hard, move, no_time = events
    assert hard["@timestamp"] == datetime(2026, 10, 14, 9, 10, 0, 123456)
    assert orjson.loads(hard["event.original"])["Id"] == "10000000-0000-0000-0000-000000000010"
    assert hard["event.original"].startswith('{"CreationTime":"2026-10-14T09:10:00.1234567Z"')
    assert move["event.action"] == "MoveToDeletedItems" and move["@timestamp"] == datetime(2026, 10, 14, 9, 11)
    assert orjson.loads(move["event.original"])["Folder"]["Path"] == "\\Sent Items"
    assert no_time["@timestamp"] == datetime(2026, 10, 14, 9, 20)


def test_purview_us_date_is_the_fallback_and_a_record_without_any_time_is_rejected():
    _, events, ctx = read(FIXTURES / "purview_us_date_fallback.csv")
    assert [e["log.record"] for e in events] == [2, 4]
    assert events[0]["@timestamp"] == datetime(2026, 10, 14, 13, 5, 9)
    assert events[1]["@timestamp"] == datetime(2026, 10, 14, 9, 10, 0, 123456), "AuditData wins over CreationDate"
    assert ctx.rejected == 1 and "line 3" in reasons(ctx) and "CreationTime" in reasons(ctx)["line 3"]


def test_classic_csv_header_is_matched_case_insensitively():
    text = (FIXTURES / "classic.csv").read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    name, events, ctx = read_bytes((header.lower() + "\n" + rest).encode())
    assert name == "ual_csv" and len(events) == 3 and ctx.rejected == 0


def test_search_unifiedauditlog_export_tolerates_missing_trailing_columns():
    lines = (FIXTURES / "search_unifiedauditlog.csv").read_text(encoding="utf-8").splitlines()
    cut = [lines[0], lines[1]] + [line.rsplit(',"', 4)[0] for line in lines[2:]]
    name, events, ctx = read_bytes("\r\n".join(cut).encode())
    assert name == "ual_csv" and len(events) == 3 and ctx.rejected == 0


def test_utf16_out_file_of_auditdata_lines():
    name, events, ctx = read(FIXTURES / "auditdata_outfile_utf16.json")
    assert name == "ual_ndjson" and ctx.rejected == 0
    assert [e["event.action"] for e in events] == [
        "New-MailboxExportRequest", "Get-MailboxExportRequest", "Remove-MailboxExportRequest"]
    assert [e["log.record"] for e in events] == [1, 2, 3]
    assert events[2]["user.target.name"] == "bob@contoso.com"


def test_sentinel_officeactivity_rows_in_a_json_array():
    name, events, ctx = read(FIXTURES / "sentinel_officeactivity_array.json")
    assert name.startswith("sentinel") and ctx.rejected == 0
    export, hard = events
    assert export["event.id"] == event_id_from_record_id("m365.audit", "10000000-0000-0000-0000-000000000001")
    assert export["params"]["filepath"] == "\\\\fs01\\pst$\\bob.pst"
    assert export["user.target.name"] == "bob@contoso.com" and export["source.ip"] == "203.0.113.7"
    assert export["@timestamp"] == datetime(2026, 10, 14, 9, 1)
    assert export["event.provider"] == "Exchange" and export["user.type"] == "admin"
    assert hard["email.item_count"] == 3 and hard["email.folder"] == "\\Deleted Items"
    assert hard["source.ip"] == "198.51.100.20", "Client_IPAddress with its port"
    assert [e["log.record"] for e in events] == [1, 2]


def test_the_same_record_from_sentinel_and_from_defender_has_one_event_id():
    folder = PUBLIC / "otrf-security-datasets"
    _, [sentinel], _ = read(folder / "GoldenSAMLADFSMailAccess_OfficeActivityEvents.json")
    _, [defender], _ = read(folder / "GoldenSAMLADFSMailAccess_Microsoft365DefenderEvents.json")
    assert sentinel["event.id"] == defender["event.id"]
    assert defender["@timestamp"] == sentinel["@timestamp"] == datetime(2021, 8, 2, 13, 32, 7)
    assert defender["source.ip"] == sentinel["source.ip"] == "1.2.3.4"
    assert defender["user.name"] == "pgustavo@simulandlabs.com"


def test_duplicates_are_all_emitted_with_one_id():
    lines = (FIXTURES / "cmdlets.ndjson").read_bytes().splitlines(keepends=True)
    _, events, ctx = read_bytes(lines[0] + lines[1] + lines[0] + lines[0])
    assert len(events) == 4 and ctx.rejected == 0
    assert Counter(e["event.id"] for e in events).most_common(1)[0][1] == 3
    assert [e["log.record"] for e in events] == [1, 2, 3, 4]


# ---------------------------------------------------------------- bad input


def test_empty_inputs_give_no_events_and_no_error():
    assert identify(b"") is None
    for source in M365_SOURCES:
        ctx = ReadContext("empty", "0" * 64)
        assert _events(read_events(source, io.BufferedReader(io.BytesIO(b"")), ctx)) == []
        assert ctx.records == 0
    header_only = (FIXTURES / "classic.csv").read_bytes().split(b"\n", 1)[0] + b"\n"
    name, events, ctx = read_bytes(header_only)
    assert (name, events, ctx.records, ctx.rejected) == ("ual_csv", [], 0, 0)
    ctx = ReadContext("empty array", "0" * 64)
    assert _events(BY_NAME["ual_json_array"].read(io.BufferedReader(io.BytesIO(b"[\r\n]\r\n")), ctx)) == []


def test_csv_line_with_bytes_that_are_not_utf8_loses_only_that_line():
    _, events, ctx = read(FIXTURES / "bad_utf8.csv")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Remove-MailboxExportRequest"]
    assert [e["log.record"] for e in events] == [2, 4]
    assert ctx.rejected == 1 and "not UTF-8" in reasons(ctx)["line 3"]


def test_csv_cut_inside_its_last_record():
    _, events, ctx = read(FIXTURES / "bad_truncated.csv")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Get-MailboxExportRequest"]
    assert ctx.rejected == 1 and "line 4" in reasons(ctx)


def test_unterminated_quote_does_not_swallow_the_rest_of_a_long_file():
    lines = (FIXTURES / "bad_quoting_purview.csv").read_bytes().split(b"\r\n")
    header, good, broken = lines[0], lines[1], lines[2]
    data = b"\r\n".join([header, good, broken] + [good] * 500) + b"\r\n"
    _, events, ctx = read_bytes(data)
    assert len(events) == 501
    assert ctx.rejected == 1 and "line 3" in reasons(ctx)
    assert events[1]["log.record"] == 4 and events[-1]["log.record"] == 503


def test_ndjson_lines_that_are_json_but_not_audit_records_are_rejected_with_their_line():
    good = (FIXTURES / "cmdlets.ndjson").read_bytes().splitlines(keepends=True)
    data = good[0] + b"[1, 2]\n" + b'{"Operation": "HardDelete", "CreationTime": "not a time"}\n' + b'"text"\n' + good[1]
    _, events, ctx = read_bytes(data)
    assert [e["log.record"] for e in events] == [1, 5]
    assert set(reasons(ctx)) == {"line 2", "line 3", "line 4"}
    assert "not a time" in reasons(ctx)["line 3"]


def test_json_array_member_that_is_not_an_object_is_rejected_by_index():
    records = orjson.loads("[" + ",".join((FIXTURES / "cmdlets.ndjson").read_text().splitlines()[:2]) + "]")
    data = orjson.dumps([records[0], 42, records[1]], option=orjson.OPT_INDENT_2)
    name, events, ctx = read_bytes(data)
    assert name == "ual_json_array"
    assert [e["log.record"] for e in events] == [1, 3]
    assert ctx.rejected == 1 and "record 2" in reasons(ctx)


def test_json_array_is_read_in_bounded_pieces():
    """A large array is streamed: members straddle the reader's chunk boundaries and all come out whole."""
    record = orjson.loads((FIXTURES / "cmdlets.ndjson").read_text().splitlines()[0])
    members = [dict(record, Id=f"id-{i}") for i in range(3000)]
    data = orjson.dumps(members, option=orjson.OPT_INDENT_2)
    assert len(data) > 2 * (1 << 20)
    _, events, ctx = read_bytes(data)
    assert len(events) == 3000 and ctx.rejected == 0
    assert [e["log.record"] for e in events[:3]] == [1, 2, 3] and events[-1]["log.record"] == 3000
    assert orjson.loads(events[1234]["event.original"])["Id"] == "id-1234"


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize("fixture, expected", [
    ("cmdlets.ndjson", "ual_ndjson"),
    ("records.ndjson", "ual_ndjson"),
    ("auditdata_outfile_utf16.json", "ual_ndjson"),
    ("content_blob.json", "ual_json_array"),
    ("purview_bom_crlf.csv", "purview_csv"),
    ("purview_us_date_fallback.csv", "purview_csv"),
    ("classic.csv", "ual_csv"),
    ("search_unifiedauditlog.csv", "ual_csv"),
    ("search_unifiedauditlog_utf16.csv", "ual_csv"),
])
def test_each_format_is_recognized_by_content_even_when_the_head_is_cut(fixture, expected):
    data = (FIXTURES / fixture).read_bytes()
    newline = "\n".encode("utf-16-le") if data.startswith(b"\xff\xfe") else b"\n"
    second_line = data.index(newline) + len(newline)
    for cut in (len(data), second_line + 151, second_line + 150):
        head = data[:cut]
        accepted = [source.name for source in M365_SOURCES if source.sniff(head)]
        assert accepted and accepted[0] == expected, (fixture, cut, accepted)


def test_a_big_ndjson_head_cut_mid_line_is_still_ndjson():
    line = (FIXTURES / "records.ndjson").read_bytes().splitlines(keepends=True)[0]
    data = line * (2 * SNIFF_BYTES // len(line))
    assert identify(data[:SNIFF_BYTES]).name == "ual_ndjson"


def test_sentinel_array_is_recognized_as_sentinel():
    head = (FIXTURES / "sentinel_officeactivity_array.json").read_bytes()
    assert identify(head).name.startswith("sentinel")


@pytest.mark.parametrize("data", [
    b"",
    b"2026-10-14T09:00:00Z host sshd[123]: Accepted publickey for bob from 203.0.113.7 port 50123\n" * 20,
    (b"date_time_utc,client_ip,client_hostname,server_ip,server_hostname,source_context,connector_id\n"
     b"2026-10-14T09:00:00.000Z,203.0.113.7,,,EX01,,\n"),
    b'{"TimeGenerated":"2026-10-14T09:00:00Z","EventID":4624,"Computer":"DC01","Type":"SecurityEvent"}\n',
    b'[{"time":"2026-10-14T09:00:00Z","operationName":"Sign-in activity","category":"SignInLogs"}]\n',
    b"[]\n",
    b"{}\n",
    "RecordId,CreationDate\r\nnot,audit\r\n".encode("utf-16"),
], ids=["empty", "syslog", "message-trace-csv", "security-event", "signin-array", "empty-array", "empty-object",
        "utf16-other-csv"])
def test_other_files_are_recognized_by_no_audit_reader(data):
    assert [source.name for source in M365_SOURCES if source.sniff(data[:SNIFF_BYTES])] == []


@pytest.mark.parametrize("path", [
    "go-libaudit/testdata_normal.log",
    "otrf-security-datasets/GoldenSAMLADFSMailAccess_AADAuditEvents.json",
    "otrf-security-datasets/GoldenSAMLADFSMailAccess_WindowsEvents.json",
    "otrf-security-datasets/syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
    "evtx-attack-samples/exec_emotet_ps_4104.evtx",
])
def test_real_files_of_other_formats_are_recognized_by_no_audit_reader(path):
    head = (PUBLIC / path).read_bytes()[:SNIFF_BYTES]
    assert [source.name for source in M365_SOURCES if source.sniff(head)] == []


def test_sources_are_distinct_and_all_audit_log():
    names = [source.name for source in M365_SOURCES]
    assert len(names) == len(set(names))
    assert {"purview_csv", "ual_csv", "ual_ndjson", "ual_json_array"} <= set(names)
    assert all(source.dataset == "m365.audit" for source in M365_SOURCES)
    assert names.index("purview_csv") < names.index("ual_csv")
