"""Microsoft Sentinel / Log Analytics rows of the Entra ID tables, in the forms responders receive them.

Tables: ``AuditLogs`` (Entra ID audit, ``entra.audit`` events through
``entra_audit.audit_event``), ``SigninLogs`` and
``AADNonInteractiveUserSignInLogs`` (``entra.signin`` events through
``entra_signin.log_analytics_event``). A row's table is its ``Type`` column;
where a query dropped or overwrote ``Type``, the row's columns tell
(``OperationName`` + ``InitiatedBy`` + ``TargetResources`` for AuditLogs;
``UserPrincipalName`` + ``AppId`` + ``ResultType`` + ``IPAddress`` for a
sign-in). Containers:

- ``sentinel_entra``: one row per line (NDJSON: Sentinel data export, the OTRF
  Security-Datasets, Logic App and notebook dumps);
- ``sentinel_entra_array``: a JSON array of rows, as ``az monitor
  log-analytics query -o json`` writes it (every value as text, ``None`` for
  an empty cell, a ``TableName`` of ``PrimaryResult`` on every row);
- ``sentinel_entra_csv``: the portal's "Export to CSV": column names as in
  the table, time columns suffixed with the display time zone
  (``TimeGenerated [UTC]``), times as ``8/2/2021, 1:29:25.983 PM``,
  ``dynamic`` columns as JSON text.

Times: a value with a zone (``2021-08-02T13:29:25.983Z``) is read as such; a
value without one only under a ``[UTC]`` header. A ``[Local Time]`` export
says nothing about which zone that was, so its rows are rejected, not guessed.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from mailhunt.sources.base import ReadContext, event_batches, json_lines
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.entra_audit import BadAuditRecord, audit_event
from mailhunt.sources.entra_signin import (
    SIGNIN_TABLES,
    BadSignIn,
    log_analytics_event,
    parse_time,
)
from mailhunt.sources.m365_audit import decode_head, json_array_members, text_lines

AUDIT_TABLE = "AuditLogs"
TABLES = (AUDIT_TABLE, *SIGNIN_TABLES)
BATCH = 20_000
_AUDIT_COLUMNS = frozenset({"OperationName", "InitiatedBy", "TargetResources"})
_SIGNIN_COLUMNS = frozenset({"UserPrincipalName", "AppId", "ResultType", "IPAddress"})
_TYPE_VALUE = re.compile(r'"Type"\s*:\s*"(' + "|".join(TABLES) + r')"')
# Each table's own time column first (Graph's createdDateTime / activityDateTime), then TimeGenerated.
_TIME_COLUMNS = {AUDIT_TABLE: ("ActivityDateTime", "TimeGenerated"),
                 **{table: ("CreatedDateTime", "TimeGenerated") for table in SIGNIN_TABLES}}
_HEADER_ZONE = re.compile(r"^(?P<name>.*?)\s*\[(?P<zone>[^\]]*)\]$")
NOT_ENTRA = f"not a row of {', '.join(TABLES)} (Type and columns)"


def row_table(row: dict) -> str | None:
    """Which Entra table ``row`` comes from, or None."""
    kind = row.get("Type")
    if kind in TABLES:
        return kind
    if _AUDIT_COLUMNS <= row.keys():
        return AUDIT_TABLE
    if _SIGNIN_COLUMNS <= row.keys():
        return "SigninLogs"
    return None


class BadRow(ValueError):
    pass


class RowTimes:
    """How the time columns of one file are to be read: the zone its CSV header states for each, if any."""

    def __init__(self, zones: dict[str, str] | None = None):
        self.zones = zones or {}

    def when(self, row: dict, table: str):
        for column in _TIME_COLUMNS[table]:
            value = row.get(column)
            if value in (None, ""):
                continue
            zone = self.zones.get(column)
            if zone is not None and zone.upper() != "UTC":
                raise BadRow(f"{column} [{zone}]: the export shows times in the viewer's display time zone, "
                             "which it does not name; export again with the display time zone set to UTC")
            if not isinstance(value, str):
                raise BadRow(f"{column} is not a time")
            try:
                return parse_time(value, zone_stated_by_header=zone is not None)
            except BadSignIn as exc:
                raise BadRow(f"{column}: {exc}") from None
        raise BadRow(f"no {' or '.join(_TIME_COLUMNS[table])}")


def _az_nulls(row: dict) -> dict:
    """``az monitor log-analytics query`` writes every cell with Python's ``str``: an empty one as "None"."""
    if "TableName" not in row:
        return row
    return {key: None if value == "None" else value for key, value in row.items()}


