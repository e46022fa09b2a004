"""Exchange Server message tracking logs (``MSGTRK*.LOG``), the W3C-style text files in TransportRoles\\Logs.

A file starts with ``#Software: Microsoft Exchange Server``, ``#Version``,
``#Log-type: Message Tracking Log``, ``#Date`` and ``#Fields:``; every other
line is one CSV record (values with commas are double-quoted) in the order the
``#Fields:`` line gives. Exchange 2013 and later write ``network-message-id``
and more; Exchange 2010 does not. Columns are found by name, so both layouts
(and a ``#Fields:`` line repeated mid-file) are read the same way.

Mapping: ``date-time`` (ISO-8601 UTC with ``Z``) → ``@timestamp``;
``event-id`` (RECEIVE, DELIVER, SEND, FAIL, DSN, EXPAND, REDIRECT, TRANSFER,
AGENTINFO ...) → ``event.action``, ``event.code`` and
``email.delivery_status``; ``source`` (SMTP, STOREDRIVER, AGENT ...) →
``event.provider``; ``sender-address`` → ``email.from.address``;
``recipient-address`` (``;``-joined when several) → ``email.to.address``;
``message-subject``, ``message-id``; ``original-client-ip`` else ``client-ip``
→ ``source.ip``; ``server-hostname`` → ``host.name``; ``directionality``
``Incoming`` → inbound, ``Originating`` (sent by a user of the organization,
internal mail included) → outbound. Addresses are lower-cased.
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import (
    TimeOutOfRange,
    ZoneMissing,
    event_id_from_raw,
    new_event,
    utc_from_text,
)
from mailhunt.sources.base import (
    ROW_GROUP_ROWS,
    ReadContext,
    event_batches,
    iter_text_lines,
)
from mailhunt.sources.m365_audit import split_at_lone_cr

DATASET = "exchange.message_tracking"
BATCH_RECORDS = ROW_GROUP_ROWS // 2
_OUTCOMES = {"DELIVER": "success", "SEND": "success", "RECEIVE": "success", "FAIL": "failure", "DSN": "failure",
             "BADMAIL": "failure", "POISONMESSAGE": "failure"}
_DIRECTIONS = {"incoming": "inbound", "originating": "outbound"}
_LABELLED = ("directionality", "network-message-id", "internal-message-id", "recipient-status", "source-context",
             "connector-id", "return-path")


@lru_cache(maxsize=65536)
def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip())) if text and text.strip() else None
    except ValueError:
        return None


def _timestamp(text: str) -> datetime:
    """UTC time of an ISO-8601 ``date-time``; raises ValueError naming the problem."""
    value = text.strip()
    try:
        return utc_from_text(value)
    except ZoneMissing:
        raise ValueError(f"date-time '{value[:40]}' has no zone (message tracking writes UTC with Z)") from None
    except TimeOutOfRange:
        raise
    except ValueError:
        raise ValueError(f"date-time '{value[:40]}' is not an ISO-8601 time") from None


def _lower(text: str | None) -> str | None:
    value = (text or "").strip()
    return value.lower() if value else None


class MessageTrackingLog:
    name = "exchange_message_tracking"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        text = head[:4096].decode("utf-8-sig", errors="ignore")
        return text.startswith("#Software: Microsoft Exchange") and "#Log-type: Message Tracking Log" in text

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH_RECORDS)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict | None]:
        fields: list[str] | None = None
        for number, text in iter_text_lines(stream, ctx):
            for line in split_at_lone_cr(text):  # a lone CR outside quotes ends a record too
                if line.startswith("#"):
                    if line.startswith("#Fields:"):
                        fields = [f.strip().lower() for f in line[len("#Fields:"):].split(",")]
                    continue
                if not line.strip():
                    continue
                ctx.records += 1
                if fields is None:
                    ctx.reject(f"line {number}", "record before any #Fields: line")
                    continue
                yield self._event(fields, line, number, ctx)

    @staticmethod
    def _event(fields: list[str], line: str, number: int, ctx: ReadContext) -> dict | None:
        try:
            values = next(csv.reader([line]))
        except csv.Error as exc:
            ctx.reject(f"line {number}", f"record cannot be parsed: {exc}")
            return None
        if len(values) != len(fields):
            ctx.reject(f"line {number}", f"{len(values)} values where #Fields: names {len(fields)} (truncated line?)")
            return None
        return tracking_event(dict(zip(fields, values)), line, number, ctx, DATASET)


def tracking_event(row: dict[str, str], raw: str, number: int, ctx: ReadContext, dataset: str,
                   extra_labels: dict[str, str] | None = None) -> dict | None:
    """One message tracking record (columns by their ``#Fields:`` names) as an event; None when rejected."""
    try:
        timestamp = _timestamp(row.get("date-time", ""))
    except ValueError as exc:
        ctx.reject(f"line {number}", str(exc))
        return None
    action = row.get("event-id", "").strip().upper()
    if not action:
        ctx.reject(f"line {number}", "event-id empty")
        return None
    event = new_event()
    event.update({
        "event.id": event_id_from_raw(raw),
        "@timestamp": timestamp,
        "event.action": action,
        "event.code": action,
        "event.outcome": _OUTCOMES.get(action, "unknown"),
        "event.provider": row.get("source", "").strip() or None,
        "event.dataset": dataset,
        "email.delivery_status": action,
        "email.from.address": _lower(row.get("sender-address")),
        "email.to.address": _lower(row.get("recipient-address")),
        "email.subject": row.get("message-subject") or None,
        "email.message_id": row.get("message-id", "").strip() or None,
        "email.direction": _DIRECTIONS.get(row.get("directionality", "").strip().lower()),
        "email.item_count": 1,
        "source.ip": _ip(row.get("original-client-ip", "")) or _ip(row.get("client-ip", "")),
        "host.name": row.get("server-hostname", "").strip() or None,
        "labels": sorted({**{k.replace("-", "_"): row[k] for k in _LABELLED if row.get(k, "").strip()},
                          **(extra_labels or {})}.items()),
        "log.file.path": ctx.path,
        "log.file.sha256": ctx.sha256,
        "log.record": number,
        "event.original": raw,
    })
    return event


MESSAGE_TRACKING_SOURCES = (MessageTrackingLog(),)
