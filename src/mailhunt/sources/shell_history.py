"""Shell histories: bash with timestamps, zsh extended history, fish history.

- bash (``HISTTIMEFORMAT`` set): ``#EPOCH`` lines, each followed by the command
  (a multi-line command runs up to the next ``#EPOCH`` line).
- zsh (``EXTENDED_HISTORY``): ``: EPOCH:DURATION;command``, a line ending in
  ``\\`` continues on the next; zsh's metafied bytes (0x83 escapes) are undone.
- fish: ``- cmd: ...`` / ``  when: EPOCH`` entries, ``\\n`` and ``\\\\`` escapes undone.

A history is recognized by its content only. A bash history without
timestamps has nothing to recognize it by and nothing to place its commands in
time, so it is not read (listed as skipped); lines of a timestamped bash
history before its first ``#EPOCH`` are rejected for the same reason.

Whose commands they are comes from the file's location (``/home/<u>/``,
``/Users/<u>/``, ``/root/``), else from the ``--user`` hint; ``labels.user_source``
says which. Times are epoch seconds, hence UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import event_id_from_raw, utc_from_epoch
from mailhunt.sources.base import ReadContext, numbered_lines
from mailhunt.sources.unix_common import (
    NOT_UTF8,
    EventBatches,
    decode_lenient,
    program_name,
    split_command,
    unix_event,
    user_from_path,
)

DATASET = "unix.shell_history"
MAX_COMMAND_LINES = 500

_BASH_STAMP = re.compile(rb"^#(\d{9,11})\s*$")
_ZSH_LINE = re.compile(rb"^: (\d{9,11}):(\d+);(.*)$", re.DOTALL)
_FISH_CMD = re.compile(rb"^- cmd: ?(.*)$")
_FISH_WHEN = re.compile(rb"^  when: (\d{9,11})\s*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
ZSH_META = 0x83


def _epoch(text: bytes) -> datetime:
    return utc_from_epoch(int(text))


def _unmetafy(raw: bytes) -> bytes:
    """zsh stores bytes 0x80-0x9f and its special tokens as 0x83 followed by the byte XOR 0x20."""
    if ZSH_META not in raw:
        return raw
    out = bytearray()
    meta = False
    for byte in raw:
        if meta:
            out.append(byte ^ 0x20)
            meta = False
        elif byte == ZSH_META:
            meta = True
        else:
            out.append(byte)
    return bytes(out)


def _fish_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _lines(head: bytes) -> list[bytes]:
    return [line for line in head.split(b"\n")[:40] if line.strip()]


def sniff_bash(head: bytes) -> bool:
    lines = _lines(head)
    stamps = sum(1 for line in lines if _BASH_STAMP.match(line))
    return bool(lines) and (bool(_BASH_STAMP.match(lines[0])) or stamps >= 2) and stamps * 3 >= len(lines)


def sniff_zsh(head: bytes) -> bool:
    lines = _lines(head)
    hits = sum(1 for line in lines if _ZSH_LINE.match(line))
    return bool(lines) and bool(_ZSH_LINE.match(lines[0])) and hits * 2 >= len(lines)


def sniff_fish(head: bytes) -> bool:
    lines = _lines(head)
    return bool(lines) and bool(_FISH_CMD.match(lines[0])) and any(_FISH_WHEN.match(line) for line in lines[1:4])


class _History:
    name = ""
    shell = ""
    dataset = DATASET
    locator_unit = "line"

    def _user(self, ctx: ReadContext) -> tuple[str | None, str | None]:
        from_path = user_from_path(ctx.path)
        if from_path:
            return from_path, "file location"
        if ctx.hints.get("user"):
            return ctx.hints["user"], "--user"
        return None, None

    def _event(self, ctx: ReadContext, line: int, raw: bytes, when: bytes, command: bytes) -> dict:
        user, user_source = self._user(ctx)
        raw_text, _ = decode_lenient(raw)
        command_text, escaped = decode_lenient(command)
        if self.shell == "fish":
            command_text = _fish_unescape(command_text)
        labels = {"shell": self.shell, "time_source": "history timestamp (epoch, UTC)"}
        if user_source:
            labels["user_source"] = user_source
        else:
            labels["user_source"] = "unknown (no home folder in the path and no --user given)"
        if escaped:
            labels["encoding"] = NOT_UTF8
        event = unix_event(ctx, DATASET, self.shell, line, raw_text, _epoch(when), labels)
        event["event.id"] = event_id_from_raw(f"{DATASET}\x1f{user or ''}\x1f{raw_text}")
        event["event.action"] = "command"
        event["user.name"] = user
        event["process.command_line"] = command_text
        words = [w for w in split_command(command_text) if not _ASSIGNMENT.match(w)]
        event["process.name"] = program_name(words[0]) if words else None
        return event

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        for entry in self._entries(stream, ctx):
            ctx.records += 1
            if entry[2] is None:
                line, _, _, reason = entry
                ctx.reject(f"line {line}", reason)
                continue
            line, raw, when, command = entry
            yield from batches.add(self._event(ctx, line, raw, when, command))
        yield from batches.flush()

    def _entries(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[HistoryEntry]:
        """(first line, raw entry, epoch, command) per entry; an entry that cannot be read has no epoch
        and the reason it is rejected in place of the command."""
        raise NotImplementedError


# (first line, raw entry, epoch, command), or (first line, raw entry, None, why the entry cannot be read).
HistoryEntry = tuple[int, bytes, bytes, bytes] | tuple[int, bytes, None, str]


def _numbered(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, bytes]]:
    for number, raw in numbered_lines(stream, ctx):
        yield number, raw.rstrip(b"\r\n")


class BashHistory(_History):
    name = "bash_history"
    shell = "bash"

    def sniff(self, head: bytes) -> bool:
        return sniff_bash(head)

    def _entries(self, stream, ctx):
        start, stamp, body = 0, None, []
        for number, raw in _numbered(stream, ctx):
            found = _BASH_STAMP.match(raw)
            if found:
                if body:
                    yield start, b"\n".join([b"#" + stamp, *body]), stamp, b"\n".join(body)
                start, stamp, body = number, found.group(1), []
            elif stamp is None:
                if raw.strip():
                    yield number, raw, None, "command without a timestamp (before the first #EPOCH line)"
            elif len(body) < MAX_COMMAND_LINES:
                body.append(raw)
        if body:
            yield start, b"\n".join([b"#" + stamp, *body]), stamp, b"\n".join(body)


class ZshHistory(_History):
    name = "zsh_history"
    shell = "zsh"

    def sniff(self, head: bytes) -> bool:
        return sniff_zsh(head)

    def _entries(self, stream, ctx):
        pending: list[bytes] = []
        start = 0
        for number, raw in _numbered(stream, ctx):
            raw = _unmetafy(raw)
            if not pending:
                start = number
                if not _ZSH_LINE.match(raw):
                    if raw.strip():
                        yield number, raw, None, "not a zsh extended history line (': EPOCH:DURATION;command')"
                    continue
            pending.append(raw)
            if raw.endswith(b"\\") and len(pending) < MAX_COMMAND_LINES:
                continue
            text = b"\n".join(pending)
            pending = []
            found = _ZSH_LINE.match(text)
            command = re.sub(rb"\\\n", b"\n", found.group(3))
            yield start, text, found.group(1), command
        if pending:
            text = b"\n".join(pending)
            found = _ZSH_LINE.match(text)
            yield start, text, found.group(1), found.group(3)


class FishHistory(_History):
    name = "fish_history"
    shell = "fish"

    def sniff(self, head: bytes) -> bool:
        return sniff_fish(head)

    def _entries(self, stream, ctx):
        start, command, lines = 0, None, []
        for number, raw in _numbered(stream, ctx):
            found = _FISH_CMD.match(raw)
            if found:
                if command is not None:
                    yield start, b"\n".join(lines), None, "fish history entry without 'when:'"
                start, command, lines = number, found.group(1), [raw]
                continue
            if command is None:
                # indented lines (paths:, when:) belong to the entry before; any other line starts none
                if raw.strip() and not raw.startswith((b" ", b"\t")):
                    yield number, raw, None, "not a fish history line (an entry starts with '- cmd:')"
                continue
            lines.append(raw)
            when = _FISH_WHEN.match(raw)
            if when:
                yield start, b"\n".join(lines), when.group(1), command
                command, lines = None, []
        if command is not None:
            yield start, b"\n".join(lines), None, "fish history entry without 'when:' (file cut short?)"


SHELL_HISTORY_SOURCES = (BashHistory(), ZshHistory(), FishHistory())
