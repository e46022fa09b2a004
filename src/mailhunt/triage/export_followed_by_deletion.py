"""Question 1: was a mailbox export followed by deletion (request removal, purge, bulk delete)?

Answered from the export -> deletion correlation rules themselves (indicator
``export_then_deletion``: ``m365_export_then_*``,
``windows_export_then_script_block_cleanup_by_actor``, and any of the
analyst's own), through what the engine recorded when they ran: each
instance, and which of the correlated rules each of its events matched. So
the rule and the answer can never disagree: "yes" names an instance the rule
found; "no" and "unknown" read the matches of the correlations' first
(export) step, by the finding's actor or on its mailboxes.
"""

from __future__ import annotations

from datetime import timedelta

from mailhunt.case_queries import MatchedEvent
from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext, describe
from mailhunt.wording import account_name

NAME = "export_followed_by_deletion"
CORRELATION_INDICATOR = "export_then_deletion"


def _pairs(finding: Finding, ctx: TriageContext, steps: dict[str, tuple[str, ...]],
           window: timedelta) -> list[tuple[MatchedEvent, MatchedEvent]]:
    """(export, deletion) of each correlation instance that involves the finding: it shares an event with the
    finding, or one of its events is by the finding's actor or on its mailboxes and its export lies around
    the finding."""
    people = {p for p in (finding.actor, *finding.targets) if p}
    own = set(finding.event_ids)
    found: dict[tuple[str, str], tuple[MatchedEvent, MatchedEvent]] = {}
    for (rule_id, _), events in ctx.correlation_instances(tuple(sorted(steps))).items():
        first_step, last_step = steps[rule_id][0], steps[rule_id][-1]
        exports = [e for e in events if e.rule_id == first_step]
        deletions = [e for e in events if e.rule_id == last_step]
        if not exports or not deletions:
            continue
        export, deletion = exports[0], deletions[-1]
        shares = any(e.id in own for e in events)
        involved = any(e.actor in people or e.target in people for e in events)
        near = finding.first_seen - window <= export.ts <= finding.last_seen + window
        if shares or (involved and near):
            found.setdefault((export.id, deletion.id), (export, deletion))
    return sorted(found.values(), key=lambda pair: (pair[1].ts - pair[0].ts, pair[0].ts, pair[0].id))


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    window = timedelta(seconds=ctx.config.export_deletion_window_seconds)
    steps = ctx.correlation_steps(ctx.rules_of_indicator(CORRELATION_INDICATOR))
    if not steps:
        return Answer("unknown", "no export -> deletion correlation rule (indicator export_then_deletion) ran, "
                                 "so the sequence was not looked for; see the rules skipped in the report")
    pairs = _pairs(finding, ctx, steps, window)
    if pairs:
        export, deletion = pairs[0]
        minutes = (deletion.ts - export.ts).total_seconds() / 60
        return Answer("yes", f"{describe(export.as_dict())} by {account_name(export.actor)} was followed {minutes:.0f} minutes "
                             f"later by {describe(deletion.as_dict())} by {account_name(deletion.actor)}"
                             + (f"; {len(pairs)} such pairs" if len(pairs) > 1 else ""))
    people = sorted({p for p in (finding.actor, *finding.targets) if p})
    export_steps = sorted({sequence[0] for sequence in steps.values()})
    exports = [e.as_dict() for e in ctx.matched_events(export_steps, people)]
    if not exports:
        if ctx.cmdlet_records == 0:
            return Answer("unknown", "the evidence holds no admin (cmdlet) records, so exports cannot be seen; "
                                     + ctx.coverage(finding))
        return Answer("no", f"no mailbox export by {account_name(finding.actor)} or on {', '.join(finding.targets) or 'its targets'} "
                            f"in the evidence; {ctx.coverage(finding)}")
    hours = window.total_seconds() / 3600
    near_exports = [e for e in exports if finding.first_seen - window <= e["ts"] <= finding.last_seen]
    if not near_exports:
        return Answer("no", f"no mailbox export by {account_name(finding.actor)} or on {', '.join(finding.targets) or 'its targets'} "
                            f"within {hours:.0f} h before or during the finding; {len(exports)} export(s) at other "
                            f"times (first {describe(exports[0])})")
    last_export = near_exports[-1]
    if ctx.evidence_end is not None and ctx.evidence_end < last_export["ts"] + window:
        return Answer("unknown", f"{describe(last_export)} has no deletion after it yet, but the evidence ends "
                                 f"{(ctx.evidence_end - last_export['ts']).total_seconds() / 3600:.1f} h after it, "
                                 f"inside the {hours:.0f} h window")
    return Answer("no", f"{len(near_exports)} export(s) around the finding (first {describe(near_exports[0])}), none "
                        f"followed by removal, purge or bulk deletion within {hours:.0f} h")
