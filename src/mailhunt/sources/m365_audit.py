"""Microsoft 365 unified audit log readers, one per container format.

- ``purview_csv``: Purview portal audit search export
  (``RecordId,CreationDate,RecordType,Operation,UserId,AuditData,...``).
- ``ual_csv``: classic ``CreationDate,UserIds,Operations,AuditData`` exports and
  ``Search-UnifiedAuditLog | Export-Csv`` output (with or without ``#TYPE``).
- ``sentinel_officeactivity``: Microsoft Sentinel OfficeActivity rows and
  Defender CloudAppEvents rows carrying a raw record, as NDJSON or JSON array.
- ``ual_ndjson``: one AuditData record per line.
- ``ual_json_array``: a JSON array of AuditData records (Management Activity
  API content blobs), or one record; read incrementally.

CSV records are assembled line by line by quote parity, so a record with
broken quoting is rejected after ``MAX_RECORD_LINES`` lines and reading
resumes on the line after its start, instead of swallowing the file; a lone CR
outside quotes ends a record too (``split_at_lone_cr``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from array import array
from collections.abc import Iterator
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt import memory
from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources import base
from mailhunt.sources.base import (
    ReadContext,
    iter_text_lines,
    json_array_members,
    json_lines,
    line_too_long,
    numbered_text_lines,
)
from mailhunt.sources.json_values import json_text
from mailhunt.sources.m365_normalize import DATASET, StagedAuditRecords
from mailhunt.sources.m365_record import (
    BadRecord,
    defender_row_to_record,
    sentinel_row_to_record,
)

MAX_RECORD_LINES = 200
MAX_RECORD_CHARS = 4 * 1024 * 1024
BATCH_RECORDS = ROW_GROUP_ROWS // 2
CHUNK_BYTES = 16 * 1024 * 1024
# The most records a staged batch holds; the memory budget sets the size (half a row group by default).
STAGED_RECORDS = ROW_GROUP_ROWS
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_head(head: bytes) -> str:
    if head.startswith(UTF16_BOMS):
        return head.decode("utf-16", errors="ignore")
    return head.decode("utf-8-sig", errors="ignore")


def text_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 or UTF-16 (with BOM) stream; bad UTF-8 lines are rejected."""
    start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if start in UTF16_BOMS:
        wrapper = io.TextIOWrapper(stream, encoding="utf-16", errors="replace", newline="")
        for number, line in numbered_text_lines(wrapper, ctx):
            yield number, line.rstrip("\r\n")
        return
    yield from iter_text_lines(stream, ctx)


def _first_json_object(text: str) -> dict | None:
    text = text.lstrip()
    if text.startswith("["):
        text = text[1:].lstrip()
    if not text.startswith("{"):
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        line = text.split("\n", 1)[0]
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
    return obj if isinstance(obj, dict) else None


def _first_json_object_prefix(text: str) -> dict | None:
    """The first object of a JSON text whose head may be cut: tolerate the cut by looking at keys only."""
    obj = _first_json_object(text)
    if obj is not None:
        return obj
    head = text.lstrip().lstrip("[").lstrip()
    if not head.startswith("{"):
        return None
    keys = {}
    for key in ("CreationTime", "Operation", "RecordType", "Workload", "OfficeWorkload", "TenantId",
                "RawEventData", "ActionType", "TimeGenerated", "UserId"):
        if f'"{key}"' in head:
            keys[key] = True
    return keys


def is_audit_record(obj: dict) -> bool:
    return "Operation" in obj and ("CreationTime" in obj or "RecordType" in obj or "Workload" in obj)


def is_sentinel_row(obj: dict) -> bool:
    return ("OfficeWorkload" in obj and "TimeGenerated" in obj) or ("RawEventData" in obj and "ActionType" in obj)


