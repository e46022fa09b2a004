"""The Markdown report, for pasting into a ticket (GitHub-flavoured / CommonMark tables).

Every value from the document is treated as attacker-controlled text:

- characters Markdown or HTML give meaning to (``\\ ` * _ ~ [ ] | < >``, and
  ``&`` where it would start an entity such as ``&amp;``) are backslash-escaped,
  so a subject can neither break a table row, open a code span or link, nor
  inject HTML, and the file stays plain Markdown (no HTML entities);
- commands of the containment plan go in fenced code blocks whose fence is
  longer than any backtick run inside them, so no value can close the block;
- line breaks, tabs, other control characters, bidi overrides and zero-width
  characters are written out as escapes (``\\n``, ``\\u202e``: ``summary.text``),
  so one value stays on one line (one table row) and shows as what it is;
- a value starting with ``= + - @`` (a spreadsheet formula trigger) or with a
  Markdown block marker (``#``, ``1.``) gets a backslash in front: the raw text
  never starts with the trigger, and the rendered text still shows the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

from mailhunt.atomic_files import replace_files
from mailhunt.case.review import CaseReview, review_rows
from mailhunt.events import iso_z, utc_from_document
from mailhunt.report.actors import ActorStory, FindingOwn, actor_stories, numbers_text
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
from mailhunt.wording import count_of

MAX_EVIDENCE_ROWS = 25

_SPECIAL = re.compile(r"([\\`*_~\[\]|<>]|&(?=#?[0-9A-Za-z]+;))")
_LEADING_TRIGGER = re.compile(r"^([=+\-@#])")
_LEADING_ORDERED = re.compile(r"^(\d+)([.)])")


def md(value) -> str:
    """Escape one value for inline Markdown (a table cell, a list item, a heading)."""
    s = text(value).strip()
    s = _SPECIAL.sub(r"\\\1", s)
    s = _LEADING_TRIGGER.sub(r"\\\1", s)
    s = _LEADING_ORDERED.sub(r"\1\\\2", s)
    return s


def md_inline(value) -> str:
    """Escape one value placed inside a line, after other text (never at the start of a line or cell): as
    ``md`` but without the escapes of a leading ``1.``, ``#`` or ``=``, which only act at the start."""
    return _SPECIAL.sub(r"\\\1", text(value).strip())


def md_code(value) -> str:
    """One value as an inline code span for a table cell: shown verbatim (an address keeps its dots, a rule name
    its quotes), never read as Markdown or HTML; the fence is longer than any run of backticks in the value, and
    ``|`` is escaped so the cell stays one cell. Control characters are escaped as in ``md``."""
    s = text(value).strip()
    if not s:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return fence + pad + s.replace("|", "\\|") + pad + fence


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: Iterable[list[str]], right: AbstractSet[int] = frozenset()) -> Iterator[str]:
    """The table's lines, a row at a time as ``rows`` are iterated."""
    yield _row(header)
    yield _row(["---:" if i in right else "---" for i in range(len(header))])
    yield from (_row(r) for r in rows)


def render_markdown(document: dict, max_evidence_rows: int = MAX_EVIDENCE_ROWS, review: CaseReview | None = None) -> str:
    return "".join(markdown_pieces(document, max_evidence_rows, review))


def markdown_pieces(document: dict, max_evidence_rows: int = MAX_EVIDENCE_ROWS,
                    review: CaseReview | None = None) -> Iterator[str]:
    """The Markdown report of a findings document, in pieces (its table of inputs a row at a time, as
    ``document["inputs"]`` is iterated): its lines, one after the other, ending in one line break."""
    return _lines_joined(_report_lines(document, max_evidence_rows, review))


def _lines_joined(lines: Iterable[str]) -> Iterator[str]:
    """``"\\n".join(lines).rstrip("\\n") + "\\n"``, in pieces: line breaks at the end are held until text follows."""
    held = ""
    separator = ""
    for line in lines:
        piece = separator + line
        separator = "\n"
        kept = piece.rstrip("\n")
        if kept:
            yield held + kept
            held = piece[len(kept):]
        else:
            held += piece
    yield "\n"


