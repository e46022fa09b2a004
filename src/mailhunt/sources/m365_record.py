"""One Microsoft 365 unified audit log record (AuditData) to one normalized event.

Shared by every container the record comes in (Purview CSV, classic CSV,
NDJSON, JSON arrays, Sentinel OfficeActivity rows, Defender CloudAppEvents).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone

import orjson

from mailhunt.events import event_id_from_raw, event_id_from_record_id, new_event
from mailhunt.sources.base import ReadContext
from mailhunt.sources.cmdlet_parameters import parse_parameter_text

DATASET = "m365.audit"

USER_TYPES = {
    0: "regular", 1: "reserved", 2: "admin", 3: "dcadmin", 4: "system", 5: "application",
    6: "service_principal", 7: "custom_policy", 8: "system_policy", 9: "partner_technician", 10: "guest",
}
USER_TYPE_NAMES = {name.replace("_", "").lower(): name for name in USER_TYPES.values()}
USER_TYPE_NAMES.update({"dcadmin": "dcadmin", "serviceprincipal": "service_principal", "partnertechnician":
                        "partner_technician", "systempolicy": "system_policy", "custompolicy": "custom_policy"})
OUTCOMES = {"succeeded": "success", "success": "success", "true": "success", "partiallysucceeded": "success",
            "failed": "failure", "failure": "failure", "false": "failure"}
SYSTEM_PREFIXES = ("nt authority\\system", "s-1-5-18")

# Cmdlets whose acted-upon mailbox is named by a parameter rather than ObjectId.
TARGET_PARAMETER = {
    "new-mailboxexportrequest": "mailbox",
    "new-inboxrule": "mailbox",
    "search-mailbox": "identity",
    "set-mailbox": "identity",
    "add-mailboxpermission": "identity",
    "set-mailboxauditbypassassociation": "identity",
}
RULE_CMDLET_SUFFIXES = ("-inboxrule", "-transportrule")
DELETE_OPERATIONS = {"harddelete", "softdelete", "movetodeleteditems"}


class BadRecord(ValueError):
    """The record cannot become an event; the message says why."""


def parse_client_ip(value) -> str | None:
    """``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443`` or ``2001:db8::1`` to the bare address."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_creation_time(value) -> datetime:
    """AuditData CreationTime: no zone means UTC (as the service writes it); offsets are converted."""
    if not isinstance(value, str) or not value:
        raise BadRecord("no CreationTime")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, tail = text.partition(".")
        digits = ""
        rest = tail
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRecord(f"CreationTime '{value[:40]}' is not an ISO-8601 time") from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def parse_us_date(value: str) -> datetime | None:
    """Purview's CreationDate in US form ``9/26/2023 1:56:15 AM`` (UTC) or ISO."""
    text = value.strip()
    if not text:
        return None
    try:
        if "/" in text:
            return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")
        return parse_creation_time(text)
    except (ValueError, BadRecord):
        return None


def _maybe_json(value):
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _name_values(items) -> list[tuple[str, str]]:
    pairs = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and "Name" in item:
                value = item.get("Value")
                pairs.append((str(item["Name"]), "" if value is None else str(value)))
    return pairs


def _parameters_text(pairs: list[tuple[str, str]]) -> str | None:
    if not pairs:
        return None
    parts = []
    for name, value in pairs:
        shown = f'"{value}"' if (" " in value or not value) else value
        parts.append(f"-{name} {shown}")
    return " ".join(parts)


def _user_type(record: dict, user: str | None) -> str:
    if user and user.startswith(SYSTEM_PREFIXES):
        return "system"
    value = record.get("UserType")
    if isinstance(value, int):
        return USER_TYPES.get(value, "unknown")
    if isinstance(value, str):
        if value.isdigit():
            return USER_TYPES.get(int(value), "unknown")
        return USER_TYPE_NAMES.get(value.replace("_", "").lower(), "unknown")
    return "unknown"


