"""CSV records with their text as the file holds it, for ``event.original``."""

from __future__ import annotations

from typing import Iterator

from mailhunt.sources.base import ReadContext
from mailhunt.sources.m365_audit import csv_records


def csv_records_with_text(lines: Iterator[tuple[int, str]], ctx: ReadContext) -> Iterator[tuple[int, list[str], str]]:
    """(first line, fields, record text) per record; the text spans the lines up to balanced quotes."""
    seen: dict[int, str] = {}

    def remembered() -> Iterator[tuple[int, str]]:
        for number, line in lines:
            seen[number] = line
            yield number, line

    for start, fields in csv_records(remembered(), ctx):
        parts, quotes, number = [], 0, start
        while number in seen:
            parts.append(seen[number])
            quotes += seen[number].count('"')
            number += 1
            if quotes % 2 == 0:
                break
        for old in [n for n in seen if n < number - 1]:
            del seen[old]
        yield start, fields, "\n".join(parts)
