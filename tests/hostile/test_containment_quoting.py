"""Identities from the evidence stay one inert literal argument in every containment command."""

import shlex
import unicodedata
from datetime import UTC, datetime
from html import escape as html_escape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markupsafe import escape as markup_escape

from mailhunt.case.containment import containment_steps
from mailhunt.case.quoting import (
    UNSEEN_CATEGORIES,
    UnsafeIdentity,
    powershell_quote,
    shell_quote,
)
from mailhunt.findings import EvidenceEvent, Finding, RuleRef
from mailhunt.report.html import render_html
from mailhunt.report.markdown import render_markdown

HOSTILE = "a'; Remove-Mailbox -Identity * ;'"
PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def read_powershell_literal(text: str, start: int) -> tuple[str, int]:
    """Read the single-quoted PowerShell string starting at ``text[start]`` as PowerShell does: a quote
    character (any of the four it accepts) followed by another one is one literal quote; any other
    quote character ends the string. Returns the value and the index just past the closing quote."""
    assert text[start] in PS_QUOTES
    value, i = [], start + 1
    while i < len(text):
        if text[i] in PS_QUOTES:
            if i + 1 < len(text) and text[i + 1] in PS_QUOTES:
                value.append(text[i])
                i += 2
                continue
            return "".join(value), i + 1
        value.append(text[i])
        i += 1
    raise AssertionError("unterminated string")


def _event(n, action, target, rule_name=None, dataset_host="EXCH01"):
    return EvidenceEvent(event_id=f"e{n}", timestamp=datetime(2026, 10, 13, 23, n, tzinfo=UTC), action=action,
                         actor=None, target=target, host=dataset_host, source_ip=None, user_agent=None, app_id=None,
                         parameters=None, subject=None, rule_name=rule_name, source="x.csv", sha256="0" * 64,
                         record=n)


def _finding(indicator, actor, events, escalate=True):
    return Finding(indicator=indicator, actor=actor, rules=[RuleRef("r", "rule", "high")], attack=[], events=events,
                   escalate=escalate)


def test_hostile_inbox_rule_name_is_one_powershell_argument():
    finding = _finding("inbox_rule_hiding", "j.doe@fabrikam-labs.com",
                       [_event(1, "New-InboxRule", "m.chen@fabrikam-labs.com", rule_name=HOSTILE)])
    steps = containment_steps(finding, {"e1": "exchange_online"})
    disable = next(s for s in steps if s["id"] == "eo_disable_inbox_rule")
    command = disable["command"]
    assert "-Identity 'a''; Remove-Mailbox -Identity * ;'''" in command
    start = command.index("-Identity ") + len("-Identity ")
    value, end = read_powershell_literal(command, start)
    assert value == HOSTILE and command[end:] == " -Confirm:$false"
    assert disable["identities"]["rule_name"] == HOSTILE


def test_hostile_account_is_one_shell_word():
    finding = _finding("unix_mail_utility_deletion", HOSTILE, [_event(1, "mail", None)])
    steps = containment_steps(finding, {"e1": "linux"})
    lock = next(s for s in steps if s["id"] == "lx_lock_account")
    assert shlex.split(lock["command"]) == ["sudo", "usermod", "--lock", "--expiredate", "1", "--", HOSTILE]
    jobs = next(s for s in steps if s["id"] == "lx_list_jobs")
    tokens = list(shlex.shlex(jobs["command"], posix=True, punctuation_chars=True))
    assert tokens[:6] == ["sudo", "crontab", "-l", "-u", HOSTILE, ";"] and tokens.count(";") == 2


def test_control_characters_refuse_the_step_instead_of_writing_it():
    name = "rule\r\nRemove-Mailbox -Identity *"
    finding = _finding("inbox_rule_hiding", "j.doe@fabrikam-labs.com",
                       [_event(1, "New-InboxRule", "m.chen@fabrikam-labs.com", rule_name=name)])
    disable = next(s for s in containment_steps(finding, {"e1": "exchange_online"}) if s["id"] == "eo_disable_inbox_rule")
    assert disable["command"] is None and disable["undo"] is None
    assert "rule_name" in disable["refused"] and "control characters" in disable["refused"]


