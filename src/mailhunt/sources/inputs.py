"""Turn what the analyst names on the command line into evidence files.

Folders are walked recursively in sorted order (deterministic output), ``.gz``
files are decompressed as streams and ``.zip`` archives are opened member by
member. Archives are recognized by their magic bytes, not by their names.
Decompression is bounded so that a zip bomb is reported, not obeyed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mailhunt.sources.evidence_walk import EvidenceWalk

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"

MAX_EXPANDED_BYTES = 8 * 1024**3
MAX_EXPANSION_RATIO = 200
MAX_NESTING = 3


class EvidenceTooLarge(Exception):
    """Raised while reading a compressed member that expands beyond its bounds."""


@dataclass
class EvidenceFile:
    """A readable piece of evidence: a plain file, a gzip stream or a zip member."""

    display: str
    open: Callable[[], BinaryIO]
    size: int | None
    problem: str | None = None
    local_path: str | None = None

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def sha256_in_background(self) -> Future[str]:
        """The SHA-256, computed in a thread of its own (so a reader can go on meanwhile)."""
        digest: Future[str] = Future()

        def compute() -> None:
            try:
                digest.set_result(self.sha256())
            except BaseException as exc:  # handed to whoever waits for the digest
                digest.set_exception(exc)

        threading.Thread(target=compute, name="mailhunt-sha256", daemon=True).start()
        return digest

    def head(self, size: int = 8192) -> bytes:
        with self.open() as stream:
            return stream.read(size)


class BoundedReader(io.RawIOBase):
    """Wraps a decompressing stream and stops it at a byte limit."""

    def __init__(self, inner: BinaryIO, limit: int, what: str):
        self._inner = inner
        self._limit = limit
        self._seen = 0
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        self._seen += len(data)
        if self._seen > self._limit:
            raise EvidenceTooLarge(f"{self._what} expands beyond {self._limit} bytes (possible zip bomb)")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


def _buffered(raw: io.RawIOBase) -> BinaryIO:
    return io.BufferedReader(raw, buffer_size=1 << 20)


def iter_evidence(paths: list[Path], follow_symlinks: bool = False,
                  case_dirs: list[Path] = ()) -> Iterator[EvidenceFile]:
    """Every piece of evidence under ``paths``, and every entry that is not read with why
    (``problem``): see ``evidence_walk`` for what is followed, read and skipped."""
    for walked in EvidenceWalk(paths, follow_symlinks, case_dirs):
        if walked.problem is not None:
            yield EvidenceFile(walked.display, walked.open, walked.size, problem=walked.problem)
        else:
            plain = EvidenceFile(walked.display, walked.open, walked.size, local_path=str(walked.path))
            yield from _expand_file(plain, 0)


def _expand_file(item: EvidenceFile, depth: int) -> Iterator[EvidenceFile]:
    try:
        magic = item.head(4)
    except (OSError, EvidenceTooLarge, zipfile.BadZipFile, EOFError) as exc:
        yield EvidenceFile(item.display, item.open, item.size, problem=f"cannot read: {exc}")
        return
    if depth >= MAX_NESTING and (magic.startswith(GZIP_MAGIC) or magic.startswith(ZIP_MAGIC)):
        yield EvidenceFile(item.display, item.open, item.size, problem="archive nested too deeply")
        return
    if magic.startswith(GZIP_MAGIC):
        yield from _expand_file(_gzip_member(item), depth + 1)
    elif magic.startswith(ZIP_MAGIC) or magic.startswith(EMPTY_ZIP_MAGIC):
        yield from _zip_members(item, depth)
    else:
        yield item


def _gzip_member(item: EvidenceFile) -> EvidenceFile:
    display = item.display[:-3] if item.display.endswith(".gz") else item.display + "!gunzip"
    limit = MAX_EXPANDED_BYTES

    def opener() -> BinaryIO:
        return _buffered(BoundedReader(gzip.GzipFile(fileobj=item.open(), mode="rb"), limit, item.display))

    return EvidenceFile(display, opener, None)


def _zip_members(item: EvidenceFile, depth: int) -> Iterator[EvidenceFile]:
    try:
        with item.open() as handle:
            archive = zipfile.ZipFile(_seekable(handle))
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EvidenceTooLarge) as exc:
        yield EvidenceFile(item.display, item.open, item.size, problem=f"broken zip archive: {exc}")
        return
    for info in sorted(infos, key=lambda i: i.filename):
        display = f"{item.display}!{info.filename}"
        ratio_limit = max(info.compress_size, 1) * MAX_EXPANSION_RATIO
        limit = min(MAX_EXPANDED_BYTES, max(ratio_limit, 16 * 1024**2))
        if info.file_size > limit:
            yield EvidenceFile(display, item.open, info.file_size,
                               problem=f"declares {info.file_size} bytes from {info.compress_size} compressed "
                                       "(possible zip bomb), not expanded")
            continue
        yield from _expand_file(EvidenceFile(display, _zip_opener(item, info.filename, limit, display),
                                             info.file_size), depth + 1)


def _zip_opener(item: EvidenceFile, member: str, limit: int, display: str) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        outer = item.open()
        archive = zipfile.ZipFile(_seekable(outer))
        return _buffered(BoundedReader(archive.open(member), limit, display))

    return opener


def _seekable(handle: BinaryIO) -> BinaryIO:
    if handle.seekable():
        return handle
    return io.BytesIO(handle.read(MAX_EXPANDED_BYTES))
