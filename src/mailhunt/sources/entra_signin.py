"""Microsoft Entra ID sign-in log, as the admin center's "Download" exports it.

- ``entra_signin_json``: the JSON download, an array of sign-in objects with
  Microsoft Graph ``signIn`` property names (``createdDateTime``,
  ``userPrincipalName``, ``appId``, ``ipAddress``, ``status.errorCode``,
  ``location.countryOrRegion``, ``userAgent``, ``autonomousSystemNumber`` ...).
- ``entra_signin_csv``: the CSV download (``Date (UTC)``, ``Request ID``,
  ``User agent``, ``Username``, ``Application ID``, ``IP address``,
  ``Location`` as "City, State, CC", ``Status``, ``Sign-in error code``, ...).

Both become events of dataset ``entra.signin`` with ``event.action``
"Sign-in activity": ``event.outcome`` from the CSV's Status (Success, Failure;
Interrupted is unknown), else from the error code (0 success, the codes of an
interrupted sign-in unknown, any other failure); ``user.name`` the UPN lower-cased;
``app.id`` the application id lower-cased; the country code in
``source.geo.country_iso_code``; application name, client app, failure reason
and AS number in ``labels``; the user's display name (``userDisplayName``, the
CSV's ``User``) in ``labels.user_display_name``, which pairs the UPN with the
name other logs write (an Exchange caller ``corp.example.com/IT/Legal Compliance``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import (
    TimeOutOfRange,
    ZoneMissing,
    event_id_from_raw,
    event_id_from_record_id,
    new_event,
    utc_from_text,
)
from mailhunt.sources.base import ReadContext, event_batches
from mailhunt.sources.csv_text import csv_rows
from mailhunt.sources.json_values import dynamic_value, text_value
from mailhunt.sources.m365_audit import (
    _csv_header,
    _first_json_object,
    decode_head,
    json_array_members,
)

DATASET = "entra.signin"
ACTION = "Sign-in activity"
PROVIDER = "AzureActiveDirectory"
BATCH = 20_000
JSON_KEYS = ("createdDateTime", "userPrincipalName")
# The US-locale times of the admin center's and the Log Analytics portal's CSV ("8/2/2021, 1:29:25.983 PM").
_US_TIMES = ("%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y, %I:%M:%S.%f %p")


class BadSignIn(ValueError):
    pass


def parse_time(text: str, zone_stated_by_header: bool) -> datetime:
    """UTC time of a sign-in. A time without a zone is accepted only where the header says UTC."""
    value = (text or "").strip()
    if not value:
        raise BadSignIn("no time")
    try:
        return utc_from_text(value, _US_TIMES, zone_less_is_utc=zone_stated_by_header)
    except (TimeOutOfRange, ZoneMissing) as exc:
        raise BadSignIn(str(exc)) from None
    except ValueError:
        raise BadSignIn(f"time '{text[:40]}' is not ISO-8601") from None


def _country(text: str | None) -> str | None:
    code = (text or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() else None


# Sign-ins the portal lists as "Interrupted": a further step (MFA, consent,
# password change, device check) was asked for; neither a success nor a failure.
INTERRUPTED_CODES = frozenset({"50055", "50072", "50074", "50076", "50079", "50125", "50140", "50158"})


def _outcome(error_code, status: str | None) -> str:
    """The CSV's Status column when present (Success, Failure, Interrupted), else the error code."""
    status = (status or "").strip().lower()
    if status:
        return {"success": "success", "failure": "failure"}.get(status, "unknown")
    if error_code in (None, ""):
        return "unknown"
    code = str(error_code).strip()
    if code == "0":
        return "success"
    return "unknown" if code in INTERRUPTED_CODES else "failure"


