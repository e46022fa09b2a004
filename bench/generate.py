#!/usr/bin/env python3
"""Generate unified audit log records (AuditData objects) as NDJSON, for the benchmark.

    python bench/generate.py 2000000 bench/out/ual-2000000.ndjson [--seed 7] [--days 30]

The mix of operations and the record sizes follow real tenants (MailItemsAccessed,
sign-ins and SharePoint file access dominate; about 800-1000 bytes a record),
with many users and a handful of injected incidents of the kind mailhunt looks
for: export followed by removal of the export request, bulk hard deletion,
inbox rules that hide security mail, transport rules that skip spam filtering,
audit bypass. The incidents are listed in ``OUT.truth.json``.

Streaming: records are built from pre-built templates, serialized with orjson
and written in blocks, so memory stays flat whatever N is. Deterministic for a
given N, seed and days.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

DOMAIN = "contoso.example"
ORG_ID = "8d1c3e5a-7f29-4b60-a1d4-3e9c5b7f2a18"
ORG_NAME = "contoso.onmicrosoft.com"
EXO_PATH = "NAMPR07A001.PROD.OUTLOOK.COM/Microsoft Exchange Hosted Organizations/" + ORG_NAME
SYSTEM = "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"
EXO_APP = "00000002-0000-0ff1-ce00-000000000000"
OUTLOOK_APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
OFFICE_HOME = "4765445b-32c6-49b0-83e6-1d93765276ca"
EXO_POWERSHELL = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
START = datetime(2026, 9, 1, tzinfo=UTC)
BLOCK = 8192

USER_AGENTS = [  # desktop Outlook and mobile are the common clients
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18025; Pro)",
    "Outlook-iOS/2.0", "Outlook-Android/2.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18025; Pro)",
    "Outlook-iOS/2.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
ATTACKER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
SUBJECTS = [
    "Weekly sync notes", "RE: Q4 planning", "Invoice approved", "FW: Updated org chart", "Lunch Thursday?",
    "RE: Customer escalation", "Draft release notes", "RE: PTO request", "Timesheet reminder",
    "Contract renewal", "RE: Budget variance", "Meeting moved to 3pm", "Slides for Monday",
    "RE: Hiring panel feedback", "Expense report", "Action items from today's call", "RE: Build failure",
]
FOLDERS = ["\\Inbox", "\\Inbox", "\\Inbox", "\\Sent Items", "\\Archive", "\\Drafts", "\\Inbox\\Projects"]
FILES = ["Budget FY27.xlsx", "Roadmap.pptx", "Onboarding.docx", "Q3 results.xlsx", "Notes.docx", "Design.vsdx"]
SITES = ["Finance", "Engineering", "Sales", "HR", "Legal", "Marketing"]
SYSTEM_CMDLETS = ["Set-Mailbox", "Set-MailboxPlan", "Set-TransportConfig", "Enable-AddressListPaging",
                  "Set-ConditionalAccessPolicy", "Set-MailboxFolderPermission", "Set-CalendarProcessing"]

BIND = [{"Name": "MailAccessType", "Value": "Bind"}, {"Name": "IsThrottled", "Value": "False"}]
SYNC = [{"Name": "MailAccessType", "Value": "Sync"}, {"Name": "IsThrottled", "Value": "False"}]

# (operation, weight): shares close to a real tenant's audit log
MIX = [
    ("MailItemsAccessed", 300), ("UserLoggedIn", 180), ("FileAccessed", 100), ("Send", 70),
    ("MoveToDeletedItems", 50), ("Update", 30), ("FileModified", 30), ("SystemCmdlet", 50),
    ("SoftDelete", 20), ("HardDelete", 8), ("UserLoginFailed", 15), ("Directory", 15), ("AdminCmdlet", 7),
    ("BenignInboxRule", 1),
]


class Ids:
    """Random identifiers in the service's shapes, cheap to make."""

    def __init__(self, rng: random.Random):
        self.bits = rng.getrandbits
        self.choice = rng.choice

    def guid(self) -> str:
        h = f"{self.bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def hexup(self, n: int) -> str:
        return f"{self.bits(4 * n):0{n}X}"[:n]

    def b64(self, n: int) -> str:
        return f"{self.bits(4 * n):0{n}x}"[:n]


