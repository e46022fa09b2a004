"""Linux and macOS readers on fixtures in the formats auditd, ausearch, syslog daemons, shells, log and eslogger write."""

import io
import os
from datetime import datetime
from pathlib import Path

import pytest

from mailhunt.sources import SNIFF_BYTES, ReadContext, identify
from mailhunt.sources.auditd import LOOKAHEAD_LINES, read_groups

FIXTURES = Path(__file__).parent / "fixtures" / "unix"


def read(path: Path, hints: dict | None = None, display: str | None = None):
    data = path.read_bytes()
    source = identify(data[:SNIFF_BYTES])
    assert source is not None, f"{path.name} not recognized"
    ctx = ReadContext(display or str(path), "sha", dict(hints or {}), local_path=None if display else str(path))
    rows = [row for batch in source.read(io.BytesIO(data), ctx) for row in batch.to_pylist()]
    for row in rows:
        row["labels"] = dict(row["labels"] or [])
    return source.name, rows, ctx


def by_audit_id(rows):
    return {row["labels"]["audit_id"].split(":")[1]: row for row in rows}


@pytest.mark.parametrize("relative, reader", [
    ("audit.log", "auditd"),
    ("ausearch-i.txt", "auditd"),
    ("home/mallory/.bash_history", "bash_history"),
    ("Users/alice/.zsh_history", "zsh_history"),
    ("home/bob/.local/share/fish/fish_history", "fish_history"),
    ("syslog/mail.log", "syslog"),
    ("syslog/rfc5424.log", "syslog"),
    ("unified.ndjson", "macos_unified_log_ndjson"),
    ("unified.json", "macos_unified_log_json"),
    ("eslogger.ndjson", "eslogger"),
])
def test_each_format_is_recognized_by_its_content(relative, reader):
    head = (FIXTURES / relative).read_bytes()[:SNIFF_BYTES]
    assert identify(head).name == reader


def test_bash_history_without_timestamps_is_not_claimed():
    assert identify((FIXTURES / "histories" / "plain_history").read_bytes()) is None


def test_m365_fixtures_stay_with_the_m365_readers():
    for path in sorted((Path(__file__).parent / "fixtures" / "m365").rglob("*")):
        if path.is_file():
            source = identify(path.read_bytes()[:SNIFF_BYTES])
            assert source is None or source.dataset == "m365.audit", path.name


# --- auditd -----------------------------------------------------------------

def test_auditd_interleaved_groups_become_one_event_each():
    _, rows, _ctx = read(FIXTURES / "audit.log")
    events = by_audit_id(rows)
    sed, rm = events["100"], events["101"]
    assert sed["event.action"] == "execve"
    assert sed["process.command_line"] == "sed -i '/^From ceo@example.com/,/^$/d' /var/mail/bob"
    assert sed["labels"]["record_types"] == "SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE,EOE"
    assert sed["@timestamp"] == datetime(2026, 10, 14, 15, 0, 0, 123000)
    assert rm["event.action"] == "unlinkat" and rm["file.path"] == "/var/mail/bob"
    assert rm["labels"]["file_change"] == "deletion"


def test_auditd_actor_is_the_enriched_auid_name_before_the_uid():
    _, rows, _ = read(FIXTURES / "audit.log")
    sed = by_audit_id(rows)["100"]
    assert (sed["user.name"], sed["user.id"]) == ("mallory", "1001")
    assert sed["labels"]["user_source"] == "auid name from the enriched log"
    unnamed = by_audit_id(rows)["102"]
    assert (unnamed["user.name"], unnamed["labels"]["user_source"]) == ("1001", "auid number (the log gives no name)")


def test_auditd_split_hex_arguments_are_joined():
    _, rows, _ = read(FIXTURES / "audit.log")
    assert by_audit_id(rows)["102"]["process.command_line"] == "python3 '-c print(\"delete\")' x"


