"""The triage policy file: every name it uses exists, its quotes are the playbook's, and it alone decides."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.config import Config
from mailhunt.detect.rules import INDICATORS, load_rules
from mailhunt.hunt import hunt
from mailhunt.triage import (
    context,
    escalation,
    signals,
    transport_rule_with_suspicious_mail,
)
from mailhunt.triage.policy import SIGNALS, PolicyError, parse_policy, policy
from tests.corpus import SHARED
from tests.test_sources_unix import FIXTURES

PLAYBOOK = SHARED / "seed" / "000_6345c043a920f09b.txt"


def test_every_indicator_and_rule_the_policy_names_exists():
    loaded = policy()
    assert loaded.indicators <= set(INDICATORS), loaded.indicators - set(INDICATORS)
    names = {rule.rule.name for rule in load_rules()}
    assert loaded.rules <= names, loaded.rules - names
    assert set(SIGNALS) == set(signals.SIGNALS)


@pytest.mark.skipif(not PLAYBOOK.exists(), reason="the playbook is in the shared folder beside the repository")
def test_every_sentence_is_quoted_word_for_word_from_the_playbook():
    text = " ".join(PLAYBOOK.read_text(encoding="utf-8").split())
    loaded = policy()
    assert {s.id for s in loaded.sentences.values()} == {"DE-1", "DE-2"}
    for sentence in loaded.sentences.values():
        assert sentence.text in text
    assert [c.id for c in loaded.criteria] == ["DE-1a", "DE-1b", "DE-1c", "DE-2"]


def test_triage_reads_the_families_from_the_policy_only():
    loaded = policy()
    assert not hasattr(context, "EXPORT_INDICATORS") and not hasattr(context, "DELETION_INDICATORS")
    assert transport_rule_with_suspicious_mail.RULE_INDICATORS == loaded.family("rule_change")
    source = (escalation.__file__, signals.__file__)
    for path in source:
        text = Path(path).read_text(encoding="utf-8")
        assert not re.search(r'"(mailbox_export|transport_rule_change|unix_mail_utility_deletion)"', text), path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["criteria"][1]["checks"][0].update(signal="vibes"), "criteria[1].checks[0]: signal 'vibes'"),
    (lambda d: d["criteria"][0].update(clause="lacks a ticket"), "clause 'lacks a ticket' is not part of sentence DE-1"),
    (lambda d: d["tools"][0].update(require="sudo"), "tools[0]: unknown key 'require'"),
    (lambda d: d["threat_patterns"][5].update(all_of=["(unclosed"]), "threat_patterns[5]: '(unclosed' is not a valid"),
    (lambda d: d["criteria"][2]["checks"][0].update(severity="urgent"), "severity 'urgent' is not one of"),
])
def test_a_mistake_in_the_policy_names_its_place(change, message):
    data = copy.deepcopy(policy().raw)
    change(data)
    with pytest.raises(PolicyError, match=re.escape(message)):
        parse_policy(data)


def test_a_rule_added_to_a_tool_is_a_data_change_that_escalates(tmp_path, monkeypatch):
    """The Envelope Index renamed away by a shell is not a listed tool; listing its rule in the data escalates it."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "eslogger.ndjson").write_bytes((FIXTURES / "eslogger.ndjson").read_bytes())

    def renamed(finding_list):
        return next(f for f in finding_list if f["indicator"] == "local_mail_store_tampering")

    before = renamed(hunt([evidence], tmp_path / "before", Config()).document["findings"])
    assert before["escalate"] is False
    data = copy.deepcopy(policy().raw)
    data["tools"][0]["rules"].append("macos_mail_store_file_deletion")
    data["tools"][0]["description"] = "a shell or osascript removing Apple Mail's messages or Envelope Index"
    monkeypatch.setattr(escalation, "policy", lambda: parse_policy(data))
    after = renamed(hunt([evidence], tmp_path / "after", Config()).document["findings"])
    assert after["escalate"] is True
    assert after["reasons"][0].startswith("scripts or tools not used by authorized personnel: a shell or osascript "
                                          "removing Apple Mail's messages or Envelope Index: rename")


def test_rules_list_prints_the_policy():
    result = CliRunner().invoke(app, ["rules", "list", "--policy"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for text in ("Escalation criteria and their checks", "DE-1b scripts or tools not used by authorized personnel",
                 "endpoint_mail_tool", "atomic_copy_then_delete", "mail_utility_on_another_mailbox",
                 "involve scripts or tools typically not used by authorized personnel"):
        assert text in result.output
    assert "not in this rule set" not in result.output
