"""macOS Endpoint Security events as ``eslogger`` writes them: one JSON ``es_message_t`` per line.

Recognized by ``event_type``, ``process.audit_token`` and ``event``. The
``event`` object holds one key naming what happened (``exec``, ``unlink``,
``rename``, ``write``, ``create``, ``truncate``, ``close``, ``open`` ...);
``event_type`` is the ``es_event_type_t`` number (``event.code``), e.g. 9
NOTIFY_EXEC, 25 NOTIFY_RENAME, 32 NOTIFY_UNLINK, 33 NOTIFY_WRITE, 13 NOTIFY_CREATE.

- exec: the new image (``event.exec.target``) with its full ``args``; the
  image that called exec (``process``) is the parent program.
- file events: ``file.path`` (unlink/write/truncate/close/open target, rename
  source, create destination) and ``file.target_path`` (rename destination,
  ``existing_file`` or ``new_path`` dir + filename).
- actor: the audit token's ``auid`` (login user) when set, else ``euid``, as
  numbers (Endpoint Security logs no names); ``labels.user_source`` says which.
- time: ``time`` (ISO 8601 with Z, nanoseconds cut to microseconds), UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import utc_from_text
from mailhunt.sources.base import ReadContext
from mailhunt.sources.json_values import int64_value
from mailhunt.sources.macos_json import first_object, json_object_lines
from mailhunt.sources.unix_common import (
    EventBatches,
    command_line,
    program_name,
    unix_event,
)

DATASET = "macos.eslogger"
UNSET_IDS = (4294967295, -1)


def parse_time(text: str) -> datetime:
    """``time``: ISO 8601 with its zone (eslogger writes Z); a time without one is rejected."""
    return utc_from_text(text)


def _path(node) -> str | None:
    if isinstance(node, dict):
        path = node.get("path")
        return path if isinstance(path, str) else None
    return None


def _destination(body: dict) -> str | None:
    destination = body.get("destination") or {}
    existing = _path(destination.get("existing_file"))
    if existing:
        return existing
    new_path = destination.get("new_path") or {}
    directory, filename = _path(new_path.get("dir")), new_path.get("filename")
    if directory and isinstance(filename, str):
        return directory.rstrip("/") + "/" + filename
    return None


def file_paths(kind: str, body: dict) -> tuple[str | None, str | None]:
    if kind == "rename":
        return _path(body.get("source")), _destination(body)
    if kind == "create":
        return _destination(body), None
    if kind == "exec":
        return _path((body.get("target") or {}).get("executable")), None
    for key in ("target", "file", "source"):
        if key in body:
            return _path(body[key]), None
    return None, None


def _actor(token: dict) -> tuple[str | None, str | None]:
    auid, euid = token.get("auid"), token.get("euid")
    if isinstance(auid, int) and auid not in UNSET_IDS:
        return str(auid), "audit_token auid (login user; Endpoint Security logs numbers, no names)"
    if isinstance(euid, int):
        return str(euid), "audit_token euid (Endpoint Security logs numbers, no names)"
    return None, None


def is_es_message(obj: dict | None) -> bool:
    if not obj:
        return False
    return "event_type" in obj and ("process" in obj or "audit_token" in obj) and (
        "event" in obj or "mach_time" in obj or "global_seq_num" in obj)


class EsloggerLog:
    name = "eslogger"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        obj, in_array = first_object(head)
        return not in_array and is_es_message(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        for number, text, message in json_object_lines(stream, ctx):
            try:
                event = self._event(ctx, number, text, message)
            except (ValueError, TypeError, AttributeError) as exc:
                ctx.reject(f"line {number}", f"not an Endpoint Security message: {exc}")
                continue
            yield from batches.add(event)
        yield from batches.flush()

    def _event(self, ctx: ReadContext, number: int, text: str, message: dict) -> dict:
        if not isinstance(message.get("time"), str):
            raise TypeError("no time")
        payload = message.get("event")
        if not isinstance(payload, dict) or len(payload) != 1:
            raise ValueError("'event' does not hold exactly one event kind")
        kind, body = next(iter(payload.items()))
        body = body if isinstance(body, dict) else {}
        process = message.get("process") or {}
        event = unix_event(ctx, DATASET, "endpoint_security", number, text, parse_time(message["time"]))
        labels = event["labels"]
        event["event.action"] = kind
        event["event.code"] = str(message.get("event_type"))
        actor = process
        if kind == "exec":
            target = body.get("target") or {}
            actor = target
            args = body.get("args")
            if isinstance(args, list):
                event["process.command_line"] = command_line([str(a) for a in args])
            event["process.parent.executable"] = _path(process.get("executable"))
            event["process.parent.name"] = program_name(event["process.parent.executable"])
            if _path(body.get("cwd")):
                labels["cwd"] = _path(body.get("cwd"))
            if _path(body.get("script")):
                labels["script"] = _path(body.get("script"))
        token = actor.get("audit_token") or {}
        event["process.executable"] = _path(actor.get("executable"))
        event["process.name"] = program_name(event["process.executable"])
        event["process.pid"] = int64_value(token.get("pid"))
        if isinstance(actor.get("ppid"), int):
            labels["ppid"] = str(actor["ppid"])
        user, source = _actor(token)
        event["user.name"] = event["user.id"] = user
        if source:
            labels["user_source"] = source
        if isinstance(token.get("euid"), int):
            labels["euid"] = str(token["euid"])
        if actor.get("signing_id"):
            labels["signing_id"] = str(actor["signing_id"])
        event["file.path"], event["file.target_path"] = file_paths(kind, body)
        if kind == "close" and "modified" in body:
            labels["modified"] = "true" if body["modified"] else "false"
        action = message.get("action_type")
        if action == 0:
            labels["es_action"] = "auth"
        event["event.outcome"] = "success"
        return event