class Batch:
    """Collects AuditData texts with their locators and turns them into event tables."""

    def __init__(self, ctx: ReadContext, locator_unit: str):
        self.ctx = ctx
        self.unit = locator_unit
        self.raw: list[str] = []
        self.locators: list[int] = []
        self.fallbacks: list[str | None] = []
        self.originals: list[str] = []
        self.rewritten = False

    def add(self, raw: str, locator: int, fallback: str | None = None, original: str | None = None) -> None:
        """``original`` is the record as the file holds it, when ``raw`` is a rewritten form of it."""
        self.raw.append(raw)
        self.locators.append(locator)
        self.fallbacks.append(fallback)
        self.originals.append(raw if original is None else original)
        self.rewritten = self.rewritten or (original is not None and original is not raw)

    def full(self) -> bool:
        return len(self.raw) >= BATCH_RECORDS

    def flush(self) -> Iterator[StagedAuditRecords]:
        if not self.raw:
            return
        originals = pa.array(self.originals, pa.large_string()) if self.rewritten else None
        staged = StagedAuditRecords(pa.array(self.raw, pa.large_string()), pa.array(self.locators, pa.int64()),
                                    pa.array(self.fallbacks, pa.string()), originals, self.ctx.path,
                                    self.ctx.digest, self.unit)
        self.raw, self.locators, self.fallbacks, self.originals = [], [], [], []
        self.rewritten = False
        yield staged


# ---------------------------------------------------------------- CSV exports


def _csv_header(text: str) -> list[str] | None:
    lines = text.split("\n", 2)
    first = lines[0].strip("\r")
    if first.startswith("#TYPE") and len(lines) > 1:
        first = lines[1].strip("\r")
    try:
        return [c.strip().lower() for c in next(csv.reader([first]))]
    except (csv.Error, StopIteration):
        return None


_QUOTE_OR_CR = re.compile(r'["\r]')


def split_at_lone_cr(text: str) -> list[str]:
    """The rows of a CSV text whose quotes balance, cut where a lone CR (not before LF) ends a row.

    Purview, admin audit and message trace exports end rows with CRLF (or LF);
    a lone CR inside a quoted field is part of the value, as in RFC 4180 and
    Python's csv module, but one outside quotes ends the row, as CR-only line
    ends (classic Mac, some editors) do. Without this the row after it merged
    into the row before and both were lost."""
    if "\r" not in text:
        return [text]
    rows, start, quoted = [], 0, False
    for mark in _QUOTE_OR_CR.finditer(text):
        if mark.group() == '"':
            quoted = not quoted
        elif not quoted and text[mark.end():mark.end() + 1] != "\n":
            rows.append(text[start:mark.start()])
            start = mark.end()
    rows.append(text[start:])
    return rows


def csv_record_texts(lines: Iterator[tuple[int, str]], ctx: ReadContext) -> Iterator[tuple[int, str]]:
    """(starting line, text) per CSV record: lines are joined while a quoted field is open, and a
    lone CR outside quotes ends a record (both rows then have the line's number); a record with
    runaway quoting is rejected and reading resumes on the line after its start."""
    pending: list[tuple[int, str]] = []
    queue: list[tuple[int, str]] = []
    source = iter(lines)

    def next_line():
        if queue:
            return queue.pop(0)
        return next(source, None)

    while True:
        item = next_line()
        if item is None:
            break
        pending.append(item)
        text = "\n".join(line for _, line in pending)
        if text.count('"') % 2 == 0:
            for row in split_at_lone_cr(text):
                yield pending[0][0], row
            pending = []
        elif len(pending) >= MAX_RECORD_LINES or len(text) > MAX_RECORD_CHARS:
            ctx.records += 1
            ctx.reject(f"line {pending[0][0]}", f"unterminated quoted field (no closing quote within "
                                                f"{len(pending)} lines); record skipped")
            queue = pending[1:] + queue
            pending = []
    if pending:
        ctx.records += 1
        ctx.reject(f"line {pending[0][0]}", "unterminated quoted field at end of file (truncated?)")
        for line_item in pending[1:]:
            queue.append(line_item)
        rest = list(queue)
        queue.clear()
        if rest:
            yield from csv_record_texts(iter(rest), ctx)


def parse_csv_record(text: str, line: int, ctx: ReadContext) -> list[str] | None:
    """The fields of one record's text, or None when it is rejected (with its line, and counted)."""
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        ctx.records += 1
        ctx.reject(f"line {line}", f"CSV record cannot be parsed: {exc}")
        return None


