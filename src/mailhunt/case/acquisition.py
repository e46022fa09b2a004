"""The case stage of a hunt: preserve the evidence just read and record the hunt in the custody log."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mailhunt.case import custody
from mailhunt.case.evidence import Preservation, preserve_evidence


def acquire(case_dir: Path, paths: Sequence[Path], follow_symlinks: bool, loader_hashes: dict[str, str],
            copy: bool, command_line: Sequence[str] | None, inputs: int, new_events: int) -> Preservation:
    """Copy (or list, ``copy=False``) the inputs into ``case_dir/evidence``, then append a ``hunt`` (or
    ``re-hunt``) entry to ``custody.jsonl`` naming each file it added by SHA-256."""
    command = list(sys.argv if command_line is None else command_line)
    action = "re-hunt" if (case_dir / custody.CUSTODY_FILE).exists() else "hunt"
    preservation = Preservation(copy)
    details = {"paths": [str(p) for p in paths], "copied": copy, "inputs": inputs, "new_events": new_events,
               "problems": preservation.problems}
    try:
        preserve_evidence(case_dir, paths, follow_symlinks, loader_hashes, copy, command, into=preservation)
    except (OSError, ValueError) as exc:  # the case folder itself is unusable for copies (full disk, a file in the way)
        preservation.problems.append(f"evidence not preserved: {exc}")
    except BaseException:  # Ctrl-C: the copies made so far are in the manifest, so they go in the custody log too
        custody.record(case_dir, f"{action} (interrupted)", details, _added(preservation), command)
        raise
    custody.record(case_dir, action, details, _added(preservation), command)
    return preservation


def _added(preservation: Preservation) -> list[dict]:
    return [{"sha256": f.sha256, "original_path": f.original_path, "evidence_path": f.evidence_path}
            for f in preservation.added]