class User:
    __slots__ = ("ip", "mailbox_guid", "object_id", "puid", "server", "session", "sid", "ua", "upn")

    def __init__(self, ids: Ids, rng: random.Random, n: int):
        self.upn = f"user{n:05d}@{DOMAIN}"
        self.puid = "1003" + ids.hexup(12)
        self.object_id = ids.guid()
        self.sid = f"S-1-5-21-1894732610-3392847561-2274619385-{20000 + n}"
        self.mailbox_guid = ids.guid()
        self.ip = f"198.51.100.{rng.randint(1, 254)}" if rng.random() < 0.7 else f"203.0.113.{rng.randint(1, 254)}"
        self.ua = rng.choice(USER_AGENTS)
        self.server = rng.choice(["BY5PR07MB6812", "SA1PR07MB8127", "CH0PR07MB7993", "MN2PR07MB6231"])
        self.session = ids.guid()


class Clock:
    """CreationTime strings from epoch seconds, without datetime objects in the hot loop."""

    def __init__(self):
        self.day_cache: dict[int, str] = {}
        self.epoch = int(START.timestamp())

    def iso(self, seconds: int) -> str:
        day, rest = divmod(seconds, 86400)
        prefix = self.day_cache.get(day)
        if prefix is None:
            prefix = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")
            self.day_cache[day] = prefix
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}"


