"""Unified audit log AuditData records and Entra sign-ins, field for field as Microsoft writes them.

The triage scenarios write these to NDJSON / JSON-array files and hunt them
with the shipped rules, so every answer is produced by the real readers,
normalizer, rules and triage.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path

ORG_ID = "3f1c9a52-6b0e-4d7a-9e21-8c4b7f05d3e6"
EXO_POWERSHELL = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
OFFICE_HOME = "4765445b-32c6-49b0-83e6-1d93765276ca"
UA_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0")


def _id(*parts) -> str:
    return str(uuid.UUID(hashlib.md5("\x1f".join(map(str, parts)).encode()).hexdigest()))


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _base(when: datetime, operation: str, record_type: int, workload: str, user: str, status: str,
          user_type: int) -> dict:
    return {"CreationTime": _ts(when), "Id": _id(when, operation, user, record_type), "Operation": operation,
            "OrganizationId": ORG_ID, "RecordType": record_type, "ResultStatus": status,
            "UserKey": "1003" + hashlib.md5(user.encode()).hexdigest()[:12].upper(), "UserType": user_type,
            "Version": 1, "Workload": workload, "UserId": user}


def cmdlet(when: datetime, user: str, name: str, parameters: list[tuple[str, str]], ip: str,
           app_id: str = EXO_POWERSHELL, object_id: str = "") -> dict:
    """ExchangeAdmin (RecordType 1)."""
    record = _base(when, name, 1, "Exchange", user, "True", 2)
    record |= {"AppAccessContext": {"IssuedAtTime": _ts(when), "UniqueTokenId": _id("t", when, user)[:22]},
               "ClientIP": f"{ip}:{50000 + when.minute}", "ObjectId": object_id, "AppId": app_id,
               "ClientAppId": "", "ExternalAccess": False, "OrganizationName": "fabrikamlabs.onmicrosoft.com",
               "OriginatingServer": "CH3PR04MB8861 (15.20.8093.016)",
               "Parameters": [{"Name": n, "Value": v} for n, v in parameters],
               "SessionId": _id("s", user)}
    return record


def login(when: datetime, user: str, ip: str, ok: bool = True, agent: str = UA_EDGE) -> dict:
    """AzureActiveDirectoryStsLogon (RecordType 15): UserLoggedIn / UserLoginFailed."""
    record = _base(when, "UserLoggedIn" if ok else "UserLoginFailed", 15, "AzureActiveDirectory", user,
                   "Success" if ok else "Failed", 0)
    record |= {"AzureActiveDirectoryEventType": 1, "ClientIP": ip, "ActorIpAddress": ip,
               "ObjectId": "00000002-0000-0ff1-ce00-000000000000", "ApplicationId": OFFICE_HOME,
               "ExtendedProperties": [{"Name": "ResultStatusDetail", "Value": "Success" if ok else "Fail"},
                                      {"Name": "UserAgent", "Value": agent},
                                      {"Name": "RequestType", "Value": "OAuth2:Authorize"}],
               "ErrorNumber": "0" if ok else "50126",
               "Actor": [{"ID": _id("u", user), "Type": 0}, {"ID": user, "Type": 5}],
               "ActorContextId": ORG_ID, "InterSystemsId": _id("i", when, user), "IntraSystemId": _id("x", when),
               "Target": [{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}], "TargetContextId": ORG_ID}
    if not ok:
        record["LogonError"] = "InvalidUserNameOrPassword"
    return record


def hard_delete(when: datetime, user: str, owner: str, items: int, ip: str, app_id: str,
                client: str = "Client=REST;Client=RESTSystem;;") -> dict:
    """ExchangeItemGroup (RecordType 3): HardDelete of ``items`` items."""
    record = _base(when, "HardDelete", 3, "Exchange", user, "Succeeded", 0)
    record |= {"AppAccessContext": {"IssuedAtTime": _ts(when), "UniqueTokenId": _id("t", when, user)[:22]},
               "ClientIP": ip, "AppId": app_id, "ClientAppId": app_id, "ClientIPAddress": ip,
               "ClientInfoString": client, "ExternalAccess": False, "InternalLogonType": 0, "LogonType": 1,
               "LogonUserSid": "S-1-5-21-1-2-3-1500", "MailboxGuid": _id("m", owner),
               "MailboxOwnerSid": "S-1-5-21-1-2-3-1600", "MailboxOwnerUPN": owner,
               "OrganizationName": "fabrikamlabs.onmicrosoft.com",
               "OriginatingServer": "BY5PR04MB6812 (15.20.8093.016)\r\n", "SessionId": _id("s", user),
               "CrossMailboxOperation": user != owner,
               "AffectedItems": [{"Id": _id("item", when, n), "InternetMessageId": f"<{_id('msg', when, n)}@x>",
                                  "ParentFolder": {"Id": _id("f"), "Path": "\\Inbox\\Closed tickets"},
                                  "Subject": f"[Case #{40000 + n}] Ticket closed"} for n in range(items)],
               "Folder": {"Id": _id("f"), "Path": "\\Inbox\\Closed tickets"}}
    return record


def directory(when: datetime, actor: str, operation: str, target: str) -> dict:
    """AzureActiveDirectory (RecordType 8): a directory change such as "Reset user password."."""
    record = _base(when, operation, 8, "AzureActiveDirectory", actor, "Success", 0)
    record |= {"AzureActiveDirectoryEventType": 1, "ObjectId": target,
               "Actor": [{"ID": actor, "Type": 5}], "ActorContextId": ORG_ID,
               "Target": [{"ID": "User_" + _id("u", target), "Type": 2}, {"ID": target, "Type": 5}],
               "TargetContextId": ORG_ID, "ModifiedProperties": [], "ExtendedProperties": [
                   {"Name": "additionalDetails", "Value": "{}"}, {"Name": "extendedAuditEventCategory", "Value": "User"}]}
    return record


def entra_sign_in(when: datetime, user: str, ip: str, country: str, ok: bool = True,
                  agent: str = UA_EDGE, app_id: str = OFFICE_HOME) -> dict:
    """One member of the Entra admin center's JSON sign-in download."""
    return {"id": _id("signin", when, user, ip), "createdDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "userDisplayName": user.split("@")[0], "userPrincipalName": user, "userId": _id("u", user),
            "appId": app_id, "appDisplayName": "OfficeHome", "ipAddress": ip,
            "clientAppUsed": "Browser", "userAgent": agent, "correlationId": _id("c", when),
            "isInteractive": True, "resourceTenantId": ORG_ID,
            "status": {"errorCode": 0 if ok else 50126,
                       "failureReason": "Other." if ok else "Invalid username or password."},
            "location": {"city": "", "state": "", "countryOrRegion": country,
                         "geoCoordinates": {"latitude": None, "longitude": None}}}


def write_ndjson(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), encoding="utf-8")
    return path


def write_json_array(path: Path, members: list[dict]) -> Path:
    path.write_text(json.dumps(members, indent=2), encoding="utf-8")
    return path
