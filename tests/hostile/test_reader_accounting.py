"""What fuzzing the readers found (test_fuzz_readers), each as a file of a few lines.

Every record a reader meets is counted, and either kept or rejected with its
locator; a damaged file never makes a reader loop; a format the readers know
is recognized whatever its layout.
"""

from __future__ import annotations

import csv
import io

import orjson

from mailhunt.sources import SNIFF_BYTES, SOURCES, ReadContext, identify, read_events
from tests.corpus import REPO

BY_NAME = {source.name: source for source in SOURCES}
FIXTURES = REPO / "tests" / "hostile" / "fixtures"
WINLOGBEAT = (REPO / "tests" / "fixtures" / "windows" / "ws042_powershell.winlogbeat.ndjson").read_bytes().splitlines()[0]


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
    # a field over the csv module's size limit: it refuses the record
    data = (ADMIN_CSV_HEADER
            + b'"2026-10-14T08:02:11-07:00","Administrator","New-MailboxExportRequest","jdoe","Mailbox=jdoe","True"\r\n'
            + b'"2026-10-14T08:41:52-07:00","Administrator","Remove-MailboxExportRequest","jdoe","'
            + b"Identity=" + b"x" * 400 + b'","True"\r\n')
    limit = csv.field_size_limit(200)
    try:
        rows, ctx = read("admin_audit_csv", data)
    finally:
        csv.field_size_limit(limit)
    assert len(rows) == 1 and ctx.records == 2 and ctx.rejected == 1
    assert ctx.rejections[0].locator == "line 3" and "cannot be parsed" in ctx.rejections[0].reason


def test_a_lone_cr_in_an_unquoted_field_ends_the_row_and_each_half_is_counted():
    data = (ADMIN_CSV_HEADER
            + b'"2026-10-14T08:02:11-07:00","Administrator","New-MailboxExportRequest","jdoe","Mailbox=jdoe","True"\r\n'
            + b'"2026-10-14T08:41:52-07:00","Administrator",Remove-Mailbox\rExportRequest,"jdoe","","True"\r\n')
    rows, ctx = read("admin_audit_csv", data)
    assert len(rows) == 1 and ctx.records == 3 and ctx.rejected == 2
    assert [r.locator for r in ctx.rejections] == ["line 3", "line 3"]


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


ENTRA_SIGN_IN = (b'[{"id":"7c2e5f0a-3b1d-4c8e-9a10-2f6b7d4e1c11","createdDateTime":"2026-10-12T08:02:11Z",'
                 b'"userPrincipalName":5,"userId":true,"appId":["x"],"ipAddress":{"v":4},'
                 b'"location":{"countryOrRegion":3},"status":{"errorCode":0}},'
                 b'{"id":"7c2e5f0a-3b1d-4c8e-9a10-2f6b7d4e1c12","createdDateTime":"2026-10-12T08:03:11Z",'
                 b'"userPrincipalName":"Adele.Vance@fabrikam-labs.com","status":{"errorCode":50126}}]')
UNIFIED_LOG = (b'{"timestamp":"2026-10-14 09:31:02.123456+0000","eventMessage":"x","processImagePath":"/bin/x",'
               b'"processID":9223372036854775808,"subsystem":{"a":1},"eventType":true,"messageType":7}\n')
SENTINEL_SYSLOG = (b'{"SyslogMessage":"session opened","Facility":"auth","EventTime":"2026-10-14T09:31:02Z",'
                   b'"HostName":7,"ProcessID":-9223372036854775809,"ProcessName":"sshd"}\n')


def test_json_values_of_an_unexpected_type_become_text_not_an_exception():
    rows, ctx = read("entra_signin_json", ENTRA_SIGN_IN)
    assert ctx.records == 2 and ctx.rejected == 0
    assert [(r["user.name"], r["user.id"], r["app.id"], r["source.ip"]) for r in rows] == [
        ("5", "true", '["x"]', '{"v":4}'), ("adele.vance@fabrikam-labs.com", None, None, None)]
    [row], ctx = read("macos_unified_log_ndjson", UNIFIED_LOG)
    assert (row["process.pid"], row["event.provider"], row["event.action"], row["event.code"]) == (
        None, '{"a":1}', "true", "7")
    [row], ctx = read("sentinel_syslog", SENTINEL_SYSLOG)
    assert (row["host.name"], row["process.pid"], row["process.name"]) == ("7", None, "sshd")


def test_a_sentinel_row_with_an_integer_beyond_64_bits_is_kept():
    # the row is rewritten as the audit record it carries; orjson cannot write such an integer
    row = (b'{"TimeGenerated":"2026-10-14T09:01:00Z","OfficeWorkload":"Exchange","Operation":"Set-Mailbox",'
           b'"OfficeId":"10000000-0000-0000-0000-000000000001","UserId":"alice@contoso.com","RecordType":1,'
           b'"Size":18446744073709551616}')
    rows, ctx = read("sentinel_officeactivity_array", b"[" + row + b"]")
    assert [(r["event.action"], r["user.name"]) for r in rows] == [("Set-Mailbox", "alice@contoso.com")]
    assert ctx.records == 1 and ctx.rejected == 0


