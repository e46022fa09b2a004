"""Turn what the analyst names on the command line into evidence files.

Folders are walked recursively in sorted order (deterministic output), ``.gz``
files are decompressed as streams and ``.zip`` archives are opened member by
member. Archives are recognized by their magic bytes, not by their names.
Decompression is bounded so that a zip bomb is reported, not obeyed: per
member, and in all for each input (``ExpansionBudget``). A zip that is itself
compressed or a member is spooled once to a temporary file, never held in
memory. A compressed stream that breaks off or fails its check gives what it
holds up to the break, and says where (``EvidenceFile.damage``).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import lzma
import shutil
import tempfile
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from mailhunt.sources.evidence_walk import EvidenceWalk, read_chunks

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"

MAX_EXPANDED_BYTES = 8 * 1024**3
MAX_EXPANSION_RATIO = 200
MAX_NESTING = 3
# What one input (a file named or found on disk) may expand to, all its members
# and nesting levels together: MAX_EXPANSION_RATIO times its size, and never
# less than this, so that a small archive of many small bombs is stopped too.
MIN_TOTAL_EXPANSION_BYTES = 1024**3
# Errors a decompressor raises where its data breaks off or fails its check
# (gzip.BadGzipFile, and bz2's "Invalid data stream", are OSErrors).
STREAM_BREAKS = (EOFError, zlib.error, lzma.LZMAError, OSError, zipfile.BadZipFile)
# What opening or listing an archive may raise on hostile or damaged data
# besides a break: zipfile refuses encrypted members (RuntimeError) and unknown
# compression methods (NotImplementedError), and impossible offsets (ValueError).
UNREADABLE = (ValueError, RuntimeError, NotImplementedError, *STREAM_BREAKS)
# A decompressor that meets corrupt data gives nothing of the step it failed in;
# steps this small bound what is lost with the damage.
BREAK_PIECE_BYTES = 16 * 1024


class EvidenceTooLarge(Exception):
    """Raised while reading a compressed member that expands beyond its bounds."""


@dataclass(frozen=True)
class StreamBreak:
    """Where a compressed stream stopped being readable; ``cut_short``: its data ends there (else all of it
    was read, but it fails its check)."""

    reason: str
    cut_short: bool


class DamageLog:
    """What went wrong in a compressed stream, whichever of its opens met it, and in the streams it came from."""

    def __init__(self, parent: DamageLog | None = None):
        self.parent = parent
        self.found: StreamBreak | None = None

    def record(self, damage: StreamBreak) -> None:
        if self.found is None:
            self.found = damage

    def breaks(self) -> list[StreamBreak]:
        outer = self.parent.breaks() if self.parent else []
        return [*outer, self.found] if self.found else outer

    def cut_short(self) -> str | None:
        """Why the stream ends before its data does, or None when it does not (or not known to)."""
        return next((b.reason for b in reversed(self.breaks()) if b.cut_short), None)

    def notes(self) -> list[str]:
        return [b.reason for b in self.breaks()]


@dataclass
class EvidenceFile:
    """A readable piece of evidence: a plain file, a gzip stream or a zip member.

    ``damage`` says where a compressed stream broke off or failed its check
    once it has been read that far: the stream then ends where its readable
    data does, and the records before the break are kept.
    """

    display: str
    open: Callable[[], BinaryIO]
    size: int | None
    problem: str | None = None
    local_path: str | None = None
    damage: DamageLog = field(default_factory=DamageLog)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as stream:
            for chunk in read_chunks(stream, HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def sha256_in_background(self) -> Future[str]:
        """The SHA-256, computed in a thread of its own (so a reader can go on meanwhile)."""
        digest: Future[str] = Future()

        def compute() -> None:
            try:
                digest.set_result(self.sha256())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the digest
                digest.set_exception(exc)

        threading.Thread(target=compute, name="mailhunt-sha256", daemon=True).start()
        return digest

    def head(self, size: int = 8192) -> bytes:
        with self.open() as stream:
            return stream.read(size)


# Bytes a chunk when an input is hashed. The input may be a decompressing stream or a zip member, which
# reads each chunk into a bytes object of its own before copying it into the caller's buffer, so a chunk's
# size is held twice: 1 MiB keeps that small (the whole-file copies of ``case.evidence`` read 8 MiB).
HASH_CHUNK = 1 << 20


class ExpansionBudget:
    """The decompressed bytes one input may produce, shared by all its members and nesting levels."""

    def __init__(self, display: str, size: int | None):
        self.display = display
        self.limit = max((size or 0) * MAX_EXPANSION_RATIO, MIN_TOTAL_EXPANSION_BYTES)
        self.used = 0
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def reason(self) -> str:
        return (f"total expansion cap reached: {self.display} may expand to {self.limit} bytes, all its archive "
                f"members and nesting levels together ({MAX_EXPANSION_RATIO} times its size, at least "
                f"{MIN_TOTAL_EXPANSION_BYTES}) (possible zip bomb)")

    def charge(self, nbytes: int) -> None:
        with self._lock:
            self.used += nbytes
            if self.used > self.limit:
                raise EvidenceTooLarge(self.reason())


class MemberExpansion:
    """One member's share of its input's budget: reading it again (to sniff, hash and parse it) costs nothing more."""

    def __init__(self, budget: ExpansionBudget):
        self.budget = budget
        self.high_water = 0
        self._lock = threading.Lock()

    def reached(self, position: int) -> None:
        with self._lock:
            if position > self.high_water:
                self.budget.charge(position - self.high_water)
                self.high_water = position


class BoundedReader(io.RawIOBase):
    """Wraps a decompressing stream and stops it at a byte limit and at its input's total expansion budget."""

    def __init__(self, inner: io.RawIOBase, limit: int, what: str, expansion: MemberExpansion | None = None):
        self._inner = inner
        self._limit = limit
        self._seen = 0
        self._what = what
        self._expansion = expansion

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer)) or b""
        self._seen += len(data)
        if self._seen > self._limit:
            raise EvidenceTooLarge(f"{self._what} expands beyond {self._limit} bytes (possible zip bomb)")
        if self._expansion is not None:
            self._expansion.reached(self._seen)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class ReadableUntilBreak(io.RawIOBase):
    """A decompressor read until its data breaks off, then ended like a shorter stream.

    The break (data cut short, a corrupt block, a failed CRC or length check)
    goes to ``damage`` with the number of bytes delivered before it. A stream
    that breaks before its first byte is unreadable: the error is raised.
    ``crc``/``size``, when given, are checked here instead of by the
    decompressor, which would drop the last block it read with its complaint.
    ``resources`` are closed with the stream; ``owner``, what it reads from, is
    kept open as long as the stream is.
    """

    def __init__(self, inner: io.BufferedIOBase, damage: DamageLog, what: str, crc: int | None = None,
                 size: int | None = None, resources: tuple = (), owner: object = None):
        self._inner = inner
        self._damage = damage
        self._what = what
        self._crc_expected = crc
        self._size_expected = size
        self._crc = 0
        self._delivered = 0
        self._ended = False
        self._resources = resources
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._ended:
            return 0
        try:
            data = self._inner.read1(min(len(buffer), BREAK_PIECE_BYTES))
        except STREAM_BREAKS as exc:
            if not self._delivered:
                raise
            self._end(self._describe(exc))
            return 0
        if not data:
            self._end(self._check())
            return 0
        self._delivered += len(data)
        if self._crc_expected is not None:
            self._crc = zlib.crc32(data, self._crc)
        buffer[: len(data)] = data
        return len(data)

    def _end(self, damage: StreamBreak | None) -> None:
        self._ended = True
        if damage is not None:
            self._damage.record(damage)

    def _describe(self, exc: Exception) -> StreamBreak:
        delivered = self._delivered
        if isinstance(exc, EOFError):
            return StreamBreak(f"truncated {self._what}: {delivered} bytes decompressed before the end", True)
        if isinstance(exc, (gzip.BadGzipFile, zipfile.BadZipFile)):
            return StreamBreak(f"{self._what} fails its check after {delivered} bytes ({exc}); the content may be "
                               "damaged", False)
        return StreamBreak(f"corrupt {self._what}: {delivered} bytes decompressed before the damage ({exc})", True)

    def _check(self) -> StreamBreak | None:
        delivered = self._delivered
        if self._size_expected is not None and delivered < self._size_expected:
            return StreamBreak(f"truncated {self._what}: {delivered} of its {self._size_expected} bytes "
                               "decompressed before the end", True)
        if self._crc_expected is not None and self._crc != self._crc_expected:
            return StreamBreak(f"{self._what} fails its CRC-32 check (all {delivered} bytes read); the content "
                               "may be damaged", False)
        return None

    def close(self) -> None:
        try:
            self._inner.close()
            for resource in self._resources:
                resource.close()
        finally:
            self._owner = None
            super().close()


