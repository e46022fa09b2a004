"""What the HTML and Markdown reports share: the case summary and the question texts.

Everything here reads the findings document only and tolerates missing keys,
so a report can still be written for a partial or older document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from mailhunt.case.iocs import KINDS as IOC_KINDS
from mailhunt.events import utc_from_document
from mailhunt.visible import visible_text

SEVERITY_ORDER = ("critical", "high", "medium", "low")

# The playbook's "Questions for Analysis", keyed as in findings.json, each worded
# so that the answer in the document reads right ("usual_for_account: no" means
# the account does not usually do this), with the answer that is the worrying one.
QUESTIONS = (
    ("export_followed_by_deletion", "Is there a pattern of mailbox export followed by immediate deletion?", "yes"),
    ("legitimate_admin_activity",
     ("Do the PowerShell or command line invocations match legitimate administrative activity "
      "(rather than appear out of context)?"), "no"),
    ("usual_for_account", "Does the account usually perform such operations?", "no"),
    ("transport_rule_with_suspicious_mail",
     "Are there unusual changes in transport rules coinciding with detected suspicious emails?", "yes"),
)


def answer_tone(answer: str, worrying: str) -> str:
    """'concern', 'reassure' or 'unknown', for colouring an answer."""
    if answer not in ("yes", "no"):
        return "unknown"
    return "concern" if answer == worrying else "reassure"


def text(value) -> str:
    """Any document value as display text ('' for null).

    Characters that draw nothing or act on the display (controls, bidi
    overrides, zero-width characters) are written out as escapes such as
    ``\\u202e`` (``mailhunt.visible``), so a name shows as what it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value)
    return visible_text(value)


def severity_of(finding: dict) -> str:
    severity = str(finding.get("severity") or "").lower()
    return severity if severity in SEVERITY_ORDER else "unknown"


def ordered_findings(document: dict) -> list[dict]:
    """Findings in document order (the document is already sorted by time)."""
    return [f for f in document.get("findings") or [] if isinstance(f, dict)]


NO_FINDINGS = "No findings: nothing in the evidence matched a rule."
NOTHING_READ = ("No findings, and no evidence was read: no input of this hunt held a record mailhunt could read "
                "(see Evidence read).")


class InputRows:
    """The inputs of a findings document as the reports list them (text, and ``records`` and ``rejected`` as
    numbers), made as they are iterated, with what the reports add up of them.

    A case may list 100,000 inputs, read from the case database a batch at a
    time (``case_document.CaseInputs``); a report then holds only the row it is
    writing. ``inputs`` is iterated once here, to count them, and once more each
    time the rows are."""

    def __init__(self, inputs: Iterable):
        self._inputs = inputs
        self.count = self.records = self.rejected = self.skipped = 0
        self.nothing_read = True  # no input held a record that could be read
        for row in self:
            self.count += 1
            self.records += row["records"]
            self.rejected += row["rejected"]
            self.skipped += 1 if row["skipped_reason"] else 0
            self.nothing_read = self.nothing_read and row["records"] == row["rejected"]

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict]:
        for i in self._inputs:
            if isinstance(i, dict):
                yield {"path": text(i.get("path")), "sha256": text(i.get("sha256")), "format": text(i.get("format")),
                       "records": i.get("records") if isinstance(i.get("records"), int) else 0,
                       "rejected": i.get("rejected") if isinstance(i.get("rejected"), int) else 0,
                       "skipped_reason": text(i.get("skipped_reason")), "hunt": text(i.get("hunt")),
                       "new_events": text(i.get("new_events"))}


def case_summary(document: dict) -> dict:
    findings = ordered_findings(document)
    counts = {s: 0 for s in SEVERITY_ORDER}
    unknown = 0
    for finding in findings:
        severity = severity_of(finding)
        if severity in counts:
            counts[severity] += 1
        else:
            unknown += 1
    inputs = InputRows(document.get("inputs") or [])
    times = [t for f in findings for t in (utc_from_document(f.get("first_seen")), utc_from_document(f.get("last_seen"))) if t]
    tool = document.get("tool") or {}
    return {
        "total": len(findings),
        "escalated": sum(1 for f in findings if f.get("escalate") is True),
        "counts": counts,
        "unknown_severity": unknown,
        "inputs": inputs,
        "records": inputs.records,
        "rejected": inputs.rejected,
        "skipped_inputs": inputs.skipped,
        # No input of this hunt held a record that could be read: "no findings" then says nothing.
        "nothing_read": inputs.nothing_read,
        "first_seen": min(times) if times else None,
        "last_seen": max(times) if times else None,
        "tool": f"{text(tool.get('name') or 'mailhunt')} {text(tool.get('version'))}".strip(),
        "schema": text(document.get("schema")),
        "generated_at": text(document.get("generated_at")),
        # How the evidence was preserved (mailhunt.case.evidence): copied with a manifest, or --no-copy.
        "preservation": text((document.get("evidence_preservation") or {}).get("statement"))
        if isinstance(document.get("evidence_preservation"), dict) else "",
        "hunts": hunts_statement(document),
        "rejections_shown": rejections_statement(document),
    }


