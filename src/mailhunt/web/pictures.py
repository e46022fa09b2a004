"""The timeline pictures, as SVG geometry computed here: only numbers and text (escaped by the template) reach the page.

- ``case_lanes``: the timeline page; one lane per source (event dataset) over
  the range shown, each slice a bar as dark as it is busy, linking to that
  slice (zoom), and a lane of findings on top linking to each finding.
- ``finding_window``: the finding page; the events of its people within
  ±24 h of it, one lane per source, the finding's own span shaded and its
  evidence events marked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from mailhunt.case_browse import EventRow, FindingMark, Lanes
from mailhunt.events import iso_z
from mailhunt.report.html import MAX_TICKS, SEVERITY_COLOURS
from mailhunt.report.time_axis import axis_ticks

WIDTH = 1100
LABEL_WIDTH = 230
RIGHT = 15
TOP = 8
LANE = 26
AXIS = 34


@dataclass(frozen=True)
class Scale:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0)

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.seconds
        return LABEL_WIDTH + max(0.0, min(1.0, offset)) * (WIDTH - LABEL_WIDTH - RIGHT)

    def ticks(self) -> list[dict]:
        return axis_ticks(self.start, self.end, MAX_TICKS, self.x)


def _label(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def case_lanes(lanes: Lanes, marks: list[FindingMark]) -> dict:
    scale = Scale(lanes.start, lanes.end)
    buckets = len(lanes.lanes[0].counts) if lanes.lanes else 0
    slot = (WIDTH - LABEL_WIDTH - RIGHT) / buckets if buckets else 0
    rows = []
    y = TOP
    finding_bars = []
    for mark in marks:
        left, right = scale.x(mark.first_seen), scale.x(mark.last_seen)
        finding_bars.append({"id": mark.id, "x": f"{left:.1f}", "width": f"{max(right - left, 4):.1f}",
                             "colour": SEVERITY_COLOURS.get(mark.severity or "", SEVERITY_COLOURS["unknown"]),
                             "title": f"{mark.indicator} [{mark.severity}{', escalated' if mark.escalate else ''}] "
                                      f"{iso_z(mark.first_seen)} .. {iso_z(mark.last_seen)}"})
    findings_row = {"y": y, "label": "findings", "bars": finding_bars}
    y += LANE
    busiest = max((max(lane.counts) for lane in lanes.lanes), default=1) or 1
    for lane in lanes.lanes:
        bars = []
        for index, count in enumerate(lane.counts):
            if not count:
                continue
            since = lanes.start + lanes.bucket * index
            until = since + lanes.bucket
            shade = 0.25 + 0.75 * math.log1p(count) / math.log1p(busiest)
            bars.append({"x": f"{LABEL_WIDTH + index * slot:.1f}", "width": f"{max(slot - 0.5, 1):.1f}",
                         "opacity": f"{shade:.2f}", "since": iso_z(since), "until": iso_z(until),
                         "title": f"{count} event(s) of {lane.name} {iso_z(since)} .. {iso_z(until)}"})
        rows.append({"y": y, "label": _label(lane.name), "full": f"{lane.name} ({lane.total} events)",
                     "bars": bars})
        y += LANE
    return {"width": WIDTH, "height": y + AXIS, "axis_y": y, "findings": findings_row, "rows": rows,
            "ticks": scale.ticks(), "x0": LABEL_WIDTH, "x1": WIDTH - RIGHT}


def finding_window(events: list[EventRow], start: datetime, end: datetime, first: datetime, last: datetime,
                   evidence_ids: set[str]) -> dict:
    scale = Scale(start, end)
    by_source: dict[str, list[EventRow]] = {}
    for event in events:
        by_source.setdefault(event.dataset or "(unknown)", []).append(event)
    rows = []
    y = TOP
    for name in sorted(by_source):
        # events that fall on the same pixel of a lane are one dot (the first links; the tooltip counts them),
        # so a busy day costs at most one dot per pixel, not one per event
        dots: dict[tuple[int, bool], dict] = {}
        for e in by_source[name]:
            key = (round(scale.x(e.timestamp)), e.id in evidence_ids)
            if key in dots:
                dots[key]["more"] += 1
                continue
            dots[key] = {"id": e.id, "at": iso_z(e.timestamp), "x": f"{scale.x(e.timestamp):.1f}",
                         "evidence": key[1], "more": 0,
                         "title": f"{iso_z(e.timestamp)} {e.action or 'event'} by {e.actor or '?'}"
                                  + (f" on {e.target}" if e.target and e.target != e.actor else "")}
        points = [{**dot, "title": dot["title"] + (f" (and {dot['more']} more here)" if dot["more"] else "")}
                  for dot in dots.values()]
        rows.append({"y": y, "label": _label(name), "full": name, "points": points})
        y += LANE
    left, right = scale.x(first), scale.x(last)
    return {"width": WIDTH, "height": y + AXIS, "axis_y": y, "rows": rows, "ticks": scale.ticks(),
            "x0": LABEL_WIDTH, "x1": WIDTH - RIGHT, "span_x": f"{left:.1f}", "span_width": f"{max(right - left, 3):.1f}",
            "top": TOP, "span_height": max(y - TOP, LANE)}
