"""One interface for every log format (after plaso's parsers).

A source has a ``name``, a cheap ``sniff(head)`` on the first bytes of a file,
and ``read(stream, ctx)`` that yields batches of normalized events as Arrow
tables with ``mailhunt.events.SCHEMA`` (a reader that builds events one by one
as dicts turns them into a batch with ``mailhunt.events.to_arrow``). It counts
every record it meets in ``ctx.records``. A bad record is never an exception: the
reader calls ``ctx.reject(locator, reason)`` and goes on with the next one.

A reader whose mapping is set-based SQL may instead yield ``StagedRecords``:
the raw records with the query that makes them events, run by the store in
the database the events land in, so the events never travel through Arrow.
What that query rejects is reported in the batch's own ``context``; whoever
runs it folds that into the file's context (``ReadContext.absorb``).
``read_events`` gives any reader's output as event tables.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AnyStr, BinaryIO, Protocol, TextIO, TypeAlias

import orjson
import pyarrow as pa

from mailhunt.events import to_arrow

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Rejection:
    path: str
    locator: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.locator}: {self.reason}"


@dataclass
class ReadContext:
    """What a reader knows about the file it reads, and where it reports problems.

    ``hints`` holds what the analyst told the hunt about evidence that does not
    say it itself (``year`` for syslog without one, ``user`` for a shell
    history); a reader that uses a hint says so in the event's ``labels``.
    ``local_path`` is the file on disk when the evidence is a plain file (not a
    zip member or a decompressed stream), for parsers that need to seek.
    ``digest`` is the file's SHA-256, or a future of it while it is still
    being computed; ``sha256`` waits for it. A reader that only needs it when
    its batches are stored passes ``digest`` on, so reading need not wait.
    ``cut_short``, asked once the stream has ended, says why it ended before
    the evidence's data did (a truncated gzip stream), or None: the last line
    is then a partial one.
    """

    path: str
    digest: str | Future[str]
    hints: dict[str, str] = field(default_factory=dict)
    local_path: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    rejected: int = 0
    records: int = 0
    max_kept_rejections: int = 1000
    notes: list[str] = field(default_factory=list)
    cut_short: Callable[[], str | None] = field(default=lambda: None)
    duplicate_keys: dict[int, str] = field(default_factory=dict)
    # A reader that reads the file by ``local_path`` instead of through the stream reports here how many
    # more bytes of it it has got through, so the hunt's progress moves (the stream counts only its own reads).
    read_bytes: Callable[[int], None] = field(default=lambda count: None)

    @property
    def sha256(self) -> str:
        if not isinstance(self.digest, str):
            self.digest = self.digest.result()
        return self.digest

    def note(self, text: str) -> None:
        """Say once, for the whole file, something the analyst must know about how it was read
        (a time zone or year the evidence does not state); shown with the input and kept in findings.json."""
        if text not in self.notes:
            self.notes.append(text)

    def flag_duplicate_keys(self, record: int, keys: str) -> None:
        """Say that the record at ``record`` (its line or record number) names ``keys`` twice in one
        JSON object; its event is marked ``labels.duplicate_keys`` once stored, and the file noted."""
        self.duplicate_keys[record] = keys
        self.note(DUPLICATE_KEYS_NOTE)

    def reject(self, locator: str, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < self.max_kept_rejections:
            self.rejections.append(Rejection(self.path, locator, reason))

    def absorb(self, other: ReadContext) -> None:
        """Fold in the counts, rejections and notes a batch reported into a context of its own."""
        self.records += other.records
        for rejection in other.rejections:
            self.reject(rejection.locator, rejection.reason)
        self.rejected += other.rejected - len(other.rejections)
        for text in other.notes:
            self.note(text)
        self.duplicate_keys.update(other.duplicate_keys)

    def order_rejections(self) -> None:
        """Rejections in file order (by the number in their locator), whichever stage found them."""
        self.rejections.sort(key=_locator_order)


DUPLICATE_KEYS_LABEL = "duplicate_keys"
DUPLICATE_KEYS_NOTE = ("records name a key twice in one JSON object, a sign of editing: each was read with the "
                       "key's last value, as jq, Python and orjson read it, and its event is marked "
                       "labels.duplicate_keys")
_KEY_END = re.compile(r'"\s*:')


def _key_count(value: object) -> int:
    """How many keys the objects in a parsed JSON value hold, all depths."""
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def duplicate_keys(text: str | bytes, value: object) -> str | None:
    """The keys the JSON ``text`` (parsed, last value winning, as ``value``) names twice within one
    object, comma-separated; None when it names none.

    Parsers keep one value of a repeated key (Python, orjson and jq the last),
    so two tools may show one record differently. The common case costs a
    count: every key is followed by a quote and a colon, so when the text
    holds no more of those than ``value`` holds keys, no key repeats."""
    if len(_KEY_END.findall(text if isinstance(text, str) else text.decode("utf-8", "replace"))) \
            <= _key_count(value):
        return None
    repeated: set[str] = set()

    def pairs(items: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                repeated.add(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return ",".join(sorted(repeated)) or None


def _locator_order(rejection: Rejection) -> tuple[int, int]:
    number = re.search(r"\d+", rejection.locator)
    return (0, int(number.group())) if number else (1, 0)




class StagedRecords(Protocol):
    """Raw records and the set-based query that turns them into events (``events.SCHEMA``)."""

    num_rows: int
    context: ReadContext

    def insert_into(self, db: duckdb.DuckDBPyConnection, table: str) -> None:
        """Map the records where ``table`` lives and insert the events, by column name."""

    def to_events(self) -> pa.Table:
        """The events as an Arrow table, mapped in a private in-memory database."""


Batch: TypeAlias = pa.Table | StagedRecords


class Source(Protocol):
    """``locator_unit`` says what ``log.record`` counts: "line" or "record"."""

    name: str
    dataset: str
    locator_unit: str

    def sniff(self, head: bytes) -> bool: ...

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[Batch]: ...


def read_events(source: Source, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
    """A reader's output as event tables, its staged batches mapped and their reports folded into ``ctx``."""
    for batch in source.read(stream, ctx):
        if isinstance(batch, pa.Table):
            yield batch
        else:
            table = batch.to_events()
            ctx.absorb(batch.context)
            yield table