def test_auditd_non_utf8_argument_is_kept_escaped_and_labelled():
    _, rows, _ = read(FIXTURES / "audit.log")
    cat = by_audit_id(rows)["103"]
    assert cat["process.command_line"] == "cat '/tmp/f\\xffo'"
    assert cat["labels"]["encoding"].startswith("not UTF-8")


def test_auditd_missing_argument_keeps_the_event_and_says_what_is_missing():
    _, rows, _ = read(FIXTURES / "audit.log")
    mail = by_audit_id(rows)["104"]
    assert mail["process.command_line"] == "mail -s root"
    assert mail["labels"]["partial"] == "EXECVE argc=4 but a2 not logged"


def test_auditd_aarch64_and_o_trunc():
    _, rows, _ = read(FIXTURES / "audit.log")
    events = by_audit_id(rows)
    assert events["105"]["event.action"] == "execve" and events["105"]["labels"]["arch"] == "aarch64"
    assert events["106"]["event.action"] == "openat"
    assert events["106"]["labels"]["file_change"] == "truncation"
    assert events["106"]["file.path"] == "/var/spool/mail/carol"


def test_auditd_truncated_record_is_rejected_by_line_and_the_rest_kept():
    _, rows, ctx = read(FIXTURES / "audit.log")
    assert len(rows) == 8
    assert [(r.locator, r.reason) for r in ctx.rejections] == [
        ("line 33", "record cut short: msg=audit(EPOCH:SERIAL) is incomplete")]
    assert ctx.records == 33
    login = by_audit_id(rows)["107"]
    assert login["event.action"] == "USER_LOGIN" and login["source.ip"] == "203.0.113.9"


def test_auditd_group_split_by_rotation_is_two_partial_events_that_never_merge():
    _, older, _ = read(FIXTURES / "rotated" / "audit.log.1")
    _, newer, _ = read(FIXTURES / "rotated" / "audit.log")
    first, second = by_audit_id(older)["200"], by_audit_id(newer)["200"]
    assert first["labels"]["record_types"] == "SYSCALL" and "partial" not in first["labels"]
    assert second["labels"]["partial"] == "no SYSCALL record (cut off by rotation or a lost record)"
    assert second["process.command_line"] == "mail -f /var/mail/bob"
    assert first["event.id"] != second["event.id"]
    assert "partial" not in by_audit_id(older)["199"]["labels"]


def test_auditd_group_without_eoe_ends_at_the_lookahead(tmp_path):
    record = 'type=SYSCALL msg=audit(1791990000.000:{n}): arch=c000003e syscall=87 success=yes exit=0 a0=1 a1=2 ' \
             'a2=3 a3=4 items=0 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 ' \
             'tty=(none) ses=1 comm="rm" exe="/usr/bin/rm" key=(null)'
    text = "\n".join(record.format(n=n) for n in range(LOOKAHEAD_LINES + 5)) + "\n"
    ctx = ReadContext("x", "y")
    order = [g.records[0].serial for g in read_groups(io.BytesIO(text.encode()), ctx, lookahead=3)]
    assert order == [str(n) for n in range(LOOKAHEAD_LINES + 5)]


def test_ausearch_interpreted_output():
    _, rows, ctx = read(FIXTURES / "ausearch-i.txt")
    assert ctx.rejected == 0 and len(rows) == 2
    sed, rm = rows
    assert sed["process.command_line"] == "sed -i '/^From ceo/d' /var/mail/bob"
    assert (sed["user.name"], sed["labels"]["user_source"]) == ("mallory", "auid name from ausearch -i")
    assert sed["labels"]["time_zone_source"] == "not logged; read as UTC"
    assert sed["@timestamp"] == datetime(2026, 10, 14, 15, 0, 0, 123000)
    assert (rm["event.action"], rm["file.path"]) == ("unlinkat", "/var/mail/bob")


# --- shell histories ----------------------------------------------------------

