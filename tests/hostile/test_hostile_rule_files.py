"""A rule file or configuration that is broken or hostile is one line naming the file (exit 2), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.detect.rules import RuleLoadError, load_rules, shipped_rules_dir

runner = CliRunner()

VALID_RULE = """title: Mailbox export
id: 9b0e3f4a-0c1d-4e2f-8a3b-5c6d7e8f9a0b
logsource:
    product: m365
    service: audit
detection:
    selection:
        Operation: New-MailboxExportRequest
    condition: selection
level: high
"""


def _billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        previous, current = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{current}: &{current} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join([*lines, VALID_RULE.replace("New-MailboxExportRequest", "*i")]) + "\n"


HOSTILE_FILES = {
    "not_yaml": (VALID_RULE.replace("    condition: selection", "    condition: [selection"),
                 "not valid YAML: "),
    "a_list": ("- title: x\n- title: y\n", "YAML document 1 is a list, not a mapping"),
    "a_scalar": ("just some words\n", "YAML document 1 is a str, not a mapping"),
    "second_document_a_list": (VALID_RULE + "---\n- 1\n", "YAML document 2 is a list"),
    "billion_laughs": (_billion_laughs(), "values once its YAML aliases (*name) are expanded"),
    "alias_in_itself": ("a: &a [*a]\n" + VALID_RULE.replace("New-MailboxExportRequest", "*a"),
                        "a YAML alias (*name) contains itself"),
    "too_deep": (VALID_RULE.replace("New-MailboxExportRequest", "[" * 5000 + "]" * 5000), "not valid YAML: "),
    "odd_shapes": (VALID_RULE.replace("id: 9b0e3f4a-0c1d-4e2f-8a3b-5c6d7e8f9a0b", "id: 5"), "not a valid Sigma rule ("),
    "bad_logsource": (VALID_RULE.replace("    product: m365\n    service: audit\n", "    - m365\n"),
                      "logsource"),
}


def _one_line_error(result, path) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(path) in lines[0].replace("\n", "")
    return lines[0]


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_a_hostile_rule_file_is_one_line_naming_it(tmp_path, name):
    text, expected = HOSTILE_FILES[name]
    path = tmp_path / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    line = _one_line_error(runner.invoke(app, ["rules", "list", "--rules", str(tmp_path)], terminal_width=1000), path)
    assert expected in line


def test_rule_text_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes(VALID_RULE.replace("Mailbox export", "Exportaci\xf3n").encode("latin-1"))
    with pytest.raises(RuleLoadError, match=r"latin1\.yml: not UTF-8 text \(byte 0xf3 at offset 16\)"):
        load_rules([tmp_path])


def test_things_named_like_rule_files_that_are_not_files(tmp_path):
    (tmp_path / "folder.yml").mkdir()
    (tmp_path / "folder.yml" / "rule.yml").write_text(VALID_RULE, encoding="utf-8")
    assert [r.title for r in load_rules([tmp_path])] == ["Mailbox export"]
    os.mkfifo(tmp_path / "pipe.yml")  # reading it would wait for a writer forever
    with pytest.raises(RuleLoadError, match=r"pipe\.yml: not a regular file"):
        load_rules([tmp_path])


def test_an_oversized_rule_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yml"
    path.write_text(VALID_RULE + "description: " + "x" * (5 << 20) + "\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match=r"huge\.yml: larger than 4 MiB"):
        load_rules([tmp_path])


def test_aliases_within_reason_still_load():
    """The shipped transport-rule rule lists its words once and refers to them four times."""
    assert any(r.rule.name == "m365_transport_rule_dangerous_action" for r in load_rules([shipped_rules_dir()]))


def test_hunt_with_a_hostile_rule_file_is_a_usage_error(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    bad = rules / "not_yaml.yml"
    bad.write_text(HOSTILE_FILES["not_yaml"][0], encoding="utf-8")
    evidence = tmp_path / "empty.csv"
    evidence.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["hunt", str(evidence), "--out", str(tmp_path / "case"), "--rules", str(rules)],
                           terminal_width=1000)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{bad}: not valid YAML: " in result.output


def test_a_hostile_rule_file_stops_the_hunt_before_any_evidence_is_read(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "not_yaml.yml").write_text(HOSTILE_FILES["not_yaml"][0], encoding="utf-8")
    evidence = Path(__file__).parents[2] / "examples" / "incident-2026-10" / "purview_audit_export.csv"
    case = tmp_path / "case"
    result = runner.invoke(app, ["hunt", str(evidence), "--out", str(case), "--rules", str(rules)],
                           terminal_width=1000)
    assert result.exit_code == 2
    assert not (case / "case.duckdb").exists()


@pytest.mark.parametrize("kind", ["folder", "deeply_nested"])
def test_a_config_that_cannot_be_read_is_one_line(tmp_path, kind):
    if kind == "folder":
        config = tmp_path / "mailhunt.toml"
        config.mkdir()
        expected = "is a folder, not a mailhunt.toml file"
    else:
        config = tmp_path / "deep.toml"
        config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
        expected = "invalid TOML: nested too deeply"
    evidence = tmp_path / "empty.csv"
    evidence.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["hunt", str(evidence), "--out", str(tmp_path / "case"), "--config", str(config)],
                           terminal_width=1000)
    assert expected in _one_line_error(result, config)
    assert not (tmp_path / "case").exists()