def event_batches(events: Iterable[dict | None], size: int = 20_000) -> Iterator[pa.Table]:
    """Events built one by one (``None`` for a rejected record) as Arrow batches of ``size``."""
    batch: list[dict] = []
    for event in events:
        if event is None:
            continue
        batch.append(event)
        if len(batch) >= size:
            yield to_arrow(batch)
            batch = []
    if batch:
        yield to_arrow(batch)


# The longest line any reader takes (bytes; characters for UTF-16 text). A
# longer one is rejected without ever being held whole.
MAX_LINE_BYTES = 64 * 1024 * 1024
# Lines are capped before they reach the csv module, so its own field limit
# (128 KiB by default) would only reject long fields of lines within the cap.
csv.field_size_limit(MAX_LINE_BYTES)
_SKIP_PIECE = 1 << 20


def line_too_long(limit: int, offset: int, unit: str = "bytes") -> str:
    """The reason a line over the cap is rejected with."""
    return f"line longer than {limit} {unit} (it starts at {unit[:-1]} {offset}); skipped up to the next line"


def numbered_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, bytes]]:
    """(1-based number, line with its line end) per line of ``stream``, none longer than ``MAX_LINE_BYTES``.

    Every line-based reader takes its lines from here (or ``numbered_text_lines``).
    A longer line is read in bounded pieces up to the next newline, counted as a
    record and rejected with its number and byte offset; the lines after it are
    kept. A last line without newline where the stream was cut short
    (``ctx.cut_short``) is rejected as partial, not kept half.
    """
    return _bounded_lines(stream.readline, ctx, (b"\n",), b"\r\n", "bytes")


