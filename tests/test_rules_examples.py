"""Every shipped rule decides its own example records as they say, read through the real readers."""

import uuid
from functools import lru_cache

import pytest

from mailhunt.detect.examples import (
    NO_CASE,
    ExampleFileError,
    load_example_cases,
    run_rule_examples,
)
from mailhunt.detect.rules import INDICATORS, load_rules

RULES = load_rules()
BY_ID = {rule.id: rule for rule in RULES}


def _label(rule) -> str:
    return rule.rule.name or rule.path.stem


def _cases():
    for rule in RULES:
        try:
            names = [case.name for case in load_example_cases(rule)]
        except ExampleFileError:
            names = [NO_CASE]
        for name in names:
            yield pytest.param(rule.id, name, id=f"{_label(rule)}::{name}")


@lru_cache(maxsize=1)
def _results():
    return {(result.rule_id, result.case): result for result in run_rule_examples(RULES)}


@pytest.mark.parametrize("rule_id, case", list(_cases()))
def test_rule_example(rule_id, case):
    result = _results()[(rule_id, case)]
    assert result.passed, f"{_label(BY_ID[rule_id])} / {case}: {result.detail}"


def _referenced_names() -> set[str]:
    return {ref.reference for rule in RULES if rule.is_correlation for ref in rule.rule.rules}


@pytest.mark.parametrize("rule", RULES, ids=_label)
def test_shipped_rule_metadata(rule):
    name = rule.rule.name
    assert name and name.startswith(("m365_", "azure_", "windows_", "linux_", "macos_", "exchange_")) \
        and rule.path.stem == name
    assert rule.id == str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:mailhunt:rule:{name}")), "id is uuid5 of the name"
    assert rule.rule.status and rule.rule.status.name == "EXPERIMENTAL"
    assert rule.rule.author == "mailhunt" and rule.rule.description and rule.rule.references
    assert rule.rule.falsepositives and rule.rule.level
    if rule.indicator is None:
        assert name in _referenced_names(), "a rule without an indicator must feed a correlation"
    else:
        assert rule.indicator in INDICATORS
    assert rule.attack, "every rule names its ATT&CK technique"
