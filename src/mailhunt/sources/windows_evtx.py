"""Windows event log readers: binary ``.evtx``, ``evtx_dump`` JSON/JSONL, Winlogbeat NDJSON.

- ``evtx``: the binary format, parsed by the ``evtx`` package (Rust). The
  parser needs to seek, so the evidence stream is first copied to a temporary
  file (at most ``MAX_SPOOL_BYTES``; a larger file is reported, not read).
  A chunk the parser cannot read is rejected with the record ids it held, and
  the records of every other chunk are kept; so is a last chunk the file
  holds only part of, which the parser skips silently. ``event.original`` is the record
  as the parser renders it in JSON (the binary record is not text).
- ``evtx_dump_jsonl`` / ``evtx_dump_json``: what ``evtx_dump -o jsonl`` and
  ``evtx_dump -o json`` write: one ``{"Event": {...}}`` per line, or a
  ``Record <n>`` line (the record's number in the EVTX file) before each
  pretty-printed record.
- ``winlogbeat_ndjson``: Winlogbeat/Elastic Agent documents, one per line, with
  the original event under ``winlog`` (``event_data``, ``channel``,
  ``record_id`` ...).

All of them hand ``{"Event": ...}`` records to ``WindowsEventStream``; the
locator is the record's ``EventRecordID`` for ``.evtx`` and the line for the
text forms.
"""

from __future__ import annotations

import re
import struct
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, BinaryIO

import orjson
import pyarrow as pa

from mailhunt.memory import ROW_GROUP_ROWS
from mailhunt.sources.base import (
    ReadContext,
    iter_text_lines,
    json_lines,
)
from mailhunt.sources.json_values import int64_from_text, text_value
from mailhunt.sources.windows_events import INT64_MAX
from mailhunt.sources.windows_stream import WindowsEventStream

EVTX_MAGIC = b"ElfFile\x00"
EVTX_CHUNK_MAGIC = b"ElfChnk\x00"
EVTX_HEADER_BYTES = 4096
EVTX_CHUNK_BYTES = 65536
MAX_SPOOL_BYTES = 32 * 1024**3
MAX_CONSECUTIVE_FAILURES = 100_000
PARSER_THREADS = 0
BATCH_RECORDS = ROW_GROUP_ROWS // 6
# A 64 KiB chunk cannot hold more records than this; a larger range in its header is damage.
MAX_CHUNK_RECORDS = 65536 // 24
# The parser fills the next batch while DuckDB maps the previous ones, two at
# a time: mapping a batch (SQL, then dropping the rows Python maps) takes longer
# than parsing one, and the SQL releases the interpreter.
NORMALIZER_THREADS = 2
_CHUNK_RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")
_RECORD_HEADER = re.compile(r"^Record (\d+)\s*$")


class ParallelBatches:
    """Batches mapped in SQL in a worker while the parser goes on; results taken in file order."""

    def __init__(self, events: WindowsEventStream, pool: ThreadPoolExecutor):
        self.events = events
        self.pool = pool
        self.pending: deque = deque()

    def submit(self, texts: list[str], locators: list[int]) -> Iterator[pa.Table]:
        if texts:
            self.pending.append((texts, locators, self.pool.submit(self.events.normalize, texts, locators)))
        while len(self.pending) > NORMALIZER_THREADS:
            yield from self._take()

    def drain(self) -> Iterator[pa.Table]:
        while self.pending:
            yield from self._take()

    def _take(self) -> Iterator[pa.Table]:
        texts, locators, future = self.pending.popleft()
        yield from self.events.add_normalized(texts, locators, *future.result())


class SpoolTooLarge(Exception):
    pass


def _spool(stream: BinaryIO, target: IO[bytes]) -> None:
    copied = 0
    while True:
        block = stream.read(1 << 20)
        if not block:
            return
        copied += len(block)
        if copied > MAX_SPOOL_BYTES:
            raise SpoolTooLarge(f"EVTX larger than {MAX_SPOOL_BYTES // 1024**3} GiB; not read")
        target.write(block)


