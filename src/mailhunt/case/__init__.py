"""The case stage, between triage and report: what follows a finding.

Evidence preserved with its chain of custody and the checks on it
(``acquisition``, ``custody``, ``verify``), the containment plan and the
verification request (``containment``), the logging to enhance and the OCSF
findings, the timeline and the indicators
(``timeline``, ``iocs``).
"""

from mailhunt.case.containment import add_case_plans, event_environments

__all__ = ["add_case_plans", "event_environments"]