def _item_subjects(items) -> list[str]:
    return [str(i["Subject"]) for i in items if isinstance(i, dict) and i.get("Subject")] if isinstance(items, list) else []


def _folder_path(record: dict) -> str | None:
    for key in ("Folder", "ParentFolder"):
        folder = record.get(key)
        if isinstance(folder, dict) and folder.get("Path"):
            return folder["Path"]
    item = record.get("Item")
    if isinstance(item, dict):
        parent = item.get("ParentFolder")
        if isinstance(parent, dict) and parent.get("Path"):
            return parent["Path"]
    items = record.get("AffectedItems")
    if isinstance(items, list):
        for affected in items:
            parent = affected.get("ParentFolder") if isinstance(affected, dict) else None
            if isinstance(parent, dict) and parent.get("Path"):
                return parent["Path"]
    return None


def _extended(record: dict, name: str) -> str | None:
    for key, value in _name_values(record.get("ExtendedProperties")):
        if key == name:
            return value
    return None


def _consented_scopes(record: dict) -> str | None:
    texts = []
    for prop in record.get("ModifiedProperties") or []:
        name = str(prop.get("Name", "")) if isinstance(prop, dict) else ""
        if "Permission" in name or "ConsentAction" in name:
            texts.append(str(prop.get("NewValue") or ""))
    joined = " ".join(texts)
    if "Scope:" in joined:
        scopes = []
        for chunk in joined.split("Scope:")[1:]:
            scopes.extend(s for s in chunk.split(",")[0].strip().split() if s)
        return " ".join(dict.fromkeys(scopes)) or None
    return joined.strip() or None


def _target_and_rule(action: str, params: dict[str, str], record: dict) -> tuple[str | None, str | None]:
    lowered = action.lower()
    target = None
    rule_name = None
    identity = params.get("identity")
    if lowered.endswith("-mailboxexportrequest") and not lowered.startswith("new-") and identity:
        target = identity.split("\\", 1)[0]
    elif lowered in TARGET_PARAMETER and params.get(TARGET_PARAMETER[lowered]):
        target = params[TARGET_PARAMETER[lowered]]
    elif lowered.endswith("-inboxrule") and identity:
        target = identity.split("\\", 1)[0] if "\\" in identity else identity
    if lowered.endswith(RULE_CMDLET_SUFFIXES):
        rule_name = params.get("name") or (identity.split("\\", 1)[-1] if identity else None)
    if not target:
        target = record.get("MailboxOwnerUPN") or record.get("ObjectId") or None
    return (target.lower() if isinstance(target, str) and "@" in target else target), rule_name


