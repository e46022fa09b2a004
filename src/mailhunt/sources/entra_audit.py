"""Microsoft Entra ID audit log: one definition of an audit event, whichever export holds the record.

The record is Microsoft Graph's ``directoryAudit`` (``activityDisplayName``,
``activityDateTime``, ``initiatedBy{user|app}``, ``targetResources[]`` with
``modifiedProperties[]``, ``additionalDetails[]``). It reaches responders as

- ``entra_audit_json``: the admin center's JSON download (Audit logs →
  Download → JSON), an array of those objects; also what Graph's
  ``auditLogs/directoryAudits`` and its PowerShell module (the same names in
  PascalCase) give, saved as an array;
- ``entra_audit_csv``: the admin center's CSV download, one column per
  property (``Date (UTC)``, ``Activity``, ``ActorUserPrincipalName``,
  ``Target1ModifiedProperty1NewValue`` ...), turned back into that object;
- Sentinel / Log Analytics ``AuditLogs`` rows (``sentinel_entra``), whose
  columns carry the same names with ``InitiatedBy``/``TargetResources`` as
  JSON text or nested JSON.

Each becomes an ``entra.audit`` event (``audit_event``); the mapping is
documented in docs/sources.md. Times must carry a zone (``Z``) unless the
column's header states UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import event_id_from_raw, event_id_from_record_id, new_event
from mailhunt.sources.base import ReadContext, event_batches
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.entra_signin import BadSignIn, parse_time
from mailhunt.sources.json_values import dynamic_value, member, text_value
from mailhunt.sources.m365_audit import _csv_header, decode_head, json_array_members
from mailhunt.sources.macos_json import first_object

DATASET = "entra.audit"
PROVIDER = "AzureActiveDirectory"
BATCH = 20_000

# Operations that grant an application permissions, and the modified properties that name them.
CONSENT_TO_APPLICATION = "consent to application"
_SCOPE_PROPERTIES = ("consentaction.permissions", "delegatedpermissiongrant.scope", "approle.value")
_CONSENT_SCOPE = re.compile(r"Scope:\s*([^,\]]*)")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class BadAuditRecord(ValueError):
    pass


def property_text(value: object) -> str | None:
    """A modified property's old or new value as text: Entra writes them JSON-quoted (``"\\"Mail.Read\\""``),
    which is unquoted; a JSON list of strings becomes its strings joined by spaces."""
    text = text_value(value)
    if text is None:
        return None
    parsed = dynamic_value(text) if text.lstrip()[:1] in ("[", "{") else _json_string(text)
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return " ".join(parsed)
    return text


def _json_string(text: str) -> str:
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        parsed = dynamic_value("[" + stripped + "]")
        if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], str):
            return parsed[0]
    return text


def _objects(value: object) -> list[dict]:
    value = dynamic_value(value)
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _scopes(name: str, new: str | None) -> list[str]:
    """The permissions a modified property grants: the scopes of a consent's permission list (after its
    ``old => new`` arrow), a delegated grant's scope string, an app role's value."""
    if not new:
        return []
    if name == "consentaction.permissions":
        granted = new.split("=>", 1)[-1]
        return [word for found in _CONSENT_SCOPE.findall(granted) for word in found.split()]
    return new.split()


def _guid(text: str | None) -> str | None:
    value = (text or "").strip()
    return value.lower() if _GUID.match(value) else None


def audit_event(record: dict, *, when: datetime, raw: str, path: str, sha256: str, locator: int,
                labels: dict | None = None) -> dict:
    """The ``entra.audit`` event of one directory audit record (Graph's names, any case; JSON-text members
    parsed). Raises BadAuditRecord when the record names no activity."""
    operation = text_value(member(record, "activityDisplayName", "OperationName"))
    if not isinstance(operation, str) or not operation.strip():
        raise BadAuditRecord("no activity (activityDisplayName / OperationName)")
    operation = operation.strip()
    initiated = dynamic_value(member(record, "initiatedBy"))
    user, app = member(initiated, "user"), member(initiated, "app")
    upn = text_value(member(user, "userPrincipalName"))
    actor_app = isinstance(app, dict) and not upn and any(
        member(app, key) for key in ("appId", "displayName", "servicePrincipalId", "servicePrincipalName"))

    params: dict[str, str] = {}
    names: list[str] = []
    scopes: list[str] = []
    user_target = first_target = None
    targets = _objects(member(record, "targetResources"))
    for target in targets:
        kind = (text_value(member(target, "type")) or "").lower()
        name = text_value(member(target, "userPrincipalName")) or text_value(member(target, "displayName")) \
            or text_value(member(target, "id"))
        if kind == "user" and user_target is None and name:
            user_target = name.lower() if "@" in name else name
        if first_target is None and name:
            first_target = name
        for change in _objects(member(target, "modifiedProperties")):
            prop = text_value(member(change, "displayName"))
            if not prop:
                continue
            new = property_text(member(change, "newValue"))
            key = prop.lower()
            if key in _SCOPE_PROPERTIES:
                scopes += [s for s in _scopes(key, new) if s not in scopes]
            if key not in params:  # a property cleared (no new value) was changed too
                params[key] = new or ""
                names.append(prop)
    if scopes:
        params["scopes"] = " ".join(scopes)

    consent = operation.lower().startswith(CONSENT_TO_APPLICATION)
    grantee_app = _guid(params.get("serviceprincipal.appid"))
    if grantee_app is None and consent:
        grantee_app = _guid((params.get("targetid.serviceprincipalnames") or "").split(";", 1)[0])
    # The application granted permissions: a consent's first target; for a grant or role assignment the
    # service principal its ServicePrincipal.* properties name (the first target is then the resource API).
    grantee_id = params.get("serviceprincipal.objectid")
    grantee = targets[0] if consent and targets else next(
        (t for t in targets if grantee_id and text_value(member(t, "id")) == grantee_id), {})
    grantee_name = text_value(member(grantee, "displayName")) or params.get("serviceprincipal.displayname")
    details = {text_value(member(d, "key")): text_value(member(d, "value"))
               for d in _objects(member(record, "additionalDetails"))}
    result = (text_value(member(record, "result")) or "").strip().lower()
    record_id = text_value(member(record, "id"))

    event = new_event()
    event.update({
        "event.id": event_id_from_record_id(DATASET, record_id) if record_id else event_id_from_raw(raw),
        "@timestamp": when,
        "event.action": operation,
        "event.outcome": result if result in ("success", "failure") else "unknown",
        "event.provider": PROVIDER,
        "event.dataset": DATASET,
        "user.name": (upn.strip().lower() if upn and upn.strip() else None) if not actor_app else
        text_value(member(app, "servicePrincipalName")) or text_value(member(app, "displayName")),
        "user.id": text_value(member(app, "servicePrincipalId")) if actor_app else text_value(member(user, "id")),
        "user.type": "service_principal" if actor_app else None,
        "user.target.name": user_target or grantee_name or text_value(member(grantee, "id")) or first_target,
        "source.ip": text_value(member(user, "ipAddress")) or text_value(member(record, "ipAddress")),
        "app.id": grantee_app or (_guid(text_value(member(app, "appId"))) if actor_app else None),
        "user_agent.original": details.get("User-Agent") or text_value(member(record, "userAgent")),
        "organization.id": text_value(member(record, "AADTenantId", "tenantId")),
        "params": params,
        "parameters": " ".join(f'-{name} "{params[name.lower()]}"' for name in names) or None,
        "labels": {key: value for key, value in {
            "category": text_value(member(record, "category")),
            "service": text_value(member(record, "loggedByService")),
            "operation_type": text_value(member(record, "operationType", "AADOperationType")),
            "correlation_id": text_value(member(record, "correlationId")),
            "result_reason": text_value(member(record, "resultReason")),
            "initiated_by": "app" if actor_app else "user" if isinstance(user, dict) else None,
            "app_name": grantee_name,
            "service_principal_id": text_value(member(grantee, "id")) or grantee_id,
            **(labels or {}),
        }.items() if value not in (None, "")},
        "log.file.path": path,
        "log.file.sha256": sha256,
        "log.record": locator,
        "event.original": raw,
    })
    return event


def record_time(record: dict, zone_stated: bool = False) -> datetime:
    """``activityDateTime`` (Sentinel: ``ActivityDateTime``, else ``TimeGenerated``) as UTC."""
    value = member(record, "activityDateTime", "TimeGenerated")
    if not isinstance(value, str):
        raise BadAuditRecord("no activityDateTime")
    try:
        return parse_time(value, zone_stated_by_header=zone_stated)
    except BadSignIn as exc:
        raise BadAuditRecord(f"activityDateTime: {exc}") from None


# ---------------------------------------------------------------- the admin center's JSON download

JSON_KEYS = ("activityDateTime", "activityDisplayName")


def _key_named(name: str) -> re.Pattern:
    return re.compile(rf'"{name}"\s*:', re.IGNORECASE)


class EntraAuditJson:
    name = "entra_audit_json"
    dataset = DATASET
    locator_unit = "record"

    def sniff(self, head: bytes) -> bool:
        """An array whose first object has ``activityDateTime`` and ``activityDisplayName`` (any case: Graph's
        PowerShell module writes PascalCase) and none of Sentinel's ``TimeGenerated``/``OperationName``."""
        obj, in_array = first_object(head)
        if not in_array or obj is None:
            return False
        if obj:
            keys = {key.lower() for key in obj if isinstance(key, str)}
            return {k.lower() for k in JSON_KEYS} <= keys and not keys & {"timegenerated", "operationname"}
        text = decode_head(head)  # the first object is cut: its keys are looked for by name
        return all(_key_named(k).search(text) for k in JSON_KEYS) and not any(
            _key_named(k).search(text) for k in ("TimeGenerated", "OperationName"))

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict]:
        for index, raw, record in json_array_members(stream, ctx):
            if not isinstance(record, dict):
                ctx.reject(f"record {index}", "not a JSON object")
                continue
            try:
                yield audit_event(record, when=record_time(record), raw=raw, path=ctx.path, sha256=ctx.sha256,
                                  locator=index)
            except BadAuditRecord as exc:
                ctx.reject(f"record {index}", str(exc))


