#!/usr/bin/env python3
"""Write the example incident: a Microsoft Purview audit-search CSV export for fabrikam-labs.com.

Deterministic: the same script writes the same bytes (seeded random, fixed
dates, no clock). Run it from anywhere:

    python examples/make_incident.py            # writes examples/incident-2026-10/purview_audit_export.csv

The story (all times UTC; the company works US Eastern hours, 13:00-22:00 UTC):

- 2026-10-01 .. 2026-10-15: ordinary users sign in, send, read (MailItemsAccessed
  from Outlook), delete a few messages; b.jones creates an inbox rule that
  files newsletters into "Newsletters"; s.ito clears 30 newsletters at once.
  Exchange Online's own NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)
  writes its usual admin records. j.doe (helpdesk admin) does routine
  Set-Mailbox / Set-CASMailbox / password resets from the office network.
  t.nguyen (IT admin) edits the "External sender warning" transport rule.
- 2026-10-06 21:05: compliance-admin exports a departed employee's mailbox for
  legal (New-MailboxExportRequest) inside change window CHG-2026-1006-07; no
  deletion follows.
- 2026-10-13 22:51 .. 2026-10-14 01:12: j.doe's account is used from
  185.220.101.47 with a new user agent. The intruder deletes the "Microsoft
  account security alert" about that sign-in, assigns itself "Mailbox Import
  Export", gets FullAccess to the CFO's mailbox (m.chen), exports it to a UNC
  path and removes the export request 12 minutes later, hides security mail in
  the CFO mailbox with two inbox rules, consents to a mail-reading app that
  then syncs the CFO's folders, hard-deletes 86 items from the CFO mailbox in
  under an hour, sends a payment-change mail as the CFO and deletes it from
  Sent Items, creates/changes transport rules (SetSCL -1 for the lookalike
  domain fabrikam-1abs.com, DeleteMessage for security notices, the external
  banner exempting the lookalike), and finally sets an audit bypass on j.doe.
- 2026-10-15: the real j.doe signs in from the office as usual.

Like real exports, the file holds one record twice (same RecordId), CRLF line
ends, US-locale CreationDate, and AuditData as the service writes it (PascalCase
keys, '/' escaped as '\\/').

Note: New-MailboxExportRequest is an Exchange Server (on-premises) cmdlet; in
Exchange Online mail is exported through eDiscovery. The example keeps it
because the playbook names it and because hybrid tenants show both worlds.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20261014
OUT = Path(__file__).resolve().parent / "incident-2026-10" / "purview_audit_export.csv"

DOMAIN = "fabrikam-labs.com"
LOOKALIKE = "fabrikam-1abs.com"
ORG_ID = "3f2a9c71-5b8e-4d0a-9e64-2c7b1a8d5f30"
ORG_NAME = "fabrikamlabs.onmicrosoft.com"
EXO_PATH = "NAMPR04A002.PROD.OUTLOOK.COM/Microsoft Exchange Hosted Organizations/" + ORG_NAME
START = datetime(2026, 10, 1)
END = datetime(2026, 10, 15, 17, 0)

SYSTEM = "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"
EXO_APP = "00000002-0000-0ff1-ce00-000000000000"          # Office 365 Exchange Online (OWA)
OUTLOOK_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"      # Microsoft Office (Outlook desktop)
OFFICE_HOME = "4765445b-32c6-49b0-83e6-1d93765276ca"      # OfficeHome
EXO_POWERSHELL = "fb78d390-0c51-40cd-8e17-fdbfab77341b"   # Exchange REST API based PowerShell
GRAPH = "00000003-0000-0000-c000-000000000000"
RETENTION_APP = "0f4e2a6c-7d1b-4b2b-9c11-5a0b2f7e9d01"    # the tenant's own retention sweeper (app registration)
RETENTION_IP = "198.51.100.40"                            # the automation host at headquarters
EVIL_APP_ID = "9b1d7c4e-2f63-4a58-b0e1-6c3d8a7f2e95"
EVIL_APP_NAME = "Mail Archive Sync"
EVIL_SP = "5e8c2a17-93d4-4f06-8b7a-1d2e6f9c0a34"

ATTACKER_IP = "185.220.101.47"
ATTACKER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
ATTACKER_PWSH_UA = "Mozilla/5.0 (X11; Linux x86_64) PowerShell/7.4.5"

UA_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0")
UA_CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/129.0.0.0 Safari/537.36")
UA_OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18025; Pro)"
UA_IOS = "Outlook-iOS/2.0"


class Person:
    def __init__(self, rng: random.Random, alias: str, role: str, ua: str, office: str):
        self.alias = alias
        self.upn = f"{alias}@{DOMAIN}"
        self.role = role
        self.ua = ua
        self.office = office                     # usual egress IP
        self.puid = "1003" + "".join(rng.choice("0123456789ABCDEF") for _ in range(12))
        self.object_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.mailbox_guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.sid = "S-1-5-21-2847319456-1203948576-3391042857-" + str(rng.randint(10400, 19999))
        self.server = rng.choice(["BY5PR04MB6812", "SA1PR04MB8127", "CH0PR04MB7993", "MN2PR04MB6231"])
        self.session = str(uuid.UUID(int=rng.getrandbits(128), version=4))


SUBJECTS = [
    "Weekly sync notes", "RE: Q4 planning offsite", "Invoice INV-{n} approved", "FW: Updated org chart",
    "Lunch on Thursday?", "RE: Customer escalation - Northwind", "Draft: release notes 4.{n}",
    "RE: PTO request", "Timesheet reminder", "Contract renewal - Litware", "RE: Budget variance October",
    "Meeting moved to 3pm", "Slides for Monday", "RE: Hiring panel feedback", "Expense report #{n}",
    "RE: Vendor onboarding checklist", "Action items from today's call", "FW: Security awareness training",
    "RE: Build failure on main", "Quick question about the SOW", "Board deck comments", "RE: Travel booking",
]
CFO_SUBJECTS = [
    "RE: Wire transfer approval - Contoso Pharma", "Q3 forecast v{n}", "Vendor bank details update - Tailspin",
    "RE: Audit committee pre-read", "Cash position {n} Oct", "RE: Acquisition NDA - Project Heron",
    "FW: Payment run approval", "Treasury report week {n}", "RE: Invoice dispute Adatum",
    "Board pack - draft {n}", "RE: Credit line renewal", "Payroll funding confirmation",
]
NEWSLETTERS = ["Contoso News weekly #{n}", "Your Northwind digest", "Industry briefing {n}", "Webinar invite: cloud cost"]
FOLDERS = ["\\Inbox", "\\Inbox", "\\Inbox", "\\Sent Items", "\\Archive", "\\Inbox\\Projects"]


class Writer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rows: list[tuple[datetime, int, list[str]]] = []
        self.seq = 0

    # ---- identifiers that look like the service's
    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789ABCDEF") for _ in range(n))

    def b64(self, n: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def item_id(self) -> str:
        return "RgAAAAB" + self.b64(44) + "AAAJ"

    def folder_id(self) -> str:
        return "LgAAAAB" + self.b64(26) + "AQ"

    def message_id(self, person: Person) -> str:
        return f"<{person.server}{self.hexid(27)}@{person.server}.namprd04.prod.outlook.com>"

    def token(self) -> str:
        return self.b64(22)

    # ---- output
    def add(self, when: datetime, record: dict) -> dict:
        record_id = record["Id"]
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
        self.seq += 1
        self.rows.append((when, self.seq, [record_id, us_date(when), str(record["RecordType"]), record["Operation"],
                                           record["UserId"], text, "", ""]))
        return record

    def duplicate_last(self) -> None:
        when, _, row = self.rows[-1]
        self.seq += 1
        self.rows.append((when, self.seq, list(row)))

    def write(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.rows, key=lambda r: (r[0], r[1]))
        with path.open("w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle, lineterminator="\r\n")
            out.writerow(["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData",
                          "AssociatedAdminUnits", "AssociatedAdminUnitsNames"])
            for _, _, row in rows:
                out.writerow(row)
        return len(rows)


def us_date(when: datetime) -> str:
    hour = when.hour % 12 or 12
    return f"{when.month}/{when.day}/{when.year} {hour}:{when:%M:%S} {'AM' if when.hour < 12 else 'PM'}"


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


# ------------------------------------------------------------------ record builders


def base(w: Writer, when: datetime, operation: str, record_type: int, workload: str, user_id: str,
         user_key: str, user_type: int, status: str) -> dict:
    record_id = w.guid()
    return {"CreationTime": iso(when), "Id": record_id, "Operation": operation, "OrganizationId": ORG_ID,
            "RecordType": record_type, "ResultStatus": status, "UserKey": user_key, "UserType": user_type,
            "Version": 1, "Workload": workload}


def admin_cmdlet(w: Writer, when: datetime, actor: Person | None, cmdlet: str, object_id: str,
                 parameters: list[tuple[str, str]], ip: str | None = None, app_id: str = "",
                 session: str | None = None) -> dict:
    """ExchangeAdmin (RecordType 1): one cmdlet run."""
    if actor is None:
        record = {"AppAccessContext": {"UniqueTokenId": ""}}
        record |= base(w, when, cmdlet, 1, "Exchange", SYSTEM, SYSTEM, 3, "True")
        record |= {"ObjectId": object_id, "UserId": SYSTEM, "AppId": "", "ClientAppId": "", "ExternalAccess": True}
    else:
        record = {"AppAccessContext": {"IssuedAtTime": iso(when - timedelta(minutes=w.rng.randint(3, 40))),
                                       "UniqueTokenId": w.token()}}
        record |= base(w, when, cmdlet, 1, "Exchange", actor.upn, actor.puid, 2, "True")
        record |= {"ClientIP": f"{ip or actor.office}:{w.rng.randint(1025, 65000)}", "ObjectId": object_id,
                   "UserId": actor.upn, "AppId": app_id, "ClientAppId": "", "ExternalAccess": False}
    record |= {"OrganizationName": ORG_NAME,
               "OriginatingServer": f"{w.rng.choice(['CH3PR04MB8861', 'SN7PR04MB8529'])} (15.20.8093.016)",
               "Parameters": [{"Name": n, "Value": v} for n, v in parameters]}
    if actor is not None:
        record["SessionId"] = session or actor.session
    w.add(when, record)
    return record


def mailbox_common(w: Writer, when: datetime, operation: str, record_type: int, actor: Person, owner: Person,
                   ip: str, client: str, app_id: str = EXO_APP, logon_type: int = 0) -> dict:
    record = {"AppAccessContext": {"IssuedAtTime": iso(when - timedelta(minutes=w.rng.randint(1, 55))),
                                   "UniqueTokenId": w.token()}}
    record |= base(w, when, operation, record_type, "Exchange", actor.upn, actor.puid, 0, "Succeeded")
    record |= {"ClientIP": ip, "UserId": actor.upn, "AppId": app_id, "ClientAppId": "" if app_id == EXO_APP else app_id,
               "ClientIPAddress": ip, "ClientInfoString": client, "ExternalAccess": False, "InternalLogonType": 0,
               "LogonType": logon_type, "LogonUserSid": actor.sid, "MailboxGuid": owner.mailbox_guid,
               "MailboxOwnerSid": owner.sid, "MailboxOwnerUPN": owner.upn, "OrganizationName": ORG_NAME,
               "OriginatingServer": f"{owner.server} (15.20.8093.016)\r\n", "SessionId": actor.session}
    return record


def client_string(ua: str) -> str:
    if ua == UA_OUTLOOK:
        return "Client=MSExchangeRPC"
    if ua == UA_IOS:
        return "Client=REST;Client=RESTSystem;;"
    return f"Client=OWA;{ua};"


def send(w: Writer, when: datetime, actor: Person, subject: str, owner: Person | None = None,
         ip: str | None = None, ua: str | None = None, operation: str = "Send") -> dict:
    owner = owner or actor
    record = mailbox_common(w, when, operation, 2, actor, owner, ip or actor.office, client_string(ua or actor.ua),
                            logon_type=0 if owner is actor else 2)
    record["Item"] = {"Id": w.item_id(), "InternetMessageId": w.message_id(owner),
                      "ParentFolder": {"Id": w.folder_id(), "Path": "\\Sent Items"},
                      "SizeInBytes": w.rng.randint(9000, 180000), "Subject": subject}
    if owner is not actor:
        record["CrossMailboxOperation"] = False
    w.add(when, record)
    return record


def delete(w: Writer, when: datetime, operation: str, actor: Person, items: list[tuple[str, str]],
           owner: Person | None = None, ip: str | None = None, ua: str | None = None) -> dict:
    """ExchangeItemGroup (RecordType 3): HardDelete, SoftDelete or MoveToDeletedItems of items (subject, folder)."""
    owner = owner or actor
    record = mailbox_common(w, when, operation, 3, actor, owner, ip or actor.office, client_string(ua or actor.ua),
                            logon_type=0 if owner is actor else 2)
    record["AffectedItems"] = [{"Id": w.item_id(), "InternetMessageId": w.message_id(owner),
                                "ParentFolder": {"Id": w.folder_id(), "Path": folder}, "Subject": subject}
                               for subject, folder in items]
    record["CrossMailboxOperation"] = False
    destination = "\\Deleted Items" if operation == "MoveToDeletedItems" else "\\Recoverable Items\\Deletions" \
        if operation == "SoftDelete" else items[0][1]
    record["Folder"] = {"Id": w.folder_id(), "Path": destination}
    w.add(when, record)
    return record


def mail_items_accessed(w: Writer, when: datetime, actor: Person, owner: Person | None = None,
                        ip: str | None = None, client: str | None = None, app_id: str = OUTLOOK_APP,
                        folders: list[str] | None = None, bind_items: int = 0) -> dict:
    owner = owner or actor
    record = mailbox_common(w, when, "MailItemsAccessed", 50, actor, owner, ip or actor.office,
                            client or "Client=MSExchangeRPC", app_id=app_id, logon_type=0 if owner is actor else 2)
    access = "Bind" if bind_items else "Sync"
    record["OperationProperties"] = [{"Name": "MailAccessType", "Value": access}, {"Name": "IsThrottled", "Value": "False"}]
    entries = []
    for path in folders or ["\\Inbox"]:
        entry = {"Id": w.folder_id(), "Path": path}
        if bind_items:
            entry["FolderItems"] = [{"InternetMessageId": w.message_id(owner), "SizeInBytes": w.rng.randint(8000, 90000)}
                                    for _ in range(bind_items)]
        entries.append(entry)
    record["Folders"] = entries
    record["OperationCount"] = bind_items * len(entries) if bind_items else len(entries)
    w.add(when, record)
    return record


def sign_in(w: Writer, when: datetime, person: Person, ip: str, ua: str, app: str = OFFICE_HOME,
            failed: bool = False, resource: str = EXO_APP) -> dict:
    """AzureActiveDirectoryStsLogon (RecordType 15)."""
    operation = "UserLoginFailed" if failed else "UserLoggedIn"
    record = base(w, when, operation, 15, "AzureActiveDirectory", person.upn, person.object_id, 0, "Success")
    os_name = "Linux" if "Linux" in ua else "MacOs" if "Mac" in ua else "Ios" if "iOS" in ua else "Windows10"
    browser = "Firefox" if "Firefox" in ua else "Edge" if "Edg/" in ua else "Chrome" if "Chrome" in ua else ""
    details = [{"Name": "ResultStatusDetail", "Value": "Success"}]
    if not failed and app == OFFICE_HOME:
        details.append({"Name": "KeepMeSignedIn", "Value": "true"})
    details += [{"Name": "UserAgent", "Value": ua}, {"Name": "UserAuthenticationMethod", "Value": "1"},
                {"Name": "RequestType", "Value": "Login:login" if app == OFFICE_HOME else "OAuth2:Token"}]
    record |= {"ClientIP": ip, "ObjectId": resource, "UserId": person.upn, "AzureActiveDirectoryEventType": 1,
               "ExtendedProperties": details, "ModifiedProperties": [],
               "Actor": [{"ID": person.object_id, "Type": 0}, {"ID": person.upn, "Type": 5}],
               "ActorContextId": ORG_ID, "ActorIpAddress": ip, "InterSystemsId": w.guid(),
               "IntraSystemId": record["Id"], "SupportTicketId": "",
               "Target": [{"ID": resource, "Type": 0}], "TargetContextId": ORG_ID, "ApplicationId": app,
               "DeviceProperties": [{"Name": "OS", "Value": os_name}, {"Name": "BrowserType", "Value": browser},
                                    {"Name": "IsCompliantAndManaged", "Value": "False" if ip == ATTACKER_IP else "True"},
                                    {"Name": "SessionId", "Value": person.session}],
               "ErrorNumber": "50126" if failed else "0"}
    if failed:
        record["LogonError"] = "InvalidUserNameOrPassword"
    w.add(when, record)
    return record


def directory(w: Writer, when: datetime, actor: Person, operation: str, object_id: str,
              modified: list[tuple[str, str, str]], targets: list[tuple[str, int]], category: str,
              ip: str | None = None) -> dict:
    """AzureActiveDirectory (RecordType 8): directory changes (consent, grants, password resets)."""
    record = base(w, when, operation, 8, "AzureActiveDirectory", actor.upn, actor.puid + "@" + ORG_NAME, 0, "Success")
    record |= {"ObjectId": object_id, "UserId": actor.upn, "AzureActiveDirectoryEventType": 1,
               "ExtendedProperties": [{"Name": "additionalDetails", "Value": "{\"User-Agent\":\"" + actor.ua + "\"}"},
                                      {"Name": "extendedAuditEventCategory", "Value": category}],
               "ModifiedProperties": [{"Name": n, "NewValue": new, "OldValue": old} for n, new, old in modified],
               "Actor": [{"ID": actor.upn, "Type": 5}, {"ID": actor.puid, "Type": 3},
                         {"ID": f"User_{actor.object_id}", "Type": 2}, {"ID": actor.object_id, "Type": 2},
                         {"ID": "User", "Type": 2}],
               "ActorContextId": ORG_ID, "InterSystemsId": w.guid(), "IntraSystemId": w.guid(),
               "SupportTicketId": "", "Target": [{"ID": t, "Type": k} for t, k in targets],
               "TargetContextId": ORG_ID}
    if ip:
        record["ActorIpAddress"] = ip
        record["ClientIP"] = ip
    w.add(when, record)
    return record


def file_accessed(w: Writer, when: datetime, person: Person, name: str) -> dict:
    """SharePointFileOperation (RecordType 6): real exports are full of these."""
    record = {"AppAccessContext": {"AADSessionId": person.session, "CorrelationId": w.guid(), "UniqueTokenId": w.token()}}
    record |= base(w, when, "FileAccessed", 6, "SharePoint", person.upn,
                   f"i:0h.f|membership|{person.puid.lower()}@live.com", 0, "")
    del record["ResultStatus"]
    site = f"https://fabrikamlabs.sharepoint.com/sites/{w.rng.choice(['Finance', 'Engineering', 'Sales', 'HR'])}"
    record |= {"ClientIP": person.office, "UserId": person.upn, "CorrelationId": w.guid(), "EventSource": "SharePoint",
               "ItemType": "File", "ListId": w.guid(), "ListItemUniqueId": w.guid(), "Site": w.guid(),
               "UserAgent": person.ua, "WebId": w.guid(), "SourceFileExtension": name.rsplit(".", 1)[1],
               "SiteUrl": site + "/", "SourceFileName": name, "SourceRelativeUrl": "Shared Documents",
               "ObjectId": f"{site}/Shared Documents/{name}"}
    w.add(when, record)
    return record


# ------------------------------------------------------------------ the story


def workday(day: datetime) -> bool:
    return day.weekday() < 5


def at(day: datetime, rng: random.Random, start_hour: float = 13.0, end_hour: float = 22.0) -> datetime:
    seconds = rng.randint(int(start_hour * 3600), int(end_hour * 3600))
    return day + timedelta(seconds=seconds)


def subject(rng: random.Random, pool: list[str]) -> str:
    return rng.choice(pool).replace("{n}", str(rng.randint(2, 48)))


def background(w: Writer, rng: random.Random, people: dict[str, Person]) -> None:
    users = [p for p in people.values() if p.alias not in ("compliance-admin",)]
    day = START
    while day < END.replace(hour=0):
        for person in users:
            active = workday(day) or rng.random() < 0.12
            if not active:
                continue
            pool = CFO_SUBJECTS if person.alias in ("m.chen", "r.patel") else SUBJECTS
            for _ in range(rng.choice([1, 2, 2, 3]) if workday(day) else 1):
                when = at(day, rng, 12.5, 21.0)
                if rng.random() < 0.04:
                    sign_in(w, when - timedelta(seconds=40), person, person.office, person.ua, failed=True)
                sign_in(w, when, person, person.office, person.ua,
                        app=OUTLOOK_APP if person.ua == UA_OUTLOOK else OFFICE_HOME)
            for _ in range(rng.randint(1, 4) if workday(day) else rng.randint(0, 1)):
                send(w, at(day, rng), person, subject(rng, pool))
            for _ in range(rng.randint(0, 3)):
                mail_items_accessed(w, at(day, rng), person, client=client_string(person.ua),
                                    app_id=OUTLOOK_APP if person.ua == UA_OUTLOOK else EXO_APP,
                                    folders=rng.sample(["\\Inbox", "\\Sent Items", "\\Archive", "\\Calendar"], 2),
                                    bind_items=rng.choice([0, 0, 1, 2]))
            if rng.random() < 0.7:
                delete(w, at(day, rng), "MoveToDeletedItems", person,
                       [(subject(rng, NEWSLETTERS + SUBJECTS), rng.choice(FOLDERS[:3]))])
            if rng.random() < 0.08:
                delete(w, at(day, rng), "SoftDelete", person, [(subject(rng, SUBJECTS), "\\Deleted Items")])
            if rng.random() < 0.3:
                file_accessed(w, at(day, rng), person,
                              rng.choice(["Budget FY27.xlsx", "Roadmap.pptx", "Onboarding.docx", "Q3 results.xlsx"]))
        # Exchange Online's own housekeeping, several times a day
        for _ in range(rng.randint(12, 19)):
            when = at(day, rng, 0.0, 23.9)
            mailbox = rng.choice(list(people.values()))
            cmdlet, object_id, params = rng.choice([
                ("Set-Mailbox", f"{EXO_PATH}/{mailbox.alias}",
                 [("Identity", f"{EXO_PATH}/{mailbox.alias}"), ("RetentionPolicy", "Default MRM Policy"),
                  ("Force", "True")]),
                ("Set-MailboxPlan", f"{EXO_PATH}/ExchangeOnlineEnterprise-{ORG_ID[:8]}",
                 [("Identity", f"{EXO_PATH}/ExchangeOnlineEnterprise-{ORG_ID[:8]}"),
                  ("RecoverableItemsQuota", "100 GB (107,374,182,400 bytes)")]),
                ("Set-TransportConfig", f"{ORG_NAME}\\Transport Settings",
                 [("Identity", EXO_PATH), ("SupervisionTags", "Reject;Allow"), ("DomainController", "")]),
                ("Enable-AddressListPaging", ORG_NAME, [("Identity", EXO_PATH), ("DoNotUpdateRecipients", "True")]),
                ("Set-ConditionalAccessPolicy", f"{ORG_NAME}\\{w.guid()}",
                 [("Identity", f"{ORG_NAME}\\{w.guid()}"), ("DomainController", "")]),
            ])
            admin_cmdlet(w, when, None, cmdlet, object_id, params)
        day += timedelta(days=1)


def admins_routine(w: Writer, rng: random.Random, people: dict[str, Person]) -> None:
    jdoe, tn = people["j.doe"], people["t.nguyen"]
    users = [p for p in people.values() if p.role == "user"]
    day = START
    while day < END.replace(hour=0):
        if workday(day):
            for _ in range(rng.randint(0, 2)):
                target = rng.choice(users)
                cmdlet, params = rng.choice([
                    ("Set-Mailbox", [("Identity", target.upn), ("ProhibitSendQuota", "49.5 GB")]),
                    ("Set-CASMailbox", [("Identity", target.upn), ("ActiveSyncEnabled", "True")]),
                    ("Set-Mailbox", [("Identity", target.upn), ("GrantSendOnBehalfTo", people["r.patel"].upn)]),
                    ("Add-DistributionGroupMember", [("Identity", "all-staff@" + DOMAIN), ("Member", target.upn)]),
                    ("Set-User", [("Identity", target.upn), ("Title", "Analyst")]),
                ])
                admin_cmdlet(w, at(day, rng), jdoe, cmdlet, f"{EXO_PATH}/{target.alias}", params)
            if rng.random() < 0.25:
                target = rng.choice(users)
                directory(w, at(day, rng), jdoe, "Reset user password.", target.upn, [],
                          [(f"User_{target.object_id}", 2), (target.object_id, 2), ("User", 2), (target.upn, 5)],
                          "User")
            if rng.random() < 0.3:
                admin_cmdlet(w, at(day, rng), tn, "Set-OrganizationConfig", ORG_NAME,
                             [("Identity", ORG_NAME), ("FocusedInboxOn", "True")])
        day += timedelta(days=1)

    # a benign inbox rule: newsletters into "Newsletters"
    bj = people["b.jones"]
    admin_cmdlet(w, datetime(2026, 10, 2, 15, 12, 44), bj, "New-InboxRule",
                 f"{EXO_PATH}/{bj.alias}\\Newsletters",
                 [("AlwaysDeleteOutlookRulesBlob", "False"), ("Force", "False"), ("From", "news@contoso-news.example"),
                  ("MoveToFolder", "Newsletters"), ("Name", "Newsletters"), ("StopProcessingRules", "True")],
                 app_id=EXO_APP)
    # a user clearing old newsletters at once: below the bulk threshold
    si = people["s.ito"]
    delete(w, datetime(2026, 10, 9, 16, 40, 2), "MoveToDeletedItems", si,
           [(subject(rng, NEWSLETTERS), "\\Inbox") for _ in range(30)])
    # IT admin edits the external banner rule: authorized, routine
    admin_cmdlet(w, datetime(2026, 10, 7, 14, 3, 19), tn, "Set-TransportRule", "External sender warning",
                 [("Identity", "External sender warning"), ("PrependSubject", "[EXTERNAL] "),
                  ("FromScope", "NotInOrganization"), ("ExceptIfSenderDomainIs", "fabrikam-partners.example")])
    # a benign app consent without mail permissions
    directory(w, datetime(2026, 10, 5, 17, 22, 8), people["a.smith"], "Consent to application.",
              "2d4f0a8e-6b1c-4e7d-9a35-f08c12b7e694",
              [("ConsentContext.IsAdminConsent", "False", ""), ("ConsentContext.IsAppOnly", "False", ""),
               ("ConsentContext.OnBehalfOfAll", "False", ""),
               ("ConsentContext.Tags", "WindowsAzureActiveDirectoryIntegratedApp", ""),
               ("ConsentAction.Permissions",
                "[] => [[Id: Xb3kLm, ClientId: 2d4f0a8e-6b1c-4e7d-9a35-f08c12b7e694, PrincipalId: "
                f"{people['a.smith'].object_id}, ResourceId: 1c7e2a90-55d3-4b8f-a1e6-0f9b3c8d2e71, ConsentType: "
                "Principal, Scope:  User.Read Calendars.ReadWrite offline_access, CreatedDateTime: , "
                "LastModifiedDateTime ]]; ", ""),
               ("TargetId.ServicePrincipalNames", "2d4f0a8e-6b1c-4e7d-9a35-f08c12b7e694", "")],
              [("ServicePrincipal_2d4f0a8e-6b1c-4e7d-9a35-f08c12b7e694", 2), ("ServicePrincipal", 2),
               ("Zoom for Outlook", 1)], "ApplicationManagement", ip=people["a.smith"].office)


def legitimate_export(w: Writer, rng: random.Random, people: dict[str, Person]) -> None:
    ca = people["compliance-admin"]
    when = datetime(2026, 10, 6, 20, 52, 10)
    sign_in(w, when, ca, ca.office, ca.ua)
    sign_in(w, when + timedelta(minutes=9), ca, ca.office, "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.5",
            app=EXO_POWERSHELL)
    admin_cmdlet(w, datetime(2026, 10, 6, 21, 5, 31), ca, "New-MailboxExportRequest",
                 f"{EXO_PATH}/r.king\\LegalHold-CASE-2026-031",
                 [("Mailbox", "r.king@" + DOMAIN), ("FilePath", "\\\\FAB-LEGAL01\\exports$\\CASE-2026-031\\r.king.pst"),
                  ("Name", "LegalHold-CASE-2026-031"), ("BadItemLimit", "10")], app_id=EXO_POWERSHELL)


def retention_sweeps(w: Writer, people: dict[str, Person]) -> None:
    """The nightly retention job: hard-deletes expired items from the shared support mailbox through its own
    app registration. Known automation (mailhunt.toml [authorized].automation): a finding, never escalated."""
    rng = random.Random(SEED + 1)
    svc = Person(rng, "svc-retention", "automation", "Client=REST;Client=RESTSystem;;", RETENTION_IP)
    support = Person(rng, "support", "shared", UA_EDGE, RETENTION_IP)
    for day in (3, 7, 11):
        start = datetime(2026, 10, day, 2, 0, 0) + timedelta(minutes=rng.randint(0, 9))
        for batch in range(6):
            when = start + timedelta(minutes=batch * 3, seconds=rng.randint(0, 59))
            record = mailbox_common(w, when, "HardDelete", 3, svc, support, RETENTION_IP,
                                    "Client=REST;Client=RESTSystem;;", app_id=RETENTION_APP, logon_type=1)
            record["AffectedItems"] = [{"Id": w.item_id(), "InternetMessageId": w.message_id(support),
                                        "ParentFolder": {"Id": w.folder_id(), "Path": "\\Inbox\\Closed tickets"},
                                        "Subject": f"[Case #{rng.randint(40000, 49999)}] Ticket closed"}
                                       for _ in range(10)]
            record["CrossMailboxOperation"] = True
            record["Folder"] = {"Id": w.folder_id(), "Path": "\\Inbox\\Closed tickets"}
            w.add(when, record)


def attack(w: Writer, rng: random.Random, people: dict[str, Person]) -> None:
    jd, cfo, ap = people["j.doe"], people["m.chen"], people["r.patel"]
    t = datetime(2026, 10, 13, 22, 51, 7)
    # password guessing, then a sign-in from a Tor exit with a new browser
    for i in range(3):
        sign_in(w, t + timedelta(seconds=37 * i), jd, ATTACKER_IP, ATTACKER_UA, failed=True)
    t = datetime(2026, 10, 13, 23, 4, 12)
    sign_in(w, t, jd, ATTACKER_IP, ATTACKER_UA)
    # the warning about that sign-in is read, then removed for good
    mail_items_accessed(w, t + timedelta(minutes=3), jd, ip=ATTACKER_IP, client=client_string(ATTACKER_UA),
                        app_id=EXO_APP, bind_items=1)
    delete(w, datetime(2026, 10, 13, 23, 7, 55), "MoveToDeletedItems", jd,
           [("Microsoft account security alert", "\\Inbox")], ip=ATTACKER_IP, ua=ATTACKER_UA)
    delete(w, datetime(2026, 10, 13, 23, 8, 21), "HardDelete", jd,
           [("Microsoft account security alert", "\\Deleted Items")], ip=ATTACKER_IP, ua=ATTACKER_UA)
    delete(w, datetime(2026, 10, 13, 23, 9, 2), "HardDelete", jd,
           [("Unusual sign-in activity", "\\Inbox")], ip=ATTACKER_IP, ua=ATTACKER_UA)

    # Exchange Online PowerShell from the same place
    pwsh_session = w.guid()
    sign_in(w, datetime(2026, 10, 13, 23, 14, 40), jd, ATTACKER_IP, ATTACKER_PWSH_UA, app=EXO_POWERSHELL)

    def run(when, cmdlet, object_id, params):
        admin_cmdlet(w, when, jd, cmdlet, object_id, params, ip=ATTACKER_IP, app_id=EXO_POWERSHELL, session=pwsh_session)

    run(datetime(2026, 10, 13, 23, 18, 3), "New-ManagementRoleAssignment", "Mailbox Import Export-j.doe",
        [("Role", "Mailbox Import Export"), ("User", jd.upn), ("Name", "Mailbox Import Export-j.doe")])
    run(datetime(2026, 10, 13, 23, 20, 47), "Add-MailboxPermission", f"{EXO_PATH}/{cfo.alias}",
        [("Identity", cfo.upn), ("User", jd.upn), ("AccessRights", "FullAccess"), ("InheritanceType", "All"),
         ("AutoMapping", "False")])
    run(datetime(2026, 10, 13, 23, 26, 15), "New-MailboxExportRequest", f"{EXO_PATH}/{cfo.alias}\\MC-Export",
        [("Mailbox", cfo.upn), ("FilePath", "\\\\FAB-FS02\\scans$\\tmp\\mc_2026.pst"), ("Name", "MC-Export"),
         ("BadItemLimit", "unlimited"), ("AcceptLargeDataLoss", "True")])
    run(datetime(2026, 10, 13, 23, 38, 22), "Remove-MailboxExportRequest", f"{EXO_PATH}/{cfo.alias}\\MC-Export",
        [("Identity", f"{cfo.upn}\\MC-Export"), ("Confirm", "False")])
    # hide the CFO's security mail
    run(datetime(2026, 10, 13, 23, 41, 9), "New-InboxRule", f"{EXO_PATH}/{cfo.alias}\\.",
        [("Mailbox", cfo.upn), ("Name", "."), ("SubjectContainsWords", "security alert;unusual sign-in;suspicious"),
         ("MoveToFolder", "RSS Feeds"), ("MarkAsRead", "True"), ("StopProcessingRules", "True")])
    run(datetime(2026, 10, 13, 23, 42, 30), "New-InboxRule", f"{EXO_PATH}/{cfo.alias}\\..",
        [("Mailbox", cfo.upn), ("Name", ".."), ("From", "it-security@" + DOMAIN),
         ("DeleteMessage", "True"), ("StopProcessingRules", "True")])

    # an app with mail permissions, consented from the browser session
    directory(w, datetime(2026, 10, 13, 23, 46, 12), jd, "Add service principal.", EVIL_SP,
              [("AccountEnabled", "[\r\n  true\r\n]", "[]"), ("AppPrincipalId", f"[\r\n  \"{EVIL_APP_ID}\"\r\n]", "[]"),
               ("DisplayName", f"[\r\n  \"{EVIL_APP_NAME}\"\r\n]", "[]")],
              [(f"ServicePrincipal_{EVIL_SP}", 2), (EVIL_SP, 2), ("ServicePrincipal", 2), (EVIL_APP_NAME, 1),
               (EVIL_APP_ID, 2)], "ServicePrincipal", ip=ATTACKER_IP)
    scope = "Mail.ReadWrite Mail.ReadWrite.Shared Mail.Send offline_access User.Read"
    directory(w, datetime(2026, 10, 13, 23, 46, 13), jd, "Add delegated permission grant.",
              "00000003-0000-0000-c000-000000000000",
              [("DelegatedPermissionGrant.Scope", scope, ""), ("DelegatedPermissionGrant.ConsentType", "Principal", ""),
               ("ServicePrincipal.ObjectID", EVIL_SP, "")],
              [(f"ServicePrincipal_{GRAPH}", 2), (GRAPH, 2), ("ServicePrincipal", 2), ("Microsoft Graph", 1)],
              "ApplicationManagement", ip=ATTACKER_IP)
    directory(w, datetime(2026, 10, 13, 23, 46, 14), jd, "Consent to application.", EVIL_SP,
              [("ConsentContext.IsAdminConsent", "False", ""), ("ConsentContext.IsAppOnly", "False", ""),
               ("ConsentContext.OnBehalfOfAll", "False", ""),
               ("ConsentContext.Tags", "WindowsAzureActiveDirectoryIntegratedApp", ""),
               ("ConsentAction.Permissions",
                f"[] => [[Id: q9XvT2, ClientId: {EVIL_SP}, PrincipalId: {jd.object_id}, ResourceId: "
                f"7a1f5c3e-0b8d-4e62-9f47-d2c6a8b1e053, ConsentType: Principal, Scope:  {scope}, "
                "CreatedDateTime: , LastModifiedDateTime ]]; ", ""),
               ("TargetId.ServicePrincipalNames", EVIL_APP_ID, "")],
              [(f"ServicePrincipal_{EVIL_SP}", 2), (EVIL_SP, 2), ("ServicePrincipal", 2), (EVIL_APP_NAME, 1),
               (EVIL_APP_ID, 2)], "ApplicationManagement", ip=ATTACKER_IP)
    # the app syncs the CFO's mailbox through the delegate's FullAccess
    for minute in range(0, 24, 3):
        mail_items_accessed(w, datetime(2026, 10, 13, 23, 50, 5) + timedelta(minutes=minute, seconds=rng.randint(0, 50)),
                            jd, owner=cfo, ip=ATTACKER_IP, client="Client=REST;Client=RESTSystem;;",
                            app_id=EVIL_APP_ID, folders=["\\Inbox", "\\Sent Items", "\\Inbox\\Board"],
                            bind_items=rng.randint(6, 10))

    # bulk hard deletion in the CFO's mailbox (OWA, as delegate): 86 items in 47 minutes
    when = datetime(2026, 10, 13, 23, 55, 40)
    remaining, first = 86, True
    while remaining:
        count = min(remaining, rng.randint(1, 6))
        items = [(subject(rng, CFO_SUBJECTS), rng.choice(["\\Inbox", "\\Inbox", "\\Sent Items", "\\Inbox\\Board"]))
                 for _ in range(count)]
        delete(w, when, "HardDelete", jd, items, owner=cfo, ip=ATTACKER_IP, ua=ATTACKER_UA)
        if first:
            w.duplicate_last()                       # real exports repeat a record now and then
            first = False
        remaining -= count
        when += timedelta(seconds=rng.randint(50, 140))

    # payment-change mail sent as the CFO, then removed from Sent Items
    send(w, datetime(2026, 10, 14, 0, 47, 3), jd, "Updated remittance details - Contoso Pharma invoice 7731",
         owner=cfo, ip=ATTACKER_IP, ua=ATTACKER_UA, operation="SendAs")
    delete(w, datetime(2026, 10, 14, 0, 48, 30), "HardDelete", jd,
           [("Updated remittance details - Contoso Pharma invoice 7731", "\\Sent Items")],
           owner=cfo, ip=ATTACKER_IP, ua=ATTACKER_UA)

    # transport rules: let the lookalike domain through, drop security notices, unbanner the lookalike
    run(datetime(2026, 10, 14, 0, 52, 18), "New-TransportRule", "Partner allowlist",
        [("Name", "Partner allowlist"), ("SenderDomainIs", LOOKALIKE), ("SetSCL", "-1"), ("Priority", "0")])
    run(datetime(2026, 10, 14, 0, 55, 41), "New-TransportRule", "NDR cleanup",
        [("Name", "NDR cleanup"), ("SubjectContainsWords", "security alert;unusual sign-in;Undeliverable"),
         ("DeleteMessage", "True"), ("Priority", "1")])
    run(datetime(2026, 10, 14, 0, 58, 2), "Set-TransportRule", "External sender warning",
        [("Identity", "External sender warning"),
         ("ExceptIfSenderDomainIs", f"fabrikam-partners.example;{LOOKALIKE}")])
    # and nothing the account does in a mailbox is audited any more
    run(datetime(2026, 10, 14, 1, 2, 37), "Set-MailboxAuditBypassAssociation", f"{EXO_PATH}/{jd.alias}",
        [("Identity", jd.upn), ("AuditBypassEnabled", "True")])
    run(datetime(2026, 10, 14, 1, 12, 9), "Remove-ManagementRoleAssignment", "Mailbox Import Export-j.doe",
        [("Identity", "Mailbox Import Export-j.doe"), ("Confirm", "False")])


def build() -> Writer:
    rng = random.Random(SEED)
    offices = [f"198.51.100.{n}" for n in (14, 15, 22, 37)] + [f"203.0.113.{n}" for n in (8, 9, 61)]
    spec = [
        ("m.chen", "cfo", UA_OUTLOOK), ("r.patel", "user", UA_EDGE), ("j.doe", "helpdesk", UA_EDGE),
        ("t.nguyen", "itadmin", UA_EDGE), ("compliance-admin", "compliance", UA_EDGE),
        ("a.smith", "user", UA_OUTLOOK), ("b.jones", "user", UA_EDGE), ("c.garcia", "user", UA_CHROME_MAC),
        ("d.kim", "user", UA_OUTLOOK), ("e.muller", "user", UA_EDGE), ("f.rossi", "user", UA_IOS),
        ("g.okafor", "user", UA_OUTLOOK), ("h.larsen", "user", UA_CHROME_MAC), ("i.novak", "user", UA_EDGE),
        ("k.sato", "user", UA_OUTLOOK), ("l.dubois", "user", UA_EDGE), ("n.haddad", "user", UA_OUTLOOK),
        ("s.ito", "user", UA_EDGE),
    ]
    people = {alias: Person(rng, alias, role, ua, rng.choice(offices)) for alias, role, ua in spec}
    people["j.doe"].office = "198.51.100.22"
    w = Writer(rng)
    background(w, rng, people)
    admins_routine(w, rng, people)
    legitimate_export(w, rng, people)
    attack(w, rng, people)
    # the morning after: the real j.doe at the office, as usual
    sign_in(w, datetime(2026, 10, 14, 13, 2, 51), people["j.doe"], "198.51.100.22", UA_EDGE)
    sign_in(w, datetime(2026, 10, 15, 12, 58, 4), people["j.doe"], "198.51.100.22", UA_EDGE)
    retention_sweeps(w, people)
    return w


def main() -> None:
    writer = build()
    count = writer.write(OUT)
    print(f"wrote {count} records to {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
