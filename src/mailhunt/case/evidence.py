"""``CASE/evidence/``: a forensic copy of every input, and ``manifest.json`` describing each.

Every regular file the hunt's walk reads (``sources.evidence_walk``) is copied
as it came, archives whole, to ``evidence/<name of the path named>/<its path
below it>``, read-only. The copy is hashed while it is written, so the
SHA-256 in the manifest is that of the bytes stored; the loader's digest of the
same file (``InputSummary.sha256``) is compared with it, and a difference (the
file changed between reading and copying) is noted. With ``copy=False`` only
the path and the hash are kept: the loader's digest is reused, and only an
archive (which the loader hashes member by member) is hashed whole here.

Names come from the evidence, so from the adversary. A path is built only
from the names the walk listed (never ``..``, never with a separator), the
root's own name made safe, and every folder on the way is created here and
checked to be a folder, not a link; the file is created exclusively
(``O_EXCL | O_NOFOLLOW``) and never replaces one. Two inputs with the same
path from different roots, or a file whose content changed since an earlier
hunt, go under ``<name>~2``, ``<name>~3`` ... (a file named by itself under
``~2/<name>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from mailhunt import __version__
from mailhunt.case.custody import utc_now
from mailhunt.json_pieces import IndentedJsonList
from mailhunt.sources.evidence_walk import (
    CASE_INCOMING,
    EvidenceWalk,
    WalkedFile,
    display_name,
    read_chunks,
)

EVIDENCE_DIR = "evidence"
MANIFEST = "manifest.json"
# Where the files on their way into the evidence folder are written (a copy, the next manifest): beside it, not
# in it, so that the evidence folder only ever holds finished copies and the manifest, and ``mailhunt verify``
# never sees a file being written (or left by a hunt that was killed) as one added. The same file system as
# the evidence folder (both are in the case folder), so a finished file is linked or renamed into place.
INCOMING_DIR = CASE_INCOMING
MANIFEST_SCHEMA = "mailhunt.evidence/1"
READ_ONLY = 0o444


@dataclass
class PreservedFile:
    original_path: str
    sha256: str
    size: int
    modified: str
    acquired: str
    evidence_path: str | None
    mailhunt_version: str
    command_line: list[str]
    note: str | None = None

    def to_json(self) -> dict:
        return {"original_path": self.original_path, "sha256": self.sha256, "size": self.size,
                "modified": self.modified, "acquired": self.acquired, "evidence_path": self.evidence_path,
                "copied": self.evidence_path is not None, "mailhunt_version": self.mailhunt_version,
                "command_line": self.command_line, "note": self.note}


@dataclass
class Preservation:
    """What one hunt preserved: the files it added to the manifest, and the problems met."""

    copied: bool
    added: list[PreservedFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files_in_manifest: int = 0

    def summary(self) -> dict:
        """The ``evidence_preservation`` key of findings.json."""
        if self.copied:
            statement = (f"{self.files_in_manifest} evidence file(s) copied read-only to {EVIDENCE_DIR}/ with their "
                         f"SHA-256 in {EVIDENCE_DIR}/{MANIFEST} (mailhunt verify checks them)")
        else:
            statement = (f"evidence NOT copied (--no-copy): {EVIDENCE_DIR}/{MANIFEST} keeps only the path and SHA-256 "
                         f"of {self.files_in_manifest} file(s); the originals must be preserved elsewhere")
        if self.problems:
            statement += f"; {len(self.problems)} file(s) NOT preserved, listed under evidence_preservation.problems"
        return {"copied": self.copied, "manifest": f"{EVIDENCE_DIR}/{MANIFEST}", "files": self.files_in_manifest,
                "added_by_this_hunt": len(self.added), "problems": self.problems, "statement": statement}


class NotAFolder(ValueError):
    """A name on the way to a copy is taken by something that is not a folder (a link planted there)."""


class ManifestError(ValueError):
    """The manifest is not one mailhunt wrote (not JSON, or not its shape)."""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_manifest(case_dir: Path) -> dict:
    path = case_dir / EVIDENCE_DIR / MANIFEST
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {"schema": MANIFEST_SCHEMA, "files": []}
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{EVIDENCE_DIR}/{MANIFEST}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), list) or not all(
            isinstance(f, dict) and isinstance(f.get("original_path"), str) and isinstance(f.get("sha256"), str)
            for f in document["files"]):
        raise ManifestError(f"{EVIDENCE_DIR}/{MANIFEST}: not a mailhunt evidence manifest")
    return document


def incoming_folder(case_dir: Path) -> Path:
    """The case's ``INCOMING_DIR``, created if need be; refused if something not a folder (a link) is there."""
    return _own_folder(case_dir / INCOMING_DIR, 0o700)


def clear_incoming(case_dir: Path) -> None:
    """Remove what a hunt that was killed while writing left in ``INCOMING_DIR``."""
    folder = case_dir / INCOMING_DIR
    if not os.path.lexists(folder) or not stat.S_ISDIR(os.lstat(folder).st_mode):
        return
    for entry in os.scandir(folder):
        if not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)


