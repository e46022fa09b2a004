"""CSV records with their text as the file holds it, for ``event.original``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from mailhunt.sources.base import ReadContext
from mailhunt.sources.m365_audit import csv_record_texts, parse_csv_record, text_lines


def header_key(name: str) -> str:
    """A CSV column name as readers look it up: lower-cased, without BOM or surrounding blanks."""
    return name.strip().lstrip("\ufeff").lower()


def csv_rows(stream: BinaryIO, ctx: ReadContext, required: tuple[str, ...] = (),
             key: Callable[[str], str] = header_key) -> Iterator[tuple[int, dict[str, str], str]]:
    """(first line, row keyed by column, record text) per data row of a CSV with a header line.

    An ``Export-Csv`` ``#TYPE`` line before the header is skipped, and so are
    blank rows. Each other row counts as a record; one whose field count
    differs from the header's is rejected. A header that lacks a ``required``
    column rejects the file at that line.
    """
    header: list[str] | None = None
    for number, fields, raw in csv_records_with_text(text_lines(stream, ctx), ctx):
        if header is None:
            if fields and fields[0].startswith("#TYPE"):
                continue
            header = [key(f) for f in fields]
            missing = [c for c in required if c not in header]
            if missing:
                ctx.reject(f"line {number}", f"header lacks {', '.join(missing)}")
                return
            continue
        if not any(f.strip() for f in fields):
            continue
        ctx.records += 1
        if len(fields) != len(header):
            ctx.reject(f"line {number}", f"{len(fields)} fields where the header has {len(header)}")
            continue
        yield number, dict(zip(header, fields)), raw


def csv_records_with_text(lines: Iterator[tuple[int, str]], ctx: ReadContext) -> Iterator[tuple[int, list[str], str]]:
    """(first line, fields, record text) per record; the text spans the lines up to balanced quotes."""
    for start, text in csv_record_texts(lines, ctx):
        fields = parse_csv_record(text, start, ctx)
        if fields is not None:
            yield start, fields, text
