"""Exchange message tracking, in the three forms responders receive it.

- ``exchange_message_tracking``: the server's own ``MSGTRK*.LOG`` files in
  TransportRoles\\Logs. A file starts with ``#Software: Microsoft Exchange
  Server``, ``#Version``, ``#Log-type: Message Tracking Log``, ``#Date`` and
  ``#Fields:``; every other line is one CSV record (values with commas are
  double-quoted) in the order the ``#Fields:`` line gives. Exchange 2013 and
  later write ``network-message-id`` and more; Exchange 2010 does not.
  Columns are found by name, so both layouts (and a ``#Fields:`` line
  repeated mid-file) are read the same way.
- ``exchange_message_tracking_csv``: the same fields as a plain CSV whose
  header line names them (``date-time,client-ip,…,event-id,…,custom-data,…,
  schema-version``, no ``#`` lines), as Sentinel's Exchange Security Insights
  collects and exports them.
- ``exchange_message_tracking_export``: ``Get-MessageTrackingLog |
  Export-Csv`` (with or without the ``#TYPE
  Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent``
  line). The cmdlet names the fields without dashes (``InternalMessageId``)
  and renames four: ``date-time`` is ``Timestamp``, ``recipient-address``
  ``Recipients``, ``sender-address`` ``Sender`` and ``custom-data``
  ``EventData`` (``EXPORT_COLUMNS``).

One mapping serves all three (``tracking_event``): ``date-time`` → ``@timestamp``;
``event-id`` (RECEIVE, DELIVER, SEND, FAIL, DSN, EXPAND, REDIRECT, TRANSFER,
AGENTINFO ...) → ``event.action``, ``event.code`` and
``email.delivery_status``; ``source`` (SMTP, STOREDRIVER, AGENT ...) →
``event.provider``; ``sender-address`` → ``email.from.address``;
``recipient-address`` (``;``-joined when several) → ``email.to.address``;
``message-subject``, ``message-id``; ``original-client-ip`` else ``client-ip``
→ ``source.ip``; ``server-hostname`` → ``host.name``; ``directionality``
``Incoming`` → inbound, ``Originating`` (sent by a user of the organization,
internal mail included) → outbound. Addresses are lower-cased. The transport
rules that acted on the message (``custom-data``, ``message-info``; see
``message_tracking_agent_data``) → ``rule.name`` (the rule ids) and
``labels.transport_rule_id``/``transport_rule_action``/``transport_rule_mode``.

Times: the log and its CSV write ``date-time`` in UTC with ``Z``; a time
without a zone there is rejected. ``Export-Csv`` writes ``Timestamp`` in the
exporting session's culture and local time without a zone
(``10/14/2026 6:53:01 PM``): read only with the analyst's ``timezone`` hint
(``local_time.ExportZone``), else the record is rejected with that reason.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections import OrderedDict
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
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.base import (
    ReadContext,
    event_batches,
    iter_text_lines,
)
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.local_time import ExportZone
from mailhunt.sources.m365_audit import decode_head, split_at_lone_cr
from mailhunt.sources.message_tracking_agent_data import agent_data

DATASET = "exchange.message_tracking"
BATCH_RECORDS = ROW_GROUP_ROWS // 2
_OUTCOMES = {"DELIVER": "success", "SEND": "success", "RECEIVE": "success", "FAIL": "failure", "DSN": "failure",
             "BADMAIL": "failure", "POISONMESSAGE": "failure"}
_DIRECTIONS = {"incoming": "inbound", "originating": "outbound"}
_LABELLED = ("directionality", "network-message-id", "internal-message-id", "recipient-status", "source-context",
             "connector-id", "return-path", "related-recipient-address")

# The fields of the log (Exchange 2019 order); Exchange 2010 writes fewer.
NATIVE_FIELDS = ("date-time", "client-ip", "client-hostname", "server-ip", "server-hostname", "source-context",
                 "connector-id", "source", "event-id", "internal-message-id", "message-id", "network-message-id",
                 "recipient-address", "recipient-status", "total-bytes", "recipient-count",
                 "related-recipient-address", "reference", "message-subject", "sender-address", "return-path",
                 "message-info", "directionality", "tenant-id", "original-client-ip", "original-server-ip",
                 "custom-data", "transport-traffic-type", "log-id", "schema-version")
# Get-MessageTrackingLog's property names (lower-cased) for those fields: the name without dashes, except four.
EXPORT_COLUMNS = {**{name.replace("-", ""): name for name in NATIVE_FIELDS},
                  "timestamp": "date-time", "recipients": "recipient-address", "sender": "sender-address",
                  "eventdata": "custom-data"}
# Export-Csv writes a property holding a list (Recipients, RecipientStatus, Reference, EventData) as its type name.
_TYPE_NAME = re.compile(r"^System\.[\w.`\[\], ]+$")


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
        received = ReceivedRecipients()
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
                yield self._event(fields, line, number, ctx, received)

    @staticmethod
    def _event(fields: list[str], line: str, number: int, ctx: ReadContext,
               received: ReceivedRecipients) -> dict | None:
        try:
            values = next(csv.reader([line]))
        except csv.Error as exc:
            ctx.reject(f"line {number}", f"record cannot be parsed: {exc}")
            return None
        if len(values) != len(fields):
            ctx.reject(f"line {number}", f"{len(values)} values where #Fields: names {len(fields)} (truncated line?)")
            return None
        return tracking_event(dict(zip(fields, values)), line, number, ctx, DATASET, received=received)


def _addresses(text: str | None) -> str | None:
    """Recipients as ``;``-joined lower-case addresses (an export may have joined them with ``,`` or blanks)."""
    parts = [p for p in re.split(r"[;,\s]+", (text or "").strip().lower()) if p]
    return ";".join(parts) or None


# Transport rule actions that send the message to someone its sender did not address.
RECIPIENT_ACTIONS = frozenset(a.lower() for a in (
    "BlindCopyTo", "CopyTo", "AddToRecipient", "AddManagerAsRecipient", "RedirectMessage",
    "ModerateMessageByUser", "ModerateMessageByManager"))


class ReceivedRecipients:
    """Within one file, the recipients each message had when its server received it, so that the
    recipients a transport rule added can be told from those the sender addressed.

    A message is its ``internal-message-id`` on its ``server-hostname``. The
    Transport Rule Agent's AGENTINFO record lists the message's recipients once
    the rules acted; those not on the message's first RECEIVE record are the
    ones added. At most ``LIMIT`` messages are remembered (the oldest are
    forgotten first)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._received: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()

    def added(self, row: dict[str, str], action: str, recipients: str | None,
              rule_actions: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
        """(the record's recipients as ``email.to.address``, labels) for ``row``."""
        message_id = row.get("internal-message-id", "").strip()
        key = (row.get("server-hostname", "").strip().lower(), message_id)
        listed = recipients.split(";") if recipients else []
        if action == "RECEIVE" and message_id and key not in self._received:
            self._received[key] = frozenset(listed)
            if len(self._received) > self.LIMIT:
                self._received.popitem(last=False)
            return recipients, {}
        if not listed or not any(a.lower() in RECIPIENT_ACTIONS for a in rule_actions):
            return recipients, {}
        received = self._received.get(key) if message_id else None
        if received is None:
            return recipients, {"transport_rule_recipients": "not known (the message's RECEIVE record is not in "
                                                             "this file): all recipients listed"}
        new = [r for r in listed if r not in received]
        if not new:
            return recipients, {"transport_rule_recipients": "none added on this record"}
        return ";".join(new), {"transport_rule_recipients": "added", "recipients_all": recipients or ""}


def tracking_event(row: dict[str, str], raw: str, number: int, ctx: ReadContext, dataset: str,
                   extra_labels: dict[str, str] | None = None, timestamp: datetime | None = None,
                   received: ReceivedRecipients | None = None) -> dict | None:
    """One message tracking record (columns by their ``#Fields:`` names) as an event; None when rejected.

    ``timestamp`` is the record's UTC time when the caller read it from a column of its own (an
    export's ``Timestamp``); otherwise ``date-time`` must be ISO-8601 with a zone. With ``received``
    (one per file), the AGENTINFO record of a transport rule that added recipients has only
    those as ``email.to.address``."""
    if timestamp is None:
        try:
            timestamp = _timestamp(row.get("date-time", ""))
        except ValueError as exc:
            ctx.reject(f"line {number}", str(exc))
            return None
    action = row.get("event-id", "").strip().upper()
    if not action:
        ctx.reject(f"line {number}", "event-id empty")
        return None
    agents = agent_data(row.get("custom-data"), row.get("message-info"))
    labels = {k.replace("-", "_"): row[k].strip() for k in _LABELLED if row.get(k, "").strip()}
    labels.update(agents.labels())
    recipients = _addresses(row.get("recipient-address"))
    if received is not None:
        recipients, recipient_labels = received.added(row, action, recipients, agents.actions)
        labels.update(recipient_labels)
    labels.update(extra_labels or {})
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
        "email.to.address": recipients,
        "email.subject": row.get("message-subject") or None,
        "email.message_id": row.get("message-id", "").strip() or None,
        "email.direction": _DIRECTIONS.get(row.get("directionality", "").strip().lower()),
        "email.item_count": 1,
        "source.ip": _ip(row.get("original-client-ip", "")) or _ip(row.get("client-ip", "")),
        "host.name": row.get("server-hostname", "").strip() or None,
        "rule.name": ", ".join(agents.rule_ids) or None,
        "labels": sorted(labels.items()),
        "log.file.path": ctx.path,
        "log.file.sha256": ctx.sha256,
        "log.record": number,
        "event.original": raw,
    })
    return event


