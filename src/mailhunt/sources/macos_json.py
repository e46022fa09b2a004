"""JSON plumbing the macOS readers share: objects one per line, or members of one array."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from mailhunt.sources.base import ReadContext, json_lines
from mailhunt.sources.m365_audit import json_array_members
from mailhunt.sources.unix_common import lenient_lines


def json_object_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, dict]]:
    """(line, text, object) per non-empty line; a line that is not a JSON object is rejected with its number."""
    for number, text, value in json_lines(((n, t) for n, t, _ in lenient_lines(stream, ctx)), ctx):
        if not isinstance(value, dict):
            ctx.reject(f"line {number}", "not a JSON object")
            continue
        yield number, text, value


def json_members(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, dict]]:
    for index, text, value in json_array_members(stream, ctx):
        if not isinstance(value, dict):
            ctx.reject(f"record {index}", "not a JSON object")
            continue
        yield index, text, value


# The keys the sniffers of these readers look for, found by name when the head cuts the first object.
FIRST_OBJECT_KEYS = ("eventMessage", "processImagePath", "timestamp", "subsystem", "machTimestamp", "event_type",
                     "audit_token", "schema_version", "global_seq_num", "mach_time", "executable",
                     "SyslogMessage", "Facility", "ProcessName")


def first_object(head: bytes) -> tuple[dict | None, bool]:
    """The first JSON object of a head, and whether it sits in an array; tolerates a head cut mid-file.

    The object may be on one line, span several (a pretty-printed array), or
    share its line with the next member (``[{...},{...}]``).
    """
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    in_array = text.startswith("[")
    if in_array:
        text = text[1:].lstrip()
    if not text.startswith("{"):
        return None, in_array
    line = text.split("\n", 1)[0]
    try:
        value = orjson.loads(line)
        return (value if isinstance(value, dict) else None), in_array
    except orjson.JSONDecodeError:
        pass
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
        return (value if isinstance(value, dict) else None), in_array
    except (ValueError, RecursionError):
        pass
    keys = {}
    for key in FIRST_OBJECT_KEYS:
        if f'"{key}"' in text[:16384]:
            keys[key] = True
    return keys, in_array
