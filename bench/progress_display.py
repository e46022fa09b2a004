"""Per-file cost of the CLI's progress display alone, in a (simulated) terminal, as files add up.

    python bench/progress_display.py

Prints seconds per 1,000 files (a 2 ms sleep a file stands for its reading, so 2 s is the floor);
a steady display keeps every thousand at the same cost."""
import io
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from mailhunt.cli import AmountColumn, RichProgress
from mailhunt.hunt import InputSummary

console = Console(file=io.StringIO(), force_terminal=True, width=120, height=50)
with Progress(TextColumn("{task.description}"), BarColumn(), AmountColumn(), TimeElapsedColumn(),
              console=console, transient=False) as progress:
    sink = RichProgress(progress)
    began = time.perf_counter()
    for n in range(1, 2001):
        sink.start(f"evidence/audit-{n:06d}.ndjson", 24000)
        for _ in range(4):
            sink.advance(6000)
        time.sleep(0.002)  # the file's reading, during which the display refreshes
        sink.finish(InputSummary(f"audit-{n}", None, "x"))
        if n % 1000 == 0:
            now = time.perf_counter()
            print(f"files {n-999}-{n}: {(now - began):.2f} s per 1000 files", file=sys.__stderr__, flush=True)
            began = now
