"""What the messages of sudo, sshd, dovecot and postfix say, as event columns.

- sudo: ``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/mail -f /var/mail/bob``
  -> ``sudo_command``, actor alice, target account root, the command line.
- sshd: ``Accepted publickey for alice from 203.0.113.7 port 52144 ssh2`` and
  ``Failed password for [invalid user] bob from ...`` -> ``ssh_login`` with the outcome.
- dovecot with the mail_log plugin: ``imap(alice)<pid><session>: expunge: box=INBOX, uid=7, msgid=<..>, ...``
  (also delete, copy, flag_change, mailbox_delete, mailbox_rename ...) -> the verb
  as ``event.action``, the mailbox as ``user.name``/``user.target.name``, box,
  message id and subject; ``imap-login: Login: user=<alice>, ..., rip=...`` -> ``mail_login``.
- postfix ``postsuper``: ``4F9D9C0A1B: removed`` and ``Deleted: 5 messages`` -> ``postsuper_removed``/``postsuper_deleted``.
- Cyrus IMAP (``imap``, ``pop3``, ``cyr_expire``, ``ipurge``, also as ``cyrus/<program>``):
  ``Expunged 12 messages from user.alice`` -> ``expunge`` with ``email.item_count`` 12, the mailbox's
  owner as ``user.target.name`` (``user.alice.Trash``, ``user/alice/Trash``, ``example.com!user.alice``
  -> ``alice``, ``alice@example.com``); the line does not say who expunged, so ``user.name`` stays empty.
- old sshd with PAM (``sshd(pam_unix)[pid]``): ``authentication failure; logname= uid=0 euid=0
  tty=NODEVssh ruser= rhost=<host or ip>  user=<u>`` and ``session opened for user <u> by (uid=0)``
  -> ``ssh_login`` failed or succeeded, ``labels.auth_method`` ``pam_unix``; an ``rhost`` that is
  no IP address goes to ``labels.remote_host``.
"""

from __future__ import annotations

import ipaddress
import re

from mailhunt.sources.json_values import int64_from_text
from mailhunt.sources.unix_common import program_name, split_command

_SUDO = re.compile(r"^\s*(?P<user>\S+) : (?P<fields>.*)$")
_SSHD = re.compile(r"^(?P<result>Accepted|Failed) (?P<method>\S+) for (?:invalid user )?(?P<user>\S+) "
                   r"from (?P<ip>[0-9A-Fa-f:.]+)(?: port \d+)?")
_DOVECOT_SESSION = re.compile(r"^(?P<service>[\w-]+)\((?P<user>[^)]*)\)(?:<[^>]*>)*: (?P<rest>.*)$")
_DOVECOT_EVENT = re.compile(r"^(?P<verb>[a-z_]+(?: from [^:]+)?): (?P<fields>.*)$")
_DOVECOT_LOGIN = re.compile(r"^(?:imap|pop3|submission|managesieve)-login: Login: user=<(?P<user>[^>]*)>")
_REMOTE_IP = re.compile(r"\brip=(?P<ip>[0-9A-Fa-f:.]+)")
_KV = re.compile(r"(\w+)=(<[^>]*>|\"(?:[^\"\\]|\\.)*\"|[^,]*)")
_POSTSUPER_REMOVED = re.compile(r"^(?P<queue_id>[0-9A-Za-z]+): removed")
_POSTSUPER_DELETED = re.compile(r"^Deleted: (?P<count>\d+) messages?")
_CYRUS_EXPUNGED = re.compile(r"^Expunged (?P<count>\d+) messages? from (?P<mailbox>\S+)")
CYRUS_PROGRAMS = frozenset({"imap", "imapd", "pop3", "pop3d", "lmtpd", "cyr_expire", "ipurge"})
_PAM_FAILURE = re.compile(r"^authentication failure;(?P<fields>.*)$")
_PAM_SESSION = re.compile(r"^session opened for user (?P<user>\S+)")
_PAM_FIELD = re.compile(r"(\w+)=(\S*)")


def _ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _sudo(event: dict, message: str) -> None:
    found = _SUDO.match(message)
    if not found or "COMMAND=" not in found["fields"]:
        return
    parts = {}
    for part in found["fields"].split(" ; "):
        key, sep, value = part.partition("=")
        if sep:
            parts[key.strip()] = value
        else:
            parts.setdefault("note", part.strip())
    command = parts.get("COMMAND", "")
    event["event.action"] = "sudo_command"
    event["user.name"] = found["user"]
    event["user.target.name"] = parts.get("USER")
    event["process.command_line"] = command
    words = split_command(command)
    event["process.executable"] = words[0] if words else None
    event["process.name"] = program_name(words[0]) if words else None
    event["process.parent.name"] = "sudo"
    event["event.outcome"] = "failure" if "note" in parts else "success"
    if parts.get("PWD"):
        event["labels"]["cwd"] = parts["PWD"]