def _header(head: bytes) -> list[str]:
    """The CSV header's column names, lower-cased, after an Export-Csv ``#TYPE`` line."""
    lines = decode_head(head).lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("#TYPE"):
        lines = lines[1:]
    return [c.strip().strip('"').strip().lower() for c in lines[0].split(",")] if lines else []


class MessageTrackingCsv:
    """The log's fields as a plain CSV with a header line (Sentinel's Exchange Security Insights)."""

    name = "exchange_message_tracking_csv"
    dataset = DATASET
    locator_unit = "line"
    required = ("date-time", "event-id")

    def sniff(self, head: bytes) -> bool:
        return all(c in _header(head) for c in self.required)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        received = ReceivedRecipients()
        yield from event_batches((tracking_event(row, raw, number, ctx, DATASET, received=received)
                                  for number, row, raw in csv_rows(stream, ctx, self.required)), BATCH_RECORDS)


class MessageTrackingExport:
    """``Get-MessageTrackingLog | Export-Csv``: the cmdlet's property names, local times without a zone."""

    name = "exchange_message_tracking_export"
    dataset = DATASET
    locator_unit = "line"
    required = ("timestamp", "eventid")

    def sniff(self, head: bytes) -> bool:
        header = _header(head)
        return (all(c in header for c in self.required) and "source" in header
                and ("internalmessageid" in header or "messageid" in header))

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        zone, received = ExportZone(ctx), ReceivedRecipients()
        yield from event_batches((self._event(row, raw, number, ctx, zone, received)
                                  for number, row, raw in csv_rows(stream, ctx, self.required)), BATCH_RECORDS)

    @staticmethod
    def _event(row: dict[str, str], raw: str, number: int, ctx: ReadContext, zone: ExportZone,
               received: ReceivedRecipients) -> dict | None:
        try:
            timestamp, labels = zone.utc(row.get("timestamp", ""), "Timestamp")
        except ValueError as exc:
            ctx.reject(f"line {number}", str(exc))
            return None
        fields: dict[str, str] = {}
        lost: list[str] = []
        for column, value in row.items():
            field = EXPORT_COLUMNS.get(column)
            if field is None:
                continue
            if _TYPE_NAME.match(value.strip()):
                lost.append(field)
                continue
            fields[field] = value
        if lost:
            labels = {**labels, "values_lost": ", ".join(lost)}
        return tracking_event(fields, raw, number, ctx, DATASET, labels, timestamp, received)


MESSAGE_TRACKING_SOURCES = (MessageTrackingLog(), MessageTrackingCsv(), MessageTrackingExport())
