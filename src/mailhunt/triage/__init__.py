"""Triage: the playbook's four questions per finding, then the escalation decision."""

from __future__ import annotations

from mailhunt.findings import Finding
from mailhunt.triage import (
    escalation,
    export_followed_by_deletion,
    legitimate_admin_activity,
    transport_rule_with_suspicious_mail,
    usual_for_account,
)
from mailhunt.triage.context import TriageContext

QUESTION_MODULES = (
    export_followed_by_deletion,
    legitimate_admin_activity,
    usual_for_account,
    transport_rule_with_suspicious_mail,
)


def triage(findings: list[Finding], ctx: TriageContext) -> None:
    for finding in findings:
        for module in QUESTION_MODULES:
            finding.answers[module.NAME] = module.answer(finding, ctx)
        finding.escalate, finding.severity, finding.reasons = escalation.decide(finding)


__all__ = ["TriageContext", "triage"]
