"""Counts and missing names read as sentences in every text the reports show."""

from datetime import UTC, datetime

from mailhunt.findings import EvidenceEvent, Finding, RuleRef
from mailhunt.triage.l1_steps import correlated_findings
from mailhunt.wording import account_name, count_of


def test_count_of_agrees_in_number():
    assert count_of(1, "finding") == "1 finding"
    assert count_of(2, "finding") == "2 findings"
    assert count_of(1, "password change or reset", "password changes or resets") == "1 password change or reset"
    assert count_of(0, "earlier event", zero="no earlier events") == "no earlier events"
    assert count_of(0, "event") == "0 events"


def test_a_missing_account_is_never_written_as_none():
    assert account_name(None) == "an account the log does not name" and account_name("") == account_name(None)
    event = EvidenceEvent(event_id="e1", timestamp=datetime(2026, 10, 13, tzinfo=UTC), action="Clear-Log",
                          actor=None, target=None, host=None, source_ip=None, user_agent=None, app_id=None,
                          parameters=None, subject=None, rule_name=None, source="x.evtx", sha256="0" * 64, record=1)
    finding = Finding(indicator="audit_tampering", actor=None, rules=[RuleRef("r", "t", "high")], attack=[],
                      events=[event])
    step = correlated_findings(finding, [finding], None)
    assert "None" not in step.detail and step.detail == "no other finding for an account the log does not name"
