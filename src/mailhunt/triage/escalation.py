"""The escalation decision: Tier 2 or not, with the reasons, by evaluating the policy's criteria.

Playbook: "Escalate to Tier 2 if mailbox export and deletion activities lack
legitimate justification, involve scripts or tools typically not used by
authorized personnel, or are associated with known threat patterns. If
suspicious changes in transport rules are discovered without accompanying
operational necessity, escalate the incident."

The criteria, their checks, the families and tools they apply to and the
severity floors are data (``policy.toml``); each check reads one signal
(``signals``). A finding escalates when a check of any criterion is met; every
reason starts with the criterion's name and ``Finding.decision`` records, for
every criterion, the playbook sentence, whether it was met, why or why not,
and the evidence event ids. Authorized activity stays a finding with
``escalate`` false and the reason "authorized: ...". The decision depends
only on the finding, its answers, its L1 steps, the assessment and the
evidence, so the same evidence and configuration always give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailhunt.findings import SEVERITIES, Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.legitimacy import Assessment, Judgment
from mailhunt.triage.policy import SCHEMA, Criterion, Policy, policy
from mailhunt.triage.signals import SIGNALS, Inputs, Outcome

SUPPORTING_STEPS = ("sign_ins", "password_changes", "mfa_changes")
EVIDENCE_IDS = 10


@dataclass
class Decision:
    escalate: bool
    severity: str
    reasons: list[str]
    record: dict


def _raise(severity: str, at_least: str | None) -> str:
    return max(severity, at_least or severity, key=SEVERITIES.index)


def _evaluate(criterion: Criterion, inputs: Inputs) -> tuple[dict, list[tuple[str, Outcome]]]:
    """One criterion: each applicable check's outcome, and the met ones with their check ids."""
    indicator = inputs.finding.indicator
    checks: list[dict] = []
    met: list[tuple[str, Outcome]] = []
    for check in criterion.checks:
        if not check.applies(indicator):
            continue
        if check.unless_justified and inputs.judgment.justified:
            outcomes = [Outcome(False, f"justified: {inputs.judgment.because}")]
        else:
            outcomes = SIGNALS[check.signal](check, inputs)
        hits = [o for o in outcomes if o.met]
        if hits:
            inputs.met_checks.add(check.id)
            met += [(check.id, o) for o in hits]
        shown = hits or outcomes[:1]
        checks += [{"id": check.id, "signal": check.signal, "met": o.met, "because": o.because,
                    "events": list(o.events), "severity": check.severity if o.met else None,
                    "applies_to": list(check.applies_to)} for o in shown]
    if checks:
        because = ("; ".join(c["because"] for c in checks if c["met"]) if met
                   else "; ".join(f"{c['id']}: {c['because']}" for c in checks))
    else:
        applies = sorted({a for c in criterion.checks for a in c.applies_to})
        because = f"does not apply to indicator {indicator} (applies to: {', '.join(applies)})"
    record = {"id": criterion.id, "name": criterion.name, "sentence": criterion.sentence.id,
              "quote": criterion.sentence.text, "clause": criterion.clause, "met": bool(met),
              "because": because, "checks": checks}
    return record, met


def _why_not(criterion: dict) -> str:
    """Why a criterion was not met, in short: its checks aimed at the finding's family, else every check."""
    if not criterion["checks"]:
        return criterion["because"]
    aimed = [c for c in criterion["checks"] if c["applies_to"]] or criterion["checks"]
    return "; ".join(f"{c['id']}: {c['because']}" for c in aimed)


def decide(finding: Finding, assessment: Assessment, judgment: Judgment, ctx: TriageContext | None = None,
           rules: Policy | None = None) -> Decision:
    """Evaluate every criterion of the policy for the finding."""
    rules = rules or policy()
    inputs = Inputs(finding, assessment, judgment, ctx, rules)
    severity = finding.severity
    reasons: list[str] = []
    structured: list[dict] = []
    criteria = []
    for criterion in rules.criteria:
        record, met = _evaluate(criterion, inputs)
        criteria.append(record)
        for check_id, outcome in met:
            reasons.append(f"{criterion.name}: {outcome.because}")
            structured.append({"text": reasons[-1], "criterion": criterion.id, "sentence": criterion.sentence.id,
                               "check": check_id, "events": list(outcome.events)})
            severity = _raise(severity, outcome.severity)
    escalate = bool(reasons)
    if escalate:
        usual = finding.answers.get("usual_for_account")
        if usual is not None and usual.answer == "no":
            reasons.append(f"supporting: unusual for the account: {usual.because}")
            structured.append({"text": reasons[-1], "criterion": None, "sentence": None, "check": "usual_for_account",
                               "events": finding.first_event_ids(EVIDENCE_IDS)})
        for step in finding.l1:
            if step.result == "flag" and step.step in SUPPORTING_STEPS:
                reasons.append(f"supporting: {step.step.replace('_', ' ')}: {step.detail}")
                structured.append({"text": reasons[-1], "criterion": None, "sentence": None, "check": step.step,
                                   "events": []})
    else:
        severity = finding.severity
        alerting = [rule for rule in finding.rules if rule.level != "informational"]
        if judgment.justified:
            text = judgment.because
        elif finding.rules and not alerting:
            text = ("not escalated: only informational rules matched, which give context, not alerts: "
                    + "; ".join(rule.title for rule in finding.rules))
        else:
            text = "not escalated: no escalation criterion of the playbook is met: " + "; ".join(
                f"{c['id']} ({c['name']}): {_why_not(c)}" for c in criteria)
        reasons = [text]
        structured = [{"text": text, "criterion": None, "sentence": None, "check": None,
                       "events": finding.first_event_ids(EVIDENCE_IDS)}]
    record = {"policy": SCHEMA, "escalate": escalate, "severity": severity,
              "legitimacy": judgment.to_json(), "criteria": criteria, "reasons": structured}
    return Decision(escalate, severity, reasons, record)
