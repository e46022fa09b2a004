"""The self-contained HTML report: one file, inline CSS, an inline SVG timeline, no script.

Nothing in the page is fetched: no CDN, no web font, no remote image, and a
Content-Security-Policy that forbids them (and any script) in case a string
slipped through. Every value from the document goes through Jinja2's
autoescaping; the timeline geometry is computed here, in Python, and only
numbers and escaped text reach the SVG.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jinja2

from mailhunt.atomic_files import replace_files
from mailhunt.case.review import CaseReview, review_rows
from mailhunt.events import iso_z, utc_from_document
from mailhunt.report.actors import FindingOwn, actor_stories, ioc_places, numbers_text
from mailhunt.report.event_picture import collect_events, event_picture
from mailhunt.report.summary import (
    NO_FINDINGS,
    NOTHING_READ,
    QUESTIONS,
    SEVERITY_ORDER,
    answer_tone,
    baseline_statement,
    case_summary,
    containment_rows,
    duration,
    fmt_doc_time,
    fmt_time,
    indicator_rows,
    l1_rows,
    logging_rows,
    ordered_findings,
    severity_of,
    text,
    verification_text,
)
from mailhunt.report.time_axis import axis_ticks

TEMPLATE = "report.html.j2"
SEVERITY_COLOURS = {
    "critical": "#7a0019",
    "high": "#d62728",
    "medium": "#e08a00",
    "low": "#4a78b5",
    "unknown": "#777777",
}

# Timeline geometry, in SVG user units (pixels at 100 %).
WIDTH = 960
LABEL_WIDTH = 210
RIGHT_MARGIN = 20
TOP = 28
LANE_HEIGHT = 18
ROW_PADDING = 6
LANE_GAP = 3
BAR_HEIGHT = 12
POINT_RADIUS = 6
AXIS_HEIGHT = 40
MIN_BAR = 8
MAX_LABEL_CHARS = 30
MAX_TICKS = 9


@dataclass(frozen=True)
class Mark:
    finding_id: str
    anchor: str
    x: str
    y: str
    bar_y: str
    width: str
    colour: str
    severity: str
    tooltip: str
    point: bool


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "\u2026"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def anchor_for(finding: dict, index: int) -> str:
    """An id attribute for a finding: its id if it is a safe token, else its position."""
    fid = text(finding.get("id"))
    if fid and all(c.isalnum() or c in "-_" for c in fid):
        return f"finding-{fid}"
    return f"finding-{index + 1}"


def _span(finding: dict) -> tuple[datetime, datetime] | None:
    first = utc_from_document(finding.get("first_seen"))
    last = utc_from_document(finding.get("last_seen")) or first
    if first is None or last is None:  # last is None only when first is
        return None
    return (first, last) if first <= last else (last, first)


def zoom_selection(findings: list[dict]) -> set[int] | None:
    """The escalated findings, when they sit in a small part of the whole time range.

    The whole-case timeline squeezes an attack of a few hours into one pixel
    column when the evidence covers weeks; the zoomed one spreads it out.
    """
    spans = {i: s for i, s in ((i, _span(f)) for i, f in enumerate(findings)) if s}
    chosen = {i for i in spans if findings[i].get("escalate") is True}
    if len(chosen) < 2 or len(chosen) == len(spans):
        return None
    whole = (max(s[1] for s in spans.values()) - min(s[0] for s in spans.values())).total_seconds()
    part = (max(spans[i][1] for i in chosen) - min(spans[i][0] for i in chosen)).total_seconds()
    return chosen if whole > 4 * max(part, 600) else None


def timeline(findings: list[dict], only: set[int] | None = None, by: str = "actor") -> dict:
    """Rows, x ticks and one mark per plottable finding.

    ``by`` is "actor" (falling back to "indicator" when no finding has an
    actor) or "indicator". Marks of one row that would overlap are stacked in
    lanes, so every mark stays visible and clickable. ``only`` limits the plot
    to those finding positions (anchors stay the same, so a mark still links to
    its finding).
    """
    plotted = []
    for index, finding in enumerate(findings):
        if only is not None and index not in only:
            continue
        finding_span = _span(finding)
        if finding_span is not None:
            plotted.append((index, finding, *finding_span))
    unplotted = (len(findings) if only is None else len(only)) - len(plotted)
    if not plotted:
        return {"rows": [], "marks": [], "ticks": [], "width": WIDTH, "height": 0, "unplotted": unplotted,
                "by": by, "x0": LABEL_WIDTH, "x1": WIDTH - RIGHT_MARGIN, "axis_y": 0,
                "start": "", "end": ""}
    if by == "actor" and not any(f.get("actor") for _, f, _, _ in plotted):
        by = "indicator"

    def row_key(finding: dict) -> str:
        return text(finding.get(by)) or "(none)"

    first_of_row: dict[str, datetime] = {}
    for _, finding, first, _ in plotted:
        key = row_key(finding)
        if key not in first_of_row or first < first_of_row[key]:
            first_of_row[key] = first
    row_names = sorted(first_of_row, key=lambda k: (first_of_row[k], k))

    start = min(first for _, _, first, _ in plotted)
    end = max(last for _, _, _, last in plotted)
    span = (end - start).total_seconds()
    pad = max(span * 0.03, 60.0) if span > 0 else 1800.0
    lo = start - timedelta(seconds=pad)
    hi = end + timedelta(seconds=pad)
    total = (hi - lo).total_seconds()
    x0, x1 = LABEL_WIDTH, WIDTH - RIGHT_MARGIN

    def x_of(moment: datetime) -> float:
        return x0 + (moment - lo).total_seconds() / total * (x1 - x0)

    ticks = axis_ticks(lo, hi, MAX_TICKS, x_of)

    # lay out: each row gets as many lanes as its overlapping marks need
    placed: dict[str, list[tuple[float, float, int, int, dict, datetime, datetime]]] = {n: [] for n in row_names}
    for index, finding, first, last in plotted:
        left, right = x_of(first), x_of(last)
        if right - left < MIN_BAR:
            middle = (left + right) / 2
            left, right = middle - POINT_RADIUS, middle + POINT_RADIUS
        placed[row_key(finding)].append((left, right, index, 0, finding, first, last))
    rows, marks = [], []
    y = TOP
    for number, name in enumerate(row_names):
        lane_ends: list[float] = []
        laid = []
        for left, right, index, _, finding, first, last in sorted(placed[name], key=lambda p: (p[0], p[1], p[2])):
            lane = next((i for i, e in enumerate(lane_ends) if e + LANE_GAP <= left), None)
            if lane is None:
                lane = len(lane_ends)
                lane_ends.append(right)
            else:
                lane_ends[lane] = right
            laid.append((left, right, index, lane, finding, first, last))
        height = max(1, len(lane_ends)) * LANE_HEIGHT + ROW_PADDING
        rows.append({"label": _shorten(name), "full": name, "y": _fmt(y + height / 2), "band_y": _fmt(y),
                     "height": _fmt(height), "stripe": number % 2 == 1})
        for left, right, index, lane, finding, first, last in laid:
            centre = y + ROW_PADDING / 2 + lane * LANE_HEIGHT + LANE_HEIGHT / 2
            severity = severity_of(finding)
            point = right - left <= 2 * POINT_RADIUS + 0.01 and x_of(last) - x_of(first) < MIN_BAR
            when = fmt_time(first) if first == last else f"{fmt_time(first)} \u2013 {fmt_time(last)}"
            tooltip = (f"{text(finding.get('indicator'))} [{severity}"
                       f"{', escalated' if finding.get('escalate') is True else ''}]\n"
                       f"actor: {text(finding.get('actor'))}\n"
                       f"targets: {text(finding.get('targets'))}\n"
                       f"{when}\nevents: {text(finding.get('event_count'))}")
            marks.append((index, Mark(
                finding_id=text(finding.get("id")),
                anchor=anchor_for(finding, index),
                x=_fmt((left + right) / 2 if point else left),
                y=_fmt(centre),
                bar_y=_fmt(centre - BAR_HEIGHT / 2),
                width=_fmt(right - left),
                colour=SEVERITY_COLOURS[severity],
                severity=severity,
                tooltip=tooltip,
                point=point,
            )))
        y += height
    axis_y = y
    return {
        "rows": rows,
        "marks": [mark for _, mark in sorted(marks, key=lambda m: m[0])],
        "ticks": ticks,
        "width": WIDTH,
        "height": _fmt(axis_y + AXIS_HEIGHT),
        "axis_y": _fmt(axis_y),
        "axis_label_y": _fmt(axis_y + 16),
        "axis_title_y": _fmt(axis_y + 32),
        "x0": x0,
        "x1": x1,
        "by": by,
        "unplotted": unplotted,
        "start": fmt_time(start),
        "end": fmt_time(end),
    }


def finding_view(finding: dict, index: int, own: FindingOwn | None = None) -> dict:
    first, last = utc_from_document(finding.get("first_seen")), utc_from_document(finding.get("last_seen"))
    answers = finding.get("answers") or {}
    questions = []
    for key, question, worrying in QUESTIONS:
        entry = answers.get(key) if isinstance(answers, dict) else None
        entry = entry if isinstance(entry, dict) else {}
        answer = text(entry.get("answer")) or "not assessed"
        questions.append({"key": key, "question": question, "answer": answer,
                          "css": answer_tone(answer, worrying), "because": text(entry.get("because"))})
    rules = finding.get("rules") or ([finding["rule"]] if isinstance(finding.get("rule"), dict) else [])
    evidence = [e for e in finding.get("evidence") or [] if isinstance(e, dict)]
    return {
        "anchor": anchor_for(finding, index),
        "number": index + 1,
        "id": text(finding.get("id")),
        "indicator": text(finding.get("indicator")),
        "severity": severity_of(finding),
        "colour": SEVERITY_COLOURS[severity_of(finding)],
        "escalate": finding.get("escalate") is True,
        "reasons": own.reasons if own else [text(r) for r in finding.get("reasons") or []],
        "shared_reasons": own.shared_reasons if own else 0,
        "shared_l1": own.shared_l1 if own else 0,
        "actor_anchor": own.actor_anchor if own else "",
        "actor": text(finding.get("actor")),
        "targets": [text(t) for t in finding.get("targets") or []],
        "host": text(finding.get("host")),
        "attack": [text(a) for a in finding.get("attack") or []],
        "rules": [{"id": text(r.get("id")), "title": text(r.get("title")), "level": text(r.get("level"))}
                  for r in rules if isinstance(r, dict)],
        "first_seen": fmt_time(first) if first else text(finding.get("first_seen")),
        "last_seen": fmt_time(last) if last else text(finding.get("last_seen")),
        "duration": duration(first, last),
        "event_count": text(finding.get("event_count")),
        "questions": questions,
        "baseline": baseline_statement(finding),
        # told once in the actor's story when the finding has one
        "actor_resolution": [] if own else [text(n) for n in finding.get("actor_resolution") or []],
        "resolution_in_story": bool(own and finding.get("actor_resolution")),
        "l1": own.l1 if own else l1_rows(finding),
        "containment": containment_rows(finding),
        "verification": verification_text(finding),
        "evidence": [{
            "source": text(e.get("source")),
            "sha256": text(e.get("sha256")),
            "locator": text(e.get("locator")),
            "time": fmt_doc_time(e.get("@timestamp")),
            "action": text(e.get("action")),
            "target": text(e.get("target")),
            "parameters": text(e.get("parameters")),
            "subject": text(e.get("subject")),
        } for e in evidence],
        "evidence_truncated": int(finding.get("evidence_truncated") or 0),
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mailhunt.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["visible"] = text
    return env


def source_formats(document: dict, sources: AbstractSet[str]) -> dict[str, str]:
    """Input path -> its format, for the lanes of the event pictures: of the inputs at ``sources`` (the files the
    pictured events come from; the inputs of a case may be 100,000 files)."""
    formats = {}
    for i in document.get("inputs") or []:
        if isinstance(i, dict) and i.get("format") and text(i.get("path")) in sources:
            formats[text(i.get("path"))] = text(i.get("format"))
    return formats


def render_html(document: dict, review: CaseReview | None = None) -> str:
    return "".join(html_pieces(document, review))


def html_pieces(document: dict, review: CaseReview | None = None) -> Iterator[str]:
    """The HTML report of a findings document, in the pieces the template gives as it is rendered (its table of
    inputs a row at a time, as ``document["inputs"]`` is iterated)."""
    findings = ordered_findings(document)
    summary = case_summary(document)
    zoom = zoom_selection(findings)
    stories, owns = actor_stories(document, findings, anchor_for)
    places = ioc_places(document)
    pictured = collect_events(findings, list(range(len(findings))), anchor_for, places)
    pictured_of_actor = {story.anchor: collect_events(findings, story.findings, anchor_for, places)
                         for story in stories}
    formats = source_formats(document, {event.source for events in (pictured, *pictured_of_actor.values())
                                        for event in events})
    events = event_picture(pictured, formats)
    actor_pictures = {anchor: event_picture(of_actor, formats) for anchor, of_actor in pictured_of_actor.items()}
    return _environment().get_template(TEMPLATE).generate(
        stories=stories,
        actor_pictures=actor_pictures,
        events=events,
        numbers_text=numbers_text,
        summary=summary,
        no_findings=NOTHING_READ if summary["nothing_read"] else NO_FINDINGS,
        severity_order=SEVERITY_ORDER,
        colours=SEVERITY_COLOURS,
        timeline=timeline(findings),
        zoom=timeline(findings, zoom, by="indicator") if zoom else None,
        findings=[finding_view(f, i, owns.get(i)) for i, f in enumerate(findings)],
        logging_gaps=logging_rows(document),
        indicators=indicator_rows(document),
        rejections=[{k: text(r.get(k)) for k in ("path", "locator", "reason")}
                    for r in document.get("rejections") or [] if isinstance(r, dict)],
        rule_matches=[{"title": text((m.get("rule") or {}).get("title")),
                       "id": text((m.get("rule") or {}).get("id")),
                       "level": text((m.get("rule") or {}).get("level")),
                       "event_count": text(m.get("event_count")),
                       "first_seen": text(m.get("first_seen")), "last_seen": text(m.get("last_seen")),
                       "evidence": [{k: text(e.get(k)) for k in ("source", "locator", "action")}
                                    for e in (m.get("evidence") or [])[:5] if isinstance(e, dict)]}
                      for m in document.get("rule_matches") or [] if isinstance(m, dict)],
        skipped_rules=[{k: text(r.get(k)) for k in ("id", "reason")}
                       for r in document.get("skipped_rules") or [] if isinstance(r, dict)],
        review=None if review is None or review.empty else {
            "signoff": review.signoff, "rows": [{**r, "time": iso_z(r["time"])} for r in review_rows(review, findings)]},
        iso_z=iso_z,
        fmt_time=fmt_time,
        point_radius=POINT_RADIUS,
        bar_height=BAR_HEIGHT,
    )


def write_html_report(document: dict, path: Path) -> None:
    """Write the report for a findings document to ``path`` (UTF-8, LF line ends), whole or not at all."""
    replace_files({Path(path): render_html(document).encode("utf-8")})
