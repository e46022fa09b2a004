"""SigmaHQ's Windows and Exchange rules, unchanged, on the example evidence of our own rules.

The rules are loaded from ../shared/corpus/sigmahq (Detection Rule License,
see its PROVENANCE.md); the evidence is the example records beside our shipped
rules, read by the real readers. Where SigmaHQ's rule misses what ours catch,
the test says so.
"""

import hashlib
import io

import orjson
import pytest

from mailhunt.detect.engine import compile_rules, run_rules
from mailhunt.detect.examples import load_example_cases
from mailhunt.detect.rules import load_rules
from mailhunt.sources import ReadContext, identify
from mailhunt.store import CaseStore
from tests.corpus import SIGMAHQ

OURS = {rule.rule.name: rule for rule in load_rules()}
SIGMA = load_rules([SIGMAHQ])
BY_TITLE = {rule.title: rule for rule in SIGMA}


def example_records(rule_name: str, case_name: str) -> list[dict]:
    [case] = [c for c in load_example_cases(OURS[rule_name]) if c.name == case_name]
    return case.records


def sigma_matches(records: list[dict], rules=None) -> dict[str, int]:
    """Titles of the SigmaHQ rules that match the records, with their match counts."""
    rules = rules or SIGMA
    store = CaseStore(":memory:")
    try:
        for record in records:
            line = orjson.dumps(record) + b"\n"
            source = identify(line)
            assert source is not None
            ctx = ReadContext("example", hashlib.sha256(line).hexdigest())
            for table in source.read(io.BufferedReader(io.BytesIO(line)), ctx):
                store.append(table)
            assert ctx.rejected == 0, ctx.rejections
        store.deduplicate()
        run = run_rules(store, compile_rules(rules))
    finally:
        store.close()
    return {rule.title: run.matched.get(rule.id, 0) for rule in rules if run.matched.get(rule.id, 0)}


def test_windows_sigmahq_rules_compile():
    compiled = compile_rules(SIGMA)
    runnable = {rule.title for rule, _ in compiled.single}
    windows = {"Remove Exported Mailbox from Exchange Webserver", "Mailbox Export to Exchange Webserver",
               "Suspicious PowerShell Mailbox Export to Share - PS", "Suspicious PowerShell Mailbox Export to Share",
               "Inbox Rules Creation Or Update Activity Via ExchangePowerShell Cmdlet",
               "Windows Mail App Mailbox Access Via PowerShell Script"}
    assert windows <= runnable, f"not runnable: {compiled.skipped}"


@pytest.mark.parametrize("rule_name, case_name, sigma_title", [
    ("m365_mailbox_export_request", "export request in the MSExchange Management log", "Mailbox Export to Exchange Webserver"),
    ("m365_mailbox_export_request_removed", "removal in the MSExchange Management log",
     "Remove Exported Mailbox from Exchange Webserver"),
    ("windows_mail_cmdlet_in_powershell", "export request in a script block",
     "Suspicious PowerShell Mailbox Export to Share - PS"),
    ("windows_mail_cmdlet_in_process_creation", "powershell runs an export request",
     "Suspicious PowerShell Mailbox Export to Share"),
    ("windows_mail_store_tampering_in_powershell", "atomic copy and delete mailbox data",
     "Windows Mail App Mailbox Access Via PowerShell Script"),
])
def test_sigmahq_rule_matches_our_example_evidence(rule_name, case_name, sigma_title):
    assert sigma_title in BY_TITLE, sorted(BY_TITLE)
    matches = sigma_matches(example_records(rule_name, case_name))
    assert matches.get(sigma_title) == 1, matches


def test_sigmahq_rules_leave_unrelated_evidence_alone():
    records = example_records("windows_mail_cmdlet_in_powershell", "listing mailboxes") + \
        example_records("windows_mail_cmdlet_in_process_creation", "powershell lists mailboxes")
    assert sigma_matches(records) == {}


def test_sigmahq_removal_rule_needs_confirm_false_where_ours_does_not():
    """SigmaHQ's ProxyShell removal rule keys on ` -Confirm "False"`; a removal without it slips past it."""
    removal = example_records("m365_mailbox_export_request_removed", "removal in the MSExchange Management log")
    quiet = orjson.loads(orjson.dumps(removal[0]))
    data = quiet["Event"]["EventData"]["Data"]["#text"]
    data[1] = '-Identity "kim.akers@corp.example\\MailboxExport"'
    assert "Remove Exported Mailbox from Exchange Webserver" not in sigma_matches([quiet])
    ours = [rule for rule in load_rules() if rule.rule.name == "m365_mailbox_export_request_removed"]
    assert sigma_matches([quiet], ours) == {ours[0].title: 1}


def test_sigmahq_share_export_rule_misses_a_local_path_export_ours_reports():
    records = example_records("m365_mailbox_export_request", "export request failed in the MSExchange Management log")
    assert "Mailbox Export to Exchange Webserver" not in sigma_matches(records)
    ours = [rule for rule in load_rules() if rule.rule.name == "m365_mailbox_export_request"]
    assert sigma_matches(records, ours) == {ours[0].title: 1}


def test_inbox_rule_script_block_matches_sigmahq_hunting_rule():
    record = example_records("windows_mail_cmdlet_in_powershell", "export request in a script block")[0]
    block = orjson.loads(orjson.dumps(record))
    block["Event"]["EventData"]["ScriptBlockText"] = (
        "New-InboxRule -Mailbox kim.akers -Name '.' -SubjectContainsWords 'security alert' -MoveToFolder 'RSS Feeds'")
    assert sigma_matches([block]) == {"Inbox Rules Creation Or Update Activity Via ExchangePowerShell Cmdlet": 1}


def test_windows_rule_on_a_field_mailhunt_does_not_produce_is_reported_not_applicable(tmp_path):
    (tmp_path / "original_file_name.yml").write_text("""
title: PowerShell Renamed
id: 0f5a7f0e-2d4b-4f8e-9d77-1b0f3c2e9a11
status: test
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        OriginalFileName: PowerShell.EXE
    filter:
        Image|endswith: '\\\\powershell.exe'
    condition: selection and not filter
level: medium
""", encoding="utf-8")
    compiled = compile_rules(load_rules([tmp_path]))
    assert compiled.single == []
    [reason] = compiled.skipped.values()
    assert "OriginalFileName" in reason and "not in mailhunt's event model" in reason