def test_bash_history_user_from_location_multiline_commands_and_untimed_lines():
    _, rows, ctx = read(FIXTURES / "home" / "mallory" / ".bash_history")
    assert [r["process.command_line"] for r in rows] == [
        "mail -s report root < /tmp/report.txt", 'echo "d *" | mail -f /var/mail/bob', "cat /tmp/caf\\xe9",
        'for f in /var/mail/*; do\n  cp "$f" /tmp/.x/\ndone']
    assert {r["user.name"] for r in rows} == {"mallory"}
    assert rows[0]["labels"]["user_source"] == "file location"
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 15, 0)
    assert rows[2]["labels"]["encoding"].startswith("not UTF-8")
    assert [(r.locator, r.reason) for r in ctx.rejections] == [
        ("line 1", "command without a timestamp (before the first #EPOCH line)")]


def test_history_without_a_home_in_its_path_takes_the_user_hint():
    path = FIXTURES / "histories" / "zsh_history_from_ticket"
    _, rows, _ = read(path, {"user": "mallory"})
    assert (rows[0]["user.name"], rows[0]["labels"]["user_source"]) == ("mallory", "--user")
    _, rows, _ = read(path)
    assert rows[0]["user.name"] is None and rows[0]["labels"]["user_source"].startswith("unknown")


def test_zsh_extended_history_undoes_metafied_bytes():
    _, rows, _ = read(FIXTURES / "Users" / "alice" / ".zsh_history")
    assert [r["process.command_line"] for r in rows][1:] == ["rm -rf ~/Library/Mail/copy/*", "echo dağ > /tmp/x"]
    assert rows[0]["user.name"] == "alice"


def test_fish_history_entries_and_an_entry_cut_before_its_time():
    _, rows, ctx = read(FIXTURES / "home" / "bob" / ".local" / "share" / "fish" / "fish_history")
    assert [r["process.command_line"] for r in rows] == ["find ~/Maildir/cur -type f -delete",
                                                         'echo "line one\nline two"']
    assert rows[0]["user.name"] == "bob"
    assert [r.locator for r in ctx.rejections] == ["line 7"]


# --- syslog -----------------------------------------------------------------

def test_syslog_year_from_the_hint_and_program_messages_read():
    _, rows, ctx = read(FIXTURES / "syslog" / "mail.log", {"year": "2026"})
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 9, 31, 2)
    assert rows[0]["labels"]["year_source"] == "--year"
    assert rows[0]["labels"]["time_zone_source"] == "not logged; read as UTC"
    actions = [(r["event.action"], r["user.name"], r["source.ip"]) for r in rows]
    assert actions == [("mail_login", "alice", "203.0.113.7"), ("expunge", "alice", None),
                       ("sudo_command", "mallory", None), ("postsuper_deleted", None, None),
                       ("ssh_login", "mallory", "198.51.100.9"), ("ssh_login", "admin", "198.51.100.10"),
                       ("expunge", "carol", None)]
    assert rows[1]["email.folder"] == "INBOX" and rows[1]["email.message_id"] == "<m7@example.com>"
    assert rows[2]["process.command_line"] == "/usr/sbin/postsuper -d ALL"
    assert rows[5]["event.outcome"] == "failure"
    assert [(r.locator, r.reason) for r in ctx.rejections] == [("line 8", "Feb 30 does not exist in 2026")]


def test_syslog_without_any_year_is_rejected_not_dated_today(tmp_path):
    copy = tmp_path / "mail.log"
    copy.write_bytes((FIXTURES / "syslog" / "mail.log").read_bytes())
    _, rows, ctx = read(copy, display=f"{tmp_path / 'evidence.zip'}!mail.log")
    assert rows == [] and ctx.rejected == 8
    assert "hunt again with --year" in ctx.rejections[0].reason


