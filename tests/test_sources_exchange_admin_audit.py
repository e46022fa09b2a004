"""Exchange admin audit log readers on fixtures in the exact export formats."""

from datetime import datetime
from pathlib import Path

import pytest

from mailhunt.events import SCHEMA
from mailhunt.sources import ReadContext, identify
from mailhunt.sources.admin_audit_parameters import parse_cmdlet_parameters_cell

FIXTURES = Path(__file__).parent / "fixtures" / "exchange"


def read(name, hints=None, data=None):
    data = data if data is not None else (FIXTURES / name).read_bytes()
    source = identify(data[:65536])
    assert source is not None, f"{name} not recognized"
    ctx = ReadContext(name, "0" * 64, dict(hints or {}))
    import io
    batches = list(source.read(io.BufferedReader(io.BytesIO(data)), ctx))
    assert all(batch.schema == SCHEMA for batch in batches)
    events = [e for batch in batches for e in batch.to_pylist()]
    for event in events:
        event["params"] = dict(event["params"] or [])
        event["labels"] = dict(event["labels"] or [])
    return source.name, events, ctx


def test_xml_report_fields():
    name, events, ctx = read("admin_audit_report.xml")
    assert name == "admin_audit_xml"
    assert (ctx.records, ctx.rejected, len(events)) == (3, 0, 3)
    export, removal, config = events
    assert export["event.action"] == "New-MailboxExportRequest"
    assert export["@timestamp"] == datetime(2026, 10, 14, 15, 2, 11)  # 08:02:11-07:00
    assert export["event.dataset"] == "exchange.admin_audit" and export["event.outcome"] == "success"
    assert export["user.name"] == "corp.fabrikam.com/users/administrator"
    assert export["user.domain"] == "corp.fabrikam.com"
    assert export["user.target.name"] == "jdoe"
    assert export["params"] == {"mailbox": "jdoe", "filepath": "\\\\EXCH01\\c$\\Windows\\Temp\\jdoe.pst"}
    assert export["host.name"] == "EXCH01 (15.02.1544.004)"
    assert export["log.record"] == 3 and export["labels"]["time_zone_source"] == "recorded"
    assert export["event.original"].startswith('<Event Caller="corp.fabrikam.com/Users/Administrator"')
    assert export["event.original"].endswith("</Event>")
    assert removal["user.target.name"] == "jdoe" and removal["params"]["confirm"] == "False"
    assert removal["log.record"] == 10
    assert config["params"] == {"adminauditlogenabled": "False"}


def test_damaged_xml_keeps_the_good_events_and_names_the_bad_lines():
    _name, events, ctx = read("bad_admin_audit_report.xml")
    assert [e["event.action"] for e in events] == ["New-MailboxExportRequest", "Set-AdminAuditLogConfig"]
    assert [e["log.record"] for e in events] == [3, 17]
    assert ctx.records == 4 and ctx.rejected == 2
    first, second = ctx.rejections
    assert first.locator == "line 10" and "Event element damaged" in first.reason
    assert second.locator == "line 25" and "unclosed token" in second.reason


def test_xml_with_a_dtd_is_refused():
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE SearchResults [<!ENTITY a "aaaa">]>\n<SearchResults>\n'
            b'<Event Cmdlet="Set-Mailbox" RunDate="2026-10-14T08:00:00Z" Caller="x"/>\n</SearchResults>\n')
    name, events, ctx = read("dtd.xml", data=data)
    assert name == "admin_audit_xml" and events == []
    assert ctx.rejected == 1 and "DTD" in ctx.rejections[0].reason


def test_self_closing_event_and_bad_run_date():
    data = (b'<?xml version="1.0" encoding="utf-8"?>\n<SearchResults>\n'
            b'<Event Caller="CORP\\admin" Cmdlet="Get-Mailbox" ObjectModified="jdoe" RunDate="2026-10-14T08:00:00Z" '
            b'Succeeded="false" Error="Access denied" OriginatingServer="EXCH01"/>\n'
            b'<Event Caller="CORP\\admin" Cmdlet="Set-Mailbox" RunDate="10/14/2026 8:00:00 AM"/>\n</SearchResults>\n')
    _, events, ctx = read("small.xml", data=data)
    [event] = events
    assert event["event.outcome"] == "failure" and event["labels"]["error"] == "Access denied"
    assert event["user.domain"] == "corp" and event["event.original"].endswith('OriginatingServer="EXCH01"/>')
    assert ctx.rejected == 1 and ctx.rejections[0].locator == "line 4"
    assert "timezone=" in ctx.rejections[0].reason


def test_csv_export_without_zone_needs_a_hint():
    name, events, ctx = read("admin_audit_export.csv")
    assert name == "admin_audit_csv" and events == []
    assert (ctx.records, ctx.rejected) == (2, 2)
    assert ctx.rejections[0].locator == "line 3"
    assert "has no time zone" in ctx.rejections[0].reason and "timezone=" in ctx.rejections[0].reason


def test_csv_export_with_zone_hint():
    _, events, ctx = read("admin_audit_export.csv", {"timezone": "America/Los_Angeles"})
    assert ctx.rejected == 0
    export, removal = events
    assert export["@timestamp"] == datetime(2026, 10, 14, 15, 2, 11)  # PDT is UTC-7 in October
    assert export["labels"] == {"time_zone_source": "hint America/Los_Angeles", "parameters_form": "values_lost"}
    assert export["params"] == {} and export["user.target.name"] == "corp.fabrikam.com/Users/jdoe\\MailboxExport"
    assert removal["event.action"] == "Remove-MailboxExportRequest" and removal["source.ip"] == "10.0.4.21"
    assert removal["event.original"].startswith('"9c1f1d3e-') and removal["log.record"] == 4


