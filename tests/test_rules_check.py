"""`mailhunt rules check`: pySigma's validators, with the ATT&CK/D3FEND ids mailhunt ships and no network."""

import shutil
import socket
import urllib.request

import pytest
from sigma.data import mitre_attack, mitre_d3fend
from typer.testing import CliRunner

from mailhunt.cli import app
from mailhunt.detect.mitre_data import ATTACK_ATTRIBUTES, D3FEND_ATTRIBUTES
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from mailhunt.detect.validation import check_rules
from tests.corpus import SIGMAHQ

runner = CliRunner()
RULE = "m365_mailbox_export_request"


def test_shipped_rules_are_clean():
    report = check_rules(load_rules())
    assert report.issues == ()
    assert report.rules_checked >= 20
    assert {"identifier_uniqueness", "attacktag", "tag_format", "duplicate_detection"} <= set(report.checks)
    result = runner.invoke(app, ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert "0 issues" in result.output and "ATT&CK 18.1" in result.output


def _broken_rule_set(folder):
    source = (shipped_rules_dir() / "m365" / f"{RULE}.yml").read_text()
    (folder / f"{RULE}.yml").write_text(source)
    copy = source.replace("name: m365_mailbox_export_request", "name: m365_mailbox_export_request_copy")
    copy = copy.replace("title: Mailbox Export Request Created", "title: Mailbox Export Request Created Again")
    copy = copy.replace("    - attack.t1114.002\n", "    - attack.t1114.002\n    - attack.t9999\n    - Attack.Bad Tag\n")
    (folder / f"{RULE}_copy.yml").write_text(copy)


def test_a_broken_rule_set_is_reported_and_fails(tmp_path):
    _broken_rule_set(tmp_path)
    report = check_rules(load_rules([tmp_path]))
    found = {(i.check, i.detail) for i in report.issues}
    assert ("attacktag", "tag=attack.t9999") in found
    assert any(check == "tag_format" and "Bad Tag" in detail for check, detail in found)
    assert any(i.check == "identifier_uniqueness" and len(i.rules) == 2 for i in report.issues)
    assert any(i.check == "duplicate_detection" and len(i.rules) == 2 for i in report.issues)
    assert not any(i.detail == "tag=attack.t1114.002" for i in report.issues)

    result = runner.invoke(app, ["rules", "check", "--rules", str(tmp_path)])
    assert result.exit_code == 1
    assert "attack.t9999" in result.output and "identifier_uniqueness" in result.output


def test_third_party_rules_are_checked_against_the_shipped_attack_version():
    report = check_rules(load_rules([SIGMAHQ]))
    unknown = {i.detail for i in report.issues if i.check == "attacktag"}
    # tags of ATT&CK releases after 18.1 are named as such, not silently accepted
    assert "tag=attack.stealth" in unknown
    assert all("ATT&CK 18.1" in i.description for i in report.issues if i.check == "attacktag")
    assert "tag=attack.t1114.002" not in unknown and "tag=attack.collection" not in unknown


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network or pySigma's download cache fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network or cache use attempted: {args[:1]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(mitre_attack, "urlopen", refuse)
    monkeypatch.setattr(mitre_d3fend, "urlopen", refuse)
    monkeypatch.setattr(mitre_attack, "_get_cache", refuse)
    monkeypatch.setattr(mitre_d3fend, "_get_cache", refuse)
    # forget anything loaded earlier in this process, so pySigma's lazy loader would run again
    for module, prefix, names in ((mitre_attack, "mitre_attack_", ATTACK_ATTRIBUTES),
                                  (mitre_d3fend, "mitre_d3fend_", D3FEND_ATTRIBUTES)):
        for name in names:
            if prefix + name in vars(module):  # hasattr would call the module's __getattr__, the loader itself
                monkeypatch.delattr(module, prefix + name)


def test_pysigma_would_download_without_the_shipped_data(no_network):
    with pytest.raises(AssertionError, match="network or cache use attempted"):
        _ = mitre_attack.mitre_attack_techniques  # the module's lazy attribute loads the data on first read


def test_check_and_export_touch_no_network(no_network, tmp_path):
    shutil.copy(SIGMAHQ / "win_exchange_proxyshell_remove_mailbox_export.yml", tmp_path)
    (tmp_path / "d3fend.yml").write_text(
        (shipped_rules_dir() / "m365" / f"{RULE}.yml").read_text().replace("    - attack.collection\n",
                                                                           "    - attack.collection\n    - d3fend.d3-nope\n"))
    report = check_rules(load_rules([tmp_path]))
    assert {(i.check, i.detail) for i in report.issues} >= {("d3_fendtag", "tag=d3fend.d3-nope"),
                                                           ("attacktag", "tag=attack.stealth")}
    for target in ("splunk", "esql", "eql", "lucene", "kusto"):
        result = runner.invoke(app, ["rules", "export", "--target", target, "--out", str(tmp_path / target)])
        assert result.exit_code == 0, result.output
    assert mitre_attack.mitre_attack_version == "18.1"