def _report_lines(document: dict, max_evidence_rows: int, review: CaseReview | None) -> Iterator[str]:
    summary = case_summary(document)
    findings = ordered_findings(document)
    out: list[str] = ["# mailhunt report: clearing of mailbox data (T1070.008)", ""]

    meta = []
    if summary["first_seen"]:
        meta.append(f"Activity from {fmt_time(summary['first_seen'])} to {fmt_time(summary['last_seen'])}.")
    produced = md(summary["tool"]) + (f", document {md(summary['schema'])}" if summary["schema"] else "")
    if summary["generated_at"]:
        produced += f", generated {md(summary['generated_at'])}"
    meta.append(produced + ". All times UTC.")
    out += [" ".join(meta), ""]
    counts = ", ".join(f"{summary['counts'][s]} {s}" for s in SEVERITY_ORDER)
    if summary["unknown_severity"]:
        counts += f", {summary['unknown_severity']} of unknown severity"
    out += [f"**{count_of(summary['total'], 'finding')}, {summary['escalated']} escalated to Tier 2.** {counts}.", ""]

    out += ["## Evidence read", "",
            f"{len(summary['inputs'])} input{'' if len(summary['inputs']) == 1 else 's'}, "
            f"{summary['records']} records read, {summary['rejected']} rejected"
            + (f", {summary['skipped_inputs']} skipped" if summary["skipped_inputs"] else "") + ".", ""]
    if summary["preservation"]:
        out += [f"Evidence preservation: {md(summary['preservation'])}.", ""]
    if summary["hunts"]:
        out += [md(summary["hunts"]), ""]
    yield from out
    out = []
    if summary["inputs"]:
        yield from _table(["Hunt", "File", "Format", "Records", "Rejected", "New events", "Skipped", "SHA-256"],
                          ([md(i.get("hunt")), md(i.get("path")), md(i.get("format")), md(i.get("records")),
                            md(i.get("rejected")), md(i.get("new_events")), md(i.get("skipped_reason")),
                            md(i.get("sha256"))] for i in summary["inputs"]),
                          right={0, 3, 4, 5})
        yield ""

    out += ["## Findings", ""]
    if not findings:
        out += [NOTHING_READ if summary["nothing_read"] else NO_FINDINGS, ""]
    else:
        out += _table(["#", "Severity", "Tier 2", "Indicator", "Actor", "First seen (UTC)", "Events"],
                      [[str(n), severity_of(f), "escalate" if f.get("escalate") is True else "no",
                        md(f.get("indicator")), md(f.get("actor")), md(fmt_doc_time(f.get("first_seen"))),
                        md(f.get("event_count"))] for n, f in enumerate(findings, start=1)],
                      right={0, 6})
        out.append("")

    stories, owns = actor_stories(document, findings)
    out += _stories(stories)
    out += _indicators(document)

    if findings:
        out += ["## Findings in detail", ""]
    for number, finding in enumerate(findings, start=1):
        out += _finding(number, finding, max_evidence_rows, owns.get(number - 1))

    gaps = logging_rows(document)
    if gaps:
        out += ["## Logging to enhance", "", "What this evidence lacked, and the setting that records it next time.", ""]
        for n, gap in enumerate(gaps, start=1):
            out += [f"{n}. {md(gap['lacked'])} {md(gap['setting'])}", ""]
            for command in gap["commands"]:
                out += [*_fenced(command, gap["language"], "   "), ""]

    rejections = [r for r in document.get("rejections") or [] if isinstance(r, dict)]
    if rejections:
        out += [f"## Rejected records ({md(summary['rejections_shown'])})", ""]
        out += _table(["File", "Where", "Reason"],
                      [[md(r.get("path")), md(r.get("locator")), md(r.get("reason"))] for r in rejections])
        out.append("")
    matches = [m for m in document.get("rule_matches") or [] if isinstance(m, dict)]
    if matches:
        out += ["## Matches of your own rules (no indicator, so no finding)", ""]
        out += _table(["Rule", "Level", "Events", "First seen", "Last seen", "First evidence"],
                      [[md((m.get("rule") or {}).get("title")), md((m.get("rule") or {}).get("level")),
                        md(m.get("event_count")), md(m.get("first_seen")), md(m.get("last_seen")),
                        md(_first_evidence(m))] for m in matches], right={2})
        out.append("")
    skipped = [r for r in document.get("skipped_rules") or [] if isinstance(r, dict)]
    if skipped:
        out += ["## Rules not run", ""]
        out += _table(["Rule", "Reason"], [[md(r.get("id")), md(r.get("reason"))] for r in skipped])
        out.append("")
    if review is not None and not review.empty:
        out += _review(review, findings)
    yield from out


