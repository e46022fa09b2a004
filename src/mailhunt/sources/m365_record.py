"""Rows of other tables that carry unified audit log records, in the shape of the record itself."""

from __future__ import annotations

import orjson


class BadRecord(ValueError):
    """The row carries no audit record; the message says why."""


SENTINEL_RENAMES = {
    "TimeGenerated": "CreationTime",
    "OfficeId": "Id",
    "OfficeWorkload": "Workload",
    "Client_IPAddress": "ClientIP",
}
SENTINEL_JSON_FIELDS = ("Folders", "Parameters", "OperationProperties", "AffectedItems", "Item",
                        "ExtendedProperties", "ModifiedProperties")


def _maybe_json(value):
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def sentinel_row_to_record(row: dict) -> dict:
    """A Sentinel OfficeActivity row as the AuditData record it came from (renamed fields, JSON strings parsed)."""
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
