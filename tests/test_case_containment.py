"""The containment plan and verification request of the bundled example incident (findings.json)."""

import json
import re

import pytest

from mailhunt.case.containment import (
    _event_bindings,
    containment_steps,
    event_environments,
)
from mailhunt.config import load_config
from mailhunt.hunt import hunt
from mailhunt.store import CaseStore
from tests.corpus import EXAMPLES, PUBLIC

JDOE = "j.doe@fabrikam-labs.com"
MCHEN = "m.chen@fabrikam-labs.com"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    incident = EXAMPLES / "incident-2026-10"
    out = tmp_path_factory.mktemp("case") / "case"
    hunt([incident / "purview_audit_export.csv"], out, load_config(incident / "mailhunt.toml"))
    return out


@pytest.fixture(scope="module")
def document(case):
    return json.loads((case / "findings.json").read_text())


def _finding(document, indicator, actor=JDOE):
    return next(f for f in document["findings"] if f["indicator"] == indicator and f["actor"] == actor)


def _commands(finding):
    return [s["command"] for s in finding["containment"]]


def test_every_escalated_finding_starts_with_revoking_sessions_then_resetting_the_password(document):
    escalated = [f for f in document["findings"] if f["escalate"]]
    assert escalated
    for finding in escalated:
        steps = finding["containment"]
        assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
        assert steps[0]["command"] == f"Revoke-MgUserSignInSession -UserId '{finding['actor']}'"
        assert steps[1]["command"].startswith(f"Update-MgUser -UserId '{finding['actor']}' -PasswordProfile")
        assert all(s["environment"] == "exchange_online" and s["does"] and (s["undo"] or s["undo_note"]) for s in steps)


def test_inbox_rules_are_listed_then_each_disabled_by_name_in_the_victims_mailbox(document):
    commands = _commands(_finding(document, "inbox_rule_hiding"))
    listed = commands.index(f"Get-InboxRule -Mailbox '{MCHEN}' -IncludeHidden | Format-List Name, Identity, Enabled, "
                            "Description")
    first = commands.index(f"Disable-InboxRule -Mailbox '{MCHEN}' -Identity '.' -Confirm:$false")
    second = commands.index(f"Disable-InboxRule -Mailbox '{MCHEN}' -Identity '..' -Confirm:$false")
    restore = commands.index(f"Restore-RecoverableItems -Identity '{MCHEN}' -FilterStartTime '2026-10-13T23:41:09Z'")
    assert listed < first < second < restore
    undo = next(s["undo"] for s in _finding(document, "inbox_rule_hiding")["containment"] if s["command"] == commands[first])
    assert undo == f"Enable-InboxRule -Mailbox '{MCHEN}' -Identity '.'"


def test_export_then_deletion_holds_finds_and_restores_then_removes_the_export_role(document):
    commands = _commands(_finding(document, "export_then_deletion"))
    hold = commands.index(f"Set-Mailbox -Identity '{MCHEN}' -LitigationHoldEnabled $true")
    found = next(i for i, c in enumerate(commands) if c.startswith(f"Get-RecoverableItems -Identity '{MCHEN}'"))
    restored = next(i for i, c in enumerate(commands) if c.startswith(f"Restore-RecoverableItems -Identity '{MCHEN}'"))
    role = next(i for i, c in enumerate(commands)
                if c.startswith(f"Get-ManagementRoleAssignment -Role 'Mailbox Import Export' -RoleAssignee '{JDOE}'"))
    listing = next(i for i, c in enumerate(commands) if c.startswith("Get-ComplianceSearch |"))
    assert hold < found < restored < role < listing
    preserved = next(c for c in commands if c.startswith("Get-FileHash"))
    assert "-LiteralPath '\\\\FAB-FS02\\scans$\\tmp\\mc_2026.pst'" in preserved


def test_consented_app_is_disabled_and_its_grants_removed_by_app_id(document):
    commands = _commands(_finding(document, "new_app_mail_access"))
    app = "'5e8c2a17-93d4-4f06-8b7a-1d2e6f9c0a34'"
    assert any(c.startswith(f"$appId = {app}; Update-MgServicePrincipal") and c.endswith("-AccountEnabled:$false")
               for c in commands)
    assert any(c.startswith(f"$appId = {app}; $sp = Get-MgServicePrincipal") and "Remove-MgOauth2PermissionGrant" in c
               for c in commands)


