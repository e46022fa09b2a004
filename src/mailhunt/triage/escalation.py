"""The escalation decision: Tier 2 or not, with the reasons, after the playbook's criteria.

Playbook: "Escalate to Tier 2 if mailbox export and deletion activities lack
legitimate justification, involve scripts or tools typically not used by
authorized personnel, or are associated with known threat patterns. If
suspicious changes in transport rules are discovered without accompanying
operational necessity, escalate the incident."
"""

from __future__ import annotations

from mailhunt.findings import SEVERITIES, Finding

EXPORT_DELETION = ("mailbox_export", "export_request_removed", "export_then_deletion", "mailbox_purge",
                   "bulk_item_deletion")
KNOWN_THREAT_PATTERNS = {
    "export_then_deletion": "mailbox export followed by deletion (T1070.008)",
    "inbox_rule_hiding": "inbox rule that hides, deletes or forwards mail (T1564.008)",
    "audit_tampering": "mailbox or admin audit logging turned off or bypassed (T1562.008)",
    "new_app_mail_access": "application granted access to mail (T1098.003 / T1114.002)",
    "mailbox_purge": "mailbox content purged (T1070.008)",
}


def _raise(severity: str, at_least: str) -> str:
    return max(severity, at_least, key=SEVERITIES.index)


def decide(finding: Finding) -> tuple[bool, str, list[str]]:
    answers = finding.answers
    legit = answers.get("legitimate_admin_activity")
    sequence = answers.get("export_followed_by_deletion")
    usual = answers.get("usual_for_account")
    justified = legit is not None and legit.answer == "yes"
    reasons: list[str] = []
    severity = finding.severity

    if legit is not None and legit.answer == "no" and "offensive tooling" in legit.because:
        reasons.append(f"involves tools not used by authorized personnel: {legit.because}")
        severity = _raise(severity, "critical")
    if finding.indicator in EXPORT_DELETION and not justified:
        reasons.append("mailbox export/deletion activity lacks legitimate justification: "
                       + (legit.because if legit else "not assessed"))
        severity = _raise(severity, "high")
    if finding.indicator in EXPORT_DELETION and sequence is not None and sequence.answer == "yes":
        reasons.append(f"known threat pattern, export followed by deletion: {sequence.because}")
        if not justified:
            severity = _raise(severity, "critical")
    if finding.indicator in KNOWN_THREAT_PATTERNS and not justified:
        reasons.append(f"known threat pattern: {KNOWN_THREAT_PATTERNS[finding.indicator]}")
        severity = _raise(severity, "high")
    if finding.indicator == "transport_rule_change" and not justified:
        reasons.append("transport rule changed without accompanying operational necessity: "
                       + (legit.because if legit else "not assessed"))
        severity = _raise(severity, "high")
    if reasons and usual is not None and usual.answer == "no":
        reasons.append(f"unusual for the account: {usual.because}")
    escalate = bool(reasons)
    if not escalate:
        reasons.append("not escalated: " + (legit.because if justified and legit else
                                            "no escalation criterion of the playbook is met"))
    return escalate, severity, reasons
