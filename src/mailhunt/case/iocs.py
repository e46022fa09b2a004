"""The case's indicators of compromise, from the events of its findings.

Addresses (with country and network: ``triage.geo.place_of``, else the
country the record logged), user agents, application ids, recipient and
forwarding addresses outside the organization's domains (every address when
none are configured: ``external`` is then unknown), and inbox/transport rule
names. Each with when it was first and last seen, how many events carry it,
and the findings it came from.

Written as ``iocs.csv`` (formula-neutralized, ``mailhunt.csv_cells``) and
``iocs.stix.json``: a STIX 2.1 bundle of indicators built with the ``stix2``
package, deterministic: each id is a UUIDv5 of the indicator's kind and value,
and ``created``/``modified``/``valid_from`` are the first time the evidence
shows the value, never the clock.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import stix2

from mailhunt.case_queries import ResolvedEvents
from mailhunt.csv_cells import csv_bytes
from mailhunt.events import iso_z
from mailhunt.triage.geo import place_of

IOC_FILES = ("iocs.csv", "iocs.stix.json")
# Indicator kind (findings.json ``iocs``) -> what the reports call it; the order is the reports' and the files'.
KINDS = {"ip": "IP address", "user_agent": "User agent", "app_id": "Application id",
         "email": "External address", "rule_name": "Rule name"}
STIX_NAMESPACE = uuid.UUID("6f0d5c1e-3a55-5b0e-9a43-2f4b9c1d7e20")
_ADDRESS = re.compile(r"[^\s;,<>\"'()\[\]:]+@[^\s;,<>\"'()\[\]:]+\.[^\s;,<>\"'()\[\]:]+")
CSV_FIELDS = ("kind", "value", "country", "network", "external", "first_seen", "last_seen", "events", "findings",
              "escalated")


@dataclass
class Ioc:
    kind: str
    value: str
    first_seen: datetime
    last_seen: datetime
    events: set[str] = field(default_factory=set)
    findings: set[str] = field(default_factory=set)
    country: str | None = None
    network: str | None = None
    external: bool | None = None

    def to_json(self, escalated: set[str]) -> dict:
        return {"kind": self.kind, "value": self.value, "country": self.country, "network": self.network,
                "external": self.external, "first_seen": iso_z(self.first_seen), "last_seen": iso_z(self.last_seen),
                "events": len(self.events), "findings": sorted(self.findings),
                "escalated": any(f in escalated for f in self.findings)}


def _external(address: str, domains: tuple[str, ...]) -> bool | None:
    if not domains:
        return None
    domain = address.rpartition("@")[2]
    return not any(domain == d or domain.endswith("." + d) for d in domains)


def collect_iocs(resolved: ResolvedEvents, finding_events: dict[str, list[str]], escalated: set[str],
                 org_domains: tuple[str, ...] = ()) -> list[dict]:
    """The indicators of the events of these findings (finding id -> event ids), as ``findings.json``'s
    ``iocs`` entries: escalated findings' first, then by kind and first time."""
    pairs = [(finding, event) for finding, events in finding_events.items() for event in events]
    table = pa.table({"finding": [p[0] for p in pairs], "event_id": [p[1] for p in pairs]},
                     schema=pa.schema([("finding", pa.string()), ("event_id", pa.string())]))
    domains = tuple(sorted({d.strip().lower().lstrip("@") for d in org_domains if d and d.strip()}))
    found: dict[tuple[str, str], Ioc] = {}

    def note(kind: str, value: str | None, row: dict) -> Ioc | None:
        value = (value or "").strip()
        if not value:
            return None
        ioc = found.get((kind, value))
        if ioc is None:
            ioc = found[(kind, value)] = Ioc(kind, value, row["ts"], row["ts"])
        ioc.first_seen, ioc.last_seen = min(ioc.first_seen, row["ts"]), max(ioc.last_seen, row["ts"])
        ioc.events.add(row["event_id"])
        ioc.findings.add(row["finding"])
        return ioc

    for row in resolved.indicator_rows(table) if pairs else []:
        ip = note("ip", row["ip"], row)
        if ip is not None and ip.country is None and ip.network is None:
            place = place_of(ip.value)
            ip.country, ip.network = place.country or row["country"], place.asn
        note("user_agent", row["user_agent"], row)
        note("app_id", (row["app_id"] or "").lower(), row)
        note("rule_name", row["rule_name"], row)
        for text in [row["recipients"] or "", *(row["forwarded_to"] or [])]:
            for address in _ADDRESS.findall(text):
                external = _external(address.lower(), domains)
                if external is not False:
                    ioc = note("email", address.lower(), row)
                    if ioc is not None:
                        ioc.external = external
    order = list(KINDS)
    iocs = sorted(found.values(), key=lambda i: (not (i.findings & escalated), order.index(i.kind), i.first_seen,
                                                 i.value))
    return [ioc.to_json(escalated) for ioc in iocs]