def hunts_statement(document: dict) -> str:
    """'Gathered in 2 hunts: 1 at 2026-12-06T17:51:02Z (1 input, 219 new events), 2 at ...', or ''."""
    hunts = [h for h in document.get("hunts") or [] if isinstance(h, dict)]
    if not hunts:
        return ""
    parts = []
    for h in hunts:
        inputs = h["inputs"] if isinstance(h.get("inputs"), int) else 0
        new = h.get("new_events")
        parts.append(f"{text(h.get('id'))} at {text(h.get('started_at')) or 'a time not recorded'} "
                     f"({plural(inputs, 'input')}"
                     + (f", {plural(new, 'new event')}" if isinstance(new, int) else "") + ")")
    return f"Gathered in {plural(len(hunts), 'hunt')}: " + "; ".join(parts) + "."


def rejections_statement(document: dict) -> str:
    """How many rejected records are listed of how many, and how many the case database keeps."""
    listed = len([r for r in document.get("rejections") or [] if isinstance(r, dict)])
    caps = document.get("rejections_count")
    if not isinstance(caps, dict):
        return f"the first {listed}"
    total, kept = caps.get("total"), caps.get("kept_in_case")
    return (f"showing {listed:,} of {text(f'{total:,}' if isinstance(total, int) else total)}; "
            f"the case database keeps {text(f'{kept:,}' if isinstance(kept, int) else kept)} "
            "(table rejections, at most 1,000 per file)")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def fmt_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC" if moment else ""


def fmt_doc_time(value) -> str:
    """A document timestamp for display: 2026-10-14 09:12:03 UTC, or the raw text if unparsable."""
    moment = utc_from_document(value)
    if moment is None:
        return text(value)
    seconds = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        seconds += f".{moment.microsecond:06d}".rstrip("0")
    return seconds + " UTC"


def duration(first: datetime | None, last: datetime | None) -> str:
    if not first or not last:
        return ""
    seconds = int((last - first).total_seconds())
    if seconds <= 0:
        return "single moment"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{seconds}s" if seconds and not days else ""]
    return " ".join(p for p in parts if p)


L1_STEPS = {
    "sign_ins": "Sign-ins around the finding (new country or network, impossible travel, failed-login bursts)",
    "password_changes": "Password changes and resets within ±72 h",
    "mfa_changes": "MFA method changes within ±72 h",
    "consent_grants": "Consent grants within ±72 h",
    "correlated_findings": "The actor's or host's other findings",
}
L1_TONES = {"flag": "concern", "clear": "reassure", "unknown": "unknown"}


def l1_rows(finding: dict) -> list[dict]:
    """The finding's L1 steps as display rows: label, result, tone, detail (text, not yet escaped)."""
    rows = []
    for step in finding.get("l1") or []:
        if not isinstance(step, dict):
            continue
        result = text(step.get("result")) or "unknown"
        rows.append({"label": L1_STEPS.get(text(step.get("step")), text(step.get("step"))), "result": result,
                     "tone": L1_TONES.get(result, "unknown"), "detail": text(step.get("detail"))})
    return rows


def baseline_statement(finding: dict) -> str:
    baseline = finding.get("baseline")
    return text(baseline.get("statement")) if isinstance(baseline, dict) else ""


SHELL_NAMES = {"powershell": "PowerShell", "sh": "POSIX shell"}


def containment_rows(finding: dict) -> list[dict]:
    """The finding's containment steps as display text, in the order to run them."""
    steps = [s for s in finding.get("containment") or [] if isinstance(s, dict)]
    return [{"step": text(s.get("step")), "environment": text(s.get("environment")).replace("_", " "),
             "shell": SHELL_NAMES.get(text(s.get("shell")), text(s.get("shell"))),
             "language": "powershell" if s.get("shell") == "powershell" else "sh",
             "does": text(s.get("does")), "command": text(s.get("command")), "undo": text(s.get("undo")),
             "undo_note": text(s.get("undo_note")),
             "refused": text(s.get("refused"))} for s in steps]


def verification_text(finding: dict) -> str:
    """The finding's verification request for the mailbox owner's business unit ('' when it has none)."""
    request = finding.get("verification_request")
    return text(request.get("text")) if isinstance(request, dict) else ""


def logging_rows(document: dict) -> list[dict]:
    """The logging to enhance (what the evidence lacked, the setting, its commands) as display text."""
    gaps = [g for g in document.get("logging_gaps") or [] if isinstance(g, dict)]
    return [{"lacked": text(g.get("lacked")), "setting": text(g.get("setting")),
             "language": "powershell" if g.get("shell") == "powershell" else "sh",
             "commands": [text(c) for c in g.get("commands") or []]} for g in gaps]




def indicator_rows(document: dict) -> list[dict]:
    """The case's indicators of compromise (``iocs`` in findings.json) as display text, in the document's order
    (those of escalated findings first): kind, value, where (country and network), seen, events, findings."""
    rows = []
    for ioc in document.get("iocs") or []:
        if not isinstance(ioc, dict):
            continue
        where = ", ".join(text(ioc.get(k)) for k in ("country", "network") if ioc.get(k))
        if ioc.get("external") is True:
            where = ", ".join(filter(None, ["outside the organization's domains", where]))
        first, last = fmt_doc_time(ioc.get("first_seen")), fmt_doc_time(ioc.get("last_seen"))
        findings = [text(f) for f in ioc.get("findings") or []]
        rows.append({"kind": IOC_KINDS.get(text(ioc.get("kind")), text(ioc.get("kind"))), "value": text(ioc.get("value")),
                     "where": where, "seen": first if first == last else f"{first} to {last}",
                     "events": text(ioc.get("events")), "findings": findings,
                     "escalated": ioc.get("escalated") is True})
    return rows