def test_transport_rules_and_audit_are_addressed_by_identity(document):
    commands = _commands(_finding(document, "transport_rule_change"))
    for name in ("Partner allowlist", "NDR cleanup", "External sender warning"):
        assert f"Disable-TransportRule -Identity '{name}' -Confirm:$false" in commands
    audit = _commands(_finding(document, "audit_tampering"))
    assert f"Set-MailboxAuditBypassAssociation -Identity '{JDOE}' -AuditBypassEnabled $false" in audit
    assert f"Set-Mailbox -Identity '{JDOE}' -AuditEnabled $true" in audit


def test_findings_not_escalated_get_no_steps_but_a_verification_request(document):
    quiet = [f for f in document["findings"] if not f["escalate"]]
    assert quiet and all(f["containment"] == [] for f in quiet)
    legal = _finding(document, "mailbox_export", "compliance-admin@fabrikam-labs.com")
    request = legal["verification_request"]
    assert request["mailboxes"] == ["r.king@fabrikam-labs.com"]
    assert request["who"] == "compliance-admin@fabrikam-labs.com"
    assert request["when"] == "2026-10-06T21:05:31Z to 2026-10-06T21:05:31Z (UTC)"
    assert "asked for a copy of this mailbox" in request["confirm"] and legal["id"] in request["text"]


def test_report_md_is_plain_markdown_in_plain_words(case):
    markdown = (case / "report.md").read_text(encoding="utf-8")
    assert re.search(r"&#?\w+;", markdown) is None       # no HTML entity (was &quot; x48, ATT&amp;CK)
    assert "| ATT&CK |" in markdown
    for phrase in ("None", "only 0 earlier events", "1 findings", "1 password changes", "1 events", "<br>"):
        assert phrase not in markdown, phrase
    assert "1 password change or reset within ±72 h" in markdown
    assert "has no earlier events (at least 3 needed)" in markdown


def test_reports_show_the_plan_and_the_request(case, document):
    markdown = (case / "report.md").read_text(encoding="utf-8")
    html = (case / "report.html").read_text(encoding="utf-8")
    inbox = _finding(document, "inbox_rule_hiding")
    disable = f"Disable-InboxRule -Mailbox '{MCHEN}' -Identity '..' -Confirm:$false"
    assert f"   ```powershell\n   {disable}\n   ```" in markdown
    assert f"Undo: `` Enable-InboxRule -Mailbox '{MCHEN}' -Identity '..' ``" not in markdown
    assert f"Undo: ` Enable-InboxRule -Mailbox '{MCHEN}' -Identity '..' `" in markdown
    assert "<code>Disable-InboxRule -Mailbox &#39;m.chen@fabrikam-labs.com&#39; -Identity &#39;..&#39; " in html
    assert inbox["verification_request"]["text"].replace("_", "\\_") in markdown


def test_a_finding_of_many_alike_events_binds_each_distinct_event_once(tmp_path):
    """A log-cleared finding of a Windows host holds one event per record (200,000 on a large EVTX file): the
    step values are bound once per distinct (environment, action, target, host, parameters, rule name), and the
    plan is the one findings.json holds."""
    out = tmp_path / "case"
    result = hunt([PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"], out, load_config(None))
    finding = max(result.findings, key=lambda f: len(f.events))
    with CaseStore(out / "case.duckdb") as store:
        environment_of = event_environments(store, result.findings)
    events = finding.events
    distinct = {(environment_of.get(e.event_id), e.action, e.target, e.host, e.parameters, e.rule_name)
                for e in events}
    bindings = list(_event_bindings(finding, environment_of))
    assert finding.escalate and len(events) > 50
    assert 0 < len(bindings) == len({key for key in distinct if key[0] is not None}) < len(events)
    planned = next(f for f in json.loads((out / "findings.json").read_text())["findings"] if f["id"] == finding.id)
    assert planned["containment"] == containment_steps(finding, environment_of) != []