def audit_record_to_event(record: dict, raw: str, ctx: ReadContext, locator: int,
                          fallback_time: datetime | None = None) -> dict:
    """Normalize one AuditData record; raises BadRecord with the reason when it cannot."""
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    operation = record.get("Operation")
    if not operation:
        raise BadRecord("no Operation: not a unified audit log record")
    if record.get("CreationTime"):
        timestamp = parse_creation_time(record["CreationTime"])
    elif fallback_time is not None:
        timestamp = fallback_time
    else:
        raise BadRecord("no CreationTime")

    user = record.get("UserId")
    user = str(user).strip().lower() if user else None
    event = new_event()
    record_id = record.get("Id")
    event["event.id"] = event_id_from_record_id(DATASET, str(record_id)) if record_id else event_id_from_raw(raw)
    event["@timestamp"] = timestamp
    event["event.action"] = str(operation)
    event["event.outcome"] = OUTCOMES.get(str(record.get("ResultStatus", "")).lower(), "unknown")
    event["event.provider"] = record.get("Workload")
    event["event.dataset"] = DATASET
    event["event.code"] = None if record.get("RecordType") is None else str(record["RecordType"])
    event["user.name"] = user
    event["user.type"] = _user_type(record, user)
    event["source.ip"] = parse_client_ip(record.get("ClientIP") or record.get("ClientIPAddress")
                                         or record.get("ActorIpAddress"))
    server = record.get("OriginatingServer")
    event["host.name"] = server.strip() if isinstance(server, str) and server.strip() else None
    app = record.get("AppId") or record.get("ClientAppId")
    event["app.id"] = str(app) if app else None
    event["user_agent.original"] = (record.get("UserAgent") or record.get("ClientInfoString")
                                    or _extended(record, "UserAgent"))
    event["organization.id"] = record.get("OrganizationId")

    raw_parameters = _maybe_json(record.get("Parameters"))
    if isinstance(raw_parameters, str) and raw_parameters.strip():
        pairs = parse_parameter_text(raw_parameters)
    else:
        pairs = _name_values(raw_parameters)
    if not pairs and record.get("OperationProperties") and "rule" in str(operation).lower():
        pairs = _name_values(_maybe_json(record.get("OperationProperties")))
    params = {name.lower(): value for name, value in pairs}
    if str(operation).lower().startswith("consent to application"):
        scopes = _consented_scopes(record)
        if scopes:
            params["scopes"] = scopes
            pairs = [*pairs, ("Scopes", scopes)]
    event["params"] = params
    event["parameters"] = (raw_parameters.strip() if isinstance(raw_parameters, str) and raw_parameters.strip()
                           else _parameters_text(pairs))
    event["user.target.name"], event["rule.name"] = _target_and_rule(str(operation), params, record)

    item = record.get("Item") if isinstance(record.get("Item"), dict) else {}
    affected = record.get("AffectedItems") if isinstance(record.get("AffectedItems"), list) else []
    subjects = ([str(item["Subject"])] if item.get("Subject") else []) + _item_subjects(affected)
    event["email.subject"] = " | ".join(subjects) if subjects else None
    message_ids = [item.get("InternetMessageId")] + [a.get("InternetMessageId") for a in affected if isinstance(a, dict)]
    event["email.message_id"] = next((m for m in message_ids if m), None)
    event["email.folder"] = _folder_path(record)
    folders = _maybe_json(record.get("Folders"))
    if affected:
        event["email.item_count"] = len(affected)
    elif isinstance(folders, list) and folders:
        event["email.item_count"] = sum(len(f.get("FolderItems") or []) for f in folders if isinstance(f, dict)) or 1
        if event["email.folder"] is None:
            event["email.folder"] = next((f.get("Path") for f in folders if isinstance(f, dict) and f.get("Path")), None)
    else:
        event["email.item_count"] = 1
    event["log.file.path"] = ctx.path
    event["log.file.sha256"] = ctx.sha256
    event["log.record"] = locator
    event["event.original"] = raw
    return event


SENTINEL_RENAMES = {
    "TimeGenerated": "CreationTime",
    "OfficeId": "Id",
    "OfficeWorkload": "Workload",
    "Client_IPAddress": "ClientIP",
}
SENTINEL_JSON_FIELDS = ("Folders", "Parameters", "OperationProperties", "AffectedItems", "Item",
                        "ExtendedProperties", "ModifiedProperties")


def sentinel_row_to_record(row: dict) -> dict:
    """A Sentinel OfficeActivity row in the shape of the AuditData record it came from."""
    record = dict(row)
    for old, new in SENTINEL_RENAMES.items():
        if old in row and not row.get(new):
            record[new] = row[old]
    for key in SENTINEL_JSON_FIELDS:
        if key in record:
            record[key] = _maybe_json(record[key])
    return record


def defender_row_to_record(row: dict) -> dict:
    """The raw audit record a Defender CloudAppEvents row carries, or BadRecord."""
    raw = _maybe_json(row.get("RawEventData"))
    if not isinstance(raw, dict) or not raw.get("Operation"):
        raise BadRecord(f"not a unified audit log record (ActionType {str(row.get('ActionType'))[:60]}, "
                        "no RawEventData with an Operation)")
    if not raw.get("CreationTime") and row.get("Timestamp"):
        raw = {**raw, "CreationTime": row["Timestamp"]}
    return raw
