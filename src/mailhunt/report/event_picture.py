"""The timeline picture per event: one lane per source, one mark per event of the findings.

An event is an evidence entry of a finding (``evidence[]`` in findings.json),
counted once however many findings list it; it is *escalated* when one of
those findings is escalated to Tier 2. Escalated events are filled diamonds,
the others hollow circles, so the difference does not rest on colour. Lanes
are the source files when the case has few of them, else the formats
(``inputs[].format``), so many files of one kind stay one lane.

Only numbers and text reach the template, which escapes the text; nothing
here is markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailhunt.events import utc_from_document
from mailhunt.report.summary import fmt_doc_time, fmt_time, text
from mailhunt.report.time_axis import axis_ticks

WIDTH = 960
LABEL_WIDTH = 210
RIGHT_MARGIN = 16
TOP = 24
SUB_ROWS = 3
SUB_ROW_HEIGHT = 11
LANE_PADDING = 6
MARK_SIZE = 5.0
MARK_GAP = 2.0
AXIS_HEIGHT = 40
MAX_LABEL_CHARS = 30
MAX_FILE_LANES = 8
MAX_MARKS = 1500
MAX_TICKS = 8


@dataclass(frozen=True)
class PlottedEvent:
    event_id: str
    time: datetime
    source: str
    locator: str
    action: str
    actor: str
    target: str
    source_ip: str
    where: str
    user_agent: str
    app_id: str
    escalated: bool
    findings: tuple[int, ...]     # 1-based numbers of the findings listing it
    anchor: str                   # the first of them, to link to


@dataclass(frozen=True)
class EventMark:
    event_id: str
    anchor: str
    x: str
    y: str
    points: str          # the diamond's corners, for an escalated event
    escalated: bool
    tooltip: str


def collect_events(findings: list[dict], positions: list[int], anchor_of, places: dict[str, str]) -> list[PlottedEvent]:
    """The distinct events of the findings at ``positions``, in time order (then by event id)."""
    found: dict[str, dict] = {}
    for p in positions:
        finding = findings[p]
        for entry in finding.get("evidence") or []:
            if not isinstance(entry, dict):
                continue
            moment = utc_from_document(entry.get("@timestamp"))
            if moment is None:
                continue
            key = text(entry.get("event_id")) or f"{text(entry.get('source'))}:{text(entry.get('locator'))}"
            seen = found.get(key)
            if seen is None:
                seen = found[key] = {"entry": entry, "time": moment, "finding": finding, "positions": [],
                                     "escalated": False, "actor": text(finding.get("actor"))}
            if p not in seen["positions"]:
                seen["positions"].append(p)
            seen["escalated"] = seen["escalated"] or finding.get("escalate") is True
    events = []
    for key, seen in found.items():
        entry, first = seen["entry"], min(seen["positions"])
        ip = text(entry.get("source_ip"))
        events.append(PlottedEvent(
            event_id=key, time=seen["time"], source=text(entry.get("source")), locator=text(entry.get("locator")),
            action=text(entry.get("action")), actor=text(entry.get("logged_actor")) or seen["actor"],
            target=text(entry.get("target")), source_ip=ip, where=places.get(ip, ""),
            user_agent=text(entry.get("user_agent")), app_id=text(entry.get("app_id")), escalated=seen["escalated"],
            findings=tuple(sorted(p + 1 for p in seen["positions"])), anchor=anchor_of(findings[first], first)))
    events.sort(key=lambda e: (e.time, e.event_id))
    return events


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else "\u2026" + label[-(MAX_LABEL_CHARS - 1):]


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def lane_names(events: list[PlottedEvent], formats: dict[str, str]) -> dict[str, str]:
    """Source file -> lane: the file itself when the case has few, else its format."""
    files = sorted({e.source for e in events})
    if len(files) <= MAX_FILE_LANES:
        return {f: f for f in files}
    return {f: formats.get(f) or f for f in files}


def lane_labels(lanes: list[str]) -> dict[str, str]:
    """Each lane's label: its last path component, or as many as tell it from the other lanes."""
    labels = {}
    for lane in lanes:
        parts = lane.replace("\\", "/").split("/")
        depth = 1
        while depth < len(parts) and any(other != lane and other.replace("\\", "/").endswith(
                "/".join(parts[-depth:])) for other in lanes):
            depth += 1
        labels[lane] = _shorten("/".join(parts[-depth:]))
    return labels


