"""Files replaced whole or not at all, and a set of files replaced together.

A hunt's outputs (``findings.json``, ``report.html``, ``report.md``) describe
one state of the case. Writing them in place let a full disk or a file that
cannot be written leave a cut-off report, or reports that disagree with
``findings.json``. ``replace_files`` first writes every new content to a
temporary file beside its target (same folder, so the rename stays on one file
system; a large content may come in pieces, written as they come) and flushes it
to disk; only when all are written does it rename them over the targets (``os.replace``, atomic on POSIX and Windows). If anything
fails before that, every target keeps its old content and the temporary files
are removed.

A target that exists but is not a regular file, or is read-only (no write
permission bit, or not writable by this user), is not replaced: read-only is
how an analyst protects a report, and a rename would silently defeat it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path


class OutputError(OSError):
    """An output that could not be written; ``path`` names it, ``reason`` says why, and ``replaced``
    lists the files of the same set that were replaced all the same (empty unless the folder changed
    under the hunt between the checks and the renames)."""

    def __init__(self, path: Path, reason: str, replaced: list[Path] | None = None):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.replaced = replaced or []


def unreplaceable_reason(path: Path) -> str | None:
    """Why ``path`` must not be replaced, or None when it may (it does not exist, or is a writable file)."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if not stat.S_ISREG(status.st_mode):
        return "exists and is not a regular file"
    if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        return "is read-only"
    return None


# What a file is replaced with: its bytes, or the pieces of them in order (written as they come, so that a large
# output need not be held whole).
Content = bytes | Iterable[bytes | memoryview]


def _write_temporary(target: Path, data: Content) -> tuple[Path, str]:
    """``data`` in a new file beside ``target``, flushed to disk, and the SHA-256 of what was written. The file
    is created with the usual permissions (as ``open`` makes them, under the umask), so the replaced output
    keeps them."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        digest = hashlib.sha256()
        try:
            with os.fdopen(descriptor, "wb") as handle:
                for piece in [data] if isinstance(data, bytes) else data:
                    digest.update(piece)
                    handle.write(piece)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary, digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable; not every platform can open a folder, which is fine."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def replace_files(contents: Mapping[Path, Content]) -> dict[Path, str]:
    """Replace each path with its content: all of them, or (on an OutputError) none of them; return the
    SHA-256 of each file's new content.

    Raises OutputError naming the first file that cannot be replaced or written.
    A rename that fails after others succeeded (the folder changed under the
    hunt) is reported the same way, with the files already replaced."""
    for path in contents:
        reason = unreplaceable_reason(path)
        if reason:
            raise OutputError(path, reason)
    written: dict[Path, Path] = {}
    digests: dict[Path, str] = {}
    try:
        for path, data in contents.items():
            try:
                written[path], digests[path] = _write_temporary(path, data)
            except OSError as exc:
                raise OutputError(path, f"cannot be written ({exc.strerror or exc})") from exc
        replaced: list[Path] = []
        for path, temporary in written.items():
            try:
                os.replace(temporary, path)
            except OSError as exc:
                raise OutputError(path, f"cannot be replaced ({exc.strerror or exc})", replaced) from exc
            replaced.append(path)
    finally:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
    for folder in {path.parent for path in contents}:
        _sync_folder(folder)
    return digests
