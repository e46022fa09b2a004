"""Triage: the playbook's four questions per finding, the L1 steps, then the escalation decision."""

from __future__ import annotations

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
from mailhunt.triage.l1_steps import l1_steps
from mailhunt.triage.legitimacy import assess

QUESTION_MODULES = (
    export_followed_by_deletion,
    legitimate_admin_activity,
    usual_for_account,
    transport_rule_with_suspicious_mail,
)


def triage(findings: list[Finding], ctx: TriageContext) -> None:
    ctx.prepare(findings)
    for finding in findings:
        assessment = assess(finding, ctx)
        for module in QUESTION_MODULES:
            if module is legitimate_admin_activity:
                finding.answers[module.NAME] = module.answer(finding, ctx, assessment)
            else:
                finding.answers[module.NAME] = module.answer(finding, ctx)
        finding.baseline = ctx.baseline(finding).to_json()
        first_seen = ctx.app_first_seen(finding)
        apps = sorted({(r.get("app.id") or "").lower() for r in ctx.details(finding) if r.get("app.id")})
        finding.baseline["apps_first_seen_in_tenant"] = {a: iso_z(first_seen[a]) for a in apps if a in first_seen}
        finding.l1 = l1_steps(finding, ctx, findings)
        finding.escalate, finding.severity, finding.reasons = escalation.decide(finding, assessment)


__all__ = ["TriageContext", "triage"]
