"""The cmdlet rule has one definition: a unified audit log record and an Exchange admin audit entry
holding the same cmdlet, parameters, caller and object give the same target, rule name, params and
parameter text.

The unified audit log maps its records in SQL but asks ``cmdlet_parameters`` for the target and
the rule name once per distinct (operation, parameters, user) of a batch; the admin audit log calls
the same functions per entry. Every generated case of a hypothesis example goes into one batch, so
records sharing a key and records differing in one parameter meet in the same grouping.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhunt.sources import SNIFF_BYTES, ReadContext, identify, read_events
from mailhunt.sources.admin_audit_record import admin_audit_event
from mailhunt.sources.cmdlet_parameters import (
    cmdlet_rule_name,
    names_target_or_rule,
    parameter_target,
)

CMDLETS = ["New-MailboxExportRequest", "get-mailboxexportrequest", "Remove-MailboxExportRequest", "New-InboxRule",
           "Set-InboxRule", "REMOVE-INBOXRULE", "Enable-InboxRule", "New-TransportRule", "Set-TransportRule",
           "Search-Mailbox", "Set-Mailbox", "Add-MailboxPermission", "Set-MailboxAuditBypassAssociation",
           "UpdateInboxRules", "Set-MailboxPlan", "New-ComplianceSearch", "Set-InboxRuleX", "MailItemsAccessed"]
NAMES = ["Identity", "identity", "Mailbox", "MAILBOX", "Name", "RuleName", "ForwardTo", "Confirm"]
VALUES = st.sampled_from(["", "bob@contoso.com", "Bob@Contoso.com", "bob@contoso.com\\Export 1", "\\Hide",
                          "erin\\", "Frank", "Spam cleanup", "dave@contoso.com\\Spam cleanup", "True", 'say "hi"',
                          "tab\there", " "])
CASES = st.lists(st.tuples(st.sampled_from(CMDLETS),
                           st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=4),
                           st.sampled_from(["alice@contoso.com", "Admin@Contoso.com", "NT AUTHORITY\\SYSTEM (w3wp)"]),
                           st.sampled_from(["Bob", "carol@contoso.com", "x"])),
                 min_size=1, max_size=12)
WHEN = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
COMPARED = ("user.target.name", "rule.name", "params", "parameters")


def _audit_log(cases) -> bytes:
    lines = []
    for number, (cmdlet, pairs, user, object_id) in enumerate(cases):
        lines.append(orjson.dumps({
            "CreationTime": "2026-10-14T09:00:00", "Id": f"10000000-0000-0000-0000-{number:012d}",
            "Operation": cmdlet, "RecordType": 1, "ResultStatus": "True", "Workload": "Exchange",
            "UserId": user, "ObjectId": object_id,
            "Parameters": [{"Name": name, "Value": value} for name, value in pairs]}))
    return b"\n".join(lines) + b"\n"


def _unified_audit_log_events(data: bytes) -> list[dict]:
    source = identify(data[:SNIFF_BYTES])
    assert source is not None and source.name == "ual_ndjson"
    ctx = ReadContext("cases.ndjson", "0" * 64)
    events = [e for table in read_events(source, io.BufferedReader(io.BytesIO(data)), ctx) for e in table.to_pylist()]
    assert ctx.rejected == 0
    return sorted(events, key=lambda e: e["log.record"])


def _admin_audit(cmdlet, pairs, user, object_id) -> dict:
    return admin_audit_event(timestamp=WHEN, cmdlet=cmdlet, caller=user, object_modified=object_id, succeeded="True",
                             error=None, server=None, client_ip=None, pairs=pairs, labels={}, raw="", path="x",
                             sha256="0" * 64, locator=1)


def _compared(event: dict) -> dict:
    picked = {name: event[name] for name in COMPARED}
    picked["params"] = dict(picked["params"]) if picked["params"] else None
    return picked


@settings(max_examples=40, deadline=None)
@given(CASES)
def test_audit_log_and_admin_audit_agree_on_every_cmdlet(cases):
    unified = _unified_audit_log_events(_audit_log(cases))
    assert len(unified) == len(cases)
    for case, event in zip(cases, unified, strict=True):
        assert _compared(event) == _compared(_admin_audit(*case)), case


def test_outlook_rule_changes_name_their_rule_in_both():
    case = ("UpdateInboxRules", [("RuleName", "Move to RSS"), ("RuleOperation", "AddMailboxRule")],
            "alice@contoso.com", "alice@contoso.com")
    [event] = _unified_audit_log_events(_audit_log([case]))
    assert event["rule.name"] == "Move to RSS"
    assert _admin_audit(*case)["rule.name"] == "Move to RSS"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(CMDLETS), st.text(st.sampled_from("-abeilmnorstuxIMNRSX"), max_size=30)),
       st.dictionaries(st.sampled_from(["identity", "mailbox", "name", "rulename"]), VALUES))
def test_cmdlets_left_out_of_the_batch_lookup_have_no_target_or_rule(cmdlet, params):
    """The audit log asks the rule only about ``names_target_or_rule`` cmdlets: every other gets nothing from it."""
    if not names_target_or_rule(cmdlet):
        assert parameter_target(cmdlet, params) is None
        assert cmdlet_rule_name(cmdlet, params) is None
