"""The case stage of a hunt: preserve the evidence just read and record the hunt in the custody log."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from mailhunt.case import custody
from mailhunt.case.evidence import Preservation, preserve_evidence


class AcquisitionInBackground:
    """``acquire`` in a thread of its own, so that the analysis runs while the evidence is copied.

    Copying a large export is mostly disk work (reading, writing, syncing) and
    the analysis is mostly CPU, so the copy's wall time is hidden behind it.
    ``result`` waits for the copy; ``stop`` (on Ctrl-C) ends it at the next
    chunk, with the custody entry of an interrupted hunt, and waits for that."""

    def __init__(self, case_dir: Path, paths: Sequence[Path], follow_symlinks: bool, loader_hashes: dict[str, str],
                 copy: bool, command_line: Sequence[str] | None, inputs: int, new_events: int):
        self._stop = threading.Event()
        self._done: Future[Preservation] = Future()
        arguments = (case_dir, paths, follow_symlinks, loader_hashes, copy, command_line, inputs, new_events)

        def run() -> None:
            try:
                self._done.set_result(acquire(*arguments, stop=self._stop))
            except BaseException as exc:  # noqa: BLE001 - raised again by result()
                self._done.set_exception(exc)

        self._thread = threading.Thread(target=run, name="mailhunt-acquire")
        self._thread.start()

    def result(self) -> Preservation:
        """What was preserved, once the copying is done; raises what stopped it."""
        self._thread.join()
        return self._done.result()

    def stop(self) -> None:
        """Stop copying at the next chunk and wait until the custody log says so."""
        self._stop.set()
        self._thread.join()


def acquire(case_dir: Path, paths: Sequence[Path], follow_symlinks: bool, loader_hashes: dict[str, str],
            copy: bool, command_line: Sequence[str] | None, inputs: int, new_events: int,
            stop: threading.Event | None = None) -> Preservation:
    """Copy (or list, ``copy=False``) the inputs into ``case_dir/evidence``, then append a ``hunt`` (or
    ``re-hunt``) entry to ``custody.jsonl`` naming each file it added by SHA-256. ``stop`` set from
    another thread stops the copying as Ctrl-C does."""
    command = list(sys.argv if command_line is None else command_line)
    action = "re-hunt" if (case_dir / custody.CUSTODY_FILE).exists() else "hunt"
    preservation = Preservation(copy)
    details = {"paths": [str(p) for p in paths], "copied": copy, "inputs": inputs, "new_events": new_events,
               "problems": preservation.problems}
    try:
        preserve_evidence(case_dir, paths, follow_symlinks, loader_hashes, copy, command, into=preservation,
                          stop=stop)
    except (OSError, ValueError) as exc:  # the case folder itself is unusable for copies (full disk, a file in the way)
        preservation.problems.append(f"evidence not preserved: {exc}")
    except BaseException:  # Ctrl-C (or stop): the copies made so far are in the manifest, so they go in the custody log too
        custody.record(case_dir, f"{action} (interrupted)", details, _added(preservation), command)
        raise
    custody.record(case_dir, action, details, _added(preservation), command)
    return preservation


def _added(preservation: Preservation) -> list[dict]:
    return [{"sha256": f.sha256, "original_path": f.original_path, "evidence_path": f.evidence_path}
            for f in preservation.added]