def test_syslog_year_from_the_file_mtime_and_across_new_year(tmp_path):
    copy = tmp_path / "messages"
    copy.write_bytes((FIXTURES / "syslog" / "mail.log-20270105").read_bytes())
    stamp = datetime(2027, 1, 5, 3, 0).timestamp()
    os.utime(copy, (stamp, stamp))
    _, rows, ctx = read(copy)
    assert [r["@timestamp"].year for r in rows] == [2026, 2027]
    assert rows[0]["labels"]["year_source"] == "file mtime"
    assert any("modification time (2027-01-05)" in note for note in ctx.notes)


def test_syslog_year_from_the_rotation_date_in_the_name():
    _, rows, _ = read(FIXTURES / "syslog" / "mail.log-20270105")
    assert [r["@timestamp"] for r in rows] == [datetime(2026, 12, 30, 23, 59, 58), datetime(2027, 1, 4, 0, 0, 1)]
    assert rows[1]["labels"]["year_source"] == "date in file name"
    assert rows[1]["event.action"] == "postsuper_removed"


def test_syslog_year_hint_rolls_over_new_year():
    _, rows, _ = read(FIXTURES / "syslog" / "mail.log-20270105", {"year": "2026"})
    assert [r["@timestamp"].year for r in rows] == [2026, 2027]


def test_rfc5424_and_rfc3339_lines_convert_their_offsets():
    _, rows, ctx = read(FIXTURES / "syslog" / "rfc5424.log")
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 9, 34, 0, 123000)
    assert rows[0]["process.command_line"] == "/usr/bin/doveadm expunge -u carol mailbox INBOX all"
    assert (rows[1]["user.name"], rows[1]["source.ip"]) == ("carol", "2001:db8::7")
    assert rows[2]["labels"]["format"] == "rfc3339" and "year_source" not in rows[2]["labels"]
    assert [(r.locator, r.reason) for r in ctx.rejections] == [("line 3", "RFC 5424 line without a time (NILVALUE)")]


# --- macOS --------------------------------------------------------------------

def test_unified_log_ndjson_line_cut_in_half_is_rejected_and_the_trailer_skipped():
    _, rows, ctx = read(FIXTURES / "unified.ndjson")
    assert len(rows) == 2 and ctx.records == 3
    assert [r.locator for r in ctx.rejections] == ["line 2"]
    tcc, mail = rows
    assert tcc["@timestamp"] == datetime(2026, 10, 14, 9, 42, 0, 123456)
    assert (tcc["process.name"], tcc["process.pid"], tcc["user.id"]) == ("tccd", 180, "501")
    assert tcc["event.provider"] == "com.apple.TCC" and tcc["labels"]["category"] == "access"
    assert "kTCCServiceAppleEvents" in tcc["event.original"]
    assert mail["process.name"] == "Mail"


def test_unified_log_json_array_gives_the_same_events():
    _, rows, ctx = read(FIXTURES / "unified.json")
    assert ctx.rejected == 0
    assert [(r["@timestamp"], r["process.name"]) for r in rows] == [
        (datetime(2026, 10, 14, 9, 42, 0, 123456), "tccd"), (datetime(2026, 10, 14, 9, 42, 5), "Mail")]
    assert rows[0]["log.record"] == 1 and rows[1]["log.record"] == 2


def test_eslogger_exec_rename_create_and_a_cut_line():
    _, rows, ctx = read(FIXTURES / "eslogger.ndjson")
    assert [r.locator for r in ctx.rejections] == ["line 4"] and len(rows) == 4
    exec_, rename, create = rows[:3]
    assert exec_["process.command_line"] == "osascript -e 'tell application \"Mail\" to delete (every message of inbox)'"
    assert (exec_["process.name"], exec_["process.parent.name"], exec_["process.pid"]) == ("osascript", "zsh", 4410)
    assert exec_["@timestamp"] == datetime(2026, 10, 14, 9, 42, 0, 123456) and exec_["event.code"] == "9"
    assert (exec_["user.name"], exec_["labels"]["euid"]) == ("501", "501")
    assert (rename["file.path"], rename["file.target_path"]) == (
        "/Users/alice/Library/Mail/V10/MailData/Envelope Index", "/tmp/ei.bak")
    assert create["file.path"] == "/Users/alice/Library/Mail/copy/manipulated.txt"


