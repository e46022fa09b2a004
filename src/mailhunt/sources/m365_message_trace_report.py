"""Downloadable Exchange Online message trace reports (the portal's "enhanced summary" and "extended" CSVs).

- Extended report: the message tracking columns with ``_`` for ``-`` and
  ``date_time_utc`` for ``date-time`` (``date_time_utc,client_ip,
  client_hostname,server_ip,server_hostname,source_context,connector_id,
  source,event_id,internal_message_id,message_id,network_message_id,
  recipient_address,...``); each row is read like a message tracking record,
  ``custom_data`` included (the transport rules that acted).
- Enhanced summary report: one row per message, ``origin_timestamp_utc,
  sender_address,Recipient_status,message_subject,total_bytes,message_id,
  network_message_id,original_client_ip,directionality,connector_id,
  delivery_priority``; ``Recipient_status`` holds ``address##Receive, Deliver``
  per recipient, ``;``-joined. One event per recipient, whose
  ``email.delivery_status`` is the last step (``Deliver``, ``Fail``,
  ``Quarantine`` ...) and ``labels.recipient_status`` the whole list.

Both are written by the service in UTC (the column names say so); the portal
saves them as UTF-16 or UTF-8 text. The column layouts follow Microsoft's
description of the reports; the fixtures are written to it, not taken from a
downloaded report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import event_id_from_raw, new_event
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.base import ReadContext, event_batches
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.exchange_message_tracking import (
    ReceivedRecipients,
    tracking_event,
)
from mailhunt.sources.local_time import parse_wall_clock, to_utc
from mailhunt.sources.m365_audit import decode_head
from mailhunt.sources.m365_message_trace import DATASET, csv_header, ip_or_none

BATCH_RECORDS = ROW_GROUP_ROWS // 2
_DIRECTIONS = {"incoming": "inbound", "1": "inbound", "originating": "outbound", "2": "outbound"}


def _recipients(status: str) -> list[tuple[str, str]]:
    """(address, steps) per recipient of ``a@x##Receive, Deliver;b@y##Receive, Fail``."""
    found = []
    for part in status.split(";"):
        address, _, steps = part.partition("##")
        if address.strip():
            found.append((address.strip().lower(), steps.strip()))
    return found


class MessageTraceReport:
    name = "m365_message_trace_report"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        header = csv_header(decode_head(head)) or []
        return ("date_time_utc" in header and "event_id" in header) or (
            "origin_timestamp_utc" in header and "recipient_status" in header)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        received = ReceivedRecipients()
        yield from event_batches((event for number, row, raw in csv_rows(stream, ctx)
                                  for event in self._row_events(row, raw, number, ctx, received)), BATCH_RECORDS)

    def _row_events(self, row: dict, raw: str, number: int, ctx: ReadContext,
                    received: ReceivedRecipients) -> Sequence[dict | None]:
        if "date_time_utc" in row:
            tracking = {k.replace("_", "-"): v for k, v in row.items()}
            tracking["date-time"] = self._iso_utc(row["date_time_utc"])
            return [tracking_event(tracking, raw, number, ctx, DATASET, {"report": "extended"}, received=received)]
        return self._summary_events(row, raw, number, ctx)

    @staticmethod
    def _iso_utc(text: str) -> str:
        """The report's UTC time as ISO text with a zone (a zone-less value is UTC by the column's name)."""
        try:
            return to_utc(parse_wall_clock(text), UTC).isoformat() + "Z"
        except ValueError:
            return text

    @staticmethod
    def _summary_events(row: dict, raw: str, number: int, ctx: ReadContext) -> list[dict]:
        try:
            clock = parse_wall_clock(row.get("origin_timestamp_utc", ""))
            timestamp = to_utc(clock, UTC)
        except ValueError as exc:
            ctx.reject(f"line {number}", f"origin_timestamp_utc: {exc}")
            return []
        recipients = _recipients(row.get("recipient_status", ""))
        if not recipients:
            ctx.reject(f"line {number}", "Recipient_status names no recipient")
            return []
        events = []
        for address, steps in recipients:
            last = steps.split(",")[-1].strip() or "Unknown"
            event = new_event()
            event.update({
                "event.id": event_id_from_raw(f"{raw}\x1f{address}"),
                "@timestamp": timestamp,
                "event.action": last,
                "event.outcome": {"deliver": "success", "send": "success", "fail": "failure"}.get(last.lower(), "unknown"),
                "event.provider": "Exchange Online message trace",
                "event.dataset": DATASET,
                "email.delivery_status": last,
                "email.from.address": (row.get("sender_address") or "").strip().lower() or None,
                "email.to.address": address,
                "email.subject": row.get("message_subject") or None,
                "email.message_id": (row.get("message_id") or "").strip() or None,
                "email.direction": _DIRECTIONS.get((row.get("directionality") or "").strip().lower()),
                "email.item_count": 1,
                "source.ip": ip_or_none(row.get("original_client_ip")),
                "labels": sorted({k: v for k, v in {
                    "report": "summary", "recipient_status": steps,
                    "network_message_id": (row.get("network_message_id") or "").strip(),
                    "connector_id": (row.get("connector_id") or "").strip(),
                    "time_zone_source": "recorded" if clock.offset is not None else "service_documented_utc",
                }.items() if v}.items()),
                "log.file.path": ctx.path,
                "log.file.sha256": ctx.sha256,
                "log.record": number,
                "event.original": raw,
            })
            events.append(event)
        return events


MESSAGE_TRACE_REPORT_SOURCES = (MessageTraceReport(),)
