"""Unified audit log readers on the real public samples and on fixtures in the exact export formats."""

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from mailhunt.events import SCHEMA
from mailhunt.sources import SOURCES, ReadContext, identify, read_events
from mailhunt.sources.inputs import iter_evidence
from tests.corpus import PUBLIC

FIXTURES = Path(__file__).parent / "fixtures" / "m365"


def read(path):
    [item] = list(iter_evidence([path]))
    source = identify(item.head(64 * 1024))
    assert source is not None, f"{path} not recognized"
    ctx = ReadContext(item.display, item.sha256())
    with item.open() as stream:
        batches = list(read_events(source, stream, ctx))
    assert all(batch.schema == SCHEMA for batch in batches)
    events = [event for batch in batches for event in batch.to_pylist()]
    for event in events:
        event["params"] = dict(event["params"]) if event["params"] is not None else None
    return source.name, events, ctx


def test_real_purview_export():
    name, events, ctx = read(PUBLIC / "huntress-ctf-2023" / "purview.csv")
    assert name == "purview_csv"
    assert (ctx.records, len(events), ctx.rejected) == (219, 219, 0)
    actions = Counter(e["event.action"] for e in events)
    assert actions["New-InboxRule"] == 38 and actions["UserLoggedIn"] == 20 and actions["Set-MailboxPlan"] == 27
    first = events[0]
    assert first["@timestamp"] == datetime(2023, 9, 20, 4, 5, 3)
    assert first["event.action"] == "Add service principal." and first["log.record"] == 2
    rule = next(e for e in events if e["event.action"] == "New-InboxRule")
    assert rule["event.dataset"] == "m365.audit" and rule["event.code"] == "1"
    assert {"movetofolder", "markasread"} & set(rule["params"])
    assert rule["parameters"].startswith("-")
    assert rule["event.original"].startswith("{") and '"New-InboxRule"' in rule["event.original"]
    assert all(e["log.file.sha256"] == ctx.sha256 for e in events)
    assert len({e["event.id"] for e in events}) == 219


def test_a_failed_sign_in_is_a_failure_though_its_result_status_says_success():
    """The service logs ``UserLoginFailed`` with ``"ResultStatus": "Success"`` (the sample's record b21a7da1 does):
    the outcome is the sign-in's, not the logging's."""
    _, events, _ = read(PUBLIC / "huntress-ctf-2023" / "purview.csv")
    failed = [e for e in events if e["event.action"] == "UserLoginFailed"]
    assert failed and '"ResultStatus":"Success"' in next(
        e["event.original"] for e in failed if e["@timestamp"] == datetime(2023, 9, 26, 1, 51, 13))
    assert {e["event.outcome"] for e in failed} == {"failure"}
    assert {e["event.outcome"] for e in events if e["event.action"] == "UserLoggedIn"} == {"success"}


def test_real_management_api_ndjson_matches_elastic_expectations():
    name, events, ctx = read(PUBLIC / "elastic-beats-o365" / "02-exchange-item.log")
    assert name == "ual_ndjson" and len(events) == 9 and ctx.rejected == 0
    first = events[0]
    assert first["source.ip"] == "::1"
    assert first["event.action"] == "Create" and first["event.provider"] == "Exchange"
    assert first["user.name"] == "s-1-5-18" and first["user.type"] == "system"
    assert first["host.name"] == "AM6PR01MB4535 (15.20.2729.032)"
    assert first["email.subject"] == "The new SIEMTest group is ready"
    assert first["email.folder"] == "\\Inbox"
    assert first["@timestamp"] == datetime(2020, 2, 17, 17, 12, 3)
    assert Counter(e["event.action"] for e in events) == {"Create": 3, "ModifyFolderPermissions": 6}


def test_real_sentinel_officeactivity_row():
    name, [event], _ctx = read(PUBLIC / "otrf-security-datasets" / "GoldenSAMLADFSMailAccess_OfficeActivityEvents.json")
    assert name == "sentinel_officeactivity"
    assert event["event.action"] == "MailItemsAccessed" and event["event.code"] == "50"
    assert event["source.ip"] == "1.2.3.4" and event["user.name"] == "pgustavo@simulandlabs.com"
    assert event["email.item_count"] == 7 and event["email.folder"] == "\\Inbox"
    assert event["app.id"] == "5a95e683-08ad-424e-a441-1d1aec52c02c", "the client app, not Graph, is the app that read mail"
    assert event["@timestamp"] == datetime(2021, 8, 2, 13, 32, 7)


