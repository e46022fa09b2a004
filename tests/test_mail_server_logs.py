"""IMAP/POP servers' own logs: a burst of expunges from one mailbox, and old-style sshd PAM lines as sign-ins.

The lines are written in the exact forms dovecot's mail_log plugin, Cyrus IMAP
and sshd with pam_unix (Red Hat era, as in loghub's Linux sample) log them:
bursts are built here from one dovecot line, the others are fixtures in
tests/fixtures/mailserver.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from mailhunt.config import Config
from mailhunt.hunt import hunt
from tests.test_sources_unix import read

FIXTURES = Path(__file__).parent / "fixtures" / "mailserver"
START = datetime(2026, 10, 14, 9, 0, 0)
PAM_FAILURE = ("{ts} mx1 sshd(pam_unix)[{pid}]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh "
               "ruser= rhost=198.51.100.23  user=mallory")
PAM_SESSION = "{ts} mx1 sshd(pam_unix)[{pid}]: session opened for user mallory by (uid=0)"
EXPUNGE = ("{ts} mx1 dovecot: imap(mallory)<{pid}><Kx8fA1bQ2>: expunge: box=INBOX, uid={uid}, "
           "msgid=<m{uid}@example.com>, size=20311, subject=Quarterly statement {uid}")


def _stamp(moment: datetime) -> str:
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"


def _expunges(count: int, every: timedelta) -> list[str]:
    return [EXPUNGE.format(ts=_stamp(START + i * every), pid=4100 + i // 100, uid=1000 + i) for i in range(count)]


def _sign_ins() -> list[str]:
    failures = [PAM_FAILURE.format(ts=_stamp(START - timedelta(minutes=20) + timedelta(seconds=30 * i)), pid=2001 + i)
                for i in range(6)]
    return [*failures, PAM_SESSION.format(ts=_stamp(START - timedelta(minutes=15)), pid=2010)]


def _hunt(tmp_path: Path, lines: list[str], config: Config | None = None) -> list[dict]:
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = hunt([log], tmp_path / "case", config or Config(), read_hints={"year": "2026"})
    return result.document["findings"]


def _bulk(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["indicator"] == "bulk_item_deletion"]


def test_500_expunges_in_an_hour_are_bulk_item_deletion(tmp_path):
    [finding] = _bulk(_hunt(tmp_path, _sign_ins() + _expunges(500, timedelta(seconds=7))))
    assert [r["title"] for r in finding["rules"]] == ["Bulk Expunge On A Mail Server"]
    assert finding["actor"] == "mallory" and finding["targets"] == ["mallory"]
    sign_ins = next(step for step in finding["l1"] if step["step"] == "sign_ins")
    assert sign_ins["result"] == "flag", sign_ins
    assert "1 successful and 6 failed sign-ins" in sign_ins["detail"]
    assert "failed-login burst: 6 failures" in sign_ins["detail"] and "198.51.100.23" in sign_ins["detail"]


def test_20_expunges_spread_over_a_day_are_not(tmp_path):
    assert not _bulk(_hunt(tmp_path, _expunges(20, timedelta(hours=1, minutes=12))))


def test_the_threshold_is_the_bulk_delete_tuning(tmp_path):
    tuned = replace(Config(), bulk_delete_per_hour=600)
    assert not _bulk(_hunt(tmp_path, _expunges(500, timedelta(seconds=7)), tuned))


def test_cyrus_expunged_lines_count_their_messages(tmp_path):
    lines = [f"Oct 14 09:{10 * i:02d}:00 mx2 cyrus/imap[4211]: Expunged 120 messages from user.carol.Archive{i}"
             for i in range(5)]
    [finding] = _bulk(_hunt(tmp_path, lines))
    assert finding["targets"] == ["carol"] and finding["actor"] is None


def test_old_sshd_pam_lines_are_sign_ins():
    name, events, ctx = read(FIXTURES / "messages", {"year": "2005"})
    assert name == "syslog"
    assert ctx.records == 5 and ctx.rejected == 0
    no_user, root, check, opened, closed = events
    assert (no_user["event.action"], no_user["event.outcome"], no_user["user.name"]) == ("ssh_login", "failure", None)
    assert no_user["source.ip"] == "218.188.2.4" and no_user["process.name"] == "sshd(pam_unix)"
    assert (root["user.name"], root["source.ip"]) == ("root", None)
    assert root["labels"]["remote_host"] == "220-135-151-1.hinet.net"
    assert (opened["event.action"], opened["event.outcome"], opened["user.name"]) == ("ssh_login", "success", "test")
    assert opened["labels"]["pam_event"] == "session opened" and opened["@timestamp"] == datetime(2005, 6, 17, 19, 43, 13)
    assert check["event.action"] is None and closed["event.action"] is None


def test_cyrus_mailbox_names_give_their_owner():
    _, events, _ = read(FIXTURES / "cyrus.log", {"year": "2026"})
    assert [(e["event.action"], e["user.target.name"], e["email.item_count"]) for e in events] == [
        ("expunge", "carol@example.com", 37), ("expunge", "dave", 2), ("expunge", "shared.support", 1)]
    assert all(e["event.provider"] == "cyrus" and e["user.name"] is None for e in events)
