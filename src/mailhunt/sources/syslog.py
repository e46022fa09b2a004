"""Syslog files: RFC 3164 (BSD), RFC 5424, and RFC 3339-stamped lines (rsyslog's high-precision format).

Every line becomes an event; lines of sudo, sshd, dovecot and postfix are read
further (``syslog_messages``). Time:

- RFC 5424 and RFC 3339 stamps carry their offset: converted to UTC.
- RFC 3164 (``Oct 14 09:31:02``) has no year and no zone. The year comes from,
  in order: the ``--year`` hint (the year of the file's first line), a
  ``YYYYMMDD`` date in the file name (logrotate ``dateext``: the rotation day,
  near the last line), the file's modification time (when the file itself is
  at hand, not inside an archive). Never from today's date: with none of
  these, each line is rejected with a reason asking for ``--year``. A line
  whose month lies after the reference date belongs to the year before (the
  file spans New Year); with ``--year``, a jump from December back to January
  moves to the next year. ``labels.year_source`` says which was used. The
  zone is not logged either: the analyst's ``timezone`` hint converts it,
  else it is read as UTC; ``labels.time_zone_source`` says which.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import (
    TimeOutOfRange,
    parse_time_text,
    utc_from_epoch,
    utc_from_text,
)
from mailhunt.sources.base import ReadContext
from mailhunt.sources.json_values import int64_from_text
from mailhunt.sources.syslog_messages import interpret_message
from mailhunt.sources.unix_common import (
    NOT_UTF8,
    EventBatches,
    lenient_lines,
    local_time_to_utc,
    unix_event,
)

DATASET = "unix.syslog"
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                      "Dec"), start=1)}

_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
_RFC3164 = re.compile(_PRI + r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>[ \d]\d) "
                      r"(?P<time>\d\d:\d\d:\d\d) (?P<host>\S+) (?P<rest>.*)$", re.DOTALL)
_RFC5424 = re.compile(r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
                      r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$", re.DOTALL)
_RFC3339 = re.compile(_PRI + r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?P<host>\S+) "
                      r"(?P<rest>.*)$", re.DOTALL)
_TAG = re.compile(r"^(?P<prog>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$", re.DOTALL)
_FILE_DATE = re.compile(r"(?<!\d)(20\d\d)(\d\d)(\d\d)(?!\d)")


def _utc(text: str) -> datetime:
    """An RFC 5424/3339 time, which carries its offset (the pattern requires it)."""
    return utc_from_text(text)


class YearResolver:
    """Gives an RFC 3164 line its year, and says where the year came from."""

    def __init__(self, ctx: ReadContext):
        self.hint: int | None = None
        self.reference: datetime | None = None
        self.source: str | None = None
        self._last_month: int | None = None
        if ctx.hints.get("year", "").isdigit():
            self.hint, self.source = int(ctx.hints["year"]), "--year"
            return
        name = os.path.basename(ctx.path.rsplit("!", 1)[-1])
        for found in _FILE_DATE.finditer(name):
            try:
                self.reference = datetime(int(found[1]), int(found[2]), int(found[3]), 23, 59, 59)
                self.source = "date in file name"
                return
            except ValueError:
                continue
        if ctx.local_path is not None and os.path.isfile(ctx.local_path):
            try:
                self.reference = utc_from_epoch(os.stat(ctx.local_path).st_mtime)
            except TimeOutOfRange:
                return
            self.source = "file mtime"
            ctx.note(f"lines carry no year; years taken from the file's modification time "
                     f"({self.reference:%Y-%m-%d}); give --year if the file was copied without its times")

    def year(self, month: int, day: int, clock: str) -> int | None:
        if self.hint is not None:
            if self._last_month is not None and self._last_month == 12 and month == 1:
                self.hint += 1
            self._last_month = month
            return self.hint
        if self.reference is None:
            return None
        year = self.reference.year
        if (month, day, clock) > (self.reference.month, self.reference.day, self.reference.strftime("%H:%M:%S")):
            year -= 1
        return year


def _is_syslog_line(line: str) -> bool:
    if _RFC5424.match(line) or _RFC3339.match(line):
        return True
    bsd = _RFC3164.match(line)
    return bool(bsd and _TAG.match(bsd["rest"]))


def sniff_syslog(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and len(text) == len(head) and not text.endswith("\n"):
        lines = lines[:-1]
    if not lines:
        return False
    hits = sum(1 for line in lines if _is_syslog_line(line))
    return hits * 10 >= len(lines) * 8


class SyslogFile:
    name = "syslog"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        return sniff_syslog(head)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        years = YearResolver(ctx)
        for number, text, escaped in lenient_lines(stream, ctx):
            if not text.strip():
                continue
            ctx.records += 1
            try:
                event = self._event(ctx, number, text, years)
            except ValueError as exc:
                ctx.reject(f"line {number}", str(exc))
                continue
            if escaped:
                event["labels"]["encoding"] = NOT_UTF8
            yield from batches.add(event)
        yield from batches.flush()

    def _event(self, ctx: ReadContext, number: int, text: str, years: YearResolver) -> dict:
        labels: dict[str, str] = {}
        found = _RFC5424.match(text)
        if found:
            if found["ts"] == "-":
                raise ValueError("RFC 5424 line without a time (NILVALUE)")
            timestamp = _utc(found["ts"])
            labels["format"] = "rfc5424"
            host, program = found["host"], found["app"]
            pid, message = found["procid"], found["msg"] or ""
            if found["msgid"] != "-":
                labels["msgid"] = found["msgid"]
        else:
            found = _RFC3339.match(text)
            if found:
                timestamp = _utc(found["ts"])
                labels["format"] = "rfc3339"
            else:
                found = _RFC3164.match(text)
                if not found:
                    raise ValueError("not a syslog line (no RFC 3164, RFC 5424 or RFC 3339 time at its start)")
                timestamp, zone_source = local_time_to_utc(self._bsd_time(found, years), ctx)
                labels["format"] = "rfc3164"
                if years.source is not None:  # always set once a year was found
                    labels["year_source"] = years.source
                labels["time_zone_source"] = zone_source
            host = found["host"]
            tag = _TAG.match(found["rest"])
            program, pid, message = (tag["prog"], tag["pid"], tag["msg"]) if tag else (None, None, found["rest"])
        event = unix_event(ctx, DATASET, program or "syslog", number, text, timestamp, labels)
        event["host.name"] = None if host == "-" else host
        event["process.name"] = None if program in (None, "-") else program
        event["process.pid"] = int64_from_text(pid)
        interpret_message(event, program or "", message)
        return event

    @staticmethod
    def _bsd_time(found: re.Match, years: YearResolver) -> datetime:
        month, day = MONTHS[found["mon"]], int(found["day"])
        year = years.year(month, day, found["time"])
        if year is None:
            raise ValueError("RFC 3164 time has no year and nothing gives one (no --year, no date in the file "
                             "name, file time unknown); hunt again with --year")
        try:
            stamp = parse_time_text(f"{year}-{month:02d}-{day:02d} {found['time']}", ("%Y-%m-%d %H:%M:%S",),
                                    iso=False)
        except ValueError:
            raise ValueError(f"{found['mon']} {day} does not exist in {year}") from None
        return stamp

