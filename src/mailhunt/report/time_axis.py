"""The time axis of every timeline picture (report and web): where its ticks fall and how they read.

Pictures work in naive datetimes that are UTC (``EPOCH`` is the Unix epoch);
a tick falls on a whole multiple of the step, so two pictures of the same
period show the same ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

TICK_STEPS = (
    60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400, 365 * 86400,
)
EPOCH = datetime(1970, 1, 1)


def tick_label(moment: datetime, step: int) -> str:
    """A day when the ticks are days apart, else month-day and time (month-day alone at midnight)."""
    if step >= 86400:
        return moment.strftime("%Y-%m-%d")
    if moment.hour == 0 and moment.minute == 0:
        return moment.strftime("%m-%d")
    return moment.strftime("%m-%d %H:%M")


def axis_ticks(start: datetime, end: datetime, max_ticks: int, x_of: Callable[[datetime], float]) -> list[dict]:
    """The ticks from ``start`` to ``end``, at most about ``max_ticks``: ``{"x", "label"}`` each, x placed by
    ``x_of`` and written with one decimal."""
    seconds = max((end - start).total_seconds(), 1.0)
    step = next((s for s in TICK_STEPS if seconds / s <= max_ticks), TICK_STEPS[-1])
    tick = int(-(-(start - EPOCH).total_seconds() // step) * step)
    ticks = []
    while tick <= (end - EPOCH).total_seconds():
        moment = EPOCH + timedelta(seconds=tick)
        ticks.append({"x": f"{x_of(moment):.1f}", "label": tick_label(moment, step)})
        tick += step
    return ticks
