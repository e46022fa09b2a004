"""A hunt over Entra ID evidence as Sentinel and the admin center export it, with the unified audit log's
mail access: the consent grant and the first use of the consented app are findings, and the account's
password reset and MFA change around them show up in the finding's L1 steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson

from mailhunt.config import Config
from mailhunt.hunt import hunt

FIXTURES = Path(__file__).parent / "fixtures" / "entra"
MEGAN = "megan.bowen@contoso.com"
MAIL_SYNC_PRO = "4f8e2a71-3c59-4d0b-a6e8-91b7c2d5f043"


def mail_items_accessed(when: str, record_id: str, app_id: str) -> dict:
    """A MailItemsAccessed record (Bind) as the unified audit log writes it."""
    return {"CreationTime": when, "Id": record_id, "Operation": "MailItemsAccessed",
            "OrganizationId": "a8d27e41-90c3-4b5f-b6e2-1f7d3c9a0e58", "RecordType": 50, "ResultStatus": "Succeeded",
            "UserKey": "10032001A2B3C4D5", "UserType": 0, "Version": 1, "Workload": "Exchange", "UserId": MEGAN,
            "AppId": app_id, "ClientAppId": "", "ClientIPAddress": "45.77.12.9", "ClientInfoString": "Client=REST;",
            "ExternalAccess": False, "InternalLogonType": 0, "LogonType": 0, "MailboxOwnerUPN": MEGAN,
            "OperationCount": 2, "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"},
                                                         {"Name": "IsThrottled", "Value": "False"}],
            "Folders": [{"FolderItems": [{"InternetMessageId": "<BN8PR04MB6211A4C2@BN8PR04MB6211.namprd04.prod.outlook.com>"},
                                         {"InternetMessageId": "<BN8PR04MB6211F07E@BN8PR04MB6211.namprd04.prod.outlook.com>"}],
                         "Path": "\\Inbox"}]}


def run(tmp_path: Path, app_id: str) -> dict:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("auditlogs_az_query.json", "signinlogs.ndjson", "signinlogs_portal.csv"):
        shutil.copy(FIXTURES / name, evidence / name)
    records = [mail_items_accessed("2026-10-12T23:10:00", "6a1f0b3e-27c4-4d59-9e8a-b0c1d2e3f405", app_id)]
    (evidence / "ual.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    hunt([evidence], tmp_path / "case", Config())
    return json.loads((tmp_path / "case" / "findings.json").read_text())


def test_consent_then_mail_read_by_the_new_app_with_reset_and_mfa_change_in_l1(tmp_path):
    document = run(tmp_path, MAIL_SYNC_PRO)
    formats = {Path(i["path"]).name: (i["format"], i["records"], i["rejected"]) for i in document["inputs"]}
    assert formats["auditlogs_az_query.json"] == ("sentinel_entra_array", 6, 2)
    assert formats["signinlogs.ndjson"] == ("sentinel_entra", 5, 2)
    assert formats["signinlogs_portal.csv"] == ("sentinel_entra_csv", 2, 0)
    [finding] = [f for f in document["findings"] if f["indicator"] == "new_app_mail_access"]
    assert finding["actor"] == MEGAN
    assert {r["title"] for r in finding["rules"]} == {"Entra ID Grants An Application Permissions To Mail",
                                                      "Application New To The Tenant Reads Or Deletes Mail"}
    assert [(e["action"], e["locator"]) for e in finding["evidence"]] == [
        ("Consent to application", "record 1"), ("MailItemsAccessed", "line 1")]
    assert finding["escalate"] is True
    steps = {s["step"]: s for s in finding["l1"]}
    assert steps["password_changes"]["result"] == "flag"
    assert ("Reset user password at 2026-10-13T07:02:44.118000Z by adm-helpdesk@contoso.com on " + MEGAN
            in steps["password_changes"]["detail"])
    assert steps["mfa_changes"]["result"] == "flag"
    assert "Update user at 2026-10-13T07:05:31.640000Z by adm-helpdesk@contoso.com on " + MEGAN \
        in steps["mfa_changes"]["detail"]
    assert f"User registered security info at 2026-10-13T07:11:09.903000Z by {MEGAN} on {MEGAN}" \
        in steps["mfa_changes"]["detail"]
    assert steps["consent_grants"]["result"] == "flag" and "Consent to application at" in steps["consent_grants"]["detail"]
    assert steps["sign_ins"]["result"] == "flag" and "1 failed sign-ins" in steps["sign_ins"]["detail"]


def test_mail_read_by_an_app_in_use_since_the_start_is_not_new(tmp_path):
    """Exchange Online's own app id signs Megan in from day one: reading mail through it is not a new app."""
    document = run(tmp_path, "00000002-0000-0ff1-ce00-000000000000")
    [finding] = [f for f in document["findings"] if f["indicator"] == "new_app_mail_access"]
    assert [r["title"] for r in finding["rules"]] == ["Entra ID Grants An Application Permissions To Mail"]
    assert [e["action"] for e in finding["evidence"]] == ["Consent to application"]
