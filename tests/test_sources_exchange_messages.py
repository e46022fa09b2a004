"""Message tracking logs and Exchange Online message trace exports, in their exact formats."""

from datetime import datetime

import pytest

from mailhunt.sources.local_time import (
    BadTime,
    ZoneUnknown,
    parse_wall_clock,
    to_utc,
    zone_from_hint,
)
from tests.test_sources_exchange_admin_audit import FIXTURES, read


def test_message_tracking_2013_layout():
    name, events, ctx = read("MSGTRK2026101416-1.LOG")
    assert name == "exchange_message_tracking"
    assert (ctx.records, len(events), ctx.rejected) == (13, 11, 2)
    receive = events[2]
    assert receive["@timestamp"] == datetime(2026, 10, 14, 16, 53, 1, 101000)
    assert receive["event.action"] == receive["email.delivery_status"] == "RECEIVE"
    assert receive["event.provider"] == "SMTP" and receive["event.dataset"] == "exchange.message_tracking"
    assert receive["email.to.address"] == "cfo@fabrikam.com;ap@fabrikam.com"
    assert receive["email.from.address"] == "billing@fabrikam-labs-support.com"
    assert receive["email.subject"] == "Invoice overdue - action required"
    assert receive["email.message_id"] == "<PH0PR1MB7710.invoice1@fabrikam-labs-support.com>"
    assert receive["source.ip"] == "203.0.113.45" and receive["host.name"] == "EXCH01"
    assert receive["email.direction"] == "inbound"
    assert receive["labels"]["network_message_id"] == "5c1a1e2b-7d41-4a8f-08dc-ec2f7b1a9101"
    assert receive["log.record"] == 8 and receive["event.original"].startswith("2026-10-14T16:53:01.101Z,")
    deliver = events[3]
    assert deliver["event.action"] == "DELIVER" and deliver["event.outcome"] == "success"
    assert deliver["event.provider"] == "STOREDRIVER" and deliver["source.ip"] is None
    internal = events[10]
    assert internal["email.direction"] == "outbound" and internal["email.subject"] == "Lunch, Friday"
    assert [r.locator for r in ctx.rejections] == ["line 17", "line 18"]
    assert "10 values where #Fields: names 30" in ctx.rejections[0].reason
    assert "is not an ISO-8601 time" in ctx.rejections[1].reason


def test_message_tracking_2010_layout_without_network_message_id():
    name, events, ctx = read("MSGTRK20261014-1.LOG")
    assert name == "exchange_message_tracking" and ctx.rejected == 0
    receive, deliver = events
    assert receive["email.message_id"] == deliver["email.message_id"] == "<CA+x1y2z@mail.contoso.net>"
    assert receive["source.ip"] == "198.51.100.7" and receive["host.name"] == "EXCH2010"
    assert "network_message_id" not in receive["labels"]
    assert deliver["@timestamp"] == datetime(2026, 10, 14, 9, 31, 3, 2000)


def test_message_trace_export_with_type_line():
    name, events, ctx = read("message_trace_burst.csv")
    assert name == "m365_message_trace_csv" and (ctx.records, ctx.rejected) == (8, 0)
    first = events[0]
    assert first["@timestamp"] == datetime(2026, 10, 14, 16, 31, 7)  # 4:31:07 PM, UTC as the service writes it
    assert first["labels"]["time_zone_source"] == "service_documented_utc"
    assert first["labels"]["query_start"] == "2026-10-14T00:00:00Z"
    assert first["labels"]["query_end"] == "2026-10-15T00:00:00Z"
    assert first["event.dataset"] == "m365.message_trace" and first["email.delivery_status"] == "Delivered"
    assert first["email.from.address"] == "billing@fabrikarn.com" and first["source.ip"] == "185.220.101.10"
    assert first["organization.id"] == "fabrikam.onmicrosoft.com"
    assert first["event.original"].startswith('"outlook.office365.com",')
    assert [e["email.delivery_status"] for e in events[:4]] == ["Delivered", "Delivered", "Quarantined",
                                                                 "FilteredAsSpam"]
    assert len({e["event.id"] for e in events}) == 8


