"""Each finding as an OCSF Detection Finding (class 2004, OCSF 1.8.0), one JSON object per line.

For SIEMs and case tools that read OCSF. Built from the findings document
only, so it says no more than ``findings.json``: the finding id is
``finding_info.uid``, the rules are the analytic, the ATT&CK techniques the
``attacks``, Tier 2 escalation ``is_alert``, the reasons the ``message``, the
containment steps' descriptions the ``remediation``. Times are milliseconds
since the epoch (UTC), as OCSF has them.
"""

from __future__ import annotations

from datetime import datetime

import orjson

OCSF_VERSION = "1.8.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
SEVERITY_IDS = {"low": 2, "medium": 3, "high": 4, "critical": 5}
STATUS_NEW = 1


def _millis(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def detection_finding(finding: dict, tool_version: str) -> dict:
    """One finding of a findings document as an OCSF Detection Finding."""
    given = finding.get("severity")
    severity = given if isinstance(given, str) and given in SEVERITY_IDS else "medium"
    rule = finding.get("rule") or {}
    first, last = _millis(finding.get("first_seen")), _millis(finding.get("last_seen"))
    info: dict = {
        "uid": finding["id"],
        "title": f"{finding.get('indicator')}: {rule.get('title') or 'mailhunt finding'}",
        "types": [finding.get("indicator")],
        "analytic": {"uid": rule.get("id"), "name": rule.get("title"), "type_id": 1, "type": "Rule"},
        "attacks": [{"technique": {"uid": t}} for t in finding.get("attack") or []],
    }
    if first is not None:
        info["first_seen_time"] = first
    if last is not None:
        info["last_seen_time"] = last
    out: dict = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": SEVERITY_IDS[severity],
        "severity": severity.capitalize(),
        "status_id": STATUS_NEW,
        "status": "New",
        "time": last if last is not None else 0,
        "is_alert": finding.get("escalate") is True,
        "count": finding.get("event_count") or 0,
        "message": "; ".join(finding.get("reasons") or []) or None,
        "finding_info": info,
        "metadata": {"version": OCSF_VERSION,
                     "product": {"name": "mailhunt", "vendor_name": "mailhunt", "version": tool_version}},
    }
    if first is not None:
        out["start_time"] = first
    if last is not None:
        out["end_time"] = last
    steps = [s for s in finding.get("containment") or [] if isinstance(s, dict)]
    if steps:
        out["remediation"] = {"desc": " ".join(f"{s.get('step')}. {s.get('does')}" for s in steps)}
    return {k: v for k, v in out.items() if v is not None}


def ocsf_jsonl(document: dict) -> bytes:
    """Every finding of the document as one OCSF Detection Finding per line."""
    version = str((document.get("tool") or {}).get("version") or "")
    return b"".join(orjson.dumps(detection_finding(f, version)) + b"\n" for f in document.get("findings") or [])