def _buffered(raw: io.RawIOBase) -> BinaryIO:
    return io.BufferedReader(raw, buffer_size=1 << 20)


def iter_evidence(paths: list[Path], follow_symlinks: bool = False,
                  case_dirs: Sequence[Path] = ()) -> Iterator[EvidenceFile]:
    """Every piece of evidence under ``paths``, and every entry that is not read with why
    (``problem``): see ``evidence_walk`` for what is followed, read and skipped."""
    for walked in EvidenceWalk(paths, follow_symlinks, case_dirs):
        if walked.problem is not None:
            yield EvidenceFile(walked.display, walked.open, walked.size, problem=walked.problem)
        else:
            plain = EvidenceFile(walked.display, walked.open, walked.size, local_path=str(walked.path))
            yield from _expand_file(plain, 0)


def _expand_file(item: EvidenceFile, depth: int, budget: ExpansionBudget | None = None) -> Iterator[EvidenceFile]:
    """The evidence in ``item``: itself, or what its archive layers hold. ``budget`` is its input's, made here
    for an input on disk."""
    if budget is None:
        budget = ExpansionBudget(item.display, item.size)
    try:
        magic = item.head(4)
    except (EvidenceTooLarge, *UNREADABLE) as exc:
        yield EvidenceFile(item.display, item.open, item.size, problem=f"cannot read: {exc}")
        return
    if depth >= MAX_NESTING and magic.startswith((GZIP_MAGIC, ZIP_MAGIC)):
        yield EvidenceFile(item.display, item.open, item.size, problem="archive nested too deeply")
        return
    if magic.startswith(GZIP_MAGIC):
        yield from _expand_file(_gzip_member(item, budget), depth + 1, budget)
    elif magic.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        yield from _zip_members(item, depth, budget)
    else:
        yield item