# ---------------------------------------------------------------- the admin center's CSV download

CSV_REQUIRED = ("activity", "category", "result", "correlationid", "target1type")
_NUMBERED = re.compile(r"^(target|additionaldetail)(\d+)(.*)$")


def csv_record(row: dict[str, str]) -> dict:
    """The directoryAudit object a row of the admin center's CSV download stands for (columns lower-cased)."""
    def cell(name: str) -> str | None:
        return (row.get(name) or "").strip() or None

    targets: dict[int, dict] = {}
    details: dict[int, dict] = {}
    for column, value in row.items():
        found = _NUMBERED.match(column)
        if not found or not (value or "").strip():
            continue
        kind, number, rest = found[1], int(found[2]), found[3]
        if kind == "additionaldetail":
            details.setdefault(number, {})[rest] = value
            continue
        target = targets.setdefault(number, {"modifiedProperties": {}})
        change = re.match(r"^modifiedproperty(\d+)(name|oldvalue|newvalue)$", rest)
        if change:
            key = {"name": "displayName", "oldvalue": "oldValue", "newvalue": "newValue"}[change[2]]
            target["modifiedProperties"].setdefault(int(change[1]), {})[key] = value
        else:
            target[{"type": "type", "displayname": "displayName", "objectid": "id",
                    "userprincipalname": "userPrincipalName"}.get(rest, rest)] = value
    initiated: dict = {}
    if cell("actoruserprincipalname") or (cell("actortype") or "").lower() == "user":
        initiated["user"] = {"userPrincipalName": cell("actoruserprincipalname"), "id": cell("actorobjectid"),
                             "displayName": cell("actordisplayname"), "ipAddress": cell("ipaddress")}
    elif cell("actorserviceprincipalid") or cell("actorserviceprincipalname"):
        initiated["app"] = {"servicePrincipalId": cell("actorserviceprincipalid"),
                            "servicePrincipalName": cell("actorserviceprincipalname"),
                            "displayName": cell("actordisplayname")}
    return {
        "activityDisplayName": cell("activity"), "category": cell("category"), "result": cell("result"),
        "resultReason": cell("resultreason"), "loggedByService": cell("service"),
        "correlationId": cell("correlationid"), "userAgent": cell("user agent") or cell("useragent"),
        "ipAddress": cell("ipaddress"), "initiatedBy": initiated,
        "targetResources": [{**{k: v for k, v in t.items() if k != "modifiedProperties"},
                             "modifiedProperties": [t["modifiedProperties"][n] for n in sorted(t["modifiedProperties"])]}
                            for _, t in sorted(targets.items())],
        "additionalDetails": [details[n] for n in sorted(details)],
    }


class EntraAuditCsv:
    name = "entra_audit_csv"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        header = _csv_header(decode_head(head))
        if not header:
            return False
        keys = {" ".join(c.split()) for c in header}
        return ("date (utc)" in keys or "date" in keys) and all(k in keys for k in CSV_REQUIRED)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict]:
        for line, row, raw in csv_rows(stream, ctx, key=lambda name: " ".join(name.strip().lstrip("\ufeff").lower().split())):
            date_column = "date (utc)" if "date (utc)" in row else "date"
            try:
                when = parse_time(row.get(date_column) or "", zone_stated_by_header=date_column == "date (utc)")
            except BadSignIn as exc:
                ctx.reject(f"line {line}", f"{date_column}: {exc}")
                continue
            try:
                yield audit_event(csv_record(row), when=when, raw=raw, path=ctx.path, sha256=ctx.sha256,
                                  locator=line)
            except BadAuditRecord as exc:
                ctx.reject(f"line {line}", str(exc))


ENTRA_AUDIT_SOURCES = (EntraAuditJson(), EntraAuditCsv())
