"""`mailhunt rules list` and `mailhunt rules test` on the shipped rules, a third-party folder and a small one of our own."""

import shutil

from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.detect.catalog import describe_rules
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from tests.corpus import SIGMAHQ

runner = CliRunner()


def test_every_shipped_rule_runs_and_has_examples():
    infos = describe_rules(load_rules())
    assert len(infos) >= 20
    assert all(info.runs and info.reason is None for info in infos)
    assert all(info.example_cases >= 2 and info.example_records >= info.example_cases for info in infos)


def test_third_party_rules_list_with_the_reason_they_cannot_run():
    infos = {info.title: info for info in describe_rules(load_rules([SIGMAHQ]))}
    remove_export = infos["Remove Exported Mailbox from Exchange Webserver"]
    assert remove_export.runs and remove_export.logsource == "windows/msexchange-management"
    forwarding = [info for info in infos.values() if not info.runs and "OperationProperties" in (info.reason or "")]
    assert forwarding, "a rule on a field mailhunt does not produce says which field"
    pst = infos["PST Export Alert Using New-ComplianceSearchAction"]
    assert pst.runs and pst.logsource == "m365/threat_management"
    assert all(info.example_cases == 0 for info in infos.values())


def test_rules_list_command_prints_the_table():
    result = runner.invoke(app, ["rules", "list", "--rules", str(SIGMAHQ)])
    assert result.exit_code == 0, result.output
    assert "PST Export Alert" in result.output and "no mailhunt reader produces" in result.output


def _copy_rule(name, folder):
    for suffix in (".yml", ".examples.yml"):
        shutil.copy(shipped_rules_dir() / "m365" / f"{name}{suffix}", folder / f"{name}{suffix}")


def test_rules_test_passes_and_fails_as_the_examples_say(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _copy_rule("m365_audit_logging_disabled", good)
    result = runner.invoke(app, ["rules", "test", "--rules", str(good)])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output

    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    examples = bad / "m365_audit_logging_disabled.examples.yml"
    examples.write_text(examples.read_text().replace("expect: no_match", "expect: match", 1))
    result = runner.invoke(app, ["rules", "test", "--rules", str(bad)])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "1 failed" in result.output


def test_rules_folder_must_exist(tmp_path):
    result = runner.invoke(app, ["rules", "list", "--rules", str(tmp_path / "nope")])
    assert result.exit_code == 2
