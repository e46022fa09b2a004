"""macOS unified log exports: ``log show --style ndjson`` (one entry per line) and ``--style json`` (one array).

An entry is recognized by ``timestamp`` with ``eventMessage`` and
``processImagePath``/``subsystem``. ``timestamp`` looks like
``2026-10-14 09:31:02.123456+0000``: it carries its offset and is converted
to UTC. The closing ``{"count":N,"finished":1}`` line of ndjson output is not
an entry and is skipped. The message stays in ``event.original`` (rules search
it as keywords); the process, pid, user id, subsystem and category become
columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import utc_from_text
from mailhunt.sources.base import ReadContext
from mailhunt.sources.json_values import int64_value, text_value
from mailhunt.sources.local_time import BadTime
from mailhunt.sources.macos_json import first_object, json_members, json_object_lines
from mailhunt.sources.unix_common import EventBatches, program_name, unix_event

DATASET = "macos.unified_log"
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")


def parse_timestamp(text: str) -> datetime:
    """``timestamp`` with its offset; a timestamp without one is rejected, never read in a local zone."""
    return utc_from_text(text, TIME_FORMATS)


def is_unified_log_entry(obj: dict | None) -> bool:
    if not obj:
        return False
    return "timestamp" in obj and "eventMessage" in obj and (
        "processImagePath" in obj or "subsystem" in obj)


def _is_trailer(obj: dict) -> bool:
    return "finished" in obj and "count" in obj and "eventMessage" not in obj


class UnifiedLog:
    dataset = DATASET

    def __init__(self, array: bool):
        self.array = array
        self.name = "macos_unified_log_json" if array else "macos_unified_log_ndjson"
        self.locator_unit = "record" if array else "line"

    def sniff(self, head: bytes) -> bool:
        obj, in_array = first_object(head)
        return in_array == self.array and is_unified_log_entry(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        entries = json_members(stream, ctx) if self.array else json_object_lines(stream, ctx)
        unit = "record" if self.array else "line"
        for locator, text, entry in entries:
            if _is_trailer(entry):
                ctx.records -= 1
                continue
            try:
                event = self._event(ctx, locator, text, entry)
            except ValueError as exc:
                ctx.reject(f"{unit} {locator}", str(exc))
                continue
            yield from batches.add(event)
        yield from batches.flush()

    def _event(self, ctx: ReadContext, locator: int, text: str, entry: dict) -> dict:
        stamp = entry.get("timestamp")
        if not isinstance(stamp, str):
            raise BadTime("entry without a timestamp")
        event = unix_event(ctx, DATASET, "unified_log", locator, text, parse_timestamp(stamp))
        image = entry.get("processImagePath")
        event["process.executable"] = image if isinstance(image, str) and image else None
        event["process.name"] = program_name(event["process.executable"])
        event["process.pid"] = int64_value(entry.get("processID"))
        event["user.id"] = text_value(entry.get("userID"))
        event["event.action"] = text_value(entry.get("eventType"))
        event["event.code"] = text_value(entry.get("messageType"))
        subsystem = text_value(entry.get("subsystem"))
        if subsystem:
            event["event.provider"] = subsystem
        labels = event["labels"]
        for key, label in (("category", "category"), ("senderImagePath", "sender"), ("subsystem", "subsystem")):
            if entry.get(key):
                labels[label] = str(entry[key])
        labels["time_source"] = "entry timestamp with its offset"
        return event


UNIFIED_LOG_SOURCES = (UnifiedLog(array=False), UnifiedLog(array=True))
