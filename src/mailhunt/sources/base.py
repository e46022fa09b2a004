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
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AnyStr, BinaryIO, Protocol, TextIO, Union

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

    def order_rejections(self) -> None:
        """Rejections in file order (by the number in their locator), whichever stage found them."""
        self.rejections.sort(key=_locator_order)


def _locator_order(rejection: Rejection) -> tuple[int, int]:
    number = re.search(r"\d+", rejection.locator)
    return (0, int(number.group())) if number else (1, 0)


# A case keeps its events in DuckDB row groups of this many rows. A transaction
# that appends whole row groups has each one written to the database file as it
# fills, and later checkpoints leave it alone; a part-filled row group goes
# through the write-ahead log and is rewritten whenever later rows join it.
# Readers therefore size their batches to divide this, and the store commits
# at its multiples.
ROW_GROUP_ROWS = 122_880


class StagedRecords(Protocol):
    """Raw records and the set-based query that turns them into events (``events.SCHEMA``)."""

    num_rows: int
    context: ReadContext

    def insert_into(self, db: duckdb.DuckDBPyConnection, table: str) -> None:
        """Map the records where ``table`` lives and insert the events, by column name."""

    def to_events(self) -> pa.Table:
        """The events as an Arrow table, mapped in a private in-memory database."""


Batch = Union[pa.Table, StagedRecords]


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
        yield number, line, value