class Generator:
    def __init__(self, seed: int, users: int):
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.clock = Clock()
        self.users = [User(self.ids, self.rng, n) for n in range(users)]
        self.admins = self.users[:max(3, users // 400)]
        self.templates: dict[tuple, dict] = {}

    # ---------------------------------------------------------------- pieces
    def head(self, t: int, operation: str, record_type: int, workload: str, user_id: str, user_key: str,
             user_type: int, status: str) -> dict:
        return {"CreationTime": self.clock.iso(t), "Id": self.ids.guid(), "Operation": operation,
                "OrganizationId": ORG_ID, "RecordType": record_type, "ResultStatus": status, "UserKey": user_key,
                "UserType": user_type, "Version": 1, "Workload": workload}

    def mailbox(self, t: int, operation: str, record_type: int, actor: User, owner: User, ip: str, ua: str,
                app: str = EXO_APP, logon_type: int = 0, context: bool = True) -> dict:
        # AppAccessContext came to mailbox records in 2023; many records still come without it
        r = {"AppAccessContext": {"IssuedAtTime": self.clock.iso(t - 900), "UniqueTokenId": self.ids.b64(22)}} \
            if context else {}
        r.update(self.head(t, operation, record_type, "Exchange", actor.upn, actor.puid, 0, "Succeeded"))
        client = ("Client=MSExchangeRPC" if app == OUTLOOK_APP or ua.startswith("Microsoft Office")
                  else "Client=REST;Client=RESTSystem;;" if ua.startswith("Outlook-iOS") else f"Client=OWA;{ua};")
        r.update({"ClientIP": ip, "UserId": actor.upn, "AppId": app, "ClientAppId": "", "ClientIPAddress": ip,
                  "ClientInfoString": client, "ExternalAccess": False, "InternalLogonType": 0,
                  "LogonType": logon_type, "LogonUserSid": actor.sid, "MailboxGuid": owner.mailbox_guid,
                  "MailboxOwnerSid": owner.sid, "MailboxOwnerUPN": owner.upn, "OrganizationName": ORG_NAME,
                  "OriginatingServer": f"{owner.server} (15.20.8093.016)\r\n", "SessionId": actor.session})
        return r

    def message_id(self, u: User) -> str:
        return f"<{u.server}{self.ids.hexup(20)}@{u.server}.namprd07.prod.outlook.com>"

    def item(self, u: User, subject: str, folder: str) -> dict:
        return {"Id": "RgAAAAB" + self.ids.b64(40), "InternetMessageId": self.message_id(u),
                "ParentFolder": {"Id": "LgAAAAB" + self.ids.b64(20), "Path": folder}, "Subject": subject}

    def deletion(self, t: int, operation: str, actor: User, owner: User, items: list[tuple[str, str]],
                 ip: str | None = None, ua: str | None = None) -> dict:
        r = self.mailbox(t, operation, 3, actor, owner, ip or actor.ip, ua or actor.ua,
                         logon_type=0 if owner is actor else 2)
        r["AffectedItems"] = [self.item(owner, s, f) for s, f in items]
        r["CrossMailboxOperation"] = False
        r["Folder"] = {"Id": "LgAAAAB" + self.ids.b64(20), "Path": items[0][1]}
        return r

    def cmdlet(self, t: int, actor: User | None, name: str, object_id: str, params: list[tuple[str, str]],
               ip: str | None = None, app: str = "") -> dict:
        if actor is None:
            r = {"AppAccessContext": {"UniqueTokenId": ""}}
            r.update(self.head(t, name, 1, "Exchange", SYSTEM, SYSTEM, 3, "True"))
            r.update({"ObjectId": object_id, "UserId": SYSTEM, "AppId": "", "ClientAppId": "", "ExternalAccess": True})
        else:
            r = {"AppAccessContext": {"IssuedAtTime": self.clock.iso(t - 600), "UniqueTokenId": self.ids.b64(22)}}
            r.update(self.head(t, name, 1, "Exchange", actor.upn, actor.puid, 2, "True"))
            r.update({"ClientIP": f"{ip or actor.ip}:{self.rng.randint(1025, 65000)}", "ObjectId": object_id,
                      "UserId": actor.upn, "AppId": app, "ClientAppId": "", "ExternalAccess": False})
        r.update({"OrganizationName": ORG_NAME, "OriginatingServer": "CH3PR07MB8861 (15.20.8093.016)",
                  "Parameters": [{"Name": n, "Value": v} for n, v in params]})
        if actor is not None:
            r["SessionId"] = actor.session
        return r

    def sign_in(self, t: int, u: User, ip: str, ua: str, failed: bool = False, app: str = OFFICE_HOME) -> dict:
        r = self.head(t, "UserLoginFailed" if failed else "UserLoggedIn", 15, "AzureActiveDirectory", u.upn,
                      u.object_id, 0, "Success")
        r.update({"ClientIP": ip, "ObjectId": EXO_APP, "UserId": u.upn, "AzureActiveDirectoryEventType": 1,
                  "ExtendedProperties": [{"Name": "ResultStatusDetail", "Value": "Success"},
                                         {"Name": "UserAgent", "Value": ua},
                                         {"Name": "RequestType", "Value": "Login:login"}],
                  "ModifiedProperties": [], "Actor": [{"ID": u.object_id, "Type": 0}, {"ID": u.upn, "Type": 5}],
                  "ActorContextId": ORG_ID, "ActorIpAddress": ip, "InterSystemsId": self.ids.guid(),
                  "IntraSystemId": r["Id"], "SupportTicketId": "", "Target": [{"ID": EXO_APP, "Type": 0}],
                  "TargetContextId": ORG_ID, "ApplicationId": app,
                  "DeviceProperties": [{"Name": "OS", "Value": "Windows10"}, {"Name": "SessionId", "Value": u.session}],
                  "ErrorNumber": "50126" if failed else "0"})
        if failed:
            r["LogonError"] = "InvalidUserNameOrPassword"
        return r

    # ---------------------------------------------------------------- background
    def template(self, key: tuple, build) -> dict:
        """The parts of a record that stay the same for a user and operation, built once."""
        found = self.templates.get(key)
        if found is None:
            found = self.templates[key] = build()
        return found

    def background(self, t: int, operation: str) -> dict:
        rng = self.rng
        index = int(rng.random() * len(self.users))
        u = self.users[index]
        if operation == "MailItemsAccessed":
            r = self.template((index, operation), lambda: self.mailbox(
                0, operation, 50, u, u, u.ip, u.ua, app=OUTLOOK_APP, context=False)).copy()
            r["CreationTime"], r["Id"] = self.clock.iso(t), self.ids.guid()
            folder = {"Id": "LgAAAAB" + self.ids.b64(20), "Path": rng.choice(FOLDERS)}
            if rng.random() < 0.4:
                r["OperationProperties"] = BIND
                folder["FolderItems"] = [{"InternetMessageId": self.message_id(u), "SizeInBytes": rng.randint(4000, 90000)}]
            else:
                r["OperationProperties"] = SYNC
            r["Folders"] = [folder]
            r["OperationCount"] = 1
            return r
        if operation in ("UserLoggedIn", "UserLoginFailed"):
            r = self.template((index, operation), lambda: self.sign_in(
                0, u, u.ip, u.ua, failed=operation == "UserLoginFailed")).copy()
            r["CreationTime"], r["Id"], r["InterSystemsId"] = self.clock.iso(t), self.ids.guid(), self.ids.guid()
            r["IntraSystemId"] = r["Id"]
            return r
        if operation in ("Send", "Update"):
            context = rng.random() < 0.3
            r = self.template((index, operation, context), lambda: self.mailbox(
                0, operation, 2, u, u, u.ip, u.ua, context=context)).copy()
            r["CreationTime"], r["Id"] = self.clock.iso(t), self.ids.guid()
            if context:
                r["AppAccessContext"] = {"IssuedAtTime": self.clock.iso(t - 900), "UniqueTokenId": self.ids.b64(22)}
            r["Item"] = {"Id": "RgAAAAB" + self.ids.b64(40), "InternetMessageId": self.message_id(u),
                         "ParentFolder": {"Id": "LgAAAAB" + self.ids.b64(20),
                                          "Path": "\\Sent Items" if operation == "Send" else rng.choice(FOLDERS)},
                         "SizeInBytes": rng.randint(4000, 200000), "Subject": rng.choice(SUBJECTS)}
            return r
        if operation in ("MoveToDeletedItems", "SoftDelete", "HardDelete"):
            folder = "\\Deleted Items" if operation != "MoveToDeletedItems" else rng.choice(FOLDERS[:3])
            return self.deletion(t, operation, u, u, [(rng.choice(SUBJECTS), folder)])
        if operation in ("FileAccessed", "FileModified"):
            site = rng.choice(SITES)
            name = rng.choice(FILES)

            def build() -> dict:
                url = f"https://contoso.sharepoint.com/sites/{site}"
                r = {"AppAccessContext": {"AADSessionId": u.session, "UniqueTokenId": ""}}
                r.update(self.head(0, operation, 6, "SharePoint", u.upn,
                                   f"i:0h.f|membership|{u.puid.lower()}@live.com", 0, ""))
                del r["ResultStatus"]
                r.update({"ClientIP": u.ip, "UserId": u.upn, "CorrelationId": "", "EventSource": "SharePoint",
                          "ItemType": "File", "ListId": self.ids.guid(), "ListItemUniqueId": self.ids.guid(),
                          "Site": self.ids.guid(), "UserAgent": u.ua, "WebId": self.ids.guid(),
                          "SourceFileExtension": name.rsplit(".", 1)[1], "SiteUrl": url + "/",
                          "SourceFileName": name, "SourceRelativeUrl": "Shared Documents",
                          "ObjectId": f"{url}/Shared Documents/{name}"})
                return r

            r = self.template((index, operation, site, name), build).copy()
            r["CreationTime"], r["Id"], r["CorrelationId"] = self.clock.iso(t), self.ids.guid(), self.ids.guid()
            r["AppAccessContext"] = {"AADSessionId": u.session, "CorrelationId": r["CorrelationId"],
                                     "UniqueTokenId": self.ids.b64(22)}
            return r
        if operation == "SystemCmdlet":
            name = rng.choice(SYSTEM_CMDLETS)
            identity = f"{EXO_PATH}/{u.upn.split('@')[0]}"
            return self.cmdlet(t, None, name, identity, [("Identity", identity), ("Force", "True"),
                                                         ("DomainController", "")])
        if operation == "AdminCmdlet":
            admin = rng.choice(self.admins)
            name, params = rng.choice([
                ("Set-Mailbox", [("Identity", u.upn), ("ProhibitSendQuota", "49.5 GB")]),
                ("Set-CASMailbox", [("Identity", u.upn), ("ActiveSyncEnabled", "True")]),
                ("Add-DistributionGroupMember", [("Identity", "all-staff@" + DOMAIN), ("Member", u.upn)]),
            ])
            return self.cmdlet(t, admin, name, f"{EXO_PATH}/{u.upn}", params, app=EXO_POWERSHELL)
        if operation == "BenignInboxRule":
            return self.cmdlet(t, u, "New-InboxRule", f"{EXO_PATH}/{u.upn}\\Newsletters",
                               [("From", "news@contoso-news.example"), ("MoveToFolder", "Newsletters"),
                                ("Name", "Newsletters"), ("StopProcessingRules", "True")], app=EXO_APP)
        # Directory
        r = self.head(t, "Update user.", 8, "AzureActiveDirectory", u.upn, u.puid + "@" + ORG_NAME, 0, "Success")
        r.update({"ObjectId": u.upn, "UserId": u.upn, "AzureActiveDirectoryEventType": 1,
                  "ExtendedProperties": [{"Name": "extendedAuditEventCategory", "Value": "User"}],
                  "ModifiedProperties": [{"Name": "StsRefreshTokensValidFrom", "NewValue": "[\r\n  \"" +
                                          self.clock.iso(t) + "Z\"\r\n]", "OldValue": "[]"}],
                  "Actor": [{"ID": u.upn, "Type": 5}], "ActorContextId": ORG_ID, "InterSystemsId": self.ids.guid(),
                  "IntraSystemId": self.ids.guid(), "SupportTicketId": "",
                  "Target": [{"ID": f"User_{u.object_id}", "Type": 2}, {"ID": u.upn, "Type": 5}],
                  "TargetContextId": ORG_ID})
        return r

    # ---------------------------------------------------------------- incidents
    def incident(self, kind: str, t: int) -> tuple[list[tuple[int, dict]], dict]:
        """Records of one injected incident starting at t, and its truth entry."""
        rng = self.rng
        actor = rng.choice(self.users[len(self.admins):])
        victim = rng.choice(self.users)
        ip = f"185.220.101.{rng.randint(2, 250)}"
        out: list[tuple[int, dict]] = [(t, self.sign_in(t, actor, ip, ATTACKER_UA))]
        step = t + 120
        truth = {"kind": kind, "actor": actor.upn, "target": victim.upn, "ip": ip}
        if kind == "export_then_removal":
            name = f"Export-{rng.randint(100, 999)}"
            out.append((step, self.cmdlet(step, actor, "New-ManagementRoleAssignment", f"Mailbox Import Export-{name}",
                                          [("Role", "Mailbox Import Export"), ("User", actor.upn)], ip, EXO_POWERSHELL)))
            step += 300
            out.append((step, self.cmdlet(step, actor, "New-MailboxExportRequest", f"{victim.upn}\\{name}",
                                          [("Mailbox", victim.upn), ("FilePath", f"\\\\FS{rng.randint(1, 9)}\\tmp$\\{name}.pst"),
                                           ("Name", name)], ip, EXO_POWERSHELL)))
            step += rng.randint(300, 1800)
            out.append((step, self.cmdlet(step, actor, "Remove-MailboxExportRequest", f"{victim.upn}\\{name}",
                                          [("Identity", f"{victim.upn}\\{name}"), ("Confirm", "False")], ip, EXO_POWERSHELL)))
            step += 60
        if kind in ("export_then_removal", "bulk_deletion"):
            remaining = rng.randint(60, 120)
            truth["items_deleted"] = remaining
            while remaining:
                count = min(remaining, rng.randint(1, 6))
                items = [(rng.choice(SUBJECTS), rng.choice(FOLDERS)) for _ in range(count)]
                out.append((step, self.deletion(step, "HardDelete", actor, victim, items, ip, ATTACKER_UA)))
                remaining -= count
                step += rng.randint(20, 70)
        if kind == "hiding_rules":
            out.append((step, self.deletion(step, "HardDelete", actor, actor,
                                            [("Microsoft account security alert", "\\Inbox")], ip, ATTACKER_UA)))
            step += 90
            out.append((step, self.cmdlet(step, actor, "New-InboxRule", f"{victim.upn}\\.",
                                          [("Mailbox", victim.upn), ("Name", "."),
                                           ("SubjectContainsWords", "security alert;unusual sign-in"),
                                           ("MoveToFolder", "RSS Feeds"), ("MarkAsRead", "True")], ip, EXO_APP)))
            step += 200
            out.append((step, self.cmdlet(step, actor, "New-TransportRule", "Partner allowlist",
                                          [("Name", "Partner allowlist"), ("SenderDomainIs", "c0ntoso.example"),
                                           ("SetSCL", "-1")], ip, EXO_POWERSHELL)))
            step += 120
            out.append((step, self.cmdlet(step, actor, "Set-MailboxAuditBypassAssociation", actor.upn,
                                          [("Identity", actor.upn), ("AuditBypassEnabled", "True")], ip, EXO_POWERSHELL)))
        truth.update(start=self.clock.iso(t) + "Z", end=self.clock.iso(out[-1][0]) + "Z", records=len(out))
        return out, truth


def generate(n: int, out: Path, seed: int = 7, days: int = 30, quiet: bool = False) -> dict:
    gen = Generator(seed, users=max(200, min(5000, n // 400)))
    rng = gen.rng
    span = days * 86400
    epoch = gen.clock.epoch
    kinds = ["export_then_removal", "bulk_deletion", "hiding_rules"]
    wanted = max(3, min(24, n // 200_000)) if n >= 2000 else 0
    incidents: list[tuple[int, list[tuple[int, dict]]]] = []
    truth = []
    budget = n
    for k in range(wanted):
        position = int(n * (0.15 + 0.8 * (k + 0.5) / wanted))
        start = epoch + int(span * position / n)
        records, entry = gen.incident(kinds[k % len(kinds)], start)
        if len(records) >= budget:
            break
        budget -= len(records)
        incidents.append((position, records))
        truth.append(entry)
    background = budget

    names = [m for m, _ in MIX]
    weights = [w for _, w in MIX]
    ops = rng.choices(names, weights, k=min(background, 100_000))
    dumps = orjson.dumps
    out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    next_incident = 0
    with out.open("wb") as handle:
        block: list[bytes] = []
        for i in range(background):
            while next_incident < len(incidents) and incidents[next_incident][0] <= i:
                block.extend(dumps(r) for _, r in incidents[next_incident][1])
                next_incident += 1
            t = epoch + (i * span) // background + int(rng.random() * 600) - 300
            if i and i % len(ops) == 0:
                ops = rng.choices(names, weights, k=min(background - i, 100_000))
            block.append(dumps(gen.background(t, ops[i % len(ops)])))
            if len(block) >= BLOCK:
                block.append(b"")
                handle.write(b"\n".join(block))
                block = []
        for _, records in incidents[next_incident:]:
            block.extend(dumps(r) for _, r in records)
        if block:
            block.append(b"")
            handle.write(b"\n".join(block))
    written = background + sum(len(records) for _, records in incidents)
    elapsed = time.perf_counter() - began
    size = out.stat().st_size
    summary = {"records": written, "bytes": size, "seed": seed, "days": days, "users": len(gen.users),
               "incidents": truth, "seconds": round(elapsed, 2)}
    Path(str(out) + ".truth.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if not quiet:
        print(f"wrote {written} records, {size / 1e6:.1f} MB ({size / max(written, 1):.0f} B/record), "
              f"{len(truth)} incidents, in {elapsed:.1f} s -> {out}", file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=int, help="how many records to write")
    parser.add_argument("out", type=Path, help="the NDJSON file to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=30, help="time span the records cover (default 30)")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("records must be at least 1")
    generate(args.records, args.out, args.seed, args.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