class ManifestWriter:
    """A new manifest, written as it grows: a temporary file (in ``INCOMING_DIR``) takes each entry as it is added,
    and ``finish`` ends the document, flushes it to disk and renames it over the manifest. The bytes are those of
    ``orjson.dumps(manifest, option=OPT_INDENT_2 | OPT_SORT_KEYS)``; ``document`` is the manifest but its files.

    A hunt of 100,000 small files held the entries until the end and dumped them
    whole: 100,000 dicts, then 65 MB of JSON beside them (bench/README.md)."""

    def __init__(self, case_dir: Path, document: dict):
        folder = case_dir / EVIDENCE_DIR
        folder.mkdir(exist_ok=True)
        self._path = folder / MANIFEST
        self._layout = IndentedJsonList({**document, "files": []}, "files", orjson.OPT_SORT_KEYS)
        self._temporary = incoming_folder(case_dir) / f"{MANIFEST}.{secrets.token_hex(4)}.tmp"
        self._stream = open(self._temporary, "xb")  # noqa: SIM115 - open until finish, which closes it
        self._failed = False
        try:
            self._write(self._layout.head)
        except BaseException:
            self.finish()
            raise

    @property
    def files(self) -> int:
        """The entries added so far."""
        return self._layout.members

    def add(self, entry: dict) -> None:
        self._write(self._layout.member(entry))

    def finish(self) -> None:
        """End the manifest and put it in place; after a failed write, only remove the temporary file (the
        manifest before stays)."""
        try:
            if not self._failed:
                self._write(self._layout.end())
                self._stream.flush()
                os.fsync(self._stream.fileno())
                self._stream.close()
                os.replace(self._temporary, self._path)
        finally:
            self._stream.close()
            self._temporary.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
        except BaseException:
            self._failed = True
            raise


def root_label(named: Path) -> str:
    """The folder the files of one named path go under: its own name, never empty, ``.`` or ``..``."""
    name = os.path.basename(os.path.abspath(named))
    return name if name not in ("", ".", "..") else "root"


def _relative_parts(walked: WalkedFile, roots: Sequence[Path]) -> list[str] | None:
    """``[root label, folders..., file name]`` for a walked file, from the named path it was found under."""
    assert walked.path is not None
    for root in roots:
        if walked.path == root:
            return [root_label(root)]
        with contextlib.suppress(ValueError):
            below = walked.path.relative_to(root)
            return [root_label(root), *below.parts]
    return None


def safe_parts(parts: Iterable[str]) -> list[str]:
    """The parts of a path below the evidence folder, refused if any could leave it or name it twice."""
    checked = []
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part or (os.altsep and os.altsep in part):
            raise ValueError(f"unsafe name in an evidence path: {display_name(part)!r}")
        checked.append(part)
    if not checked:
        raise ValueError("empty evidence path")
    return checked


def _own_folder(folder: Path, mode: int) -> Path:
    """``folder``, created with ``mode`` unless a real folder (no link) is there already."""
    try:
        os.mkdir(folder, mode)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise NotAFolder(f"{display_name(folder)} exists and is not a folder (a link?): not used") from None
    return folder


def _make_folders(base: Path, parts: Sequence[str]) -> Path:
    """Create ``base/parts...`` one folder at a time; each must be a real folder (no link) of our own making."""
    folder = base
    for part in parts:
        folder = _own_folder(folder / part, 0o755)
    return folder


class CopyStopped(BaseException):
    """The hunt that is preserving the evidence was stopped (Ctrl-C) while a file was being copied or hashed."""


def _chunks(source, stop: threading.Event | None) -> Iterator[memoryview]:
    """The stream's bytes a chunk at a time (``read_chunks``); raises CopyStopped once ``stop`` is set."""
    for chunk in read_chunks(source):
        if stop is not None and stop.is_set():
            raise CopyStopped
        yield chunk


def _copy_hashing(walked: WalkedFile, folder: Path, name: str, incoming: Path, stop: threading.Event | None = None
                  ) -> tuple[str, int]:
    """Copy the walked file into ``folder/name`` (created, never replaced), hashing the bytes written; it is
    written in ``incoming`` and linked into place once whole. The copy reaches the disk with the others when
    ``preserve_evidence`` syncs them all, before the manifest names it."""
    temporary = incoming / f"copy-{secrets.token_hex(6)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
    digest, size = hashlib.sha256(), 0
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=0) as target, walked.open() as source:
            for chunk in _chunks(source, stop):
                digest.update(chunk)
                target.write(chunk)
                size += len(chunk)
            os.fchmod(target.fileno(), READ_ONLY)
        os.link(temporary, folder / name, follow_symlinks=False)  # fails if the name exists: nothing is replaced
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return digest.hexdigest(), size


