"""One Exchange admin audit log entry (from a CSV row or an XML ``Event``) as a normalized event.

Both containers hand over the same fields: cmdlet, caller, object modified,
run date, success, error, originating server, client IP and the parameters as
(name, value) pairs. The mapping follows the unified audit log reader so that
the same Sigma rules serve both:

- ``event.action`` = cmdlet; ``params`` = parameter names lower-cased, first
  value wins; ``parameters`` = ``-Name value`` text;
- ``user.name`` = Caller lower-cased but otherwise as logged
  (``corp.local/Users/Administrator``, ``CORP\\admin`` or a UPN);
  ``user.domain`` = its domain part where the form has one;
- ``user.target.name`` = the mailbox the parameters name (as in the unified
  audit log reader: ``-Mailbox``, the mailbox part of an export request or
  inbox rule ``-Identity``), else ObjectModified;
- ``rule.name`` = inbox or transport rule name for rule cmdlets;
- ``event.id`` = hash of run time, caller, cmdlet and object modified, so the
  same entry exported as CSV and as XML is stored once.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import lru_cache

from mailhunt.events import event_id_from_record_id, new_event
from mailhunt.sources.cmdlet_parameters import (
    cmdlet_rule_name,
    cmdlet_target,
    params_by_name,
)

DATASET = "exchange.admin_audit"
PROVIDER = "Exchange admin audit log"


def _domain(caller: str) -> str | None:
    if "\\" in caller:
        return caller.split("\\", 1)[0]
    if "/" in caller:
        return caller.split("/", 1)[0]
    if "@" in caller:
        return caller.rsplit("@", 1)[1]
    return None


@lru_cache(maxsize=65536)
def _ip(text: str | None) -> str | None:
    value = (text or "").strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _outcome(succeeded: str | None) -> str:
    value = (succeeded or "").strip().lower()
    return {"true": "success", "false": "failure"}.get(value, "unknown")


def _parameter_text(pairs: list[tuple[str, str]]) -> str | None:
    """``-Name value`` text, a value quoted when empty or holding a space.

    The unified audit log writes the same text in SQL (``m365_normalize.PARAM_MAPS_SQL``): kept twice
    because building it here per distinct list costs that reader more than the copy (bench/README.md,
    "Mappings"); tests/hostile/test_cmdlet_rule_one_definition.py fails if the two ever differ.
    """
    parts = []
    for name, value in pairs:
        parts.append(f'-{name} "{value}"' if value == "" or " " in value else f"-{name} {value}")
    return " ".join(parts) or None


def admin_audit_event(*, timestamp: datetime, cmdlet: str, caller: str | None, object_modified: str | None,
                      succeeded: str | None, error: str | None, server: str | None, client_ip: str | None,
                      pairs: list[tuple[str, str]], labels: dict[str, str], raw: str, path: str, sha256: str,
                      locator: int) -> dict:
    params = params_by_name(pairs)
    actor = caller.strip().lower() if caller and caller.strip() else None
    modified = object_modified.strip() if object_modified and object_modified.strip() else None
    target = cmdlet_target(cmdlet, params, actor) or modified
    event = new_event()
    event.update({
        "event.id": event_id_from_record_id(
            DATASET, "\x1f".join([timestamp.isoformat(), actor or "", cmdlet.lower(), (modified or "").lower()])),
        "@timestamp": timestamp,
        "event.action": cmdlet,
        "event.outcome": _outcome(succeeded),
        "event.provider": PROVIDER,
        "event.dataset": DATASET,
        "user.name": actor,
        "user.domain": _domain(actor) if actor else None,
        "user.target.name": target.lower() if target and "@" in target else target,
        "source.ip": _ip(client_ip),
        "host.name": server.strip() if server and server.strip() else None,
        "rule.name": cmdlet_rule_name(cmdlet, params),
        "params": list(params.items()),
        "parameters": _parameter_text(pairs),
        "labels": sorted({**labels, **({"error": error.strip()} if error and error.strip() not in ("", "None") else {})}.items()),
        "email.item_count": 1,
        "log.file.path": path,
        "log.file.sha256": sha256,
        "log.record": locator,
        "event.original": raw,
    })
    return event