# --- Microsoft Sentinel Syslog rows -------------------------------------------

def test_real_sentinel_syslog_auoms_rows():
    from tests.corpus import PUBLIC
    path = PUBLIC / "otrf-security-datasets" / "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
    name, rows, ctx = read(path)
    assert name == "sentinel_syslog" and ctx.records == 50 and ctx.rejected == 0 and len(rows) == 50
    assert {r["event.dataset"] for r in rows} == {"linux.auoms"}
    assert {r["host.name"] for r in rows} == {"UBUNTU5"}
    shell = [r for r in rows if "base64,-d" in (r["process.command_line"] or "")]
    assert shell and shell[0]["process.command_line"].startswith('bash -c "{echo,YmFzaCAtaSA+')
    assert (shell[0]["user.name"], shell[0]["labels"]["user_source"]) == ("tomcat", "auoms user")
    first = rows[0]
    assert first["@timestamp"] == datetime(2022, 5, 11, 18, 10, 21, 986000)
    assert (first["event.action"], first["event.outcome"]) == ("execve", "failure")
    assert len({r["event.id"] for r in rows}) == 50


def test_sentinel_syslog_row_without_auoms_is_read_as_syslog(tmp_path):
    row = ('{"TenantId":"t","SourceSystem":"Linux","TimeGenerated":"2026-10-14T09:32:00.5Z","Computer":"mx1",'
           '"EventTime":"2026-10-14T09:32:00Z","Facility":"authpriv","HostName":"mx1","SeverityLevel":"notice",'
           '"SyslogMessage":" mallory : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/sbin/postsuper -d ALL",'
           '"ProcessName":"sudo","ProcessID":4242,"Type":"Syslog"}\n{"TimeGenerated":"2026-10-14T09:3')
    path = tmp_path / "syslog_rows.json"
    path.write_text(row)
    name, rows, ctx = read(path)
    assert name == "sentinel_syslog" and [r.locator for r in ctx.rejections] == ["line 2"]
    assert (rows[0]["event.dataset"], rows[0]["event.action"], rows[0]["user.name"]) == (
        "unix.syslog", "sudo_command", "mallory")
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 9, 32)


def test_zone_less_times_follow_the_timezone_hint():
    _, rows, ctx = read(FIXTURES / "syslog" / "mail.log", {"year": "2026", "timezone": "Europe/Berlin"})
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 7, 31, 2)
    assert rows[0]["labels"]["time_zone_source"] == "hint Europe/Berlin"
    assert not any("read as UTC" in note for note in ctx.notes)
    _, rows, ctx = read(FIXTURES / "syslog" / "mail.log", {"year": "2026"})
    assert rows[0]["labels"]["time_zone_source"] == "not logged; read as UTC"
    assert ctx.notes == [("times carry no time zone and were read as UTC; give --hint timezone=<zone> if the host "
                          "logged local time")]
    _, rows, _ = read(FIXTURES / "ausearch-i.txt", {"timezone": "-05:00"})
    assert rows[0]["@timestamp"] == datetime(2026, 10, 14, 20, 0, 0, 123000)
    _, rows, ctx = read(FIXTURES / "syslog" / "mail.log", {"year": "2026", "timezone": "Mars/Olympus"})
    assert rows == [] and "not UTC, an offset" in ctx.rejections[0].reason


def test_ausearch_default_output_blocks_and_time_lines():
    name, rows, ctx = read(FIXTURES / "ausearch-raw.txt")
    assert name == "auditd" and ctx.rejected == 0 and ctx.records == 3
    assert [r["process.command_line"] for r in rows] == ["mail -s report root", "id -u"]
    assert rows[1]["labels"]["partial"] == "no SYSCALL record (cut off by rotation or a lost record)"
