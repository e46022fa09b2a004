"""``CASE/custody.jsonl``: an append-only log of every action on the case, as a hash chain.

Each line is one JSON object (keys sorted) with ``seq`` (1, 2, ...), ``previous``
(the SHA-256 of the previous line's bytes, without its line break; 64 zeros
for the first), ``time`` (UTC, ISO 8601 with ``Z``), ``action`` (``hunt``,
``re-hunt``, ``report``, ``export``, an analyst's disposition ...),
``command_line``, ``mailhunt_version``, ``details`` and ``added`` (the
evidence files the action added, by SHA-256). Editing a line changes its hash,
so the next line's ``previous`` no longer matches; removing a line breaks the
chain (and ``seq``) at that point. ``verify_chain`` finds both.

Commands other than ``hunt`` call ``record(case_dir, action, details)``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from mailhunt import __version__

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the hunt holds the case database open exclusively anyway
    fcntl = None  # type: ignore[assignment]

CUSTODY_FILE = "custody.jsonl"
GENESIS = "0" * 64
REQUIRED_KEYS = frozenset({"seq", "previous", "time", "action", "command_line", "mailhunt_version", "details",
                           "added"})


def utc_now() -> str:
    """Now, UTC, as ISO 8601 with a ``Z`` (microseconds, so entries of one second stay ordered)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line_hash(line: bytes) -> str:
    """The SHA-256 of one custody line as stored, without its line break."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def record(case_dir: Path | str, action: str, details: dict | None = None,
           added: Sequence[dict] = (), command_line: Sequence[str] | None = None) -> dict:
    """Append one entry to the case's custody log and return it (with its own ``hash``, not stored in the line).

    ``command_line`` defaults to this process's (``sys.argv``); ``added`` lists
    evidence files as ``{"sha256": ..., "original_path": ..., "evidence_path": ...}``.
    The log is locked while the previous line is read and the new one written,
    so two commands on one case cannot fork the chain."""
    path = Path(case_dir) / CUSTODY_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "r+b") as log:
        if fcntl is not None:
            fcntl.flock(log.fileno(), fcntl.LOCK_EX)
        seq, previous = _last_link(log.read())
        entry = {"seq": seq + 1, "previous": previous, "time": utc_now(), "action": action,
                 "command_line": list(sys.argv if command_line is None else command_line),
                 "mailhunt_version": __version__, "details": details or {}, "added": list(added)}
        line = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        log.write(line + b"\n")
        log.flush()
        os.fsync(log.fileno())
    return {**entry, "hash": line_hash(line)}


def _last_link(content: bytes) -> tuple[int, str]:
    """The ``seq`` and hash of the last line, to chain the next entry to (0 and 64 zeros for an empty log)."""
    lines = content.splitlines()
    if not lines:
        return 0, GENESIS
    last = lines[-1]
    try:
        seq = int(orjson.loads(last).get("seq", len(lines)))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        seq = len(lines)
    return seq, line_hash(last)


@dataclass(frozen=True)
class CustodyEntry:
    line: int
    entry: dict
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """The custody log read back: its well-formed entries and every break found, each naming its line."""

    entries: list[CustodyEntry]
    problems: list[str]
    head: str | None


def verify_chain(case_dir: Path | str) -> ChainCheck:
    """Read ``custody.jsonl`` and check each line's ``previous`` against the line before it."""
    path = Path(case_dir) / CUSTODY_FILE
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return ChainCheck([], [f"{CUSTODY_FILE}: missing (the case has no custody log)"], None)
    problems: list[str] = []
    entries: list[CustodyEntry] = []
    if content and not content.endswith(b"\n"):
        problems.append(f"{CUSTODY_FILE}: the last line has no line break (cut off, or edited)")
    previous_hash, previous_seq = GENESIS, 0
    for number, line in enumerate(content.splitlines(), start=1):
        here = f"{CUSTODY_FILE} line {number}"
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict) or not REQUIRED_KEYS <= entry.keys():
            problems.append(f"{here}: not a custody entry (edited)")
        else:
            if entry["previous"] != previous_hash:
                if previous_hash == GENESIS:
                    problems.append(f"{here}: is the first line but names a previous entry "
                                    "(the entries before it were removed)")
                else:
                    problems.append(f"{here}: the previous-entry hash does not match line {number - 1}: line "
                                    f"{number - 1} was edited, or entries between them were removed")
            if entry["seq"] != previous_seq + 1:
                problems.append(f"{here}: entry {entry['seq']} follows entry {previous_seq}: "
                                f"{'entries were removed' if entry['seq'] > previous_seq + 1 else 'out of order'}")
            entries.append(CustodyEntry(number, entry, line_hash(line)))
            previous_seq = entry["seq"] if isinstance(entry["seq"], int) else previous_seq + 1
        previous_hash = line_hash(line)
    return ChainCheck(entries, problems, previous_hash if content else None)