def _review(review: CaseReview, findings: list[dict]) -> list[str]:
    """The analyst's dispositions and sign-off (recorded with mailhunt serve, each in custody.jsonl)."""
    out = ["## Analyst review", ""]
    signoff = review.signoff
    if signoff is not None:
        note = f": {md(signoff.note)}" if signoff.note else ""
        line = (f"Signed off by **{md(signoff.analyst)}** at {md(iso_z(signoff.time))}{note} "
                f"(custody entry #{signoff.custody_seq}).")
        out += [line, ""]
    else:
        out += ["Not signed off.", ""]
    rows = review_rows(review, findings)
    if rows:
        out += _table(["Finding", "Disposition", "Verification answer", "Indicator", "Actor", "Analyst",
                       "Time (UTC)", "Note", "Custody"],
                      [[md(r["id"]), md(r["disposition"]), md(r["answer"]), md(r["indicator"]), md(r["actor"]),
                        md(r["analyst"]), md(iso_z(r["time"])), md(r["note"]), md(r["custody"])] for r in rows])
        out.append("")
    return out


def _indicators(document: dict) -> list[str]:
    rows = indicator_rows(document)
    if not rows:
        return []
    out = ["## Indicators of compromise", "",
           ("From the events of the findings; also in iocs.csv and iocs.stix.json (STIX 2.1), and every event of "
            "the people and hosts involved in timeline.csv and timeline.jsonl."), ""]
    out += _table(["Kind", "Value", "Country, network", "Seen (UTC)", "Events", "Findings", "Escalated"],
                  [[md(r["kind"]), md_code(r["value"]), md(r["where"]), md(r["seen"]), md(r["events"]),
                    md(" ".join(r["findings"])), "yes" if r["escalated"] else "no"] for r in rows], right={4})
    out.append("")
    return out


def _stories(stories: list[ActorStory]) -> list[str]:
    """One section per actor: what it did in time order, from where, and the reasons its findings share."""
    if not stories:
        return []
    out = ["## What each actor did", "",
           ("The findings of each actor (the resolved identity: every name the logs give the same person), told "
            "in time order. What the findings of an actor share is said here once; each finding below keeps only "
            "what is its own."), ""]
    for story in stories:
        total = len(story.steps)
        state = f"{story.escalated} of {total} escalated" if story.escalated else "not escalated"
        out += [f"### {md(story.actor)}: {story.severity}, {state}", ""]
        line = f"{count_of(total, 'finding')}, {count_of(story.events, 'distinct event')} listed"
        if story.span:
            line += f", {md(story.span)}"
        line += "."
        if story.aliases:
            line += " Also logged as: " + ", ".join(md_inline(a) for a in story.aliases) + "."
        out += [line, ""]
        out += [f"- {md(note)}" for note in story.resolution]
        if story.resolution:
            out.append("")
        if story.network:
            out += ["**Where from, with what**", ""]
            for group in story.network:
                values = []
                for entry in group["entries"]:
                    where = f" ({md(entry['where'])})" if entry["where"] else ""
                    seen = f", {md(entry['seen'])}, {entry['events']} of its events" if entry["seen"] else ""
                    values.append(f"{md_inline(entry['value'])}{where}{seen}")
                out.append(f"- {md(group['label'])}: " + "; ".join(values))
            out.append("")
        out += ["**In time order**", ""]
        for step in story.steps:
            took = f" ({step.duration})" if step.duration and step.duration != "single moment" else ""
            line = (f"- **{md(step.when)}**{took}: finding {step.number}, {md(step.indicator)} ({step.severity}, "
                    f"{'escalated' if step.escalate else 'not escalated'}), "
                    f"{count_of(int(step.events) if step.events.isdigit() else 0, 'event')}")
            if step.actions:
                line += f": {md(step.actions)}"
            if step.targets:
                line += " on " + ", ".join(md_inline(t) for t in step.targets)
            if step.ips:
                line += ", from " + ", ".join(md_inline(ip) + (f" ({md(where)})" if where else "")
                                              for ip, where in step.ips)
            out.append(line + f". Id {md_inline(step.finding_id)}.")
        out.append("")
        if story.shared_reasons:
            out += ["**Reasons these findings share**", ""]
            out += [f"- {md(r.text)} ({numbers_text(r.numbers, r.all_findings, total)})" for r in story.shared_reasons]
            out.append("")
        if story.shared_l1:
            out += ["**L1 steps these findings share**", ""]
            out += _table(["Step", "Result", "Detail", "Findings"],
                          [[md(s["label"]), f"**{md(s['result'])}**" if s["tone"] == "concern" else md(s["result"]),
                            md(s["detail"]), numbers_text(s["numbers"], s["all_findings"], total)]
                           for s in story.shared_l1])
            out.append("")
    return out


