"""Flat Windows event records: one JSON object a line, the event's data at the top level.

The form OTRF/Mordor datasets, NXLog (``im_msvistalog`` with ``to_json()``)
and many shippers write: ``SourceName``, ``ProviderGuid``, ``Channel``,
``Hostname``, ``EventID`` (a number), ``TimeCreated`` and/or ``@timestamp``
(NXLog: ``EventTime``), ``Message`` (the rendered text), ``Task``,
``Keywords``, ``Level``, NXLog's ``RecordNumber``/``AccountName``/``Domain``/
``UserID``, and every EventData field beside them (``CommandLine``,
``NewProcessName``, ``SubjectUserName``, ``ScriptBlockText``, ``param1`` ...).

Each line is turned back into the ``{"Event": {"System": ..., "EventData":
...}}`` record the EVTX readers hand ``WindowsEventStream``: the envelope keys
into System, all others into EventData; so a 4688, a 4104, a Sysmon 1 or a
7040 becomes the event its EVTX record becomes. Where the shipper kept only
the rendered text (MSExchange Management cmdlets, PowerShell 800, System 104,
Security 1102), ``windows_rendered`` gives the data back from it.

Time: ``TimeCreated``, else ``EventTime``, else ``@timestamp``. Text with
``Z`` or an offset is converted as it says; text without a zone (NXLog writes
``EventTime`` as the collector's local time) only with the analyst's
``timezone`` hint, else the record is rejected. ``labels.time_zone_source``
says which. Sysmon records also carry their own ``UtcTime``: where it
disagrees with ``TimeCreated`` (OTRF's datasets write local time with a
``Z``), the input is noted with the difference; times stay as the record's
zone says.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import orjson
import pyarrow as pa

from mailhunt.events import TimeOutOfRange, iso_z
from mailhunt.sources.base import ReadContext, iter_text_lines, json_lines
from mailhunt.sources.json_values import int64_from_text, text_value
from mailhunt.sources.local_time import (
    TIMEZONE_HINT,
    BadTime,
    ZoneUnknown,
    parse_wall_clock,
    to_utc,
    zone_from_hint,
)
from mailhunt.sources.windows_rendered import recovered_data
from mailhunt.sources.windows_stream import WindowsEventStream

# Keys of the record's envelope (System, and what shippers add), never EventData.
ENVELOPE_KEYS = frozenset({
    "SourceName", "ProviderName", "ProviderGuid", "Channel", "Hostname", "Computer", "EventID", "TimeCreated",
    "@timestamp", "EventTime", "EventReceivedTime", "Message", "Task", "Keywords", "Level", "Opcode",
    "OpcodeValue", "Version", "RecordNumber", "EventRecordID", "Severity", "SeverityValue", "Category",
    "SourceModuleName", "SourceModuleType", "ActivityID", "RelatedActivityID", "ExecutionProcessID",
    "ExecutionThreadID", "ThreadID", "AccountName", "AccountType", "Domain", "UserID", "@version", "tags",
})
# NXLog's own EventType (the level as a word); Sysmon's EventType (SetValue, CreateKey ...) is EventData.
_NXLOG_EVENT_TYPES = frozenset({"AUDIT_SUCCESS", "AUDIT_FAILURE", "INFO", "WARNING", "ERROR", "CRITICAL",
                                "VERBOSE"})
_TIME_KEYS = ("TimeCreated", "EventTime", "@timestamp")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
# Sysmon writes an event a moment after its UtcTime; more than this apart, the two clocks disagree.
_CLOCK_TOLERANCE = timedelta(minutes=2)


class BadFlatRecord(ValueError):
    """The line is not a flat Windows event (no EventID, no time it can be read with)."""


class ZoneMissing(BadFlatRecord):
    """A time written without a zone, and no ``timezone`` hint to read it with."""


def event_code(value: object) -> str:
    """EventID as text: a number, or digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and int64_from_text(value.strip()) is not None:
        return value.strip()
    raise BadFlatRecord(f"EventID {str(value)[:40]!r} is not a number")


def parse_time(text: str, zone_hint: str | None, what: str) -> tuple[datetime, str]:
    """(naive UTC, how its zone is known) of a time written as ISO-8601 or in an export's locale."""
    try:
        clock = parse_wall_clock(_LONG_FRACTION.sub(r"\1", text))
        if clock.offset is not None:
            return to_utc(clock, None), "recorded"
        zone = zone_from_hint(zone_hint)
        return to_utc(clock, zone), f"hint {zone_hint}"
    except ZoneUnknown:
        raise ZoneMissing(f"{what} '{text[:40]}' has no time zone; give the hint timezone=... "
                          "(the collector's zone)") from None
    except (BadTime, TimeOutOfRange, ValueError) as exc:
        raise BadFlatRecord(f"{what}: {exc}") from None


def build_record(code: str, channel: str | None, computer: str | None, provider: str | None,
                 moment: datetime, record_id: object, user_sid: str | None, data: dict | list,
                 message: str | None) -> dict:
    """The ``{"Event": ...}`` record ``windows_events.map_record`` takes.

    ``data`` is the EventData as named fields (a dict) or unnamed items (a
    list). When it is empty and the record has a rendered ``message``, the
    data the EVTX record holds is recovered from that text where its template
    is known.
    """
    system = {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": code,
        "TimeCreated": {"#attributes": {"SystemTime": iso_z(moment)}},
        "EventRecordID": record_id,
        "Channel": channel,
        "Computer": computer,
        "Security": {"#attributes": {"UserID": user_sid}} if user_sid else None,
    }
    event: dict = {"System": system}
    recovered = recovered_data(channel or "", code, provider or "", message) if not data and message else None
    if recovered:
        event.update(recovered)
    else:
        event["EventData"] = {"Data": data} if isinstance(data, list) else data
    return {"Event": event}