def _gzip_member(item: EvidenceFile, budget: ExpansionBudget) -> EvidenceFile:
    display = item.display[:-3] if item.display.endswith(".gz") else item.display + "!gunzip"
    limit = MAX_EXPANDED_BYTES
    expansion = MemberExpansion(budget)
    damage = DamageLog(parent=item.damage)

    def opener() -> BinaryIO:
        compressed = item.open()
        stream = ReadableUntilBreak(gzip.GzipFile(fileobj=compressed, mode="rb"), damage, "gzip stream",
                                    resources=(compressed,))
        return _buffered(BoundedReader(stream, limit, item.display, expansion))

    return EvidenceFile(display, opener, None, damage=damage)


def _zip_members(item: EvidenceFile, depth: int, budget: ExpansionBudget) -> Iterator[EvidenceFile]:
    try:
        archive = ZipArchive(item)
    except UNREADABLE as exc:
        reasons = [f"broken zip archive: {exc}", *item.damage.notes()]
        yield EvidenceFile(item.display, item.open, item.size, problem="; ".join(reasons))
        return
    except EvidenceTooLarge as exc:
        yield EvidenceFile(item.display, item.open, item.size, problem=f"not expanded: {exc}")
        return
    for info in archive.members():
        display = f"{item.display}!{info.filename}"
        if budget.exhausted:
            yield EvidenceFile(display, item.open, info.file_size, problem=f"not expanded: {budget.reason()}")
            continue
        ratio_limit = max(info.compress_size, 1) * MAX_EXPANSION_RATIO
        limit = min(MAX_EXPANDED_BYTES, max(ratio_limit, 16 * 1024**2))
        if info.file_size > limit:
            yield EvidenceFile(display, item.open, info.file_size,
                               problem=f"declares {info.file_size} bytes from {info.compress_size} compressed "
                                       "(possible zip bomb), not expanded")
            continue
        damage = DamageLog(parent=item.damage)
        opener = _zip_opener(archive, info, limit, display, MemberExpansion(budget), damage)
        yield from _expand_file(EvidenceFile(display, opener, info.file_size, damage=damage), depth + 1, budget)


def _zip_opener(archive: ZipArchive, info: zipfile.ZipInfo, limit: int, display: str,
                expansion: MemberExpansion, damage: DamageLog) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        stream = ReadableUntilBreak(archive.open(info), damage, "zip member", crc=info.CRC, size=info.file_size,
                                    owner=archive)
        return _buffered(BoundedReader(stream, limit, display, expansion))

    return opener


class ZipArchive:
    """A zip archive opened once for all its members: the file itself when it is one on disk, else a copy
    of its stream spooled to a temporary file (zipfile needs to seek), bounded by the expansion limits.

    The copy has no name (it goes with its handle, even if the hunt is killed;
    on Windows it is deleted on close); it is closed when nothing reads the
    archive any more (its members are gone).
    """

    def __init__(self, item: EvidenceFile):
        # open for as long as the members are read; closed by the finalizer below
        handle = open(item.local_path, "rb") if item.local_path is not None else _spool(item)  # noqa: SIM115
        try:
            self._zip = zipfile.ZipFile(handle)
        except BaseException:
            handle.close()
            raise
        weakref.finalize(self, _release, self._zip, handle)

    def members(self) -> list[zipfile.ZipInfo]:
        return sorted((i for i in self._zip.infolist() if not i.is_dir()), key=lambda i: i.filename)

    def open(self, info: zipfile.ZipInfo) -> zipfile.ZipExtFile:
        """The member's data; its CRC is left to the caller, who can then keep the data of a member that fails it
        (zipfile checks the CRC only when the ZipInfo has one, and would drop the last block it read)."""
        unchecked = copy.copy(info)
        del unchecked.CRC
        return cast(zipfile.ZipExtFile, self._zip.open(unchecked))


def _spool(item: EvidenceFile) -> IO[bytes]:
    spool = tempfile.TemporaryFile(prefix="mailhunt-archive-")  # noqa: SIM115 (the archive's handle from now on)
    try:
        with item.open() as source:
            shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _release(archive: zipfile.ZipFile, handle: IO[bytes]) -> None:
    archive.close()
    handle.close()
