"""Logging to enhance: a gap is stated only for a kind of evidence the case holds and lacks a record of."""

import pytest

from mailhunt.case.logging_gaps import logging_gaps
from mailhunt.events import new_event, to_arrow
from mailhunt.store import CaseStore


def _store(*events: dict) -> CaseStore:
    store = CaseStore(":memory:")
    rows = []
    for index, fields in enumerate(events):
        event = new_event()
        event.update({"event.id": f"e{index}", "log.record": index + 1, **fields})
        rows.append(event)
    store.append(to_arrow(rows))
    return store


def _ids(store, document=None):
    return [g["id"] for g in logging_gaps(store, document or {"findings": []})]


@pytest.mark.parametrize("lacking, complete, gap", [
    ({"event.dataset": "m365.audit", "event.action": "Send"},
     {"event.dataset": "m365.audit", "event.action": "MailItemsAccessed"}, "mail_items_accessed"),
    ({"event.dataset": "windows.powershell", "event.code": "4103"},
     {"event.dataset": "windows.powershell", "event.code": "4104"}, "script_block_logging"),
    ({"event.dataset": "linux.auditd", "file.path": "/etc/passwd"},
     {"event.dataset": "linux.auditd", "file.path": "/var/mail/alice"}, "auditd_mail_spool"),
    ({"event.dataset": "macos.eslogger", "process.name": "Mail"},
     {"event.dataset": "macos.eslogger", "process.name": "osascript"}, "osascript_capture"),
])
def test_a_gap_is_stated_when_the_evidence_lacks_the_record_and_not_when_it_has_it(lacking, complete, gap):
    assert gap in _ids(_store(lacking))
    assert gap not in _ids(_store(lacking, complete))


def test_no_gap_is_guessed_for_evidence_the_case_does_not_hold():
    assert _ids(_store({"event.dataset": "m365.audit", "event.action": "MailItemsAccessed"})) == ["siem_rules"]


def test_audit_tampering_asks_for_audit_back_on_and_every_case_gets_the_rule_export():
    gaps = logging_gaps(_store({"event.dataset": "m365.audit", "event.action": "MailItemsAccessed"}),
                        {"findings": [{"indicator": "audit_tampering"}]})
    audit = next(g for g in gaps if g["id"] == "mailbox_audit")
    assert "Set-OrganizationConfig -AuditDisabled $false" in audit["commands"]
    assert gaps[-1]["commands"] == ["mailhunt rules export --target TARGET --out siem-rules"]