def test_an_account_that_reads_as_an_option_is_refused_in_shell_commands():
    finding = _finding("unix_mail_utility_deletion", "--help", [_event(1, "mail", None)])
    steps = containment_steps(finding, {"e1": "linux"})
    with_account = [s for s in steps if "account" in s["identities"]]
    assert with_account and all(s["command"] is None and "option" in s["refused"] for s in with_account)
    spool = next(s for s in steps if s["id"] == "lx_restore_spool")
    assert "/var/mail/--help" in shlex.split(spool["command"])   # a path, not an option


def test_findings_not_escalated_get_no_steps():
    finding = _finding("inbox_rule_hiding", "j.doe@fabrikam-labs.com",
                       [_event(1, "New-InboxRule", "m.chen@fabrikam-labs.com", rule_name=".")], escalate=False)
    assert containment_steps(finding, {"e1": "exchange_online"}) == []


def test_a_finding_on_two_environments_gets_both_plans_in_order():
    finding = _finding("mailbox_export", "CORP\\jdoe", [_event(1, "New-MailboxExportRequest", "m.chen@corp.example"),
                                                        _event(2, "New-MailboxExportRequest", "m.chen@corp.example")])
    steps = containment_steps(finding, {"e1": "exchange_online", "e2": "exchange_onprem"})
    environments = [s["environment"] for s in steps]
    assert environments == sorted(environments, key=["exchange_online", "exchange_onprem"].index)
    disable = next(s for s in steps if s["id"] == "op_disable_account")
    assert disable["command"].startswith("$account = 'jdoe'; Get-ADUser -Filter ")


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_powershell_quote_round_trips_or_refuses(value):
    try:
        quoted = powershell_quote(value)
    except UnsafeIdentity:
        assert any(unicodedata.category(c) in UNSEEN_CATEGORIES for c in value)
        return
    assert read_powershell_literal(quoted, 0) == (value, len(quoted))


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_shell_quote_round_trips_or_refuses(value):
    try:
        quoted = shell_quote(value)
    except UnsafeIdentity:
        assert value.startswith("-") or any(unicodedata.category(c) in UNSEEN_CATEGORIES for c in value)
        return
    assert shlex.split(quoted) == [value]


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_values_are_refused(value):
    with pytest.raises(UnsafeIdentity):
        powershell_quote(value)


def test_a_bidi_override_is_refused_so_the_printed_command_reads_as_it_runs():
    with pytest.raises(UnsafeIdentity):
        powershell_quote("admin\u202egpj.exe")
    with pytest.raises(UnsafeIdentity):
        shell_quote("a\u200bb")


def test_hostile_identity_is_inert_in_both_reports():
    name = "x ```` <img src=x onerror=alert(1)> a'; Remove-Mailbox -Identity * ;'"
    finding = _finding("inbox_rule_hiding", "j.doe@fabrikam-labs.com",
                       [_event(1, "New-InboxRule", "m.chen@fabrikam-labs.com", rule_name=name)])
    entry = finding.to_json()
    entry["containment"] = containment_steps(finding, {"e1": "exchange_online"})
    document = {"schema": "mailhunt.findings/1", "tool": {"name": "mailhunt", "version": "0"}, "inputs": [],
                "findings": [entry], "rejections": [], "skipped_rules": [], "rule_matches": []}
    markdown = render_markdown(document)
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    disable = next(s["command"] for s in entry["containment"] if s["id"] == "eo_disable_inbox_rule")
    assert f"   `````powershell\n   {disable}\n   `````" in markdown     # a fence longer than the value's run
    assert html_escape(disable, quote=False) in rendered and "<img" not in rendered
    page = render_html(document)
    assert "<img src=x" not in page and str(markup_escape(disable)) in page