def _sshd(event: dict, message: str) -> None:
    found = _SSHD.match(message)
    if not found:
        return
    event["event.action"] = "ssh_login"
    event["event.outcome"] = "success" if found["result"] == "Accepted" else "failure"
    event["user.name"] = found["user"]
    event["source.ip"] = _ip(found["ip"])
    event["labels"]["auth_method"] = found["method"]


def _fields(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in _KV.findall(text):
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        values.setdefault(key, value)
    return values


def _dovecot(event: dict, message: str) -> None:
    login = _DOVECOT_LOGIN.match(message)
    if login:
        event["event.action"] = "mail_login"
        event["event.outcome"] = "success"
        event["user.name"] = login["user"]
        remote = _REMOTE_IP.search(message)
        event["source.ip"] = _ip(remote["ip"]) if remote else None
        return
    session = _DOVECOT_SESSION.match(message)
    if not session:
        return
    happened = _DOVECOT_EVENT.match(session["rest"])
    if not happened or "box=" not in happened["fields"]:
        return
    verb = happened["verb"]
    values = _fields(happened["fields"])
    if verb.startswith("copy from "):
        event["labels"]["source_folder"] = verb[len("copy from "):]
        verb = "copy"
    event["event.action"] = verb
    event["event.outcome"] = "success"
    event["event.provider"] = "dovecot"
    event["user.name"] = session["user"] or None
    event["user.target.name"] = session["user"] or None
    event["email.folder"] = values.get("box")
    event["email.message_id"] = values.get("msgid")
    event["email.subject"] = values.get("subject")
    event["email.from.address"] = values.get("from")
    event["email.item_count"] = 1
    event["labels"]["dovecot_service"] = session["service"]
    if values.get("uid"):
        event["labels"]["uid"] = values["uid"]


def _postsuper(event: dict, message: str) -> None:
    removed = _POSTSUPER_REMOVED.match(message)
    if removed:
        event["event.action"] = "postsuper_removed"
        event["event.outcome"] = "success"
        event["email.item_count"] = 1
        event["labels"]["queue_id"] = removed["queue_id"]
        return
    deleted = _POSTSUPER_DELETED.match(message)
    if deleted:
        event["event.action"] = "postsuper_deleted"
        event["event.outcome"] = "success"
        event["email.item_count"] = int64_from_text(deleted["count"])


def _mailbox_owner(name: str) -> str:
    """The owner of a Cyrus mailbox name (``user.alice.Trash``, ``user/alice/Trash``,
    ``example.com!user.alice``), else the name itself (a shared mailbox)."""
    domain, _, mailbox = name.rpartition("!")
    for separator in (".", "/"):
        if mailbox.startswith("user" + separator):
            owner = mailbox[len("user" + separator):].split(separator, 1)[0]
            if owner:
                return f"{owner}@{domain}" if domain and "@" not in owner else owner
    return name


def _cyrus(event: dict, message: str) -> None:
    expunged = _CYRUS_EXPUNGED.match(message)
    if not expunged:
        return
    event["event.action"] = "expunge"
    event["event.outcome"] = "success"
    event["event.provider"] = "cyrus"
    event["user.target.name"] = _mailbox_owner(expunged["mailbox"])
    event["email.folder"] = expunged["mailbox"]
    event["email.item_count"] = int64_from_text(expunged["count"])


def _sshd_pam(event: dict, message: str) -> None:
    session = _PAM_SESSION.match(message)
    if session:
        event["event.action"] = "ssh_login"
        event["event.outcome"] = "success"
        event["user.name"] = session["user"]
        event["labels"]["auth_method"] = "pam_unix"
        event["labels"]["pam_event"] = "session opened"
        return
    failure = _PAM_FAILURE.match(message)
    if not failure:
        return
    event["event.action"] = "ssh_login"
    event["labels"]["auth_method"] = "pam_unix"
    fields = dict(_PAM_FIELD.findall(failure["fields"]))
    event["event.outcome"] = "failure"
    event["user.name"] = fields.get("user") or None
    event["labels"]["pam_event"] = "authentication failure"
    remote = fields.get("rhost", "")
    event["source.ip"] = _ip(remote)
    if remote and event["source.ip"] is None:
        event["labels"]["remote_host"] = remote


def interpret_message(event: dict, program: str, message: str) -> None:
    """Fill the columns a known program's message gives; other messages stay in ``event.original`` only."""
    if program == "sudo":
        _sudo(event, message)
    elif program == "sshd" or program.startswith("sshd-"):
        _sshd(event, message)
    elif program == "dovecot" or program.startswith("dovecot/"):
        _dovecot(event, message)
    elif program.endswith("/postsuper") or program == "postsuper":
        _postsuper(event, message)
    elif program == "sshd(pam_unix)":
        _sshd_pam(event, message)
    elif program.startswith("cyrus/") or program in CYRUS_PROGRAMS:
        _cyrus(event, message)
