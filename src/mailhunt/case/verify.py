"""``mailhunt verify CASE``: the preserved evidence against its manifest, and the custody chain.

Every file under ``CASE/evidence`` is hashed again and compared with
``manifest.json``: a file whose hash or size differs is modified, one the
manifest lists but the folder lacks is missing, one the folder holds but the
manifest does not list is added. The custody chain is checked line by line
(``custody.verify_chain``), and the manifest against it: each preserved file
must be recorded by the custody entry of the hunt that added it, so a manifest
rewritten to match a changed file is caught too. For files kept with
``--no-copy`` there is nothing to hash: that is said, not counted as intact.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from mailhunt.case.custody import CUSTODY_FILE, verify_chain
from mailhunt.case.evidence import EVIDENCE_DIR, MANIFEST, read_manifest
from mailhunt.sources.evidence_walk import display_name, read_chunks


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_checked: int = 0
    entries_checked: int = 0
    head: str | None = None

    @property
    def intact(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        for chunk in read_chunks(stream):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _files_on_disk(evidence: Path) -> dict[str, Path]:
    """Every entry below the evidence folder but the manifest, by its path relative to it (as shown)."""
    found: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(evidence):
        for name in names + [d for d in subfolders if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            relative = "/".join(display_name(p) for p in path.relative_to(evidence).parts)
            if relative != MANIFEST:
                found[relative] = path
    return found


def verify_case(case_dir: Path) -> Verification:
    result = Verification()
    evidence = case_dir / EVIDENCE_DIR
    try:
        manifest = read_manifest(case_dir)
    except (ValueError, OSError) as exc:
        result.problems.append(str(exc))
        manifest = {"files": []}
    if not (evidence / MANIFEST).exists():
        result.problems.append(f"{EVIDENCE_DIR}/{MANIFEST}: missing")
    entries = [f for f in manifest["files"] if isinstance(f, dict)]
    on_disk = _files_on_disk(evidence) if evidence.is_dir() else {}
    listed = set()
    not_copied = 0
    for entry in entries:
        relative = entry.get("evidence_path")
        if not relative:
            not_copied += 1
            continue
        listed.add(relative)
        shown = f"{EVIDENCE_DIR}/{relative}"
        path = on_disk.get(relative)
        if path is None:
            result.problems.append(f"{shown}: missing (the manifest lists it, SHA-256 {entry.get('sha256')})")
            continue
        if path.is_symlink() or not path.is_file():
            result.problems.append(f"{shown}: modified (no longer a regular file)")
            continue
        sha256, size = _sha256(path)
        result.files_checked += 1
        if sha256 != entry.get("sha256") or size != entry.get("size"):
            result.problems.append(f"{shown}: modified (SHA-256 {sha256}, {size} bytes; the manifest has "
                                   f"{entry.get('sha256')}, {entry.get('size')} bytes)")
    for relative in sorted(set(on_disk) - listed):
        result.problems.append(f"{EVIDENCE_DIR}/{relative}: added (not in the manifest)")
    if not_copied:
        result.notes.append(f"{not_copied} input(s) were hunted with --no-copy: only their path and SHA-256 are "
                            "kept, so their content cannot be checked here (compare the originals' SHA-256 "
                            f"with {EVIDENCE_DIR}/{MANIFEST})")

    chain = verify_chain(case_dir)
    result.problems.extend(chain.problems)
    result.entries_checked = len(chain.entries)
    result.head = chain.head
    recorded = {}
    for custody in chain.entries:
        for added in custody.entry.get("added") or []:
            if isinstance(added, dict):
                recorded[(added.get("original_path"), added.get("sha256"), added.get("evidence_path"))] = custody.line
    manifest_keys = {(f.get("original_path"), f.get("sha256"), f.get("evidence_path")) for f in entries}
    for key in sorted(manifest_keys - set(recorded), key=str):
        result.problems.append(f"{EVIDENCE_DIR}/{MANIFEST}: lists {key[2] or key[0]} (SHA-256 {key[1]}), which no "
                               f"{CUSTODY_FILE} entry records (the manifest was edited, or custody entries removed)")
    for key in sorted(set(recorded) - manifest_keys, key=str):
        result.problems.append(f"{CUSTODY_FILE} line {recorded[key]}: records {key[2] or key[0]} (SHA-256 {key[1]}), "
                               f"which {EVIDENCE_DIR}/{MANIFEST} no longer lists (the manifest was edited)")
    return result