class ClockCheck:
    """Compares Sysmon's own ``UtcTime`` with the time the record was read with; notes a disagreement once."""

    def __init__(self) -> None:
        self.offsets: Counter[int] = Counter()

    def compare(self, moment: datetime, record: dict) -> None:
        """``record`` is the ``{"Event": ...}`` record read with the time ``moment``."""
        event = record["Event"]
        if "sysmon" not in str(event["System"].get("Channel")).lower() or not isinstance(event.get("EventData"), dict):
            return
        utc_text = event["EventData"].get("UtcTime")
        if not isinstance(utc_text, str):
            return
        try:
            stated = to_utc(parse_wall_clock(_LONG_FRACTION.sub(r"\1", utc_text)), UTC)  # UTC by Sysmon's definition
        except (BadTime, TimeOutOfRange):
            return
        difference = stated - moment
        if abs(difference) > _CLOCK_TOLERANCE:
            self.offsets[round(difference.total_seconds() / 60)] += 1

    def note(self, ctx: ReadContext, what: str) -> None:
        if not self.offsets:
            return
        minutes, count = self.offsets.most_common(1)[0]
        sign = "+" if minutes >= 0 else "-"
        ctx.note(f"{sum(self.offsets.values())} Sysmon records carry a UtcTime that differs from their {what} "
                 f"(most often by {sign}{abs(minutes) // 60}h{abs(minutes) % 60:02d}, {count} records): the "
                 f"{what} may be local time written as UTC; times are kept as {what} states them")


def _first_object(head: bytes) -> dict | None:
    text = head.decode("utf-8-sig", errors="ignore").lstrip()
    try:
        value = orjson.loads(text.split("\n", 1)[0].strip())
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_flat_windows_event(obj: dict) -> bool:
    return ("EventID" in obj and "Channel" in obj and ("SourceName" in obj or "ProviderName" in obj)
            and any(key in obj for key in _TIME_KEYS)
            and not any(key in obj for key in ("TimeGenerated", "winlog", "Event")))


def _record_time(obj: dict, zone_hint: str | None) -> tuple[datetime, str, str]:
    """(naive UTC, how its zone is known, the key it came from): the first of ``_TIME_KEYS`` whose zone is
    known. A time without a zone (and no hint) gives way to a later key that has one (old OTRF datasets
    carry NXLog's zone-less ``EventTime`` and the shipper's ``@timestamp`` with a Z); with none, the
    record is rejected for the first."""
    missing: ZoneMissing | None = None
    for key in _TIME_KEYS:
        text = obj.get(key)
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            moment, zone_source = parse_time(text, zone_hint, key)
        except ZoneMissing as exc:
            missing = missing or exc
            continue
        return moment, zone_source, key
    raise missing or BadFlatRecord("no TimeCreated, EventTime or @timestamp text")


class FlatWindowsNdjson:
    name = "windows_flat_ndjson"
    dataset = "windows"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        obj = _first_object(head)
        return obj is not None and is_flat_windows_event(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        clocks = ClockCheck()
        zone_hint = ctx.hints.get(TIMEZONE_HINT)
        for number, line, obj in json_lines(iter_text_lines(stream, ctx), ctx):
            if not isinstance(obj, dict):
                ctx.reject(f"line {number}", "not a JSON object")
                continue
            try:
                record, moment, labels = self._record(obj, zone_hint)
            except BadFlatRecord as exc:
                ctx.reject(f"line {number}", f"not a Windows event record: {exc}")
                continue
            clocks.compare(moment, record)
            fields = dict(labels)
            if fields.get("time_field") == "@timestamp" and any(
                    isinstance(obj.get(k), str) and obj[k].strip() for k in _TIME_KEYS[:2]):
                ctx.note("records whose TimeCreated/EventTime has no time zone were timed by their @timestamp "
                         "(the shipper's time, written as UTC: labels.time_field); give the hint timezone=... "
                         "to time them by the collector's clock instead")
            account = (text_value(obj.get("AccountName")), text_value(obj.get("Domain")))
            yield from events.add(number, line, record, account, labels=labels, keys_checked=True)
        yield from events.finish()
        clocks.note(ctx, "TimeCreated")

    @staticmethod
    def _record(obj: dict, zone_hint: str | None) -> tuple[dict, datetime, tuple[tuple[str, str], ...]]:
        """The record, its time and the labels saying how the time was read (``time_field`` when it is not
        ``TimeCreated``: NXLog's ``EventTime``, or a shipper's ``@timestamp``, which may be when it was shipped)."""
        code = event_code(obj.get("EventID"))
        moment, zone_source, key = _record_time(obj, zone_hint)
        data = {k: v for k, v in obj.items()
                if k not in ENVELOPE_KEYS and not (k == "EventType" and v in _NXLOG_EVENT_TYPES)}
        record_id = obj.get("EventRecordID", obj.get("RecordNumber"))
        record = build_record(code, text_value(obj.get("Channel")),
                              text_value(obj.get("Hostname")) or text_value(obj.get("Computer")),
                              text_value(obj.get("SourceName")) or text_value(obj.get("ProviderName")),
                              moment, record_id if isinstance(record_id, (int, str)) else None,
                              text_value(obj.get("UserID")), data, text_value(obj.get("Message")))
        labels = (("time_zone_source", zone_source),) if key == "TimeCreated" else (
            ("time_zone_source", zone_source), ("time_field", key))
        return record, moment, labels


FLAT_WINDOWS_SOURCES = (FlatWindowsNdjson(),)
