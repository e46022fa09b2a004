"""What fuzzing the readers found (test_fuzz_readers), each as a file of a few lines.

Every record a reader meets is counted, and either kept or rejected with its
locator; a damaged file never makes a reader loop; a format the readers know
is recognized whatever its layout.
"""

from __future__ import annotations

import io

from mailhunt.sources import SNIFF_BYTES, SOURCES, ReadContext, identify, read_events

BY_NAME = {source.name: source for source in SOURCES}


class BoundedContext(ReadContext):
    """A context that stops a reader which keeps rejecting the same damage over and over."""

    def reject(self, locator: str, reason: str) -> None:
        super().reject(locator, reason)
        assert self.rejected < 100, f"reader keeps rejecting (last: {locator}: {reason})"


def read(name: str, data: bytes, hints: dict[str, str] | None = None) -> tuple[list[dict], ReadContext]:
    ctx = BoundedContext("evidence", "0" * 64, dict(hints or {}))
    rows = [row for table in read_events(BY_NAME[name], io.BufferedReader(io.BytesIO(data)), ctx)
            for row in table.to_pylist()]
    return rows, ctx


TRACKING = (b"#Software: Microsoft Exchange Server\r\n#Version: 15.02.1544.004\r\n#Log-type: Message Tracking Log\r\n"
            b"#Date: 2026-10-14T09:00:00.000Z\r\n"
            b"#Fields: date-time,client-ip,server-hostname,source,event-id,message-id,sender-address,recipient-address\r\n")


def test_a_line_that_is_not_utf8_is_a_record_rejected():
    data = (TRACKING + b"2026-10-14T09:31:02.000Z,10.0.4.5,EXCH01,SMTP,RECEIVE,<a@x>,a@x.com,b@y.com\r\n"
            + b"2026-10-14T09:31:03.000Z,10.0.4.5,EXCH01,SMTP,RECEIVE,<\xff@x>,a@x.com,b@y.com\r\n"
            + b"2026-10-14T09:31:04.000Z,10.0.4.5,EXCH01,STOREDRIVER,DELIVER,<c@x>,a@x.com,b@y.com\r\n")
    rows, ctx = read("exchange_message_tracking", data)
    assert [row["log.record"] for row in rows] == [6, 8]
    assert [(r.locator, r.reason) for r in ctx.rejections] == [("line 7", "not UTF-8 text (byte 55 of the line)")]
    assert ctx.records == 3 and ctx.rejected == 1


ADMIN_CSV_HEADER = b'"RunDate","Caller","CmdletName","ObjectModified","CmdletParameters","Succeeded"\r\n'


def test_a_csv_record_with_an_unterminated_quote_is_counted_as_the_record_it_rejects():
    data = (ADMIN_CSV_HEADER
            + b'"2026-10-14T08:02:11-07:00","Administrator","New-MailboxExportRequest","jdoe","Mailbox=jdoe","True"\r\n'
            + b'"2026-10-14T08:41:52-07:00","Administrator","Remove-MailboxExportRequest","jdoe","Identity=jdoe\r\n')
    rows, ctx = read("admin_audit_csv", data)
    assert [row["event.action"] for row in rows] == ["New-MailboxExportRequest"]
    assert [(r.locator, r.reason) for r in ctx.rejections] == [
        ("line 3", "unterminated quoted field at end of file (truncated?)")]
    assert ctx.records == 2 and ctx.rejected == 1


def test_a_csv_record_that_cannot_be_parsed_is_counted_as_the_record_it_rejects():
    # a CR inside an unquoted field: Python's csv module refuses the record
    data = (ADMIN_CSV_HEADER
            + b'"2026-10-14T08:02:11-07:00","Administrator","New-MailboxExportRequest","jdoe","Mailbox=jdoe","True"\r\n'
            + b'"2026-10-14T08:41:52-07:00","Administrator",Remove-Mailbox\rExportRequest,"jdoe","","True"\r\n')
    rows, ctx = read("admin_audit_csv", data)
    assert len(rows) == 1 and ctx.records == 2 and ctx.rejected == 1
    assert ctx.rejections[0].locator == "line 3" and "cannot be parsed" in ctx.rejections[0].reason