def row_event(row: dict, raw: str, locator: int, ctx: ReadContext, times: RowTimes) -> dict:
    """The event of one row; raises BadRow (or BadAuditRecord) naming why it cannot be one."""
    row = _az_nulls(row)
    table = row_table(row)
    if table is None:
        raise BadRow(NOT_ENTRA)
    when = times.when(row, table)
    if table == AUDIT_TABLE:
        return audit_event(row, when=when, raw=raw, path=ctx.path, sha256=ctx.sha256, locator=locator,
                           labels={"table": AUDIT_TABLE})
    return log_analytics_event(row, table=table, when=when, raw=raw, path=ctx.path, sha256=ctx.sha256,
                               locator=locator)


def _events(rows: Iterator[tuple[int, str, object]], unit: str, ctx: ReadContext, times: RowTimes) -> Iterator[dict]:
    for locator, raw, row in rows:
        if not isinstance(row, dict):
            ctx.reject(f"{unit} {locator}", "not a JSON object")
            continue
        try:
            yield row_event(row, raw, locator, ctx, times)
        except (BadRow, BadAuditRecord) as exc:
            ctx.reject(f"{unit} {locator}", str(exc))


def _first_row_is_entra(head: bytes, in_array: bool) -> bool:
    """Whether the file's first row (first line, or first array member) is a row of an Entra table."""
    text = decode_head(head).lstrip(" \t\r\n")
    if text.startswith("[") != in_array:
        return False
    text = text[1:].lstrip() if in_array else text.split("\n", 1)[0]
    if not text.startswith("{"):
        return False
    try:
        row, _ = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        # the row goes on past the head (or is damaged): its Type is looked for by name
        return bool(_TYPE_VALUE.search(text))
    return isinstance(row, dict) and row_table(row) is not None


class SentinelEntraNdjson:
    name = "sentinel_entra"
    dataset = "entra"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        return _first_row_is_entra(head, in_array=False)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(_events(json_lines(text_lines(stream, ctx), ctx), "line", ctx, RowTimes()), BATCH)


class SentinelEntraArray:
    name = "sentinel_entra_array"
    dataset = "entra"
    locator_unit = "record"

    def sniff(self, head: bytes) -> bool:
        return _first_row_is_entra(head, in_array=True)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(_events(json_array_members(stream, ctx), "record", ctx, RowTimes()), BATCH)


def _split_header(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Column names without the portal's time-zone suffix, and the zone each suffixed column states."""
    columns, zones = [], {}
    for name in names:
        found = _HEADER_ZONE.match(name)
        if found:
            columns.append(found["name"])
            zones[found["name"]] = found["zone"].strip()
        else:
            columns.append(name)
    return columns, zones


def _header_key(name: str) -> str:
    return name.strip().lstrip("\ufeff")


class SentinelEntraCsv:
    name = "sentinel_entra_csv"
    dataset = "entra"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        first = decode_head(head).split("\n", 1)[0].strip("\r")
        try:
            names = next(csv.reader([first]))
        except (csv.Error, StopIteration):
            return False
        columns, _ = _split_header([_header_key(n) for n in names])
        return "TimeGenerated" in columns and row_table(dict.fromkeys(columns)) is not None

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict]:
        columns: list[str] = []
        times = RowTimes()
        for line, row, raw in csv_rows(stream, ctx, key=_header_key):
            if not columns:
                columns, zones = _split_header(list(row))
                times = RowTimes(zones)
            try:
                yield row_event(dict(zip(columns, row.values())), raw, line, ctx, times)
            except (BadRow, BadAuditRecord) as exc:
                ctx.reject(f"line {line}", str(exc))


SENTINEL_ENTRA_SOURCES = (SentinelEntraNdjson(), SentinelEntraArray(), SentinelEntraCsv())
