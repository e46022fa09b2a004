"""What a rule set holds, and whether each rule can run on mailhunt's events (and why not)."""

from __future__ import annotations

from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationRule

from mailhunt.detect.engine import DetectionSettings, compile_rules
from mailhunt.detect.examples import ExampleFileError, load_example_cases
from mailhunt.detect.rules import LoadedRule


@dataclass(frozen=True)
class RuleInfo:
    id: str
    name: str | None
    title: str
    indicator: str | None
    level: str
    status: str | None
    logsource: str
    example_cases: int
    example_records: int
    runs: bool
    reason: str | None
    path: str


def _logsource(rule: LoadedRule) -> str:
    if isinstance(rule.rule, SigmaCorrelationRule):
        return f"correlation ({rule.rule.type.name.lower()})"
    ls = rule.rule.logsource
    return "/".join(v for v in (ls.product, ls.service, ls.category) if v) or "(none)"


def describe_rules(rules: list[LoadedRule], settings: DetectionSettings | None = None) -> list[RuleInfo]:
    compiled = compile_rules(rules, settings or DetectionSettings())
    infos = []
    for rule in rules:
        try:
            cases = load_example_cases(rule)
        except ExampleFileError:
            cases = []
        status = rule.rule.status.name.lower() if rule.rule.status else None
        infos.append(RuleInfo(
            id=rule.id, name=rule.rule.name, title=rule.title, indicator=rule.indicator, level=rule.level,
            status=status, logsource=_logsource(rule), example_cases=len(cases),
            example_records=sum(c.record_count for c in cases),
            runs=rule.id not in compiled.skipped, reason=compiled.skipped.get(rule.id), path=str(rule.path)))
    return sorted(infos, key=lambda i: (i.indicator or "~", i.name or i.title, i.id))