def _is_event(obj: object) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("Event"), dict) and isinstance(obj["Event"].get("System"), dict)


def _first_line(head: bytes) -> str:
    text = head.decode("utf-8-sig", errors="ignore").lstrip()
    return text.split("\n", 1)[0].strip()


def _utf8_name(path: str) -> bool:
    """Whether the parser can open ``path`` by name (it takes names as UTF-8; others are read through a copy)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class EvtxBinary:
    name = "evtx"
    dataset = "windows"
    locator_unit = "record"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(EVTX_MAGIC)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        if ctx.local_path is not None and _utf8_name(ctx.local_path):
            progress = ChunkProgress(ctx.local_path, ctx.read_bytes)
            yield from self._parse(ctx.local_path, ctx, progress)
            progress.done()
            return
        with tempfile.NamedTemporaryFile(prefix="mailhunt-evtx-", suffix=".evtx") as spool:
            try:
                _spool(stream, spool)
            except SpoolTooLarge as exc:
                ctx.reject("record 1", str(exc))
                return
            spool.flush()
            yield from self._parse(spool.name, ctx)

    def _parse(self, path: str, ctx: ReadContext, progress: ChunkProgress | None = None) -> Iterator[pa.Table]:
        """Records of the EVTX file at ``path``: the evidence itself (its ``progress`` reported as the
        parser moves from chunk to chunk), or its spooled copy (counted while it was spooled)."""
        from evtx import PyEvtxParser

        try:
            parser = PyEvtxParser(path, PARSER_THREADS)
        except (OSError, RuntimeError) as exc:
            ctx.reject("record 1", f"not a readable EVTX file: {exc}")
            return
        with ThreadPoolExecutor(max_workers=NORMALIZER_THREADS, thread_name_prefix="mailhunt-evtx") as pool:
            yield from self._records(parser, ctx, pool, progress)
        report_partial_chunk(path, ctx)

    def _records(self, parser, ctx: ReadContext, pool: ThreadPoolExecutor,
                 progress: ChunkProgress | None = None) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        batches = ParallelBatches(events, pool)
        records = parser.records_json()
        last_id = 0
        failures = 0
        texts: list[str] = []
        locators: list[int] = []
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except (RuntimeError, OSError, ValueError) as exc:
                failures += 1
                self._reject_chunk(ctx, str(exc), last_id)
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    ctx.reject(f"record {last_id + 1}", "too many unreadable records in a row; rest of file skipped")
                    break
                continue
            failures = 0
            ctx.records += 1
            if not 0 < record["event_record_id"] <= INT64_MAX:
                ctx.reject(f"record {last_id + 1}", f"record number {record['event_record_id']} out of range "
                                                    f"(damaged record header, after record {last_id})")
                continue
            last_id = record["event_record_id"]
            if progress is not None:
                progress.reached(last_id)
            texts.append(record["data"])
            locators.append(last_id)
            if len(texts) >= BATCH_RECORDS:
                yield from batches.submit(texts, locators)
                texts, locators = [], []
        yield from batches.submit(texts, locators)
        yield from batches.drain()
        yield from events.finish()

    @staticmethod
    def _reject_chunk(ctx: ReadContext, message: str, last_id: int) -> None:
        span = _CHUNK_RANGE.search(message)
        if span:
            first, last = int(span.group(1)), int(span.group(2))
            lost = max(last - first + 1, 1)
            if lost > MAX_CHUNK_RECORDS:
                ctx.records += 1
                ctx.reject(f"record {last_id + 1}", f"chunk cannot be parsed and its header's record range "
                                                    f"{first}..{last} is damaged too: {message[:300]}")
                return
            ctx.records += lost
            ctx.reject(f"record {first}", f"chunk with records {first}..{last} cannot be parsed, "
                                          f"{lost} record(s) lost: {message[:300]}")
            ctx.rejected += lost - 1
        else:
            ctx.records += 1
            ctx.reject(f"record {last_id + 1}", f"record cannot be parsed (after record {last_id}): {message[:300]}")


class ChunkProgress:
    """How far the parser, reading an EVTX file by its path, has got through it, in bytes.

    The parser reads the file itself, so the hunt's stream counts nothing and
    the progress would stay at 0 until the file is done. The chunk headers
    name the last record of each 64 KiB chunk: a record after it means the
    chunk is read, and its bytes are reported. ``done`` reports the rest
    (header, damaged or partial chunks), so a file read to its end counts its
    size exactly."""

    def __init__(self, path: str, report: Callable[[int], None]):
        self.report = report
        self.reported = 0
        self.size = 0
        self.ends: deque[tuple[int, int]] = deque()   # (last record id of a chunk, byte where the chunk ends)
        try:
            with open(path, "rb") as evtx:
                evtx.seek(0, 2)
                self.size = evtx.tell()
                offset = EVTX_HEADER_BYTES
                while offset + EVTX_CHUNK_BYTES <= self.size:
                    evtx.seek(offset)
                    head = evtx.read(40)
                    if head.startswith(EVTX_CHUNK_MAGIC) and len(head) == 40:
                        last = struct.unpack_from("<Q", head, 32)[0]
                        if not self.ends or last > self.ends[-1][0]:
                            self.ends.append((last, offset + EVTX_CHUNK_BYTES))
                    offset += EVTX_CHUNK_BYTES
        except OSError:
            self.ends.clear()

    def reached(self, record_id: int) -> None:
        """The parser has given the record ``record_id``: every chunk ending before it is read."""
        end = None
        while self.ends and record_id > self.ends[0][0]:
            end = self.ends.popleft()[1]
        if end is not None:
            self._to(end)

    def done(self) -> None:
        self._to(self.size)

    def _to(self, offset: int) -> None:
        if offset > self.reported:
            self.report(offset - self.reported)
            self.reported = offset


def report_partial_chunk(path: str, ctx: ReadContext) -> None:
    """Reject the records of a last chunk the file holds only part of (a file copied while written,
    or cut short), which the parser skips without a word.

    An EVTX file is a 4 KiB header and whole 64 KiB chunks. Bytes past the last
    whole chunk that begin a chunk are its cut-off start: its header still
    names the records it held (EventRecordIDs first..last), and those are
    counted lost. Other bytes there are noted, with their offset."""
    with open(path, "rb") as evtx:
        evtx.seek(0, 2)
        size = evtx.tell()
        partial = (size - EVTX_HEADER_BYTES) % EVTX_CHUNK_BYTES if size > EVTX_HEADER_BYTES else 0
        if not partial:
            return
        offset = size - partial
        evtx.seek(offset)
        head = evtx.read(40)
    if not head.startswith(EVTX_CHUNK_MAGIC):
        ctx.note(f"{partial} bytes after the last whole chunk (from byte {offset}) are not an EVTX chunk; "
                 f"not read")
        return
    where = f"last chunk cut off: only {partial} of its {EVTX_CHUNK_BYTES} bytes, from byte {offset}, are in the file"
    if len(head) == 40:
        first, last = struct.unpack_from("<QQ", head, 24)
        lost = last - first + 1
        if 0 < first <= last and lost <= MAX_CHUNK_RECORDS:
            ctx.records += lost
            ctx.reject(f"record {first}", f"{where} (truncated file); its records {first}..{last} are lost")
            ctx.rejected += lost - 1
            return
    ctx.records += 1
    ctx.reject(f"byte {offset}", f"{where} (truncated file); its records are lost, their number unknown")


class EvtxDumpJsonLines:
    """``evtx_dump -o jsonl``: one record per line."""

    name = "evtx_dump_jsonl"
    dataset = "windows"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        try:
            return _is_event(orjson.loads(_first_line(head)))
        except orjson.JSONDecodeError:
            return False

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        texts: list[str] = []
        numbers: list[int] = []
        for number, line in iter_text_lines(stream, ctx):
            if not line.strip():
                continue
            ctx.records += 1
            texts.append(line)
            numbers.append(number)
            if len(texts) >= BATCH_RECORDS:
                yield from events.add_batch(texts, numbers)
                texts, numbers = [], []
        yield from events.add_batch(texts, numbers)
        yield from events.finish()


class EvtxDumpJson:
    """``evtx_dump -o json``: a ``Record <n>`` line, then the record as indented JSON."""

    name = "evtx_dump_json"
    dataset = "windows"
    locator_unit = "line"
    max_record_lines = 100_000

    def sniff(self, head: bytes) -> bool:
        text = head.decode("utf-8-sig", errors="ignore").lstrip()
        first, _, rest = text.partition("\n")
        return bool(_RECORD_HEADER.match(first.strip())) and rest.lstrip().startswith("{") and '"Event"' in rest

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        start: int | None = None
        file_record: int | None = None
        lines: list[str] = []

        def record() -> Iterator[pa.Table]:
            if start is None:
                return
            ctx.records += 1
            text = "\n".join(lines).strip()
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                ctx.reject(f"line {start}", f"record is not valid JSON ({str(exc)[:80]})")
                return
            yield from events.add(start, text, parsed, file_record=file_record)

        for number, line in iter_text_lines(stream, ctx):
            header = _RECORD_HEADER.match(line)
            if header:
                yield from record()
                start, lines, file_record = number + 1, [], int64_from_text(header.group(1))
            elif start is not None:
                lines.append(line)
                if len(lines) > self.max_record_lines:
                    ctx.records += 1
                    ctx.reject(f"line {start}", f"record longer than {self.max_record_lines} lines; skipped")
                    start, lines = None, []
            elif line.strip():
                ctx.records += 1
                ctx.reject(f"line {number}", "text outside a record (no 'Record <n>' line before it)")
        yield from record()
        yield from events.finish()


def winlogbeat_to_record(document: dict) -> dict:
    """A Winlogbeat document as the ``{"Event": ...}`` record it was made from."""
    winlog = document.get("winlog") or {}
    user = winlog.get("user") or {}
    system = {
        "Provider": {"#attributes": {"Name": winlog.get("provider_name")}},
        "EventID": winlog.get("event_id"),
        "TimeCreated": {"#attributes": {"SystemTime": document.get("@timestamp")}},
        "EventRecordID": winlog.get("record_id"),
        "Channel": winlog.get("channel"),
        "Computer": winlog.get("computer_name"),
        "Security": {"#attributes": {"UserID": user["identifier"]}} if user.get("identifier") else None,
    }
    event = {"System": system}
    if winlog.get("user_data"):
        event["UserData"] = {"Data": winlog["user_data"]}
    else:
        event["EventData"] = winlog.get("event_data") or {}
    return {"Event": event}


class WinlogbeatNdjson:
    name = "winlogbeat_ndjson"
    dataset = "windows"
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        try:
            obj = orjson.loads(_first_line(head))
        except orjson.JSONDecodeError:
            return False
        winlog = obj.get("winlog") if isinstance(obj, dict) else None
        return isinstance(winlog, dict) and "event_id" in winlog and "channel" in winlog

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        events = WindowsEventStream(ctx, self.locator_unit)
        for number, line, document in json_lines(iter_text_lines(stream, ctx), ctx):
            if not isinstance(document, dict) or not isinstance(document.get("winlog"), dict):
                ctx.reject(f"line {number}", "no winlog object")
                continue
            user = document["winlog"].get("user") or {}
            account = (text_value(user.get("name")), text_value(user.get("domain"))) if isinstance(user, dict) \
                else (None, None)
            yield from events.add(number, line, winlogbeat_to_record(document), account)
        yield from events.finish()


WINDOWS_SOURCES = (EvtxBinary(), EvtxDumpJsonLines(), EvtxDumpJson(), WinlogbeatNdjson())