def _tooltip(event: PlottedEvent) -> str:
    lines = [f"{fmt_doc_time(event.time.isoformat())}  {event.action}",
             "escalated to Tier 2" if event.escalated else "not escalated"]
    for name, value in (("actor", event.actor), ("target", event.target),
                        ("from", f"{event.source_ip} ({event.where})" if event.where else event.source_ip),
                        ("user agent", event.user_agent), ("app", event.app_id)):
        if value:
            lines.append(f"{name}: {value}")
    lines.append(f"findings: {', '.join(str(n) for n in event.findings)}")
    lines.append(f"{event.source}, {event.locator}")
    return "\n".join(lines)


def event_picture(events: list[PlottedEvent], formats: dict[str, str]) -> dict:
    """Lanes, ticks and one mark per event (at most ``MAX_MARKS``: escalated events first, then in time order)."""
    total_events = len(events)
    if total_events > MAX_MARKS:
        keep = sorted(events, key=lambda e: (not e.escalated, e.time, e.event_id))[:MAX_MARKS]
        events = sorted(keep, key=lambda e: (e.time, e.event_id))
    empty = {"lanes": [], "marks": [], "ticks": [], "width": WIDTH, "height": "0", "plotted": 0,
             "total": total_events, "escalated": 0, "others": 0, "start": "", "end": ""}
    if not events:
        return empty
    lane_of = lane_names(events, formats)
    first_in_lane: dict[str, datetime] = {}
    for event in events:
        lane = lane_of[event.source]
        first_in_lane.setdefault(lane, event.time)
    lanes = sorted(first_in_lane, key=lambda n: (first_in_lane[n], n))
    start, end = events[0].time, events[-1].time
    span = (end - start).total_seconds()
    pad = max(span * 0.03, 60.0) if span > 0 else 1800.0
    lo, hi = start - timedelta(seconds=pad), end + timedelta(seconds=pad)
    whole = (hi - lo).total_seconds()
    x0, x1 = LABEL_WIDTH, WIDTH - RIGHT_MARGIN

    def x_of(moment: datetime) -> float:
        return x0 + (moment - lo).total_seconds() / whole * (x1 - x0)

    ticks = axis_ticks(lo, hi, MAX_TICKS, x_of)

    lane_height = SUB_ROWS * SUB_ROW_HEIGHT + LANE_PADDING
    labels = lane_labels(lanes)
    rows = []
    for number, name in enumerate(lanes):
        top = TOP + number * lane_height
        rows.append({"label": labels[name], "full": name, "band_y": _fmt(top), "height": _fmt(lane_height),
                     "y": _fmt(top + lane_height / 2), "stripe": number % 2 == 1,
                     "count": sum(1 for e in events if lane_of[e.source] == name)})
    # Marks of a lane close in time go to the next of its sub-rows, so a burst stays visible as a burst.
    last_x: dict[tuple[str, int], float] = {}
    marks = []
    for event in events:
        lane = lane_of[event.source]
        x = x_of(event.time)
        free = [r for r in range(SUB_ROWS) if last_x.get((lane, r), -1e9) + 2 * MARK_SIZE + MARK_GAP <= x]
        row = free[0] if free else min(range(SUB_ROWS), key=lambda r: last_x.get((lane, r), -1e9))
        last_x[(lane, row)] = x
        y = TOP + lanes.index(lane) * lane_height + LANE_PADDING / 2 + row * SUB_ROW_HEIGHT + SUB_ROW_HEIGHT / 2
        points = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in
                          ((x, y - MARK_SIZE), (x + MARK_SIZE, y), (x, y + MARK_SIZE), (x - MARK_SIZE, y)))
        marks.append(EventMark(event_id=event.event_id, anchor=event.anchor, x=_fmt(x), y=_fmt(y), points=points,
                               escalated=event.escalated, tooltip=_tooltip(event)))
    # Escalated marks are drawn last, on top of the others.
    marks.sort(key=lambda m: m.escalated)
    axis_y = TOP + len(lanes) * lane_height
    return {
        "lanes": rows, "marks": marks, "ticks": ticks, "width": WIDTH,
        "height": _fmt(axis_y + AXIS_HEIGHT), "axis_y": _fmt(axis_y), "axis_label_y": _fmt(axis_y + 16),
        "axis_title_y": _fmt(axis_y + 32), "x0": x0, "x1": x1, "tick_top": TOP - 4,
        "plotted": len(marks), "total": total_events,
        "escalated": sum(1 for m in marks if m.escalated), "others": sum(1 for m in marks if not m.escalated),
        "start": fmt_time(start), "end": fmt_time(end), "mark_size": MARK_SIZE,
        "by_file": all(lane_of[f] == f for f in lane_of),
    }
