"""The case stage, between triage and report: what follows a finding (containment plan, verification request)."""

from mailhunt.case.containment import add_case_plans, event_environments

__all__ = ["add_case_plans", "event_environments"]