def _hash(walked: WalkedFile, stop: threading.Event | None = None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with walked.open() as source:
        for chunk in _chunks(source, stop):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def preserve_evidence(case_dir: Path, paths: Sequence[Path], follow_symlinks: bool, loader_hashes: dict[str, str],
                      copy: bool, command_line: Sequence[str], into: Preservation | None = None,
                      stop: threading.Event | None = None) -> Preservation:
    """Copy (or, with ``copy=False``, list) every file the walk reads into ``case_dir/evidence``, and
    add it to the manifest. ``loader_hashes``: the SHA-256 the loader computed for each file it read
    whole (by its display path). A file already in the manifest with the same path and hash is not
    copied again. What was added is collected in ``into`` as it goes, and the manifest is written
    even when the copying is stopped (Ctrl-C, or ``stop`` set from another thread: CopyStopped), so
    no copy is left out of it.

    The copies are made durable together, by one sync of the file systems before the manifest is
    written: a sync of each file as it was copied waited about 2 ms a file for the disk, which at
    100,000 small files outlasted the whole analysis (bench/README.md)."""
    evidence = case_dir / EVIDENCE_DIR
    evidence.mkdir(exist_ok=True)
    if not stat.S_ISDIR(os.lstat(evidence).st_mode):
        raise ValueError(f"{display_name(evidence)} is not a folder")
    manifest = read_manifest(case_dir)
    files: list[dict] = manifest.pop("files")
    clear_incoming(case_dir)
    incoming = incoming_folder(case_dir)
    # Already preserved: any entry when only listing; for a copy, an entry whose copy is still there
    # (a file listed by an earlier --no-copy hunt is copied now).
    known = {(f["original_path"], f["sha256"]) for f in files
             if not copy or (f.get("evidence_path") and (evidence / f["evidence_path"]).is_file())}
    used = {f["evidence_path"] for f in files if f.get("evidence_path")}
    roots = [Path(p) for p in paths]
    result = into if into is not None else Preservation(copy)
    command = list(command_line)
    copied = False
    writer = ManifestWriter(case_dir, {**manifest, "schema": MANIFEST_SCHEMA})
    try:
        for entry in files:  # the manifest before
            writer.add(entry)
        files.clear()  # written: not held while the evidence is preserved
        for walked in EvidenceWalk(roots, follow_symlinks, case_dirs=[case_dir]):
            if walked.problem is not None or walked.path is None:
                continue
            try:
                preserved = _preserve_one(walked, roots, evidence, incoming, loader_hashes.get(walked.display),
                                          copy, known, used, command, stop)
            except (OSError, ValueError) as exc:
                result.problems.append(f"{walked.display}: not preserved: {exc}")
                continue
            if preserved is not None:
                writer.add(preserved.to_json())
                result.added.append(preserved)
                copied = copied or preserved.evidence_path is not None
    finally:
        try:
            if copied:
                os.sync()
            writer.finish()
            result.files_in_manifest = writer.files
        finally:
            with contextlib.suppress(OSError):  # left when a file in it could not be removed
                os.rmdir(incoming)
    return result


def _preserve_one(walked: WalkedFile, roots: Sequence[Path], evidence: Path, incoming: Path,
                  loader_hash: str | None, copy: bool, known: set, used: set[str], command: list[str],
                  stop: threading.Event | None = None) -> PreservedFile | None:
    st = os.stat(walked.path, follow_symlinks=walked.follow_symlinks)  # type: ignore[arg-type]
    modified = _iso(st.st_mtime)
    if loader_hash is None and any(original == walked.display for original, _ in known):
        loader_hash = _hash(walked, stop)[0]  # an archive seen before: hashed whole to tell whether it changed
    if loader_hash and (walked.display, loader_hash) in known:
        return None
    if not copy:
        sha256, size = (loader_hash, st.st_size) if loader_hash else _hash(walked, stop)
        if (walked.display, sha256) in known:
            return None
        known.add((walked.display, sha256))
        return PreservedFile(walked.display, sha256, size, modified, utc_now(), None, __version__, command)
    parts = _relative_parts(walked, roots)
    if parts is None:
        raise ValueError("not found below any path named")
    parts = safe_parts(parts)
    label, *below = parts
    for attempt in range(1, 10_000):
        if attempt == 1:
            destination = parts
        elif below:  # a file found in a named folder: a second copy of the folder's layout
            destination = [f"{label}~{attempt}", *below]
        else:  # a file named itself: its own name, in a folder of its own
            destination = [f"~{attempt}", label]
        relative = "/".join(display_name(p) for p in destination)
        if relative in used or os.path.lexists(evidence.joinpath(*destination)):
            continue
        try:
            folder = _make_folders(evidence, destination[:-1])
        except NotAFolder:  # something not of our making is in the way: leave it, and take the next name
            continue
        sha256, size = _copy_hashing(walked, folder, destination[-1], incoming, stop=stop)
        break
    else:
        raise ValueError("no free name under the evidence folder")
    used.add(relative)
    note = None
    if loader_hash and loader_hash != sha256:
        note = (f"changed between reading and copying: read with SHA-256 {loader_hash}, copied with {sha256}; "
                "the copy is what is preserved")
    if (walked.display, sha256) in known:  # an archive (hashed here only) already preserved: drop the new copy
        path = evidence / relative
        os.chmod(path, 0o644)
        os.unlink(path)
        used.discard(relative)
        return None
    known.add((walked.display, sha256))
    return PreservedFile(walked.display, sha256, size, modified, utc_now(), relative, __version__, command, note)
