"""Question 4: for rule changes, did suspicious mail arrive around the change?

Answered from message trace or message tracking records in the case. Without
them the answer is "unknown", and says which evidence would tell.
"""

from __future__ import annotations

from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext

NAME = "transport_rule_with_suspicious_mail"
RULE_INDICATORS = ("transport_rule_change", "inbox_rule_hiding")
MESSAGE_DATASETS = ("exchange.message_tracking", "m365.message_trace")


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    if finding.indicator not in RULE_INDICATORS:
        return Answer("unknown", "does not apply: not a transport- or inbox-rule finding")
    traces = ctx.store.db.execute(
        f'SELECT count(*) FROM events WHERE "event.dataset" IN ({", ".join("?" * len(MESSAGE_DATASETS))})',
        list(MESSAGE_DATASETS)).fetchall()[0][0]
    if traces == 0:
        return Answer("unknown", "the case holds no message trace or message tracking records; add an Exchange "
                                 "Online message trace or MSGTRK logs covering +/-6 h of the change to answer")
    return Answer("unknown", f"{traces} message records are in the case; matching them to the rule's conditions "
                             "is not implemented in this version")