def csv_records(lines: Iterator[tuple[int, str]], ctx: ReadContext) -> Iterator[tuple[int, list[str]]]:
    """(starting line, fields) per CSV record; records with runaway quoting are rejected.

    A rejected record is counted in ``ctx.records`` here; the caller counts the
    records it is given.
    """
    for start, text in csv_record_texts(lines, ctx):
        fields = parse_csv_record(text, start, ctx)
        if fields is not None:
            yield start, fields


class _AuditCsv:
    """Shared reading for both CSV layouts; subclasses say which columns hold what."""

    dataset = DATASET
    locator_unit = "line"
    name = ""
    date_column = "creationdate"

    def required(self, header: list[str]) -> bool:
        raise NotImplementedError

    def sniff(self, head: bytes) -> bool:
        header = _csv_header(decode_head(head))
        if not header:
            return False
        return self.required(header)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        header: list[str] | None = None
        batch = Batch(ctx, "line")
        for number, fields in csv_records(text_lines(stream, ctx), ctx):
            if header is None:
                if fields and fields[0].startswith("#TYPE"):
                    continue
                header = [f.strip().lower() for f in fields]
                if "auditdata" not in header:
                    ctx.reject(f"line {number}", "header has no AuditData column")
                    return
                audit_index = header.index("auditdata")
                date_index = header.index(self.date_column) if self.date_column in header else None
                continue
            if not any(f.strip() for f in fields):
                continue
            ctx.records += 1
            if len(fields) <= audit_index or not fields[audit_index].strip():
                ctx.reject(f"line {number}", "AuditData missing or empty")
                continue
            fallback = fields[date_index] if date_index is not None and len(fields) > date_index else None
            batch.add(fields[audit_index], number, fallback)
            if batch.full():
                yield from batch.flush()
        yield from batch.flush()


class PurviewCsv(_AuditCsv):
    name = "purview_csv"

    def required(self, header: list[str]) -> bool:
        return header[:6] == ["recordid", "creationdate", "recordtype", "operation", "userid", "auditdata"]


class UnifiedAuditCsv(_AuditCsv):
    name = "ual_csv"

    def required(self, header: list[str]) -> bool:
        return "auditdata" in header and "creationdate" in header and (
            "userids" in header or "operations" in header or "operation" in header)


# ---------------------------------------------------------------- JSON forms


def _json_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, object]]:
    """(line number, text, parsed object) per non-empty line; lines that are not JSON are rejected."""
    return json_lines(text_lines(stream, ctx), ctx)


def ndjson_line_batches(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[pa.Array, pa.Array]]:
    """(lines, line numbers) in large batches, without touching each line in Python.

    The file is read into one buffer, used again for every read: the complete
    lines of a fill go into Arrow in one piece (Arrow copies them out), and an
    unfinished last line moves to the buffer's start for the next read. A
    chunk with bytes that are not UTF-8 is redone line by line to reject
    exactly the bad lines. Lines are capped at ``base.MAX_LINE_BYTES`` like
    every reader's, and a partial last line of a stream cut short is rejected.
    """
    limit = base.MAX_LINE_BYTES
    buffer = bytearray(CHUNK_BYTES)
    held = 0  # bytes of an unfinished line at the buffer's start
    first_line = 1
    offset = 0  # where the buffer's start is in the stream
    first_read = True
    while True:
        if held == len(buffer):
            if held < limit + 2:
                buffer.extend(bytes(min(held, limit + 2 - held)))
            else:
                ctx.records += 1
                ctx.reject(f"line {first_line}", line_too_long(limit, offset))
                skipped, rest = _skip_rest_of_line(stream, buffer)
                offset += held + skipped
                if rest is None:
                    return
                held = rest
                first_line += 1
                continue
        with memoryview(buffer) as view:
            read = stream.readinto(view[held:])  # type: ignore[attr-defined]  # typing.BinaryIO omits readinto; every stream here has it
        end = held + read
        if first_read and end:
            first_read = False
            if buffer.startswith(codecs.BOM_UTF8):
                buffer[0:end - 3] = buffer[3:end]
                end -= 3
                offset += 3
        cut = buffer.rfind(b"\n", 0, end) + 1
        partial = not read and cut < end and ctx.cut_short()
        if not read and not partial:
            cut = end
        if cut:
            with memoryview(buffer) as view:
                lines, numbers, count = _chunk_lines(view[:cut], buffer, first_line, ctx)
            if len(lines) and pc.max(pc.binary_length(lines)).as_py() > limit:
                lines, numbers = _without_long_lines(buffer, cut, offset, first_line, lines, numbers, limit, ctx)
            yield lines, numbers
            first_line += count
        if partial:
            ctx.records += 1
            ctx.reject(f"line {first_line}", f"partial last line ({partial}); skipped")
        if not read:
            return
        buffer[0:end - cut] = buffer[cut:end]
        held = end - cut
        offset += cut