def test_real_defender_rows_keep_the_audit_record_and_say_why_others_are_not_read():
    name, events, ctx = read(PUBLIC / "otrf-security-datasets" / "GoldenSAMLADFSMailAccess_Microsoft365DefenderEvents.json")
    assert name == "sentinel_officeactivity"
    assert [e["event.action"] for e in events] == ["MailItemsAccessed"]
    assert ctx.records == 9 and ctx.rejected == 8
    assert all("not a unified audit log record" in r.reason for r in ctx.rejections)
    assert any("LdapSearch" in r.reason for r in ctx.rejections)


@pytest.mark.parametrize("fixture, source", [
    ("classic.csv", "ual_csv"),
    ("search_unifiedauditlog.csv", "ual_csv"),
    ("search_unifiedauditlog_utf16.csv", "ual_csv"),
    ("audit.ndjson", "ual_ndjson"),
    ("content_blob.json", "ual_json_array"),
])
def test_fixture_formats_read_the_same_three_records(fixture, source):
    name, events, ctx = read(FIXTURES / fixture)
    assert name == source and ctx.rejected == 0
    export, removal, audit_off = events[:3]
    assert export["event.action"] == "New-MailboxExportRequest"
    assert export["params"]["filepath"] == "\\\\fs01\\pst$\\bob.pst"
    assert export["user.target.name"] == "bob@contoso.com"
    assert export["source.ip"] == "203.0.113.7"
    assert removal["user.target.name"] == "bob@contoso.com"
    assert removal["source.ip"] == "2001:db8::1"
    assert removal["parameters"] == '-Identity bob@contoso.com\\MailboxExport -Confirm False'
    assert audit_off["params"]["auditenabled"] == "False" and audit_off["source.ip"] == "2001:db8::2"
    assert export["user.type"] == "admin" and export["event.outcome"] == "success"
    unit = "record" if source == "ual_json_array" else "line"
    assert [e["log.record"] for e in events[:3]] == ([1, 2, 3] if unit == "record" else
                                                     [events[0]["log.record"], events[0]["log.record"] + 1,
                                                      events[0]["log.record"] + 2])


def test_duplicates_get_the_same_event_id():
    _, events, _ = read(FIXTURES / "audit.ndjson")
    assert len(events) == 4 and events[0]["event.id"] == events[3]["event.id"]


@pytest.mark.parametrize("text, ip", [
    ("1.2.3.4", "1.2.3.4"), ("1.2.3.4:5678", "1.2.3.4"), ("[2001:db8::1]:443", "2001:db8::1"),
    ("2001:db8::1", "2001:db8::1"), ("::1", "::1"), ("not an ip", None), ("", None), ("fe80::1%eth0", None),
])
def test_client_ip_forms(tmp_path, text, ip):
    path = tmp_path / "one.ndjson"
    path.write_text('{"CreationTime":"2026-10-14T09:00:00","Id":"a","Operation":"UserLoggedIn",'
                    f'"Workload":"AzureActiveDirectory","ClientIP":"{text}"}}\n')
    _, [event], _ = read(path)
    assert event["source.ip"] == ip


def test_truncated_ndjson_and_bad_bytes_lose_only_the_bad_lines():
    _, events, ctx = read(FIXTURES / "bad_truncated.ndjson")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Remove-MailboxExportRequest"]
    reasons = {r.locator: r.reason for r in ctx.rejections}
    assert "not UTF-8" in reasons["line 2"]
    assert "not valid JSON" in reasons["line 5"]
    assert ctx.rejected == 2


def test_broken_quoting_and_non_json_auditdata_keep_the_good_rows():
    _, events, ctx = read(FIXTURES / "bad_quoting_purview.csv")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Set-Mailbox"]
    reasons = {r.locator: r.reason for r in ctx.rejections}
    assert "unterminated quoted field" in reasons["line 3"]
    assert "not valid JSON" in reasons["line 4"]
    assert [e["log.record"] for e in events] == [2, 5]


def test_truncated_json_array_keeps_complete_members():
    _, events, ctx = read(FIXTURES / "bad_truncated_array.json")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Remove-MailboxExportRequest"]
    assert ctx.rejected == 1 and ctx.rejections[0].locator == "record 3"


def test_record_without_time_or_operation_is_rejected_with_reason(tmp_path):
    path = tmp_path / "odd.ndjson"
    path.write_text('{"CreationTime":"2026-10-14T09:00:00","Operation":"HardDelete","Workload":"Exchange"}\n'
                    '{"Operation":"HardDelete","Workload":"Exchange","RecordType":3}\n'
                    '{"CreationTime":"yesterday","Operation":"HardDelete","Workload":"Exchange"}\n')
    _, events, ctx = read(path)
    assert len(events) == 1
    assert [r.reason for r in ctx.rejections] == ["no CreationTime", "CreationTime 'yesterday' is not an ISO-8601 time"]