def test_an_audit_group_with_a_bad_time_is_rejected_with_all_its_records():
    data = (b"type=SYSCALL msg=audit(1791990000.123:100): arch=c000003e syscall=59 success=yes exit=0 pid=2230 "
            b'auid=1001 uid=0 comm="sed" exe="/usr/bin/sed"\n'
            b'type=SYSCALL msg=audit(17919900O1.000:101): arch=c000003e syscall=59 success=yes pid=11 comm="rm"\n'
            b'type=EXECVE msg=audit(17919900O1.000:101): argc=2 a0="rm" a1="/var/mail/bob"\n'
            b"type=EOE msg=audit(17919900O1.000:101):\n"
            b'type=EXECVE msg=audit(1791990000.123:100): argc=2 a0="sed" a1="/var/mail/bob"\n'
            b"type=EOE msg=audit(1791990000.123:100):\n")
    rows, ctx = read("auditd", data)
    assert [row["log.record"] for row in rows] == [1]
    assert ctx.records == 6 and ctx.rejected == 3
    [rejection] = ctx.rejections
    assert rejection.locator == "line 2" and rejection.reason.endswith("; the group's 3 records rejected")


XML_EVENT = ('  <Event Caller="Administrator" Cmdlet="{cmdlet}" ObjectModified="jdoe" RunDate="2026-10-14T08:0{n}:00-07:00" '
             'Succeeded="true" Error="None" OriginatingServer="EXCH01">\n'
             '    <CmdletParameters>\n      <Parameter Name="Identity" Value="jdoe" />\n    </CmdletParameters>\n'
             '  </Event>\n')


def test_an_admin_audit_report_cut_inside_a_start_tag_after_a_damaged_event_ends():
    good = XML_EVENT.format(cmdlet="New-MailboxExportRequest", n=1)
    damaged = XML_EVENT.format(cmdlet="Remove-MailboxExportRequest", n=2).replace('Cmdlet="Remove', 'Cmdlet="Remove"')
    cut = XML_EVENT.format(cmdlet="Set-Mailbox", n=3)[:60]
    data = ('<?xml version="1.0" encoding="utf-8"?>\n<SearchResults>\n' + good + damaged + cut).encode()
    rows, ctx = read("admin_audit_xml", data)
    assert [row["event.action"] for row in rows] == ["New-MailboxExportRequest"]
    assert [r.locator for r in ctx.rejections] == ["line 8", "line 13"]
    assert all(r.reason.startswith("Event element damaged") for r in ctx.rejections)
    assert ctx.records == 3 and ctx.rejected == 2


SYSLOG_ROW = ('{{"TimeGenerated":"2026-10-14T09:3{n}:05.101Z","Computer":"mx01","EventTime":"2026-10-14T09:3{n}:05Z",'
              '"Facility":"authpriv","HostName":"mx01","SeverityLevel":"notice","SyslogMessage":"mallory : TTY=pts/0 ; '
              'PWD=/home/mallory ; USER=root ; COMMAND=/usr/bin/doveadm purge -u alice","ProcessName":"sudo",'
              '"ProcessID":223{n},"Type":"Syslog"}}')


def test_a_sentinel_syslog_array_is_recognized_on_one_line_and_pretty_printed():
    one_line = ("[" + ",".join(SYSLOG_ROW.format(n=n) for n in range(3)) + "]").encode()
    pretty = ("[\n  " + ",\n  ".join(SYSLOG_ROW.format(n=n).replace('","', '",\n    "') for n in range(3))
              + "\n]\n").encode()
    for data in (one_line, pretty):
        source = identify(data[:SNIFF_BYTES])
        assert source is not None and source.name == "sentinel_syslog_array"
        rows, ctx = read(source.name, data)
        assert [row["log.record"] for row in rows] == [1, 2, 3] and ctx.rejected == 0
        assert {row["host.name"] for row in rows} == {"mx01"}
