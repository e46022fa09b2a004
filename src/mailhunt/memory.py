"""How much memory a hunt may take, and how that budget is shared out.

``mailhunt hunt --memory-limit SIZE`` sets one budget for the process; it is
split between the case database (DuckDB's ``memory_limit``, past which it
spills to disk), the private in-memory databases that map staged batches
(one per loading thread), and the staged batches themselves (records read and
waiting to be mapped: fewer records a batch under a smaller budget). Without
the option every part keeps its default (``DEFAULT``): 512 MB for the case
database and staged batches of half a row group, which keeps a hunt of a
million audit records under 1 GiB resident (bench/README.md).

Only the parts named here are bounded: Python's own objects (findings, the
rules, report text) come on top, so the budget is a target for the process,
not a hard cap on its resident memory.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

MIB = 1024 * 1024
# A case keeps its events in DuckDB row groups of this many rows. A transaction
# that appends whole row groups has each one written to the database file as it
# fills, and later checkpoints leave it alone; a part-filled row group goes
# through the write-ahead log and is rewritten whenever later rows join it.
# Readers therefore size their batches to divide this, and the store commits
# at its multiples.
ROW_GROUP_ROWS = 122_880
MIN_LIMIT = 256 * MIB
MAX_LIMIT = 1024 * 1024 * MIB  # 1 TiB
_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4,
          "KIB": 1024, "MIB": 1024 ** 2, "GIB": 1024 ** 3, "TIB": 1024 ** 4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*$", re.IGNORECASE)


class MemoryLimitError(ValueError):
    """A memory limit that is not a size, or outside ``MIN_LIMIT`` .. ``MAX_LIMIT``."""


def parse_size(text: str) -> int:
    """Bytes of a size such as ``1GB``, ``768MB``, ``1.5GiB`` (decimal and binary units; a bare number is bytes).

    Raises MemoryLimitError unless the size is within 256 MiB .. 1 TiB."""
    match = _SIZE.match(text or "")
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS:
        raise MemoryLimitError(f"{text!r} is not a size (examples: 1GB, 768MB, 1.5GiB)")
    size = int(float(match.group(1)) * _UNITS[unit])
    if not MIN_LIMIT <= size <= MAX_LIMIT:
        raise MemoryLimitError(f"{text} is outside {MIN_LIMIT // MIB} MiB .. {MAX_LIMIT // MIB // 1024 // 1024} TiB")
    return size


@dataclass(frozen=True)
class MemoryBudget:
    """The sizes the loading and the case database use.

    ``limit`` None: the defaults. Otherwise half of it goes to the case
    database, an eighth to each mapping database (two load at once), and
    staged batches are half a row group, or a quarter when the limit is
    below 1 GiB, so that the batches that can be in memory at once (one
    being read, one waiting, two being mapped) stay within the rest; the
    loading connections commit every row group, or half row group below
    1 GiB."""

    limit: int | None = None

    @property
    def case_database_bytes(self) -> int:
        return 512 * 1000 ** 2 if self.limit is None else self.limit // 2 // MIB * MIB

    @property
    def case_database(self) -> str:
        """``case_database_bytes`` as DuckDB's ``memory_limit`` (a whole number of KiB either way)."""
        return f"{self.case_database_bytes // 1024}KiB"

    @property
    def mapping_database(self) -> str:
        return "256MB" if self.limit is None else f"{max(self.limit // 8 // MIB, 64)}MiB"

    @property
    def staged_records(self) -> int:
        """Records a staged batch holds: half a row group, or a quarter of one under a budget below 1 GiB."""
        if self.limit is None or self.limit >= 1024 * MIB:
            return ROW_GROUP_ROWS // 2
        return ROW_GROUP_ROWS // 4

    @property
    def committed_rows(self) -> int:
        """Rows a loading connection appends before it commits (``store.StagedInserts``): a whole row group,
        or half of one under a budget below 1 GiB (what a transaction appended is in memory until it commits)."""
        if self.limit is None or self.limit >= 1024 * MIB:
            return ROW_GROUP_ROWS
        return ROW_GROUP_ROWS // 2


DEFAULT = MemoryBudget()
_current = DEFAULT


def budget() -> MemoryBudget:
    """The budget of the hunt running in this process (``DEFAULT`` outside one)."""
    return _current


@contextlib.contextmanager
def limited_to(limit: int | None) -> Iterator[MemoryBudget]:
    """Use ``MemoryBudget(limit)`` for what runs inside (the whole process: loading threads read it too)."""
    global _current
    previous, _current = _current, MemoryBudget(limit)
    try:
        yield _current
    finally:
        _current = previous
