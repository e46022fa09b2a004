"""Peak memory and CPU time of a process with all its descendants, read from Linux's /proc.

``os.wait4`` reports the child alone (and the grandchildren it waited for);
Spark's JVM is a grandchild that the Python driver does not wait for, so a
bench of ``--engine spark`` samples the whole tree instead: every
``interval`` seconds the resident set of each process in the tree is summed
(the peak of those sums is the tree's peak RSS, up to the sampling interval),
and each process's last seen user+system CPU time is summed at the end.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of ``pid``, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree(root: int) -> dict[int, float]:
    """pid -> CPU seconds of ``root`` and every live descendant."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                stats[int(entry)] = found
    members = {root} if root in stats else set()
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    return {pid: stats[pid][1] for pid in members}


class TreeSampler:
    """Samples the tree under ``root`` in a thread until ``stop``; ``peak_rss_mb`` and ``cpu_s`` then hold."""

    def __init__(self, root: int, interval: float = 0.5):
        self.root, self.interval = root, interval
        self.peak_rss_mb = 0.0
        self._cpu: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.is_set():
            members = tree(self.root)
            self._cpu.update(members)
            rss = sum(_rss(pid) for pid in members) / (1024 * 1024)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def cpu_s(self, waited_cpu_s: float) -> float:
        """The tree's CPU seconds: the larger of ``waited_cpu_s`` (the root's, from wait4, with the children it
        waited for) and the sum of every process's own last sampled time (which counts the children it did
        not wait for, but may miss each one's last interval)."""
        return max(waited_cpu_s, sum(self._cpu.values()))