def _event(*, record_id: str | None, raw: str, when: datetime, upn: str | None, user_id: str | None,
           app_id: str | None, ip: str | None, country: str | None, agent: str | None, error_code: str | None,
           status: str | None, tenant: str | None, labels: dict, path: str, sha256: str, locator: int) -> dict:
    event = new_event()
    event.update({
        "event.id": event_id_from_record_id(DATASET, record_id) if record_id else event_id_from_raw(raw),
        "@timestamp": when,
        "event.action": ACTION,
        "event.outcome": _outcome(error_code, status),
        "event.provider": PROVIDER,
        "event.dataset": DATASET,
        "event.code": str(error_code) if error_code not in (None, "") else None,
        "user.name": upn.strip().lower() if upn and upn.strip() else None,
        "user.id": user_id or None,
        "source.ip": (ip or "").strip() or None,
        "source.geo.country_iso_code": _country(country),
        "app.id": app_id.strip().lower() if app_id and app_id.strip() else None,
        "user_agent.original": agent or None,
        "organization.id": tenant or None,
        "labels": {k: str(v) for k, v in labels.items() if v not in (None, "")},
        "params": {},
        "log.file.path": path,
        "log.file.sha256": sha256,
        "log.record": locator,
        "event.original": raw,
    })
    return event


# Members read as text: a sign-in written by the adversary may hold any JSON type there.
_JSON_TEXT_KEYS = ("id", "userPrincipalName", "userId", "appId", "ipAddress", "userAgent", "resourceTenantId",
                   "homeTenantId")


class EntraSignInJson:
    name = "entra_signin_json"
    dataset = DATASET
    locator_unit = "record"

    def sniff(self, head: bytes) -> bool:
        text = decode_head(head).lstrip()
        if not text.startswith("["):
            return False
        obj = _first_json_object(text)
        if obj is not None:
            return all(k in obj for k in JSON_KEYS) and "Operation" not in obj
        first = text[:4096]
        return all(f'"{k}"' in first for k in JSON_KEYS) and '"Operation"' not in first

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict]:
        for index, raw, member in json_array_members(stream, ctx):
            if not isinstance(member, dict):
                ctx.reject(f"record {index}", "not a JSON object")
                continue
            try:
                when = parse_time(str(member.get("createdDateTime") or ""), zone_stated_by_header=False)
            except BadSignIn as exc:
                ctx.reject(f"record {index}", f"createdDateTime: {exc}")
                continue
            status = member.get("status")
            if not isinstance(status, dict):
                status = {}
            location = member.get("location")
            if not isinstance(location, dict):
                location = {}
            text = {key: text_value(member.get(key)) for key in _JSON_TEXT_KEYS}
            yield _event(
                record_id=text["id"], raw=raw, when=when, upn=text["userPrincipalName"],
                user_id=text["userId"], app_id=text["appId"], ip=text["ipAddress"],
                country=text_value(location.get("countryOrRegion")), agent=text["userAgent"],
                error_code=text_value(status.get("errorCode")), status=None,
                tenant=text["resourceTenantId"] or text["homeTenantId"],
                labels={"app_name": member.get("appDisplayName"), "client_app": member.get("clientAppUsed"),
                        "user_display_name": text_value(member.get("userDisplayName")),
                        "failure_reason": status.get("failureReason"),
                        "asn": member.get("autonomousSystemNumber"),
                        "interactive": member.get("isInteractive")},
                path=ctx.path, sha256=ctx.sha256, locator=index)


# Sentinel / Log Analytics sign-in tables and whether their sign-ins are interactive.
SIGNIN_TABLES = {"SigninLogs": "True", "AADNonInteractiveUserSignInLogs": "False"}


