"""Exchange Online message trace exported as CSV: ``Get-MessageTrace`` / ``Get-MessageTraceV2 | Export-Csv``.

Columns ``Received,SenderAddress,RecipientAddress,Subject,Status,ToIP,FromIP,
Size,MessageId,MessageTraceId,Index`` (V2 has no ``Index``; Export-Csv may add
``#TYPE`` and ``Organization``/``StartDate``/``EndDate``), found by name. One
row per message and recipient.

``Received``: the cmdlets output UTC (Microsoft documents it), and Export-Csv
writes it in the session's culture without a zone, e.g. ``10/14/2026 9:31:02
AM``. Such text is read as UTC because the service says so, and the record
says so in ``labels.time_zone_source``; ISO text with an offset is converted.
A date whose day and month cannot be told apart (``03/04/2026 10:00:00``
without AM/PM) needs the ``date_order`` hint.

Mapping: ``Status`` (Delivered, FilteredAsSpam, Quarantined, Failed, Expanded,
Pending ...) → ``email.delivery_status`` and ``event.action``; ``FromIP`` →
``source.ip``; ``ToIP`` → ``labels.to_ip``; ``StartDate``/``EndDate`` (the query's span, so
what the export covers) → ``labels.query_start``/``query_end``; addresses lower-cased;
``MessageTraceId`` + recipient + time + status make ``event.id``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC
from functools import lru_cache
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import event_id_from_raw, event_id_from_record_id, new_event
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.base import ReadContext, event_batches
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.local_time import (
    DATE_ORDER_HINT,
    parse_wall_clock,
    to_utc,
)
from mailhunt.sources.m365_audit import decode_head

DATASET = "m365.message_trace"
BATCH_RECORDS = ROW_GROUP_ROWS // 2
_REQUIRED = ("received", "senderaddress", "recipientaddress", "status")
_OUTCOMES = {"delivered": "success", "expanded": "success", "resolved": "success", "failed": "failure"}


def csv_header(text: str) -> list[str] | None:
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("#TYPE"):
        lines = lines[1:]
    return [c.strip().strip('"').lower() for c in lines[0].split(",")] if lines else None


@lru_cache(maxsize=65536)
def ip_or_none(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((text or "").strip())) if text and text.strip() else None
    except ValueError:
        return None


def _lower(text: str | None) -> str | None:
    value = (text or "").strip()
    return value.lower() if value else None


def _query_window(row: dict, ctx: ReadContext) -> dict[str, str]:
    """The trace query's StartDate/EndDate (UTC like Received): the span the export covers."""
    window = {}
    for column, label in (("startdate", "query_start"), ("enddate", "query_end")):
        try:
            window[label] = to_utc(parse_wall_clock(row.get(column, ""), ctx.hints.get(DATE_ORDER_HINT)),
                                   UTC).isoformat() + "Z"
        except ValueError:
            continue
    return window


class MessageTraceCsv:
    name = "m365_message_trace_csv"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        header = csv_header(decode_head(head))
        if not header:
            return False
        return all(c in header for c in _REQUIRED) and "auditdata" not in header

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches((self._event(row, raw, number, ctx) for number, row, raw in csv_rows(stream, ctx)),
                                 BATCH_RECORDS)

    @staticmethod
    def _event(row: dict, raw: str, number: int, ctx: ReadContext) -> dict | None:
        try:
            clock = parse_wall_clock(row.get("received", ""), ctx.hints.get(DATE_ORDER_HINT))
            timestamp = to_utc(clock, UTC)
        except ValueError as exc:
            ctx.reject(f"line {number}", f"Received: {exc}")
            return None
        zone_source = "recorded" if clock.offset is not None else "service_documented_utc"
        status = row.get("status", "").strip()
        if not status:
            ctx.reject(f"line {number}", "Status empty")
            return None
        trace_id = row.get("messagetraceid", "").strip()
        recipient = _lower(row.get("recipientaddress"))
        size = row.get("size", "").strip()
        labels = {"time_zone_source": zone_source}
        to_ip = ip_or_none(row.get("toip"))
        if to_ip:
            labels["to_ip"] = to_ip
        if trace_id:
            labels["message_trace_id"] = trace_id
        if size.isdigit():
            labels["size"] = size
        labels.update(_query_window(row, ctx))
        event = new_event()
        event.update({
            "event.id": event_id_from_record_id(DATASET, f"{trace_id}\x1f{recipient}\x1f{timestamp.isoformat()}\x1f{status}")
            if trace_id else event_id_from_raw(raw),
            "@timestamp": timestamp,
            "event.action": status,
            "event.outcome": _OUTCOMES.get(status.lower(), "unknown"),
            "event.provider": "Exchange Online message trace",
            "event.dataset": DATASET,
            "email.delivery_status": status,
            "email.from.address": _lower(row.get("senderaddress")),
            "email.to.address": recipient,
            "email.subject": row.get("subject") or None,
            "email.message_id": row.get("messageid", "").strip() or None,
            "email.item_count": 1,
            "source.ip": ip_or_none(row.get("fromip")),
            "organization.id": row.get("organization", "").strip() or None,
            "labels": sorted(labels.items()),
            "log.file.path": ctx.path,
            "log.file.sha256": ctx.sha256,
            "log.record": number,
            "event.original": raw,
        })
        return event


MESSAGE_TRACE_SOURCES = (MessageTraceCsv(),)
