"""Triage: the playbook's four questions per finding, the L1 steps, then the escalation decision.

Question 2 (legitimate administration) is answered last: whether an
authorized admin outside every change window is doing their usual work reads
the answers to questions 1 and 3 and the L1 steps.
"""

from __future__ import annotations

from collections.abc import Callable

from mailhunt.events import iso_z
from mailhunt.findings import Finding
from mailhunt.triage import (
    escalation,
    export_followed_by_deletion,
    legitimate_admin_activity,
    transport_rule_with_suspicious_mail,
    usual_for_account,
)
from mailhunt.triage.context import TriageContext
from mailhunt.triage.l1_steps import l1_steps, prepare_steps
from mailhunt.triage.legitimacy import assess, judge
from mailhunt.triage.policy import policy
from mailhunt.triage.signals import prepare_signals

QUESTION_MODULES = (
    export_followed_by_deletion,
    usual_for_account,
    transport_rule_with_suspicious_mail,
)


def triage(findings: list[Finding], ctx: TriageContext, on_finding: Callable[[], None] = lambda: None) -> None:
    """Answer the questions, do the L1 steps and decide, finding by finding (``on_finding`` after each)."""
    ctx.prepare(findings)
    prepare_steps(findings, ctx)
    prepare_signals(findings, ctx, policy())
    for finding in findings:
        assessment = assess(finding, ctx)
        for module in QUESTION_MODULES:
            finding.answers[module.NAME] = module.answer(finding, ctx)
        finding.baseline = ctx.baseline(finding).to_json()
        first_seen = ctx.app_first_seen(finding)
        apps = sorted({(r.get("app.id") or "").lower() for r in ctx.details(finding) if r.get("app.id")})
        finding.baseline["apps_first_seen_in_tenant"] = {a: iso_z(first_seen[a]) for a in apps if a in first_seen}
        finding.l1 = l1_steps(finding, ctx, findings)
        judgment = judge(finding, assessment, ctx.config, findings)
        finding.answers[legitimate_admin_activity.NAME] = legitimate_admin_activity.answer_of(finding, judgment)
        decision = escalation.decide(finding, assessment, judgment, ctx)
        finding.escalate, finding.severity, finding.reasons = decision.escalate, decision.severity, decision.reasons
        finding.decision = decision.record
        on_finding()


__all__ = ["TriageContext", "triage"]
