"""CSV files an analyst opens in a spreadsheet: every cell is inert text.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is a formula (or becomes one) in Excel, LibreOffice and Google Sheets
(CSV injection). ``neutralized`` puts a single quote in front of such a
cell, the convention those programs show as a literal text marker (OWASP,
"CSV Injection"): the cell then reads as the value and never runs. Every CSV
mailhunt writes goes through ``csv_bytes``, or has its cells neutralized by the
database with the same rule (``neutralized_sql``), each line written by the database too (``csv_line_sql``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralized(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet evaluates (None is an empty cell)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def neutralized_sql(expression: str) -> str:
    """SQL for ``neutralized`` of the VARCHAR ``expression`` (this module's SQL, not evidence), for CSV whose
    cells the database computes (``csv_line_sql``): a quote put in front of a first character of
    ``FORMULA_TRIGGERS``, NULL an empty cell."""
    triggers = "".join(f"\\x{{{ord(trigger):x}}}" for trigger in FORMULA_TRIGGERS)
    return f"regexp_replace(coalesce({expression}, ''), '^([{triggers}])', '''\\1')"


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV (RFC 4180 quoting, CRLF line ends) of ``header`` and ``rows``, every cell neutralized."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralized(name) for name in header])
    for row in rows:
        writer.writerow([neutralized(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


def csv_line_sql(cells: Sequence[str]) -> str:
    """SQL for one line of ``csv_bytes`` (its quoting and CRLF line end) of the VARCHAR ``cells`` (this module's
    SQL, never NULL, already ``neutralized_sql``): the cell quoted, its quotes doubled, when it holds a comma,
    a quote or a line break, as Python's csv writer does."""
    def quoted(cell: str) -> str:
        special = " OR ".join(f"contains({cell}, {special})" for special in ("','", "'\"'", "chr(13)", "chr(10)"))
        return f"""CASE WHEN {special} THEN '"' || replace({cell}, '"', '""') || '"' ELSE {cell} END"""

    return f"concat_ws(',', {', '.join(quoted(cell) for cell in cells)}) || chr(13) || chr(10)"