def test_message_trace_documented_columns_and_bad_rows():
    name, events, ctx = read("message_trace.csv")
    assert name == "m365_message_trace_csv"
    assert [e["@timestamp"] for e in events] == [
        datetime(2026, 10, 14, 16, 31, 7, 447000), datetime(2026, 10, 14, 16, 33, 40), datetime(2026, 10, 14, 9, 31, 2)]
    assert events[0]["email.to.address"] == "jdoe@fabrikam.com"
    assert events[0]["labels"]["time_zone_source"] == "recorded"
    assert (ctx.records, ctx.rejected) == (6, 3)
    reasons = {r.locator: r.reason for r in ctx.rejections}
    assert "date_order=mdy or dmy" in reasons["line 4"]
    assert "'yesterday' is not a date and time" in reasons["line 5"]
    assert "5 fields where the header has 11" in reasons["line 7"]


def test_message_trace_date_order_hint():
    _, events, ctx = read("message_trace.csv", {"date_order": "dmy"})
    assert ctx.rejected == 2 and datetime(2026, 4, 3, 10, 0) in [e["@timestamp"] for e in events]


@pytest.mark.parametrize("text, expected", [
    ("2026-10-14T09:31:02Z", datetime(2026, 10, 14, 9, 31, 2)),
    ("2026-10-14T09:31:02.1234567+02:00", datetime(2026, 10, 14, 7, 31, 2, 123456)),
    ("10/14/2026 9:31:02 PM", None),
    ("14.10.2026 21:31:02", None),
    ("14/10/2026 21:31:02", None),
])
def test_wall_clock(text, expected):
    clock = parse_wall_clock(text)
    if expected is not None:
        assert to_utc(clock, None) == expected
    else:
        assert clock.offset is None and clock.moment == datetime(2026, 10, 14, 21, 31, 2)
        with pytest.raises(ZoneUnknown):
            to_utc(clock, None)


def test_zone_hint_applies_daylight_saving():
    berlin = zone_from_hint("Europe/Berlin")
    assert to_utc(parse_wall_clock("10/14/2026 9:00:00 AM"), berlin) == datetime(2026, 10, 14, 7, 0)
    assert to_utc(parse_wall_clock("11/14/2026 9:00:00 AM"), berlin) == datetime(2026, 11, 14, 8, 0)
    with pytest.raises(BadTime):
        parse_wall_clock("02/03/2026 10:00:00")
    with pytest.raises(BadTime):
        parse_wall_clock("13/14/2026 10:00:00")


def test_enhanced_summary_report_utf16_one_event_per_recipient():
    assert (FIXTURES / "message_trace_summary_report.csv").read_bytes()[:2] == b"\xff\xfe"
    name, events, ctx = read("message_trace_summary_report.csv")
    assert name == "m365_message_trace_report"
    assert (ctx.records, ctx.rejected, len(events)) == (4, 1, 4)
    assert [(e["email.to.address"], e["email.delivery_status"]) for e in events] == [
        ("jdoe@fabrikam.com", "Deliver"), ("ap@fabrikam.com", "Quarantine"), ("cfo@fabrikam.com", "Deliver"),
        ("partner@contoso.net", "Send")]
    quarantined = events[1]
    assert quarantined["@timestamp"] == datetime(2026, 10, 14, 16, 35, 2, 110000)
    assert quarantined["labels"]["recipient_status"] == "Receive, Quarantine"
    assert quarantined["email.direction"] == "inbound" and events[3]["email.direction"] == "outbound"
    assert len({e["event.id"] for e in events}) == 4
    assert ctx.rejections[0].locator == "line 5"


def test_extended_report_reads_like_message_tracking():
    name, events, ctx = read("message_trace_extended_report.csv")
    assert name == "m365_message_trace_report" and len(events) == 2
    receive, deliver = events
    assert receive["event.dataset"] == "m365.message_trace" and receive["event.action"] == "RECEIVE"
    assert receive["@timestamp"] == datetime(2026, 10, 14, 16, 31, 7, 447000)
    assert receive["source.ip"] == "185.220.101.10" and receive["labels"]["report"] == "extended"
    assert deliver["email.message_id"] == receive["email.message_id"]
    assert ctx.rejected == 1 and "2 fields where the header has 30" in ctx.rejections[0].reason