def _first_evidence(match: dict) -> str:
    evidence = [e for e in match.get("evidence") or [] if isinstance(e, dict)]
    if not evidence:
        return ""
    first = evidence[0]
    return f"{first.get('action')} at {first.get('source')}:{first.get('locator')}"


def _finding(number: int, finding: dict, max_evidence_rows: int, own: FindingOwn | None = None) -> list[str]:
    severity = severity_of(finding)
    escalate = finding.get("escalate") is True
    out = [f"### {number}. {md(finding.get('indicator'))}: {severity}, "
           + ("escalate to Tier 2" if escalate else "not escalated"), ""]
    reasons = own.reasons if own else [r for r in finding.get("reasons") or []]
    shared = own.shared_reasons if own else 0
    out.append(f"**Decision:** {'Escalate to Tier 2' if escalate else 'Not escalated'}"
               + (" because:" if reasons or shared else "."))
    out.append("")
    out += [f"- {md(r)}" for r in reasons]
    if shared:
        out.append(f"- {'and ' if reasons else ''}what it shares with the actor's other findings: see "
                   f"{md(finding.get('actor')) or 'the actor'} under What each actor did")
    if reasons or shared:
        out.append("")

    first, last = utc_from_document(finding.get("first_seen")), utc_from_document(finding.get("last_seen"))
    span = f"{md(fmt_doc_time(finding.get('first_seen')))} to {md(fmt_doc_time(finding.get('last_seen')))}"
    if duration(first, last):
        span += f" ({duration(first, last)})"
    rules = finding.get("rules") or ([finding["rule"]] if isinstance(finding.get("rule"), dict) else [])
    facts = [
        ["Finding id", md(finding.get("id"))],
        ["Actor", (md(finding.get("actor")) or "unknown") + " (the names it stands for: see the actor's story)"
         if own and finding.get("actor_resolution") else
         "; ".join([md(finding.get("actor")) or "unknown", *(md(n) for n in finding.get("actor_resolution") or [])])],
        ["Targets", "; ".join(md(t) for t in finding.get("targets") or []) or "none recorded"],
    ]
    if finding.get("host"):
        facts.append(["Host", md(finding.get("host"))])
    facts += [
        ["Time range", span],
        ["Events", md(finding.get("event_count"))],
        ["Rules", "; ".join(f"{md(r.get('title'))} ({md(r.get('id'))}, {md(r.get('level'))})"
                              for r in rules if isinstance(r, dict))],
        ["ATT&CK", md(finding.get("attack"))],
    ]
    out += _table(["Field", "Value"], facts)
    out.append("")

    given = finding.get("answers")
    answers = given if isinstance(given, dict) else {}
    out += ["**Questions for analysis**", ""]
    rows = []
    for key, question, worrying in QUESTIONS:
        answer_of_key = answers.get(key)
        entry = answer_of_key if isinstance(answer_of_key, dict) else {}
        answer = md(entry.get("answer")) or "not assessed"
        if answer_tone(text(entry.get("answer")), worrying) == "concern":
            answer = f"**{answer}**"
        rows.append([md(question), answer, md(entry.get("because"))])
    out += _table(["Question", "Answer", "Because"], rows)
    out.append("")
    if baseline_statement(finding):
        out += [f"*{md(baseline_statement(finding))}*", ""]
    steps = own.l1 if own else l1_rows(finding)
    if own and own.shared_l1:
        out += ["**L1 steps**", "",
                (f"{count_of(own.shared_l1, 'step')} with the same result as in the actor's other findings: see "
                 f"{md(finding.get('actor')) or 'the actor'} under What each actor did."), ""]
    elif steps:
        out += ["**L1 steps**", ""]
    if steps:
        out += _table(["Step", "Result", "Detail"],
                      [[md(s["label"]), f"**{md(s['result'])}**" if s["tone"] == "concern" else md(s["result"]),
                        md(s["detail"])] for s in steps])
        out.append("")

    out += _containment(finding)

    evidence = [e for e in finding.get("evidence") or [] if isinstance(e, dict)]
    more_in_doc = max(0, len(evidence) - max_evidence_rows)
    more_in_case = int(finding.get("evidence_truncated") or 0)
    event_count = finding.get("event_count")
    total = event_count if isinstance(event_count, int) else len(evidence)
    note = f"**Evidence** ({min(len(evidence), max_evidence_rows)} of {count_of(total, 'event')}"
    if more_in_doc or more_in_case:
        note += "; the rest in findings.json" if not more_in_case else "; the rest in findings.json and the case database"
    out += [note + ")", ""]
    if evidence:
        out += _table(["Source file", "Locator", "Time (UTC)", "Action", "Target", "Parameters", "Subject"],
                      [[md(e.get("source")), md(e.get("locator")), md(fmt_doc_time(e.get("@timestamp"))),
                        md(e.get("action")), md(e.get("target")), md(e.get("parameters")), md(e.get("subject"))]
                       for e in evidence[:max_evidence_rows]])
        out.append("")
    return out