def log_analytics_event(row: dict, *, table: str, when: datetime, raw: str, path: str, sha256: str,
                        locator: int) -> dict:
    """The sign-in event of a ``SigninLogs`` or ``AADNonInteractiveUserSignInLogs`` row (Sentinel / Log
    Analytics), whose ``Status``/``LocationDetails`` are JSON text or nested JSON."""
    status = dynamic_value(row.get("Status"))
    status = status if isinstance(status, dict) else {}
    location = dynamic_value(row.get("LocationDetails"))
    location = location if isinstance(location, dict) else {}
    text = {key: text_value(row.get(key)) for key in _ROW_TEXT_KEYS}
    error_code = text_value(status.get("errorCode"))
    if error_code is None:
        error_code = text["ResultType"]
    place = ", ".join(p for p in (text_value(location.get(k)) for k in ("city", "state", "countryOrRegion")) if p)
    return _event(
        record_id=text["Id"], raw=raw, when=when, upn=text["UserPrincipalName"], user_id=text["UserId"],
        app_id=text["AppId"], ip=text["IPAddress"],
        country=text_value(location.get("countryOrRegion")) or text["Location"], agent=text["UserAgent"],
        error_code=error_code, status=None, tenant=text["ResourceTenantId"] or text["HomeTenantId"],
        labels={"app_name": text["AppDisplayName"], "client_app": text["ClientAppUsed"],
                "failure_reason": text_value(status.get("failureReason")) or text["ResultDescription"],
                "asn": text["AutonomousSystemNumber"], "interactive": _interactive(row.get("IsInteractive"), table),
                "location": place, "table": table},
        path=path, sha256=sha256, locator=locator)


def _interactive(value: object, table: str) -> str | None:
    """"True" or "False" as the JSON download's label says it: from IsInteractive, else from the table."""
    if isinstance(value, bool):
        return str(value)
    text = (text_value(value) or "").strip().lower()
    return {"true": "True", "false": "False"}.get(text) or SIGNIN_TABLES.get(table)


_ROW_TEXT_KEYS = ("Id", "UserPrincipalName", "UserId", "AppId", "IPAddress", "Location", "UserAgent", "ResultType",
                  "ResultDescription", "ResourceTenantId", "HomeTenantId", "AppDisplayName", "ClientAppUsed",
                  "AutonomousSystemNumber")


def _csv_code(text: str | None) -> str | None:
    """The CSV's error code; some downloads write "None" for a sign-in without one."""
    code = (text or "").strip()
    return None if code.lower() in ("", "none") else code


def _column_key(name: str) -> str:
    return " ".join(name.strip().lower().split())


CSV_REQUIRED = ("request id", "username", "ip address", "status")


class EntraSignInCsv:
    name = "entra_signin_csv"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        header = _csv_header(decode_head(head))
        if not header:
            return False
        keys = {_column_key(c) for c in header}
        return ("date (utc)" in keys or "date" in keys) and all(k in keys for k in CSV_REQUIRED)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        yield from event_batches(self._events(stream, ctx), BATCH)

    def _events(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[dict]:
        for line, row, raw in csv_rows(stream, ctx, key=_column_key):
            date_column = "date (utc)" if "date (utc)" in row else "date"
            if date_column not in row:
                ctx.reject(f"line {line}", "the header has no Date (UTC) or Date column")
                continue
            try:
                when = parse_time(row[date_column], zone_stated_by_header=date_column == "date (utc)")
            except BadSignIn as exc:
                ctx.reject(f"line {line}", f"{date_column}: {exc}")
                continue
            location = row.get("location") or ""
            yield _event(
                record_id=row.get("request id"), raw=raw, when=when, upn=row.get("username"),
                user_id=row.get("user id"), app_id=row.get("application id"), ip=row.get("ip address"),
                country=location.rsplit(",", 1)[-1] if location else None, agent=row.get("user agent"),
                error_code=_csv_code(row.get("sign-in error code")), status=row.get("status"),
                tenant=row.get("resource tenant id") or row.get("home tenant id"),
                labels={"app_name": row.get("application"), "client_app": row.get("client app"),
                        "user_display_name": row.get("user"),
                        "failure_reason": row.get("failure reason"),
                        "asn": row.get("autonomous system number"), "location": location},
                path=ctx.path, sha256=ctx.sha256, locator=line)


ENTRA_SOURCES = (EntraSignInJson(), EntraSignInCsv())