def test_csv_offset_hint_and_bad_hint():
    _, events, _ = read("admin_audit_export.csv", {"timezone": "+02:00"})
    assert events[0]["@timestamp"] == datetime(2026, 10, 14, 6, 2, 11)
    _, events, ctx = read("admin_audit_export.csv", {"timezone": "Mars/Olympus"})
    assert events == [] and "not UTC, an offset" in ctx.rejections[0].reason


def test_flattened_csv_export():
    _, events, ctx = read("admin_audit_flattened.csv")
    assert [e["event.action"] for e in events] == [
        "New-MailboxExportRequest", "Remove-MailboxExportRequest", "Search-Mailbox", "New-TransportRule"]
    search = events[2]
    assert search["params"]["deletecontent"] == "True" and search["params"]["searchquery"] == 'subject:"invoice"'
    assert search["event.original"].count("\n") == 3 and search["log.record"] == 6
    rule = events[3]
    assert rule["rule.name"] == "Invoice routing" and rule["params"]["setscl"] == "-1"
    assert rule["params"]["subjectcontainswords"] == "Invoice overdue"
    assert ctx.rejected == 2
    assert [r.locator for r in ctx.rejections] == ["line 10", "line 14"]
    assert "'not a date' is not a date and time" in ctx.rejections[0].reason
    assert "unterminated quoted field" in ctx.rejections[1].reason


def test_the_same_entry_as_csv_and_xml_has_one_id():
    _, xml_events, _ = read("admin_audit_report.xml")
    _, csv_events, _ = read("admin_audit_flattened.csv")
    assert xml_events[0]["event.id"] == csv_events[0]["event.id"]


@pytest.mark.parametrize("cell, pairs, form", [
    ("System.Collections.ArrayList", [], "values_lost"),
    ("Microsoft.Exchange.Data.MultiValuedProperty`1[Microsoft.Exchange.Data.AdminAuditLogCmdletParameter]", [],
     "values_lost"),
    ("{Identity, DeleteContent, Force}", [("Identity", ""), ("DeleteContent", ""), ("Force", "")], "names_only"),
    ("Identity=jdoe;DeleteContent=True", [("Identity", "jdoe"), ("DeleteContent", "True")], "name_value"),
    ("Mailbox=jdoe\r\nFilePath=\\\\srv\\pst$\\a;b.pst", [("Mailbox", "jdoe"), ("FilePath", "\\\\srv\\pst$\\a;b.pst")],
     "name_value"),
    ("@{Name=Identity; Value=jdoe} @{Name=Confirm; Value=False}", [("Identity", "jdoe"), ("Confirm", "False")],
     "name_value"),
    ('-Identity "jdoe\\MailboxExport" -Confirm:$false', [("Identity", "jdoe\\MailboxExport"), ("Confirm", "False")],
     "name_value"),
    ("", [], "empty"),
    ("just some words", [], "unreadable"),
])
def test_cmdlet_parameter_cells(cell, pairs, form):
    assert parse_cmdlet_parameters_cell(cell) == (pairs, form)


def test_unified_audit_csv_is_not_taken_for_an_admin_audit_export():
    head = b'CreationDate,UserIds,Operations,AuditData\r\n2026-10-14T08:00:00,a,Set-Mailbox,"{}"\r\n'
    assert identify(head).name == "ual_csv"


@pytest.mark.parametrize("name", ["admin_audit_report.xml", "bad_admin_audit_report.xml"])
@pytest.mark.parametrize("chunk", [7, 64, 333])
def test_xml_read_in_small_chunks_gives_the_same_result(monkeypatch, name, chunk):
    from mailhunt.sources.exchange_admin_audit import AdminAuditXml

    _, whole, whole_ctx = read(name)
    monkeypatch.setattr(AdminAuditXml, "chunk_bytes", chunk)
    _, pieces, ctx = read(name)
    assert [(e["event.id"], e["log.record"], e["event.original"]) for e in pieces] == \
        [(e["event.id"], e["log.record"], e["event.original"]) for e in whole]
    assert [str(r) for r in ctx.rejections] == [str(r) for r in whole_ctx.rejections]
    assert ctx.records == whole_ctx.records


def test_the_entry_in_both_a_plain_csv_and_the_xml_report_keeps_the_xml_parameter_values(tmp_path):
    """A plain Export-Csv loses CmdletParameters values; the case keeps the copy that has them, whichever file
    comes first."""
    from mailhunt.config import Config
    from mailhunt.hunt import hunt

    csv_copy, xml_copy = tmp_path / "a_export.csv", tmp_path / "b_report.xml"
    csv_copy.write_bytes((FIXTURES / "admin_audit_export.csv").read_bytes())
    xml_copy.write_bytes((FIXTURES / "admin_audit_report.xml").read_bytes())
    _, csv_events, _ = read("admin_audit_export.csv", {"timezone": "America/Los_Angeles"})
    _, xml_events, _ = read("admin_audit_report.xml")
    shared = {e["event.id"] for e in csv_events} & {e["event.id"] for e in xml_events}
    assert shared, "the fixtures hold the same entries"
    result = hunt([csv_copy, xml_copy], tmp_path / "case", Config(), read_hints={"timezone": "America/Los_Angeles"})
    import duckdb
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        kept = dict(db.execute('SELECT "event.id", "log.file.path" FROM events').fetchall())
    assert all(kept[event_id] == str(xml_copy) for event_id in shared)
    export = next(e for e in xml_events if e["event.id"] in shared and e["event.action"] == "New-MailboxExportRequest")
    assert export["params"]["filepath"]
    assert sum(s.new_events for s in result.inputs) == len(kept)