def _fenced(code: str, language: str, indent: str) -> list[str]:
    """``code`` (one line) as a fenced code block no backtick run inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{indent}{fence}{language}", f"{indent}{code}", f"{indent}{fence}"]


def _code_span(code: str) -> str:
    """``code`` as an inline code span whose delimiter no backtick run inside it matches."""
    runs = {len(run) for run in re.findall(r"`+", code)}
    width = next(n for n in range(1, len(runs) + 2) if n not in runs)
    return f"{'`' * width} {code} {'`' * width}"


def _containment(finding: dict) -> list[str]:
    out: list[str] = []
    steps = containment_rows(finding)
    if steps:
        out += ["**Containment plan** (mailhunt runs none of these: check each, then run them in this order)", ""]
        for s in steps:
            out.append(f"{s['step']}. {md(s['does'])} ({md(s['environment'])}, {md(s['shell'])})")
            if s["command"]:
                out += ["", *_fenced(s["command"], s["language"], "   "), ""]
                undo = " ".join(part for part in (_code_span(s["undo"]) if s["undo"] else "", md(s["undo_note"])) if part)
                out += [f"   Undo: {undo}", ""]
            else:
                out += ["", f"   {md(s['refused'])}", ""]
    request = verification_text(finding)
    if request:
        out += ["**Verification request** (for the mailbox owner's business unit)", "", f"> {md(request)}", ""]
    return out


def write_markdown_report(document: dict, path: Path) -> None:
    """Write the Markdown report for a findings document to ``path`` (UTF-8, LF line ends), whole or not at all."""
    replace_files({Path(path): render_markdown(document).encode("utf-8")})