def iocs_csv(iocs: Iterable[dict]) -> bytes:
    """The indicators as CSV, finding ids joined by spaces, every cell neutralized."""
    def cell(ioc: dict, name: str) -> object:
        value = ioc[name]
        if name == "findings":
            return " ".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return value
    return csv_bytes(CSV_FIELDS, ([cell(ioc, name) for name in CSV_FIELDS] for ioc in iocs))


def _stix_string(value: str) -> str:
    """A STIX patterning string literal: backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_pattern(kind: str, value: str) -> str:
    """The STIX 2.1 pattern that matches this indicator."""
    literal = _stix_string(value)
    if kind == "ip":
        version = ipaddress.ip_address(value).version if _is_ip(value) else 4
        return f"[ipv{version}-addr:value = {literal}]"
    if kind == "email":
        return f"[email-addr:value = {literal}]"
    if kind == "user_agent":
        return f"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = {literal}]"
    if kind == "app_id":
        return f"[x-mailhunt-client-app:app_id = {literal}]"
    return f"[x-mailhunt-mail-rule:name = {literal}]"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def stix_id(kind: str, value: str) -> str:
    return f"indicator--{uuid.uuid5(STIX_NAMESPACE, kind + chr(31) + value)}"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def stix_bundle(iocs: Sequence[dict]) -> stix2.Bundle:
    """The indicators as a STIX 2.1 bundle (ids and times from the evidence, so the same case gives the same
    bytes)."""
    indicators = []
    for ioc in iocs:
        if ioc["kind"] == "ip" and not _is_ip(ioc["value"]):
            continue  # a logged address that is not one has no STIX pattern; iocs.csv still lists it
        seen = _utc(ioc["first_seen"])
        where = ", ".join(filter(None, [ioc.get("country"), ioc.get("network")]))
        description = (f"{KINDS[ioc['kind']]} seen in {ioc['events']} event(s) of mailhunt finding(s) "
                       f"{', '.join(ioc['findings'])} from {ioc['first_seen']} to {ioc['last_seen']}"
                       + (f" ({where})" if where else ""))
        indicators.append(stix2.Indicator(
            id=stix_id(ioc["kind"], ioc["value"]), created=seen, modified=seen, valid_from=seen,
            name=f"{KINDS[ioc['kind']]}: {ioc['value']}", description=description,
            indicator_types=["malicious-activity" if ioc["escalated"] else "anomalous-activity"],
            pattern=stix_pattern(ioc["kind"], ioc["value"]), pattern_type="stix"))
    bundle_id = uuid.uuid5(STIX_NAMESPACE, chr(30).join(i.id for i in indicators))
    return stix2.Bundle(objects=indicators, id=f"bundle--{bundle_id}")


def iocs_stix(iocs: Sequence[dict]) -> bytes:
    return (stix_bundle(iocs).serialize(pretty=True) + "\n").encode("utf-8")
