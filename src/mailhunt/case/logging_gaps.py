"""Logging to enhance: what the case's evidence lacked, each gap with the exact setting that closes it.

Each gap of ``logging.toml`` names a check below. A check only reports a gap
for a kind of evidence the case holds (no Windows logs: nothing said about
script-block logging), so every gap stated is one this evidence shows.
The queries are fixed text; nothing from the evidence is pasted into them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources

from mailhunt.export.exporter import TARGETS

RULES_EXPORT = "mailhunt rules export --target TARGET --out siem-rules"


def _holds(store, prefixes: tuple[str, ...]) -> bool:
    return bool(store.query('SELECT 1 FROM events WHERE ' + " OR ".join(['"event.dataset" LIKE ?'] * len(prefixes))
                            + " LIMIT 1", [p + "%" for p in prefixes]))


def _any(store, where: str, params: list) -> bool:
    return bool(store.query(f"SELECT 1 FROM events WHERE {where} LIMIT 1", params))


def no_mail_items_accessed(store, document: dict) -> bool:
    return _holds(store, ("m365.",)) and not _any(store, '"event.action" = ?', ["MailItemsAccessed"])


def mailbox_audit_tampered(store, document: dict) -> bool:
    return any(f.get("indicator") == "audit_tampering" for f in document.get("findings") or [])


def no_script_block_logging(store, document: dict) -> bool:
    return _holds(store, ("windows.",)) and not _any(store, '"event.code" = ?', ["4104"])


def no_auditd_mail_watch(store, document: dict) -> bool:
    return _holds(store, ("linux.", "unix.")) and not _any(
        store, '"event.dataset" = ? AND ("file.path" LIKE ? OR "file.path" LIKE ?)',
        ["linux.auditd", "/var/mail/%", "/var/spool/mail/%"])


def no_osascript_capture(store, document: dict) -> bool:
    return _holds(store, ("macos.",)) and not _any(store, '"process.name" = ?', ["osascript"])


CHECKS: dict[str, Callable[[object, dict], bool]] = {
    "no_mail_items_accessed": no_mail_items_accessed,
    "mailbox_audit_tampered": mailbox_audit_tampered,
    "no_script_block_logging": no_script_block_logging,
    "no_auditd_mail_watch": no_auditd_mail_watch,
    "no_osascript_capture": no_osascript_capture,
}


@cache
def _gaps() -> tuple[dict, ...]:
    data = tomllib.loads(resources.files("mailhunt.case").joinpath("logging.toml").read_text("utf-8"))
    for gap in data["gap"]:
        if gap["check"] not in CHECKS:
            raise ValueError(f"logging.toml gap {gap['id']}: unknown check {gap['check']}")
    return tuple(data["gap"])


def logging_gaps(store, document: dict) -> list[dict]:
    """The gaps this case's evidence shows, then the rule export that brings the detections to a SIEM."""
    found = [{"id": g["id"], "lacked": g["lacked"], "setting": g["setting"], "shell": g["shell"],
              "commands": list(g["commands"])} for g in _gaps() if CHECKS[g["check"]](store, document)]
    found.append({"id": "siem_rules", "lacked": "Detection in the SIEM, so a repeat is caught as it happens.",
                  "setting": "Export mailhunt's rules as queries for the SIEM and schedule them there; TARGET is "
                             f"one of {', '.join(TARGETS)}.",
                  "shell": "sh", "commands": [RULES_EXPORT]})
    return found
