"""The escalation decision: Tier 2 or not, with the reasons, after the playbook's criteria.

Playbook: "Escalate to Tier 2 if mailbox export and deletion activities lack
legitimate justification, involve scripts or tools typically not used by
authorized personnel, or are associated with known threat patterns. If
suspicious changes in transport rules are discovered without accompanying
operational necessity, escalate the incident."

Every reason starts with the criterion it meets (``CRITERIA``) and names the
evidence. A finding made only by informational rules (Sigma's level for
context, not alerting) is no known threat pattern by itself. Authorized
activity inside its change window, by known automation or by an authorized
admin with the clients admins use, stays a finding with ``escalate`` false
and the reason "authorized: TICKET by ACTOR". The decision
depends only on the finding, its answers, its L1 steps and the assessment, so
the same evidence and configuration always give the same decision.
"""

from __future__ import annotations

from mailhunt.findings import SEVERITIES, Finding
from mailhunt.triage.legitimacy import Assessment

NO_JUSTIFICATION = "no legitimate justification"
UNAUTHORIZED_TOOLS = "scripts or tools not used by authorized personnel"
KNOWN_THREAT = "known threat pattern"
RULE_WITHOUT_NECESSITY = "transport-rule change without operational necessity"
CRITERIA = (NO_JUSTIFICATION, UNAUTHORIZED_TOOLS, KNOWN_THREAT, RULE_WITHOUT_NECESSITY)

EXPORT_DELETION = ("mailbox_export", "export_request_removed", "export_then_deletion", "mailbox_purge",
                   "bulk_item_deletion")
KNOWN_THREAT_PATTERNS = {
    "export_then_deletion": "mailbox export followed by deletion (T1070.008)",
    "inbox_rule_hiding": "inbox rule that hides, deletes or forwards mail (T1564.008)",
    "audit_tampering": "audit evidence tampered with: logging turned off or bypassed, a log cleared, or records "
                       "missing from it (T1562.008, T1070.001)",
    "new_app_mail_access": "application granted access to mail (T1098.003 / T1114.002)",
    "mailbox_purge": "mailbox content purged (T1070.008)",
}
RULE_INDICATORS = ("transport_rule_change",)


def _raise(severity: str, at_least: str) -> str:
    return max(severity, at_least, key=SEVERITIES.index)


def _reason(criterion: str, evidence: str) -> str:
    return f"{criterion}: {evidence}"


def decide(finding: Finding, assessment: Assessment | None = None) -> tuple[bool, str, list[str]]:
    answers = finding.answers
    legit = answers.get("legitimate_admin_activity")
    sequence = answers.get("export_followed_by_deletion")
    usual = answers.get("usual_for_account")
    mail = answers.get("transport_rule_with_suspicious_mail")
    justified = (assessment.justified if assessment is not None
                 else legit is not None and legit.answer == "yes")
    legit_why = legit.because if legit else "not assessed"
    reasons: list[str] = []
    severity = finding.severity

    if assessment is not None and assessment.iocs:
        reasons.append(_reason(KNOWN_THREAT, "IOC match: " + "; ".join(assessment.iocs[:3])))
        severity = _raise(severity, "critical")
    tools = assessment.clients if assessment is not None else []
    offensive = [c for c in tools if c.kind == "offensive"]
    if offensive:
        reasons.append(_reason(UNAUTHORIZED_TOOLS, "offensive tooling " + "; ".join(c.describe() for c in offensive)))
        reasons.append(_reason(KNOWN_THREAT, f"offensive tool {offensive[0].name} in use"))
        severity = _raise(severity, "critical")
    elif assessment is None and legit is not None and legit.answer == "no" and "offensive tooling" in legit.because:
        reasons.append(_reason(UNAUTHORIZED_TOOLS, legit.because))
        severity = _raise(severity, "critical")
    other_clients = [c for c in tools if c.kind in ("scripted", "webshell", "workstation_shell")]
    if other_clients:
        reasons.append(_reason(UNAUTHORIZED_TOOLS, "; ".join(c.describe() for c in other_clients)))
        severity = _raise(severity, "high")
    if assessment is not None and assessment.new_apps:
        reasons.append(_reason(UNAUTHORIZED_TOOLS, "application new to the tenant " + "; ".join(assessment.new_apps)))
        severity = _raise(severity, "high")
    web = [c for c in tools if c.kind in ("web_folder_export", "webshell")]
    if web:
        reasons.append(_reason(KNOWN_THREAT, "ProxyShell-style export to a web-served folder or by the IIS worker: "
                               + "; ".join(c.describe() for c in web)))
        severity = _raise(severity, "critical")
    if finding.indicator in EXPORT_DELETION and not justified:
        reasons.append(_reason(NO_JUSTIFICATION, legit_why))
        severity = _raise(severity, "high")
    if finding.indicator in EXPORT_DELETION and sequence is not None and sequence.answer == "yes" and not justified:
        reasons.append(_reason(KNOWN_THREAT, f"export followed by deletion: {sequence.because}"))
        severity = _raise(severity, "critical")
    sequence_cited = sequence is not None and sequence.answer == "yes" and finding.indicator in EXPORT_DELETION
    alerting = [rule for rule in finding.rules if rule.level != "informational"]
    if finding.indicator in KNOWN_THREAT_PATTERNS and alerting and not justified and not (
            finding.indicator == "export_then_deletion" and sequence_cited):
        reasons.append(_reason(KNOWN_THREAT, f"{KNOWN_THREAT_PATTERNS[finding.indicator]}; here: "
                                             f"{', '.join(rule.title for rule in alerting)}"))
        severity = _raise(severity, "high")
    consent = next((s for s in finding.l1 if s.step == "consent_grants" and s.result == "flag"), None)
    if consent is not None and finding.indicator in EXPORT_DELETION + ("mail_item_deletion",) and not justified:
        reasons.append(_reason(KNOWN_THREAT, f"consent → read → delete chain: {consent.detail}"))
        severity = _raise(severity, "critical")
    if finding.indicator in RULE_INDICATORS and not justified:
        evidence = legit_why
        if mail is not None and mail.answer == "yes":
            evidence += f"; coincides with suspicious mail: {mail.because}"
            severity = _raise(severity, "critical")
        reasons.append(_reason(RULE_WITHOUT_NECESSITY, evidence))
        severity = _raise(severity, "high")

    escalate = bool(reasons)
    if escalate:
        if usual is not None and usual.answer == "no":
            reasons.append(f"supporting: unusual for the account: {usual.because}")
        reasons += [f"supporting: {s.step.replace('_', ' ')}: {s.detail}" for s in finding.l1
                    if s.result == "flag" and s.step in ("sign_ins", "password_changes", "mfa_changes")]
        return True, severity, reasons
    if justified and assessment is not None:
        return False, finding.severity, [assessment.authorization()]
    if justified and legit is not None:
        return False, finding.severity, [f"authorized: {legit.because}"]
    if finding.rules and not alerting:
        return False, finding.severity, ["not escalated: only informational rules matched, which give context, "
                                         "not alerts: " + "; ".join(rule.title for rule in finding.rules)]
    return False, finding.severity, ["not escalated: no escalation criterion of the playbook is met"
                                     + (f" ({legit_why})" if legit else "")]
