"""Sent mail deleted after sending: each deletion is paired with the send of the same message, whatever the gap.

Mailbox audit records as the unified audit log writes them (Send: ``Item``
with ``InternetMessageId``; HardDelete/SoftDelete: ``AffectedItems``), hunted
with the shipped rules through the real reader and normalizer.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from mailhunt.config import Config
from mailhunt.hunt import hunt
from tests.triage_records import write_ndjson

KIM = "kim.akers@fabrikam-labs.com"
SENT_ITEMS = {"Id": "LgAAAAD65E9B220C1CD5C4A85A3FEBA3B88A791AQAB", "Path": "\\Sent Items"}
RULES = {"m365_sent_mail_deleted_after_sending", "m365_sent_mail_deleted_after_sending_by_subject"}


def _id(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("\x1f".join(parts).encode()).hexdigest()))


def _message(tag: str) -> dict:
    digest = hashlib.md5(tag.encode()).hexdigest().upper()
    return {"Id": f"RgAAAAD{digest[:28]}BwAA", "InternetMessageId": f"<{digest[:28]}@AM0PR06MB5121.eurprd06.prod.outlook.com>"}


def _mailbox_record(when: str, operation: str, record_type: int) -> dict:
    return {"CreationTime": when, "Id": _id(when, operation, KIM), "Operation": operation,
            "OrganizationId": "3f1c9a52-6b0e-4d7a-9e21-8c4b7f05d3e6", "RecordType": record_type,
            "ResultStatus": "Succeeded", "UserKey": "1003C5A763A216E8", "UserType": 0, "Version": 1,
            "Workload": "Exchange", "ClientIP": "192.0.2.77", "UserId": KIM,
            "AppId": "00000002-0000-0ff1-ce00-000000000000", "ClientAppId": "", "ClientIPAddress": "192.0.2.77",
            "ClientInfoString": "Client=OWA;Action=ViaProxy", "ExternalAccess": False, "InternalLogonType": 0,
            "LogonType": 0, "LogonUserSid": "S-1-5-21-2087436201-1938475620-3849201735-37477922",
            "MailboxGuid": "b7764dfc-44ef-5b0d-869c-029f0b148a7a",
            "MailboxOwnerSid": "S-1-5-21-2087436201-1938475620-3849201735-37477922", "MailboxOwnerUPN": KIM,
            "OrganizationName": "fabrikamlabs.onmicrosoft.com",
            "OriginatingServer": "AM0PR06MB5121 (15.20.8207.017)\r\n", "SessionId": _id("s", when)}


def send(when: str, tag: str, subject: str) -> dict:
    return _mailbox_record(when, "Send", 2) | {"Item": {
        **_message(tag), "ParentFolder": {"Id": "LgAAAAD96769B2088835923A9F6CD70C44D8FCCAQAB", "Name": "Drafts",
                                          "Path": "\\Drafts"}, "Subject": subject, "SizeInBytes": 48213}}


def hard_delete(when: str, items: list[tuple[str, str]]) -> dict:
    return _mailbox_record(when, "HardDelete", 3) | {
        "CrossMailboxOperation": False, "Folder": SENT_ITEMS,
        "AffectedItems": [{**_message(tag), "ParentFolder": {**SENT_ITEMS, "Name": "Sent Items"}, "Subject": subject}
                          for tag, subject in items]}


def sent_mail_findings(tmp_path, records: list[dict]) -> list[dict]:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    write_ndjson(evidence / "audit.ndjson", records)
    findings = hunt([evidence], tmp_path / "case", Config()).document["findings"]
    return [f for f in findings if {r["id"] for r in f["rules"]} & RULE_IDS]


def _rule_ids() -> set[str]:
    return {str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:mailhunt:rule:{name}")) for name in RULES}


RULE_IDS = _rule_ids()
WIRE = "Updated wire instructions"


def test_copies_of_a_burst_of_sends_hard_deleted_five_hours_later_are_found(tmp_path):
    records = [send(f"2026-10-05T09:00:{10 * n:02d}", f"wire{n}", WIRE) for n in range(4)]
    records += [hard_delete(f"2026-10-05T14:02:{n:02d}", [(f"wire{n}", WIRE)]) for n in range(4)]
    found = sent_mail_findings(tmp_path, records)
    assert [(f["indicator"], f["actor"], f["event_count"]) for f in found] == [("bulk_item_deletion", KIM, 8)]
    assert found[0]["first_seen"] == "2026-10-05T09:00:00Z" and found[0]["last_seen"] == "2026-10-05T14:02:03Z"


@pytest.mark.parametrize("deleted_at", ["2026-10-05T09:05:00", "2026-10-05T14:02:00"])
def test_a_user_deleting_unrelated_old_sent_items_after_sending_is_not_this_finding(tmp_path, deleted_at):
    records = [send(f"2026-10-05T09:00:{10 * n:02d}", f"numbers{n}", "Quarterly numbers") for n in range(4)]
    records.append(hard_delete(deleted_at, [("lunch", "Lunch on Friday?"), ("parking", "Re: parking"),
                                                       ("old-numbers", "Quarterly numbers")]))
    assert sent_mail_findings(tmp_path, records) == []
