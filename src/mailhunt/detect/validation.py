"""``mailhunt rules check``: pySigma's rule validators, offline, over a rule set.

The validators are pySigma's own (``sigma.validators.core``: identifiers present
and unique, titles, references and tags not repeated, tags well-formed, ATT&CK,
D3FEND, TLP, CAR, CVE tags valid, conditions and detections not dangling,
modifier combinations, wildcards and values ...) plus one of mailhunt's:
two rules with the same logsource and the same detection. Which validators run
and the reasoned per-rule exclusions are data: ``mailhunt/data/rule_checks.yml``.

The ATT&CK and D3FEND validators read the ids that mailhunt ships
(``mailhunt.detect.mitre_data``); nothing is downloaded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, fields
from importlib import resources
from typing import ClassVar

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.base import (
    SigmaRuleValidator,
    SigmaValidationIssue,
    SigmaValidationIssueSeverity,
)
from sigma.validators.core import validator_classname_to_identifier
from sigma.validators.core import validators as core_validators

from mailhunt.detect.mitre_data import MitreDataInfo, use_shipped_mitre_data
from mailhunt.detect.rules import LoadedRule

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass
class DuplicateDetectionIssue(SigmaValidationIssue):
    description: ClassVar[str] = "Rules with the same logsource and the same detection"
    severity: ClassVar[SigmaValidationIssueSeverity] = SigmaValidationIssueSeverity.MEDIUM


class DuplicateDetectionValidator(SigmaRuleValidator):
    """Two rules that select exactly the same events: one of them is redundant or a copy left unedited."""

    def __init__(self) -> None:
        # only SigmaRules go in; typed as the list an issue holds
        self.seen: dict[str, list[SigmaRule | SigmaCorrelationRule]] = defaultdict(list)

    def validate(self, rule: SigmaRule | SigmaCorrelationRule) -> list[SigmaValidationIssue]:
        if isinstance(rule, SigmaRule):
            document = rule.to_dict()
            key = json.dumps([document.get("logsource"), document.get("detection")], sort_keys=True, default=str)
            self.seen[key].append(rule)
        return []

    def finalize(self) -> list[SigmaValidationIssue]:
        return [DuplicateDetectionIssue(rules) for rules in self.seen.values() if len(rules) > 1]


VALIDATORS: dict[str, type[SigmaRuleValidator]] = {**core_validators, "duplicate_detection": DuplicateDetectionValidator}


@dataclass(frozen=True)
class CheckIssue:
    check: str
    severity: str
    description: str
    detail: str
    rules: tuple[str, ...]


@dataclass(frozen=True)
class CheckReport:
    rules_checked: int
    checks: tuple[str, ...]
    issues: tuple[CheckIssue, ...]
    mitre: MitreDataInfo


def _rule_label(rule: SigmaRule | SigmaCorrelationRule, paths: dict[int, str]) -> str:
    where = paths.get(id(rule), "")
    return f"{where} ({rule.name or rule.id or rule.title})" if where else str(rule.name or rule.id or rule.title)


def _detail(issue: SigmaValidationIssue) -> str:
    return " ".join(f"{f.name}={getattr(issue, f.name)}" for f in fields(issue)
                    if f.name not in ("rules", "severity", "description") and getattr(issue, f.name) is not None)


def _data_note(check: str, mitre: MitreDataInfo) -> str:
    if check == "attacktag":
        return f" (not in MITRE ATT&CK {mitre.attack_version}, the data mailhunt ships)"
    if check == "d3_fendtag":
        return f" (not in MITRE D3FEND {mitre.d3fend_version}, the data mailhunt ships)"
    return ""


def build_validator() -> SigmaValidator:
    text = (resources.files("mailhunt") / "data" / "rule_checks.yml").read_text(encoding="utf-8")
    return SigmaValidator.from_yaml(text, VALIDATORS)


def check_rules(rules: list[LoadedRule]) -> CheckReport:
    """Validate every rule; issues sorted by severity, then check, then rule."""
    mitre = use_shipped_mitre_data()
    validator = build_validator()
    paths = {id(r.rule): str(r.path) for r in rules}
    issues: list[CheckIssue] = []
    for check in validator.validators:
        name = validator_classname_to_identifier(type(check).__name__)
        found = [issue for r in rules if type(check) not in validator.exclusions[r.rule.id]
                 for issue in check.validate(r.rule)]
        found.extend(check.finalize())
        issues.extend(CheckIssue(check=name, severity=i.severity.name.lower(),
                                 description=i.description + _data_note(name, mitre),
                                 detail=_detail(i), rules=tuple(sorted(_rule_label(r, paths) for r in i.rules)))
                      for i in found)
    issues.sort(key=lambda i: (SEVERITY_ORDER.get(i.severity, 9), i.check, i.rules, i.detail))
    checks = tuple(sorted(validator_classname_to_identifier(type(v).__name__) for v in validator.validators))
    return CheckReport(len(rules), checks, tuple(issues), mitre)
