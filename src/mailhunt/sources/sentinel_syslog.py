"""Microsoft Sentinel ``Syslog`` table rows (one JSON row per line, or a JSON array of rows).

Recognized by ``SyslogMessage`` with ``Facility``/``ProcessName``. Two kinds of row:

- auoms records (``SyslogMessage`` = ``type=AUOMS_EXECVE audit(EPOCH:SERIAL): ...``), the
  Azure Monitor agent's flattened auditd events: one event of ``linux.auoms``
  with the command line (``cmdline``), image, pid, and the actor as auoms
  names it (``audit_user`` when set, else ``user``). Time from ``audit(EPOCH)``, UTC.
- any other row: a ``unix.syslog`` event whose program is ``ProcessName`` and whose
  message is read like a syslog file's (sudo, sshd, dovecot, postsuper). Time
  from ``EventTime``/``TimeGenerated`` (ISO 8601 with Z), UTC; Log Analytics stores every
  datetime in UTC, so a value written without a zone is UTC (never the machine's zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import event_id_from_record_id, utc_from_epoch, utc_from_text
from mailhunt.sources.auditd import parse_fields
from mailhunt.sources.base import ReadContext
from mailhunt.sources.json_values import int64_from_text, int64_value, text_value
from mailhunt.sources.local_time import BadTime
from mailhunt.sources.macos_json import first_object, json_members, json_object_lines
from mailhunt.sources.syslog import DATASET as SYSLOG_DATASET
from mailhunt.sources.syslog_messages import interpret_message
from mailhunt.sources.unix_common import EventBatches, program_name, unix_event

AUOMS_DATASET = "linux.auoms"
_AUOMS = re.compile(r"^type=(?P<type>AUOMS_\w+) audit\((?P<epoch>\d+\.\d+):(?P<serial>\d+)\): (?P<body>.*)$", re.DOTALL)
_CMDLINE = re.compile(r'\bcmdline="(?P<cmd>.*)"(?= redactors=| containerid=|$)', re.DOTALL)
UNSET = ("unset", "4294967295", "-1", "")


def _iso(text: str) -> datetime:
    """EventTime/TimeGenerated, which Sentinel writes in UTC: a zone-less value is UTC by the table's
    definition (Log Analytics stores every datetime in UTC), never the machine's zone."""
    return utc_from_text(text, zone_less_is_utc=True)


def is_sentinel_syslog_row(obj: dict | None) -> bool:
    if not obj:
        return False
    return "SyslogMessage" in obj and ("Facility" in obj or "ProcessName" in obj)


class SentinelSyslog:
    def __init__(self, array: bool):
        self.array = array
        self.name = "sentinel_syslog_array" if array else "sentinel_syslog"
        self.dataset = AUOMS_DATASET
        self.locator_unit = "record" if array else "line"

    def sniff(self, head: bytes) -> bool:
        obj, in_array = first_object(head)
        return in_array == self.array and is_sentinel_syslog_row(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        rows = json_members(stream, ctx) if self.array else json_object_lines(stream, ctx)
        unit = "record" if self.array else "line"
        for locator, text, row in rows:
            message = row.get("SyslogMessage")
            if not isinstance(message, str):
                ctx.reject(f"{unit} {locator}", "no SyslogMessage: not a Sentinel Syslog row")
                continue
            try:
                found = _AUOMS.match(message)
                event = self._auoms(ctx, locator, text, row, found) if found else self._syslog(ctx, locator, text, row)
            except ValueError as exc:
                ctx.reject(f"{unit} {locator}", str(exc))
                continue
            yield from batches.add(event)
        yield from batches.flush()

    @staticmethod
    def _auoms(ctx: ReadContext, locator: int, text: str, row: dict, found: re.Match) -> dict:
        body = found["body"]
        cmdline = _CMDLINE.search(body)
        fields, _ = parse_fields(body[:cmdline.start()] if cmdline else body, True)
        stamp = utc_from_epoch(float(found["epoch"]))
        event = unix_event(ctx, AUOMS_DATASET, "auoms", locator, text, stamp)
        node = fields.get("node") or text_value(row.get("Computer"))
        event["event.id"] = event_id_from_record_id(AUOMS_DATASET, f"{node}\x1f{found['epoch']}:{found['serial']}")
        event["event.code"] = found["type"]
        event["event.action"] = fields.get("syscall") or found["type"]
        event["event.outcome"] = {"yes": "success", "no": "failure"}.get(fields.get("success", ""), "unknown")
        event["host.name"] = node
        for name_key, id_key, source in (("audit_user", "auid", "auoms audit_user (login user)"),
                                         ("user", "uid", "auoms user")):
            if fields.get(name_key, "") not in UNSET:
                event["user.name"], event["user.id"] = fields[name_key], fields.get(id_key)
                event["labels"]["user_source"] = source
                break
        event["process.command_line"] = cmdline["cmd"] if cmdline else fields.get("proctitle")
        event["process.executable"] = fields.get("exe")
        event["process.name"] = program_name(fields.get("exe")) or fields.get("comm")
        pid = fields.get("pid", "")
        event["process.pid"] = int64_from_text(pid)
        for key in ("ppid", "cwd", "key"):
            if fields.get(key):
                event["labels"][key] = fields[key]
        event["labels"]["audit_id"] = f"{found['epoch']}:{found['serial']}"
        return event

    @staticmethod
    def _syslog(ctx: ReadContext, locator: int, text: str, row: dict) -> dict:
        when = row.get("EventTime") or row.get("TimeGenerated")
        if not isinstance(when, str):
            raise BadTime("row without EventTime or TimeGenerated")
        program = str(row.get("ProcessName") or "")
        event = unix_event(ctx, SYSLOG_DATASET, program or "syslog", locator, text, _iso(when),
                           {"format": "sentinel Syslog row"})
        event["host.name"] = text_value(row.get("HostName")) or text_value(row.get("Computer"))
        event["process.name"] = program or None
        event["process.pid"] = int64_value(row.get("ProcessID"))
        interpret_message(event, program, row["SyslogMessage"])
        return event


SENTINEL_SYSLOG_SOURCES = (SentinelSyslog(array=False), SentinelSyslog(array=True))
