"""Question 1: was a mailbox export followed by deletion (request removal, purge, bulk delete)?"""

from __future__ import annotations

from datetime import timedelta

from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import (
    DELETION_INDICATORS,
    EXPORT_INDICATORS,
    TriageContext,
    describe,
)

NAME = "export_followed_by_deletion"


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    window = timedelta(seconds=ctx.config.export_deletion_window_seconds)
    who = (finding.actor, finding.targets)
    exports = ctx.matched_events(EXPORT_INDICATORS, who)
    deletions = ctx.matched_events(DELETION_INDICATORS, who)
    pairs = []
    for deletion in deletions:
        before = [e for e in exports if e["ts"] <= deletion["ts"] <= e["ts"] + window and e["id"] != deletion["id"]]
        if before:
            pairs.append((before[-1], deletion))
    near = sorted(((e, d) for e, d in pairs if finding.first_seen - window <= e["ts"] <= finding.last_seen + window),
                  key=lambda pair: (pair[1]["ts"] - pair[0]["ts"], pair[0]["ts"], pair[0]["id"]))
    if near:
        export, deletion = near[0]
        minutes = (deletion["ts"] - export["ts"]).total_seconds() / 60
        return Answer("yes", f"{describe(export)} by {export['actor']} was followed {minutes:.0f} minutes later "
                             f"by {describe(deletion)} by {deletion['actor']}"
                             + (f"; {len(near)} such pairs" if len(near) > 1 else ""))
    if not exports:
        if ctx.cmdlet_records == 0:
            return Answer("unknown", "the evidence holds no admin (cmdlet) records, so exports cannot be seen; "
                                     + ctx.coverage())
        return Answer("no", f"no mailbox export by {finding.actor} or on {', '.join(finding.targets) or 'its targets'} "
                            f"in the evidence; {ctx.coverage()}")
    hours = window.total_seconds() / 3600
    near_exports = [e for e in exports if finding.first_seen - window <= e["ts"] <= finding.last_seen]
    if not near_exports:
        return Answer("no", f"no mailbox export by {finding.actor} or on {', '.join(finding.targets) or 'its targets'} "
                            f"within {hours:.0f} h before or during the finding; {len(exports)} export(s) at other "
                            f"times (first {describe(exports[0])})")
    last_export = near_exports[-1]
    if ctx.evidence_end is not None and ctx.evidence_end < last_export["ts"] + window:
        return Answer("unknown", f"{describe(last_export)} has no deletion after it yet, but the evidence ends "
                                 f"{(ctx.evidence_end - last_export['ts']).total_seconds() / 3600:.1f} h after it, "
                                 f"inside the {hours:.0f} h window")
    return Answer("no", f"{len(near_exports)} export(s) around the finding (first {describe(near_exports[0])}), none "
                        f"followed by removal, purge or bulk deletion within {hours:.0f} h")