def _without_long_lines(buffer: bytearray, cut: int, offset: int, first_line: int, lines: pa.Array,
                        numbers: pa.Array, limit: int, ctx: ReadContext) -> tuple[pa.Array, pa.Array]:
    """A chunk's lines (the first numbered ``first_line``, at ``offset`` in the stream) without those over the cap,
    which are rejected with their number and offset."""
    keep = pc.less_equal(pc.binary_length(lines), limit)
    long_numbers = set(pc.filter(numbers, pc.invert(keep)).to_pylist())
    start, number = 0, first_line
    while start < cut and long_numbers:
        if number in long_numbers:
            long_numbers.discard(number)
            ctx.records += 1
            ctx.reject(f"line {number}", line_too_long(limit, offset + start))
        start = buffer.find(b"\n", start, cut) + 1 or cut
        number += 1
    return pc.filter(lines, keep), pc.filter(numbers, keep)


def _skip_rest_of_line(stream: BinaryIO, buffer: bytearray) -> tuple[int, int | None]:
    """Read on past the end of the current line: the bytes skipped, and the length of what follows it, put at the
    buffer's start (None: the file ended first)."""
    skipped = 0
    while True:
        with memoryview(buffer) as view:
            read = stream.readinto(view)  # type: ignore[attr-defined]  # typing.BinaryIO omits readinto; every stream here has it
        if not read:
            return skipped, None
        newline = buffer.find(b"\n", 0, read)
        if newline != -1:
            buffer[0:read - newline - 1] = buffer[newline + 1:read]
            return skipped + newline + 1, read - newline - 1
        skipped += read


def _chunk_lines(chunk: memoryview, buffer: bytearray, first_line: int, ctx: ReadContext
                 ) -> tuple[pa.Array, pa.Array, int]:
    """The chunk's lines as text, their numbers, and how many lines the chunk held (``chunk`` views ``buffer``'s
    start)."""
    if buffer.find(b"\r", 0, len(chunk)) != -1:
        chunk = memoryview(bytes(chunk).replace(b"\r\n", b"\n"))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(array("q", [0, len(chunk)])),
                                                         pa.py_buffer(chunk)])
    lines = pc.split_pattern(whole, pattern=b"\n")[0].values
    if chunk[-1:] == b"\n":
        lines = lines.slice(0, len(lines) - 1)
    count = len(lines)
    numbers = pa.array(range(first_line, first_line + count), pa.int64())
    try:
        return lines.cast(pa.large_string()), numbers, count
    except pa.ArrowInvalid:
        good, good_numbers = [], []
        for number, line in zip(numbers.to_pylist(), lines.to_pylist()):
            try:
                good.append(line.decode("utf-8"))
                good_numbers.append(number)
            except UnicodeDecodeError as exc:
                ctx.records += 1
                ctx.reject(f"line {number}", f"not UTF-8 text (byte {exc.start} of the line)")
        return pa.array(good, pa.large_string()), pa.array(good_numbers, pa.int64()), count


class _AuditJson:
    dataset = DATASET
    name = ""
    locator_unit = "line"

    def to_record(self, member: dict) -> dict:
        return member

    def events(self, members: Iterator[tuple[int, str, object]], ctx: ReadContext) -> Iterator[pa.Table]:
        batch = Batch(ctx, self.locator_unit)
        for number, raw, member in members:
            if not isinstance(member, dict):
                ctx.reject(f"{self.locator_unit} {number}", "not a JSON object")
                continue
            try:
                record = self.to_record(member)
                # a record read with a repeated key's last value (flagged by the parser) goes to the SQL
                # rewritten, so the SQL reads what the parser read
                rewritten = record is not member or number in ctx.duplicate_keys
                text = json_text(record) if rewritten else raw
            except (BadRecord, ValueError) as exc:
                ctx.reject(f"{self.locator_unit} {number}", str(exc))
                continue
            batch.add(text, number, None, raw)
            if batch.full():
                yield from batch.flush()
        yield from batch.flush()