def test_a_winlogbeat_user_name_that_is_not_text_is_kept_as_text():
    document = orjson.loads(WINLOGBEAT)
    document["winlog"]["user"] = {"name": ["jsmith"], "domain": 7, "identifier": "S-1-5-21-1-2-3-1104"}
    [row], ctx = read("winlogbeat_ndjson", orjson.dumps(document) + b"\n")
    assert (row["user.name"], row["user.domain"]) == ('["jsmith"]', "7") and ctx.rejected == 0


def test_a_script_block_part_read_twice_is_rejected_not_dropped():
    first, second = (FIXTURES / "ws042_powershell_parts.jsonl").read_bytes().splitlines()
    rows, ctx = read("evtx_dump_jsonl", b"\n".join([first, first, second]) + b"\n")
    assert [dict(row["labels"])["script_block_parts"] for row in rows] == ["2/3"]
    assert [r.locator for r in ctx.rejections] == ["line 2"] and "part 2 of script block" in ctx.rejections[0].reason
    assert ctx.records == 3 and ctx.rejected == 1


def test_numbers_too_long_for_their_column_are_left_out_not_raised():
    digits = "9" * 5000
    audit = (f'type=SYSCALL msg=audit(1791990000.123:100): arch=c000003e syscall={digits} success=yes exit=0 '
             f'pid=99999999999999999999 auid=1001 uid=0 comm="rm" exe="/usr/bin/rm"\n'
             f'type=EXECVE msg=audit(1791990000.123:100): argc={digits} a0="rm" a{digits}="x"\n'
             f"type=EOE msg=audit(1791990000.123:100):\n").encode()
    [row], ctx = read("auditd", audit)
    assert (row["process.pid"], row["process.command_line"], row["event.action"]) == (None, "rm", digits)
    assert ctx.records == 3 and ctx.rejected == 0
    syslog = (b"Oct 14 09:31:02 mx01 postfix/postsuper[99999999999999999999]: Deleted: "
              + b"9" * 5000 + b" messages\n")
    [row], ctx = read("syslog", syslog, {"year": "2026"})
    assert (row["process.pid"], row["email.item_count"], row["event.action"]) == (None, None, "postsuper_deleted")
    assert ctx.records == 1 and ctx.rejected == 0


def test_an_argument_count_beyond_what_linux_passes_is_not_waited_for():
    audit = (b'type=SYSCALL msg=audit(1791990000.123:100): arch=c000003e syscall=59 success=yes exit=0 pid=7 '
             b'comm="rm" exe="/usr/bin/rm"\n'
             b'type=EXECVE msg=audit(1791990000.123:100): argc=4194305 a0="rm" a1="/var/mail/bob"\n'
             b"type=EOE msg=audit(1791990000.123:100):\n")
    [row], ctx = read("auditd", audit)
    assert row["process.command_line"] == "rm /var/mail/bob" and len(str(row["labels"])) < 1000
    assert ctx.records == 3 and ctx.rejected == 0


def test_a_script_block_claiming_millions_of_parts_names_a_bounded_number_missing():
    first, _ = (FIXTURES / "ws042_powershell_parts.jsonl").read_bytes().splitlines()
    record = orjson.loads(first)
    record["Event"]["EventData"]["MessageTotal"] = "4194304"
    [row], ctx = read("evtx_dump_jsonl", orjson.dumps(record) + b"\n")
    labels = dict(row["labels"])
    assert labels["script_block_parts"] == "1/4194304"
    assert labels["script_block_missing_parts"].endswith(",... 4194303 in all")
    assert len(labels["script_block_missing_parts"].split(",")) == 1001 and ctx.rejected == 0


def test_an_evtx_dump_record_number_too_long_for_a_column_is_left_out():
    first, _ = (REPO / "tests" / "fixtures" / "windows" / "ws042_powershell_parts.evtx_dump.json").read_bytes().split(
        b"\nRecord ", 1)
    data = b"Record " + b"9" * 5000 + first[first.index(b"\n"):] + b"\n"
    rows, ctx = read("evtx_dump_json", data)
    assert len(rows) == 1 and ctx.records == 1 and ctx.rejected == 0


def test_a_fish_history_line_that_starts_no_entry_is_rejected_not_dropped():
    data = (b"- cmd: doveadm expunge -u alice mailbox INBOX all\n  when: 1791990000\n  paths:\n    - INBOX\n"
            b"-\xff cmd: rm -rf /var/mail/alice\n  when: 1791990060\n"
            b"- cmd: history -c\n  when: 1791990120\n")
    rows, ctx = read("fish_history", data)
    assert [row["process.command_line"] for row in rows] == ["doveadm expunge -u alice mailbox INBOX all", "history -c"]
    assert [r.locator for r in ctx.rejections] == ["line 5"] and ctx.records == 3 and ctx.rejected == 1


def test_an_audit_line_holding_a_long_word_is_read_in_one_pass():
    # the key pattern was tried at every character of a word without "=": a 1 MB word took hours
    line = b'type=SYSCALL msg=audit(1791990000.123:100): syscall=59 pid=7 ' + b"A" * 1_000_000 + b' comm="rm"\n'
    [row], ctx = read("auditd", line)
    assert (row["process.pid"], row["process.name"], ctx.rejected) == (7, "rm", 0)