def test_sniffing_is_by_content():
    other = [PUBLIC / "go-libaudit" / "testdata_normal.log",
             PUBLIC / "otrf-security-datasets" / "GoldenSAMLADFSMailAccess_AADAuditEvents.json"]
    for path in other:
        source = identify(path.read_bytes()[:65536])
        assert source is None or not source.dataset.startswith("m365"), path
    assert identify(other[0].read_bytes()[:65536]).name == "auditd"
    names = [s.name for s in SOURCES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("text, pairs", [
    ('-SearchName "Board minutes Q3" -Purge -PurgeType "HardDelete" -Confirm:$false',
     [("SearchName", "Board minutes Q3"), ("Purge", "True"), ("PurgeType", "HardDelete"), ("Confirm", "False")]),
    ('-Identity "cfo@x.com\\MailboxExport" -Confirm "False"',
     [("Identity", "cfo@x.com\\MailboxExport"), ("Confirm", "False")]),
    ("-SetSCL -1 -Name 'Lookalike allow'", [("SetSCL", "-1"), ("Name", "Lookalike allow")]),
    ('-Name "unbalanced', [("Name", '"unbalanced')]),
])
def test_powershell_parameter_text(text, pairs):
    from mailhunt.sources.cmdlet_parameters import parse_parameter_text

    assert parse_parameter_text(text) == pairs


def test_ndjson_read_in_parallel_chunks_keeps_order_counts_and_every_good_record(tmp_path, monkeypatch):
    from mailhunt.sources import m365_audit

    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 2048)
    lines = []
    for n in range(1, 301):
        if n % 50 == 0:
            lines.append(b'{"CreationTime":"2026-10-14T09:00:00","Id":"bad' + str(n).encode() + b'","Operat')
        elif n % 77 == 0:
            lines.append(b'{"CreationTime":"2026-10-14T09:00:00","Id":"x","Operation":"Caf\xe9"}')
        else:
            lines.append(b'{"CreationTime":"2026-10-14T09:%02d:00","Id":"r%d","Operation":"HardDelete",'
                         b'"Workload":"Exchange","UserId":"a@x.com"}' % (n % 60, n))
    path = tmp_path / "many.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    runs = [read(path) for _ in range(2)]
    for _, events, ctx in runs:
        bad = {n for n in range(1, 301) if n % 50 == 0 or n % 77 == 0}
        assert [e["log.record"] for e in events] == [n for n in range(1, 301) if n not in bad]
        assert ctx.records == 300 and ctx.rejected == len(bad)
        assert sorted(int(r.locator.split()[1]) for r in ctx.rejections) == sorted(bad)
    assert [str(r) for r in runs[0][2].rejections] == [str(r) for r in runs[1][2].rejections]


def test_runaway_line_is_skipped_with_its_number_and_reading_goes_on(tmp_path, monkeypatch):
    from mailhunt.sources import base, m365_audit

    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 4096)
    good = b'{"CreationTime":"2026-10-14T09:00:00","Id":"%d","Operation":"HardDelete","Workload":"Exchange"}'
    path = tmp_path / "runaway.ndjson"
    path.write_bytes(good % 1 + b"\n" + b'{"Operation":"' + b"A" * 20000 + b'"}\n' + good % 3 + b"\n" + good % 4 + b"\n")
    _, events, ctx = read(path)
    assert [e["log.record"] for e in events] == [1, 3, 4]
    assert ctx.records == 4 and ctx.rejected == 1
    assert ctx.rejections[0].locator == "line 2" and "longer than" in ctx.rejections[0].reason


def test_runaway_line_ending_exactly_at_a_block_edge(tmp_path, monkeypatch):
    from mailhunt.sources import base, m365_audit

    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 2048)
    good = b'{"CreationTime":"2026-10-14T09:00:00","Id":"%d","Operation":"HardDelete","Workload":"Exchange"}\n'
    runaway = b"x" * (4 * 1024 - len(good % 1) - 1) + b"\n"
    path = tmp_path / "edge.ndjson"
    path.write_bytes(good % 1 + runaway + good % 3 + good % 4)
    _, events, ctx = read(path)
    assert [e["log.record"] for e in events] == [1, 3, 4]
    assert [r.locator for r in ctx.rejections] == ["line 2"]
