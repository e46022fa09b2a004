"""Question 2: does the activity match legitimate administration, or is it out of context?

Legitimate means: the actor is an authorized admin, matching known automation
(every key of its ``[authorized].automation`` entry matches) or named by a
change window that covers the activity; from the trusted networks when those
are configured; and with the clients authorized people use: no offensive
tooling, scripted HTTP client, IIS worker process or export to a web folder
(``client_patterns.toml``), no IOC, no application id new to the tenant.

An authorized admin outside every change window is legitimate when doing
their usual work: no adverse signal (an operation, network, country or hour
new for them, a deletion after the export, a sign-in anomaly, audit tampering
by the same account), unless ``tuning.require_change_window`` is set
(``legitimacy.judge``). Asked after questions 1, 3 and the L1 steps, which
it reads.
"""

from __future__ import annotations

from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.legitimacy import Assessment, Judgment, assess, judge

NAME = "legitimate_admin_activity"


def answer(finding: Finding, ctx: TriageContext, assessment: Assessment | None = None,
           judgment: Judgment | None = None, others: list[Finding] | None = None) -> Answer:
    if judgment is None:
        judgment = judge(finding, assessment or assess(finding, ctx), ctx.config, others or [finding])
    return answer_of(finding, judgment)


def answer_of(finding: Finding, judgment: Judgment) -> Answer:
    """The judgment as question 2's answer, with the identity resolution it rests on."""
    if finding.actor_resolution:
        return Answer(judgment.answer, f"{judgment.because}; identity: {'; '.join(finding.actor_resolution)}")
    return Answer(judgment.answer, judgment.because)
