"""Microsoft Sentinel / Log Analytics rows of the Windows event tables: ``SecurityEvent``, ``Event``, ``WindowsEvent``.

As ``az monitor log-analytics query -o json`` writes them (a JSON array of
row objects, values often as text, a ``TableName`` of ``PrimaryResult``), as
rows one JSON object a line, and as the portal's "Export to CSV" writes them
(a header of column names; a datetime column named ``TimeGenerated [UTC]``).

Recognized by ``Type`` naming one of the three tables, or, for rows without
``Type``, by the columns the three share (``TimeGenerated``, ``Computer``,
``EventID``) with one only they have (``EventSourceName``, ``Activity``,
``EventLog``, ``Channel``, ``RenderedDescription``, ``EventData``). Rows of
other tables in the same file are rejected by name.

Each row becomes the ``{"Event": ...}`` record ``windows_events.map_record``
maps, as a flat record does (``windows_flat.build_record``):

- ``SecurityEvent``: ``Channel`` (else Security), ``EventSourceName`` as the
  provider; EventData from the ``EventData`` XML text, and from the columns
  that hold EventData fields (``SubjectUserName``, ``CommandLine``,
  ``NewProcessName`` ...);
- ``Event``: ``EventLog`` as the channel, ``Source`` as the provider, EventData
  from the ``EventData`` XML text (``<DataItem><EventData><Data ...>``) or
  ``ParameterXml`` (``<Param>`` items), else from ``RenderedDescription``
  where its template is known; ``UserName`` names the account when the event
  names none;
- ``WindowsEvent``: ``Channel``, ``Provider``, ``EventRecordId``,
  ``SystemUserId``; EventData is the ``EventData`` object (or its JSON text),
  else the ``RawEventData`` XML.

A column whose name carries Log Analytics' type suffix (``ProcessId_string``,
``EventData_dynamic``: a column ingested with a second type) is read under its
own name when that name is not also present.

Time: ``TimeGenerated``, a Kusto datetime, is UTC by the table's definition
(written with a ``Z``, or in the portal's CSV under ``TimeGenerated [UTC]``
as ``8/2/2021, 1:09:20.040 PM``). A CSV exported with the portal showing
local time (``TimeGenerated [Local Time]``) is read only with the analyst's
``timezone`` hint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO
from xml.parsers import expat

import orjson
import pyarrow as pa

from mailhunt.sources.base import ReadContext
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.json_values import text_value
from mailhunt.sources.local_time import (
    TIMEZONE_HINT,
    BadTime,
    ZoneUnknown,
    parse_wall_clock,
    to_utc,
    zone_from_hint,
)
from mailhunt.sources.m365_audit import decode_head
from mailhunt.sources.macos_json import first_object, json_members, json_object_lines
from mailhunt.sources.windows_flat import (
    BadFlatRecord,
    ClockCheck,
    build_record,
    event_code,
)
from mailhunt.sources.windows_stream import WindowsEventStream

TABLES = ("SecurityEvent", "Event", "WindowsEvent")
_TABLE_COLUMNS = ("EventSourceName", "Activity", "EventLog", "Channel", "RenderedDescription", "EventData")
_COMMON_COLUMNS = ("TimeGenerated", "Computer", "EventID")
# Columns of the tables (and of the export) that are not EventData fields.
ENVELOPE_COLUMNS = frozenset({
    "TenantId", "SourceSystem", "TimeGenerated", "Computer", "EventID", "MG", "ManagementGroupName", "Type",
    "_ResourceId", "_SubscriptionId", "_BilledSize", "_IsBillable", "_ItemId", "TableName", "EventSourceName",
    "Channel", "Task", "Level", "Activity", "SourceComputerId", "EventOriginId", "TimeCollected", "InstanceId",
    "AzureDeploymentID", "Role", "Account", "AccountType", "EventData", "Source", "EventLog", "EventLevel",
    "EventLevelName", "EventCategory", "UserName", "RenderedDescription", "ParameterXml", "Message", "Provider",
    "Correlation", "EventRecordId", "Keywords", "Opcode", "RawEventData", "SystemProcessId", "SystemThreadId",
    "SystemUserId", "Version",
})
UNTYPED = "unknown"  # a row without Type whose columns name none of the three tables
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_TYPE_SUFFIX = re.compile(r"^(?P<name>.+)_(?:string|dynamic|int|long|real|bool|datetime|guid|timespan|decimal)$")
_HEADER_ZONE = re.compile(r"^(?P<name>.+?)\s*\[(?P<zone>[^\]]+)\]$")


def _columns(row: dict) -> dict:
    """The row with type-suffixed column names read under their own name where that name is free."""
    named = dict(row)
    for key in list(row):
        found = _TYPE_SUFFIX.match(key)
        if found and found["name"] not in named:
            named[found["name"]] = named.pop(key)
    return named


def table_of(row: dict) -> str | None:
    """Which of the three tables a row is of, or None."""
    kind = row.get("Type")
    if kind in TABLES:
        return str(kind)
    if kind is not None and kind != "":
        return None
    if not all(column in row for column in _COMMON_COLUMNS):
        return None
    if "EventLog" in row or "RenderedDescription" in row or "ParameterXml" in row:
        return "Event"
    if "EventSourceName" in row or "Activity" in row:
        return "SecurityEvent"
    if "Provider" in row or "EventRecordId" in row or isinstance(row.get("EventData"), dict):
        return "WindowsEvent"
    return UNTYPED  # EventData columns only: read as SecurityEvent's are, without a channel


def is_windows_row(row: dict) -> bool:
    row = _columns(row)
    if row.get("Type") in TABLES:
        return True
    return "Type" not in row and all(column in row for column in _COMMON_COLUMNS) \
        and any(column in row for column in _TABLE_COLUMNS)


# ---------------------------------------------------------------- EventData written as XML


class _DataCollector:
    """``Data``/``Param`` elements (named or not) and the leaves under ``UserData`` of an XML fragment."""

    def __init__(self) -> None:
        self.named: dict[str, str] = {}
        self.items: list[str] = []
        self.path: list[str] = []
        self.text: list[str] = []
        self.current_name: str | None = None

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.path.append(tag.rsplit(":", 1)[-1])
        self.text = []
        self.current_name = attributes.get("Name")

    def end(self, tag: str) -> None:
        name = self.path.pop()
        text = "".join(self.text)
        if name in ("Data", "Param"):
            if self.current_name:
                self.named[self.current_name] = text
            else:
                self.items.append(text)
        elif "UserData" in self.path[:-1]:
            self.named[name] = text
        self.text, self.current_name = [], None

    def characters(self, data: str) -> None:
        self.text.append(data)


def _refuse_dtd(*_args) -> None:
    raise ValueError("a document type declaration in EventData")


def xml_event_data(text: str) -> dict | list | None:
    """EventData written as XML (``<Data Name=..>``, unnamed ``<Data>`` or ``<Param>`` items, ``UserData``)."""
    collector = _DataCollector()
    parser = expat.ParserCreate()
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.characters
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(f"<mailhunt-fragment>{_XML_DECLARATION.sub('', text)}</mailhunt-fragment>", True)
    except (expat.ExpatError, ValueError, RecursionError):
        return None
    if collector.named:
        return collector.named
    return collector.items or None


def _json_or_xml(value: object) -> dict | list | None:
    """EventData given as an object, a list, JSON text of one, or XML text."""
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[0] in "{[":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, (dict, list)) else None
    if text.startswith("<"):
        return xml_event_data(text)
    return None


# ---------------------------------------------------------------- a row as a Windows event record


def row_time(value: object, header_zone: str | None, zone_hint: str | None) -> tuple[datetime, str]:
    """TimeGenerated: UTC by the table's definition, unless the export's header says the portal showed local time."""
    if not isinstance(value, str) or not value.strip():
        raise BadFlatRecord("no TimeGenerated")
    text = value.strip().replace(", ", " ")
    local = header_zone is not None and header_zone.upper() != "UTC"
    try:
        clock = parse_wall_clock(text)
        if clock.offset is not None:
            return to_utc(clock, None), "recorded"
        if not local:
            return to_utc(clock, UTC), "table_defined_utc"
        return to_utc(clock, zone_from_hint(zone_hint)), f"hint {zone_hint}"
    except ZoneUnknown:
        raise BadFlatRecord(f"TimeGenerated '{text[:40]}' is in the portal's [{header_zone}] display; give the "
                            "hint timezone=... (the zone the portal showed)") from None
    except (BadTime, ValueError) as exc:
        raise BadFlatRecord(f"TimeGenerated: {exc}") from None


def _merged(data: dict | list | None, columns: dict) -> dict | list:
    """EventData from the event's own data, its gaps filled from the row's EventData columns."""
    fields = {k: v for k, v in columns.items() if k not in ENVELOPE_COLUMNS and v not in (None, "")}
    if isinstance(data, list):
        return data if data or not fields else fields
    merged = dict(fields)
    merged.update(data or {})
    return merged


def row_record(row: dict, table: str, header_zone: str | None,
               zone_hint: str | None) -> tuple[dict, datetime, str, tuple[str | None, str | None]]:
    """(the ``{"Event": ...}`` record, its time, how its zone is known, the account the row names) of one row."""
    row = _columns(row)
    code = event_code(row.get("EventID"))
    moment, zone_source = row_time(row.get("TimeGenerated"), header_zone, zone_hint)
    computer = text_value(row.get("Computer"))
    record_id: object = None
    user_sid = None
    message = None
    account: tuple[str | None, str | None] = (None, None)
    if table == "Event":
        channel, provider = text_value(row.get("EventLog")), text_value(row.get("Source"))
        data = _json_or_xml(row.get("EventData")) or _json_or_xml(row.get("ParameterXml"))
        message = text_value(row.get("RenderedDescription")) or text_value(row.get("Message"))
        user = text_value(row.get("UserName"))
        if user and user not in ("N/A", "-"):
            domain, _, name = user.rpartition("\\")
            account = (name or None, domain or None)
    elif table == "WindowsEvent":
        channel, provider = text_value(row.get("Channel")), text_value(row.get("Provider"))
        data = _json_or_xml(row.get("EventData")) or _json_or_xml(row.get("RawEventData"))
        record_id = row.get("EventRecordId")
        user_sid = text_value(row.get("SystemUserId"))
    else:
        channel = text_value(row.get("Channel")) or ("Security" if row.get("Type") == "SecurityEvent" else None)
        provider = text_value(row.get("EventSourceName"))
        data = _json_or_xml(row.get("EventData"))
    if isinstance(record_id, str):
        record_id = record_id.strip() or None
    record = build_record(code, channel, computer, provider, moment,
                          record_id if isinstance(record_id, (int, str)) else None, user_sid,
                          _merged(data, row), message)
    return record, moment, zone_source, account


# ---------------------------------------------------------------- the readers


class _SentinelWindowsRows:
    dataset = "windows"
    name: str
    locator_unit: str

    def _rows(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, dict, str | None]]:
        raise NotImplementedError

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        zone_hint = ctx.hints.get(TIMEZONE_HINT)
        clocks = ClockCheck()
        for locator, text, row, header_zone in self._rows(stream, ctx):
            where = f"{self.locator_unit} {locator}"
            table = table_of(_columns(row))
            if table is None:
                ctx.reject(where, f"a row of table {str(row.get('Type'))[:40]!r}, not of "
                                  f"{', '.join(TABLES)}; not read by this reader")
                continue
            try:
                record, moment, zone_source, account = row_record(row, table, header_zone, zone_hint)
            except BadFlatRecord as exc:
                ctx.reject(where, f"not a Windows event row: {exc}")
                continue
            clocks.compare(moment, record)
            yield from events.add(locator, text, record, account,
                                  labels=(("time_zone_source", zone_source), ("sentinel_table", table)),
                                  keys_checked=True)
        yield from events.finish()
        clocks.note(ctx, "TimeGenerated")


class SentinelWindowsJson(_SentinelWindowsRows):
    def __init__(self, array: bool):
        self.array = array
        self.name = "sentinel_windows_array" if array else "sentinel_windows"
        self.locator_unit = "record" if array else "line"

    def sniff(self, head: bytes) -> bool:
        obj, in_array = first_object(head)
        return in_array == self.array and obj is not None and is_windows_row(obj)

    def _rows(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, dict, str | None]]:
        rows = json_members(stream, ctx) if self.array else json_object_lines(stream, ctx)
        for locator, text, row in rows:
            yield locator, text, row, None


def _header_name(name: str) -> str:
    return name.strip().lstrip("\ufeff")


class SentinelWindowsCsv(_SentinelWindowsRows):
    name = "sentinel_windows_csv"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        first = decode_head(head).split("\n", 1)[0].strip()
        if not first or first.startswith(("{", "[")):
            return False
        names = set()
        for cell in first.split(","):
            name = _HEADER_ZONE.sub(r"\g<name>", _header_name(cell.strip().strip('"')))
            suffixed = _TYPE_SUFFIX.match(name)
            names.add(suffixed["name"] if suffixed else name)
        return all(column in names for column in _COMMON_COLUMNS) and any(column in names for column in
                                                                          (*_TABLE_COLUMNS, "Type"))

    def _rows(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, dict, str | None]]:
        for number, fields, text in csv_rows(stream, ctx, key=_header_name):
            row: dict = {}
            zone = None
            for name, value in fields.items():
                found = _HEADER_ZONE.match(name)
                column = found["name"] if found else name
                if found and column == "TimeGenerated":
                    zone = found["zone"]
                row[column] = value
            yield number, text, row, zone


SENTINEL_WINDOWS_SOURCES = (SentinelWindowsJson(array=False), SentinelWindowsJson(array=True), SentinelWindowsCsv())