def first_line_cut(text: str) -> bool:
    """Whether the head of a file is one JSON object's line cut short: no line end in it.

    One record a line is then the reading that loses nothing: a file of one
    object on one line is also NDJSON, while reading lines as an array's
    members would let one bad line take the ones after it."""
    return text.lstrip().startswith("{") and "\n" not in text


class UnifiedAuditNdjson(_AuditJson):
    name = "ual_ndjson"

    def sniff(self, head: bytes) -> bool:
        text = decode_head(head).lstrip()
        if not text.startswith("{"):
            return False
        first = text.split("\n", 1)[0]
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            if not first_line_cut(text):
                return False
            obj = _first_json_object_prefix(text)
        return isinstance(obj, dict) and is_audit_record(obj) and not is_sentinel_row(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[StagedAuditRecords]:
        if hasattr(stream, "peek") and stream.peek(2)[:2] in UTF16_BOMS:
            yield from self.events(_json_lines(stream, ctx), ctx)
            return
        lines = pa.chunked_array([], pa.large_string())
        numbers = pa.chunked_array([], pa.int64())
        # Lines are cut from the file a chunk at a time, then staged in batches of exactly this many (a row
        # group, or a part of one under a small memory budget), which the store maps in one set of queries each.
        staged = min(STAGED_RECORDS, memory.budget().staged_records)
        for chunk_lines, chunk_numbers in ndjson_line_batches(stream, ctx):
            lines = pa.chunked_array([*lines.chunks, chunk_lines], pa.large_string())
            numbers = pa.chunked_array([*numbers.chunks, chunk_numbers], pa.int64())
            while len(lines) >= staged:
                yield self._staged(lines.slice(0, staged), numbers.slice(0, staged), ctx)
                lines, numbers = lines.slice(staged), numbers.slice(staged)
        if len(lines):
            yield self._staged(lines, numbers, ctx)

    @staticmethod
    def _staged(lines: pa.ChunkedArray, numbers: pa.ChunkedArray, ctx: ReadContext) -> StagedAuditRecords:
        return StagedAuditRecords(lines, numbers, None, None, ctx.path, ctx.digest, "line", count_records=True)


class UnifiedAuditJsonArray(_AuditJson):
    name = "ual_json_array"
    locator_unit = "record"

    def sniff(self, head: bytes) -> bool:
        text = decode_head(head)
        if _first_line_object(text) is not None or first_line_cut(text):
            return False
        obj = _first_json_object_prefix(text)
        return obj is not None and is_audit_record(obj) and not is_sentinel_row(obj)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from self.events(json_array_members(stream, ctx), ctx)


def _first_line_object(text: str) -> dict | None:
    first = text.lstrip().split("\n", 1)[0]
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


class SentinelOfficeActivity(_AuditJson):
    """Sentinel OfficeActivity rows and Defender CloudAppEvents rows: one per line, or in a JSON array."""

    def __init__(self, array: bool):
        self.array = array
        self.name = "sentinel_officeactivity_array" if array else "sentinel_officeactivity"
        self.locator_unit = "record" if array else "line"

    def sniff(self, head: bytes) -> bool:
        text = decode_head(head)
        line_object = _first_line_object(text)
        if (line_object is None and not first_line_cut(text)) != self.array:
            return False
        obj = line_object if line_object is not None else _first_json_object_prefix(text)
        if obj is None:
            return False
        return is_sentinel_row(obj) or ("ActionType" in obj and '"RawEventData"' in text)

    def to_record(self, member: dict) -> dict:
        if "RawEventData" in member or ("ActionType" in member and "OfficeWorkload" not in member):
            return defender_row_to_record(member)
        return sentinel_row_to_record(member)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        members = json_array_members(stream, ctx) if self.array else _json_lines(stream, ctx)
        yield from self.events(members, ctx)


M365_SOURCES = (
    PurviewCsv(),
    UnifiedAuditCsv(),
    SentinelOfficeActivity(array=False),
    SentinelOfficeActivity(array=True),
    UnifiedAuditNdjson(),
    UnifiedAuditJsonArray(),
)
