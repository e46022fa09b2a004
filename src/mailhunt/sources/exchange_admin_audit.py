"""Exchange admin audit log readers: ``Search-AdminAuditLog | Export-Csv`` and the XML report.

- ``admin_audit_csv``: ``Export-Csv`` of ``Search-AdminAuditLog`` output, with
  or without the ``#TYPE`` line; columns found by name (CmdletName,
  CmdletParameters, ObjectModified, Caller, Succeeded, Error, RunDate,
  OriginatingServer, ClientIP, ...). The parameter cell is read by
  ``admin_audit_parameters``.
- ``admin_audit_xml``: the XML attachment of the admin audit log report
  (``New-AdminAuditLogSearch`` / EAC), ``<SearchResults><Event Caller=..
  Cmdlet=.. ObjectModified=.. RunDate=.. Succeeded=.. Error=..
  OriginatingServer=..><CmdletParameters><Parameter Name=.. Value=../>``,
  parsed as a stream with expat; a damaged Event is rejected with its line and
  reading resumes at the next ``<Event``. Documents with a DTD are refused.

RunDate: the XML writes ISO-8601 with an offset. A CSV RunDate is the
exporting session's local time without a zone: it is converted only with the
analyst's ``timezone`` hint (see ``local_time``); without it the record is
rejected with that reason, never read as UTC by guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO
from xml.parsers import expat

import pyarrow as pa

from mailhunt.events import to_arrow
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.admin_audit_parameters import parse_cmdlet_parameters_cell
from mailhunt.sources.admin_audit_record import DATASET, admin_audit_event
from mailhunt.sources.base import ReadContext, event_batches
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.local_time import ExportZone
from mailhunt.sources.m365_audit import decode_head

BATCH_RECORDS = ROW_GROUP_ROWS // 6
_REQUIRED_CSV = ("cmdletname", "caller", "rundate")


def _csv_header(head: str) -> list[str] | None:
    lines = head.lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("#TYPE"):
        lines = lines[1:]
    if not lines:
        return None
    return [c.strip().strip('"').lower() for c in lines[0].split(",")]


def _run_date(text: str, zone: ExportZone):
    """(UTC time, labels) or raises ValueError with the reason."""
    return zone.utc(text, "RunDate")


class AdminAuditCsv:
    name = "admin_audit_csv"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        header = _csv_header(decode_head(head))
        if not header:
            return False
        return all(c in header for c in _REQUIRED_CSV) and "auditdata" not in header

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        hint = ExportZone(ctx)
        yield from event_batches((self._event(row, number, raw, ctx, hint)
                                  for number, row, raw in csv_rows(stream, ctx, _REQUIRED_CSV)), BATCH_RECORDS)

    @staticmethod
    def _event(row: dict, number: int, raw: str, ctx: ReadContext, hint: ExportZone) -> dict | None:
        cmdlet = row.get("cmdletname", "").strip()
        if not cmdlet:
            ctx.reject(f"line {number}", "CmdletName empty")
            return None
        try:
            timestamp, time_labels = _run_date(row.get("rundate", ""), hint)
        except ValueError as exc:
            ctx.reject(f"line {number}", str(exc))
            return None
        pairs, form = parse_cmdlet_parameters_cell(row.get("cmdletparameters", ""))
        return admin_audit_event(
            timestamp=timestamp, cmdlet=cmdlet, caller=row.get("caller"), object_modified=row.get("objectmodified"),
            succeeded=row.get("succeeded"), error=row.get("error"), server=row.get("originatingserver"),
            client_ip=row.get("clientip"), pairs=pairs, labels={**time_labels, "parameters_form": form},
            raw=raw, path=ctx.path, sha256=ctx.sha256, locator=number)


# ---------------------------------------------------------------- XML report

_EVENT_START = re.compile(rb"<Event[\s>/]")
_RESUME_PREFIX = b"<SearchResults>"
_REPORT_START = re.compile(r"\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^\[>]*(\[.*?\])?\s*>)?\s*<SearchResults[\s>/]", re.DOTALL)


class _XmlSession:
    """One expat parse, from the file start or resumed at an ``<Event`` after damage.

    ``start`` is the absolute byte offset the session's own input begins at (a
    resumed session is fed ``_RESUME_PREFIX`` first), ``lines_before`` the
    newlines before it; together they turn expat's positions into the file's.
    """

    def __init__(self, reader: _XmlReader, start: int, lines_before: int, prefix: bytes):
        self.reader, self.start, self.lines_before, self.prefix = reader, start, lines_before, prefix
        self.ready: list[dict] = []
        self.current: dict | None = None
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self.on_start
        self.parser.EndElementHandler = self.on_end
        self.parser.StartDoctypeDeclHandler = self.on_doctype
        if prefix:
            self.parser.Parse(prefix, False)

    def offset(self, index: int | None = None) -> int:
        index = self.parser.CurrentByteIndex if index is None else index
        return self.start + max(0, index - len(self.prefix))

    def line(self, number: int | None = None) -> int:
        return self.lines_before + (self.parser.CurrentLineNumber if number is None else number)

    def on_doctype(self, *args) -> None:
        raise _Refused("document declares a DTD (the admin audit report has none); refused")

    def on_start(self, tag: str, attrs: dict) -> None:
        if tag == "Event":
            self.current = {"attrs": attrs, "pairs": [], "line": self.line(), "start": self.offset()}
        elif tag == "Parameter" and self.current is not None:
            self.current["pairs"].append((attrs.get("Name", ""), attrs.get("Value", "")))

    def on_end(self, tag: str) -> None:
        if tag != "Event" or self.current is None:
            return
        current, self.current = self.current, None
        event = self.reader.event(current, self.offset())
        if event is not None:
            self.ready.append(event)


class _Refused(Exception):
    pass


class _XmlReader:
    """The state of reading one XML report: the bytes not yet released and where they sit in the file."""

    def __init__(self, ctx: ReadContext, chunk_bytes: int):
        self.ctx, self.hint, self.chunk_bytes = ctx, ExportZone(ctx), chunk_bytes
        self.buffer, self.base, self.lines_dropped = bytearray(), 0, 0
        self.last_end = 0

    def run(self, stream: BinaryIO) -> Iterator[pa.Table]:
        ctx = self.ctx
        session = _XmlSession(self, 0, 0, b"")
        pending, at_end = b"", False
        while True:
            if not pending and not at_end:
                pending = stream.read(self.chunk_bytes)
                at_end = not pending
                self.buffer.extend(pending)
            try:
                session.parser.Parse(pending, at_end)
                pending = b""
            except _Refused as exc:
                ctx.reject(f"line {session.line()}", str(exc))
                return
            except expat.ExpatError as exc:
                yield from self._flush(session)
                failed_at = self._report_damage(session, exc)
                resume = self._next_event(failed_at + 1)
                while resume is None and not at_end:
                    chunk = stream.read(self.chunk_bytes)
                    at_end = not chunk
                    self.buffer.extend(chunk)
                    resume = self._next_event(failed_at + 1)
                if resume is None:
                    return
                lines_before = self.lines_dropped + self.buffer.count(b"\n", 0, resume - self.base)
                session = _XmlSession(self, resume, lines_before, _RESUME_PREFIX)
                pending = bytes(self.buffer[resume - self.base:])
                if not pending:
                    return
                continue
            yield from self._flush(session)
            if at_end:
                return
            # expat may hold the start of the next element unparsed: keep all after the last complete Event
            keep_from = session.current["start"] if session.current else self.last_end
            self._drop_before(keep_from)

    def _report_damage(self, session: _XmlSession, exc: expat.ExpatError) -> int:
        """Reject what the damage hit; the absolute offset to resume after."""
        reason = f"{expat.errors.messages[exc.code]} at line {session.line(exc.lineno)}"
        if session.current is not None:
            self.ctx.records += 1
            self.ctx.reject(f"line {session.current['line']}", f"Event element damaged ({reason}); skipped")
            return session.current["start"]
        failed_at = session.offset()
        started = self._last_event_start(session.start, failed_at)
        if started is not None:
            self.ctx.records += 1
            line = self.lines_dropped + self.buffer.count(b"\n", 0, started - self.base) + 1
            self.ctx.reject(f"line {line}", f"Event element damaged ({reason}); skipped")
            return started
        self.ctx.reject(f"line {session.line(exc.lineno)}", f"XML damaged ({reason}); reading resumes at the next Event")
        return failed_at

    def _last_event_start(self, session_start: int, before: int) -> int | None:
        """The ``<Event`` whose start tag the damage hit, if one began after the last complete Event.

        Only the session's own input is searched: an Event before it was damaged
        and rejected already, and resuming there again would never end.
        """
        begin = max(self.last_end, self.base, session_start) - self.base
        starts = list(_EVENT_START.finditer(self.buffer, begin, max(begin, before - self.base + len("<Event "))))
        return starts[-1].start() + self.base if starts else None

    def _next_event(self, after: int) -> int | None:
        match = _EVENT_START.search(self.buffer, max(0, after - self.base))
        return match.start() + self.base if match else None

    def _drop_before(self, offset: int) -> None:
        drop = offset - self.base
        if drop > 0:
            self.lines_dropped += self.buffer.count(b"\n", 0, drop)
            del self.buffer[:drop]
            self.base = offset

    def _raw(self, start: int, end_tag_at: int) -> str:
        begin, at = start - self.base, end_tag_at - self.base
        if self.buffer.startswith(b"</", at):
            stop = self.buffer.find(b">", at) + 1
        elif at > begin and self.buffer[at - 2:at] == b"/>":
            stop = at
        else:
            stop = self.buffer.find(b"/>", begin) + 2
        self.last_end = stop + self.base
        return bytes(self.buffer[begin:stop]).decode("utf-8", "replace")

    def event(self, current: dict, end_tag_at: int) -> dict | None:
        ctx = self.ctx
        ctx.records += 1
        raw = self._raw(current["start"], end_tag_at)
        attrs, where = current["attrs"], f"line {current['line']}"
        cmdlet = (attrs.get("Cmdlet") or "").strip()
        if not cmdlet:
            ctx.reject(where, "Event has no Cmdlet")
            return None
        try:
            timestamp, labels = _run_date(attrs.get("RunDate", ""), self.hint)
        except ValueError as exc:
            ctx.reject(where, str(exc))
            return None
        return admin_audit_event(
            timestamp=timestamp, cmdlet=cmdlet, caller=attrs.get("Caller"), object_modified=attrs.get("ObjectModified"),
            succeeded=attrs.get("Succeeded"), error=attrs.get("Error"), server=attrs.get("OriginatingServer"),
            client_ip=attrs.get("ClientIP"), pairs=[p for p in current["pairs"] if p[0]],
            labels={**labels, "parameters_form": "name_value" if current["pairs"] else "empty"},
            raw=raw, path=ctx.path, sha256=ctx.sha256, locator=current["line"])

    @staticmethod
    def _flush(session: _XmlSession) -> Iterator[pa.Table]:
        if session.ready:
            yield to_arrow(session.ready)
            session.ready = []


class AdminAuditXml:
    name = "admin_audit_xml"
    dataset = DATASET
    locator_unit = "line"
    chunk_bytes = 1 << 20

    def sniff(self, head: bytes) -> bool:
        return _REPORT_START.match(decode_head(head)) is not None

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from _XmlReader(ctx, self.chunk_bytes).run(stream)


EXCHANGE_ADMIN_AUDIT_SOURCES = (AdminAuditCsv(), AdminAuditXml())