def numbered_text_lines(stream: TextIO, ctx: ReadContext) -> Iterator[tuple[int, str]]:
    """``numbered_lines`` for a decoded stream read with ``newline=""`` (a lone CR ends a line too); the cap
    counts characters."""
    return _bounded_lines(stream.readline, ctx, ("\n", "\r"), "\r\n", "characters")


def _bounded_lines(readline: Callable[[int], AnyStr], ctx: ReadContext, line_ends: tuple[AnyStr, ...],
                   crlf: AnyStr, unit: str) -> Iterator[tuple[int, AnyStr]]:
    limit = MAX_LINE_BYTES
    number = offset = 0
    while True:
        raw = readline(limit + 2)
        if not raw:
            return
        number += 1
        start, offset = offset, offset + len(raw)
        ends = raw.endswith(line_ends)
        content = len(raw) - (len(crlf) if raw.endswith(crlf) else ends)
        if content > limit:
            while not raw.endswith(line_ends):
                raw = readline(_SKIP_PIECE)
                if not raw:
                    break
                offset += len(raw)
            ctx.records += 1
            ctx.reject(f"line {number}", line_too_long(limit, start, unit))
            continue
        if not ends:
            cut = ctx.cut_short()
            if cut:
                ctx.records += 1
                ctx.reject(f"line {number}", f"partial last line ({cut}); skipped")
                return
        yield number, raw


def iter_text_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str]]:
    """Lines of a UTF-8 (or UTF-8 with BOM) stream with their 1-based numbers.

    A line that is not valid UTF-8 is counted as a record, rejected with its
    number and skipped; its neighbours are kept. Lines are capped as ``numbered_lines`` says.
    """
    for number, raw in numbered_lines(stream, ctx):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            ctx.records += 1
            ctx.reject(f"line {number}", f"not UTF-8 text (byte {exc.start} of the line)")
            continue
        yield number, line.rstrip("\r\n")


def json_lines(lines: Iterable[tuple[int, str]], ctx: ReadContext) -> Iterator[tuple[int, str, object]]:
    """(line number, text, parsed value) per non-empty line of NDJSON, each counted as a record.

    A line that is not JSON (most often the last line of a file copied while
    it was written) is rejected with its number; the lines around it are kept.
    """
    for number, line in lines:
        if not line.strip():
            continue
        ctx.records += 1
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            ctx.reject(f"line {number}", f"not valid JSON ({str(exc)[:80]}); truncated line?")
            continue
        repeated = duplicate_keys(line, value)
        if repeated:
            ctx.flag_duplicate_keys(number, repeated)
        yield number, line, value


# ---------------------------------------------------------------- members of a JSON array

MAX_MEMBER_CHARS = 64 * 1024 * 1024
_STRUCTURE = re.compile(r'["{}\[\]]')
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SCALAR_END = re.compile(r"[,\]\s]")


class _MemberScan:
    """Where a member ends, found by counting its brackets and skipping its strings, nothing parsed.

    Used where the parser stopped: it never recurses, so a member nested
    100,000 deep, or one the parser refuses (a 5,000-digit number, a syntax
    error), is cut out and rejected alone and the members after it are kept.
    ``advance`` may be called again after the buffer grew."""

    def __init__(self, buffer: str, start: int):
        first = buffer[start]
        self.start = start
        self.open: list[str] = [first] if first in "{[" else []  # brackets not yet closed
        self.scalar = first not in '{["'
        self.in_string = first == '"'
        self.position = start + 1  # a scalar's end is searched after its first character

    def advance(self, buffer: str) -> int | None:
        """The member's end (exclusive) if ``buffer`` holds it, else None."""
        if self.scalar:
            found = _SCALAR_END.search(buffer, self.position)
            self.position = found.start() if found else len(buffer)
            return found.start() if found else None
        while True:
            if self.in_string:
                body = _STRING_BODY.match(buffer, self.position)  # matches, if only the empty string
                self.position = body.end() if body else self.position
                if self.position >= len(buffer) or buffer[self.position] != '"':
                    return None  # the string, or an escape in it, goes on past the buffer
                self.position += 1
                self.in_string = False
                if not self.open:
                    return self.position
                continue
            found = _STRUCTURE.search(buffer, self.position)
            if found is None:
                self.position = len(buffer)
                return None
            self.position = found.end()
            mark = found.group()
            if mark == '"':
                self.in_string = True
            elif mark in "{[":
                self.open.append(mark)
            else:
                # A closer ends the bracket it matches and any left open inside it ('[1,2}' ends at '}'),
                # so one unbalanced member does not swallow the members after it; a stray one is skipped.
                opener = "{" if mark == "}" else "["
                if self.open and self.open[-1] == opener:
                    self.open.pop()
                elif opener in self.open:
                    del self.open[len(self.open) - 1 - self.open[::-1].index(opener):]
                if not self.open:
                    return self.position


def json_array_members(stream: BinaryIO, ctx: ReadContext,
                       chunk_size: int = 1 << 20) -> Iterator[tuple[int, str, object]]:
    """(index from 1, member text, member) for each member of a top-level JSON array, read incrementally.

    A file holding one JSON object is treated as an array of one. Each member
    stands alone: one that is not valid JSON, nested deeper than the parser
    goes or holding a number it cannot represent is rejected with its index
    and character offset, and the members after it are read as usual. Only a
    member never closed (a truncated file) ends the array; one longer than
    ``MAX_MEMBER_CHARS`` is rejected unread.
    """
    decoder = json.JSONDecoder()
    reader = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")
    buffer = reader.read(chunk_size)
    base = 0  # characters of the file before buffer[0]
    position = len(buffer) - len(buffer.lstrip())
    in_array = buffer[position:position + 1] == "["
    if not in_array and buffer[position:position + 1] != "{":
        ctx.reject("record 1", "not a JSON array")
        return
    position += 1 if in_array else 0
    index = 0
    at_end = False
    while True:
        while position < len(buffer) and buffer[position] in " \t\r\n,":
            position += 1
        if position >= len(buffer) and not at_end:
            more = reader.read(chunk_size)
            base += position
            buffer, position = buffer[position:] + more, 0
            at_end = not more
            continue
        if position < len(buffer) and buffer[position] == "]" and in_array:
            return
        if position >= len(buffer):
            if in_array:
                ctx.reject(f"record {index + 1}", "array not closed: file truncated")
            return
        index += 1
        ctx.records += 1
        try:
            member, end = decoder.raw_decode(buffer, position)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; or the member goes on past the buffer
            scan = _MemberScan(buffer, position)
            offset, oversized = base + position, False
            while (found_end := scan.advance(buffer)) is None:
                more = "" if at_end else reader.read(chunk_size)
                if not more:
                    ctx.reject(f"record {index}", f"member at character {offset} is not closed: "
                                                  "file truncated")
                    return
                if not oversized and scan.position - scan.start > MAX_MEMBER_CHARS:
                    oversized = True
                    ctx.reject(f"record {index}", f"member at character {offset} is longer than "
                                                  f"{MAX_MEMBER_CHARS // 2**20} Mi characters; skipped")
                if oversized:  # only its end is still wanted: what was scanned is dropped
                    base += scan.position
                    buffer, scan.position, position = buffer[scan.position:], 0, 0
                buffer += more
            end = found_end
            if oversized:
                position = end
                continue
            try:
                member = json.loads(buffer[position:end])
            except (ValueError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                ctx.reject(f"record {index}", f"member at character {offset} is not valid JSON "
                                              f"({type(exc).__name__}: {reason[:80]})")
                position = end
                continue
        text = buffer[position:end]
        repeated = duplicate_keys(text, member)
        if repeated:
            ctx.flag_duplicate_keys(index, repeated)
        yield index, text, member
        position = end
        if position > chunk_size:
            base += position
            buffer, position = buffer[position:], 0
