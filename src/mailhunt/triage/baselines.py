"""Per-actor baselines from the evidence itself: everything in the case before the finding.

For the finding's actor (after identity resolution): the operations the actor
performed before (first seen actor × operation), the usual hours (UTC), source
addresses with their countries and autonomous systems, and the clients used
(application ids, user agents / ClientInfoString, processes). Per application
id: when it was first seen in the tenant.

The history available is always stated. With less than ``MIN_HISTORY`` of
evidence before the finding, or no earlier event by the actor, the baseline is
thin and the questions built on it answer "unknown", never "no".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailhunt.events import iso_z
from mailhunt.triage.geo import place_of

MIN_HISTORY = timedelta(days=1)
MIN_ACTOR_EVENTS = 3
RECENT = timedelta(hours=24)


@dataclass
class ActorBaseline:
    actor: str | None
    start: datetime | None
    end: datetime
    actor_events: int = 0
    operations: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    hours: Counter = field(default_factory=Counter)
    ips: Counter = field(default_factory=Counter)
    countries: Counter = field(default_factory=Counter)
    asns: Counter = field(default_factory=Counter)
    clients: Counter = field(default_factory=Counter)
    first_seen: dict[str, datetime] = field(default_factory=dict)

    @property
    def days(self) -> float:
        return 0.0 if self.start is None else max(0.0, (self.end - self.start).total_seconds() / 86400)

    @property
    def thin(self) -> bool:
        return self.start is None or self.end - self.start < MIN_HISTORY or self.actor_events < MIN_ACTOR_EVENTS

    def coverage(self) -> str:
        if self.start is None or self.end <= self.start:
            return "baseline covers nothing: the finding is at the start of the evidence"
        return (f"baseline covers {iso_z(self.start)[:10]} .. {iso_z(self.end)[:10]}, {self.days:.0f} days, "
                f"{self.actor_events} earlier events by {self.actor or 'the actor'}")

    def why_thin(self) -> str:
        if self.start is None or self.end - self.start < MIN_HISTORY:
            hours = 0 if self.start is None else (self.end - self.start).total_seconds() / 3600
            return f"only {hours:.1f} h of evidence before the finding (at least {MIN_HISTORY.days} day needed)"
        return (f"{self.actor or 'the actor'} has only {self.actor_events} earlier events "
                f"(at least {MIN_ACTOR_EVENTS} needed)")

    def is_new(self, kind: str, value: str) -> bool:
        """Not seen for this actor before the last ``RECENT`` before the finding (``kind``: country, asn, ip, client).

        A place first seen minutes before the finding (the sign-in that led to
        it) is as new as one never seen."""
        first = self.first_seen.get(f"{kind}:{value}")
        return first is None or first > self.end - RECENT

    def usual_hour(self, hour: int) -> bool:
        """Seen at this UTC hour or the hour either side."""
        return any(self.hours.get((hour + d) % 24) for d in (-1, 0, 1))

    def to_json(self) -> dict:
        return {
            "statement": self.coverage(),
            "start": iso_z(self.start), "end": iso_z(self.end), "days": round(self.days, 1),
            "actor_events": self.actor_events, "sufficient": not self.thin,
            "operations": {op: {"count": n, "first_seen": iso_z(first)} for op, (n, first) in sorted(self.operations.items())},
            "hours_utc": sorted(self.hours),
            "source_ips": sorted(self.ips), "countries": sorted(self.countries), "asns": sorted(self.asns),
            "clients": sorted(self.clients),
        }


def client_labels(row: dict) -> list[str]:
    """The client strings of one event, each prefixed by what it is."""
    out = []
    for label, key in (("app", "app.id"), ("agent", "user_agent.original"), ("process", "process.name")):
        if row.get(key):
            out.append(f"{label}:{row[key]}")
    return out


def place_of_event(row: dict) -> tuple[str | None, str | None]:
    """(country, AS) of an event: the country the log states, else geoip2fast's; the AS from geoip2fast
    or the record's own AS number."""
    place = place_of(row.get("source.ip"))
    country = row.get("source.geo.country_iso_code") or place.country
    labels = row.get("labels") or {}
    asn = place.asn or (f"AS{labels['asn']}" if isinstance(labels, dict) and labels.get("asn") else None)
    return country, asn


# The actor's earlier events, one row per distinct combination of what the
# baseline counts, with how many events had it and the first time it occurs.
BASELINE_SQL = """
SELECT "event.action", hour("@timestamp"), "source.ip", "source.geo.country_iso_code", "app.id",
       "user_agent.original", "process.name", labels['asn'], count(*), min("@timestamp")
FROM {relation} WHERE "user.name" = ? AND "@timestamp" < ?
GROUP BY ALL
ORDER BY ALL
"""


def build_actor_baseline(db, actor: str | None, before: datetime, evidence_start: datetime | None,
                         relation: str = "detection_events") -> ActorBaseline:
    """``relation`` holds the case's events with resolved actors (the detection view, or a subset of it)."""
    baseline = ActorBaseline(actor, evidence_start if evidence_start and evidence_start < before else None, before)
    if actor is None:
        return baseline
    columns = ["event.action", "hour", "source.ip", "source.geo.country_iso_code", "app.id",
               "user_agent.original", "process.name", "asn", "events", "first"]
    for values in db.execute(BASELINE_SQL.format(relation=relation), [actor, before]).fetchall():
        row = dict(zip(columns, values))
        row["labels"] = {"asn": row["asn"]} if row["asn"] is not None else {}
        events, first = row["events"], row["first"]
        baseline.actor_events += events
        action = row["event.action"]
        if action:
            count, earliest = baseline.operations.get(action, (0, first))
            baseline.operations[action] = (count + events, min(earliest, first))
        baseline.hours[row["hour"]] += events
        country, asn = place_of_event(row)
        for kind, value, counter in (("ip", row["source.ip"], baseline.ips), ("country", country, baseline.countries),
                                     ("asn", asn, baseline.asns)):
            if value:
                counter[value] += events
                key = f"{kind}:{value}"
                baseline.first_seen[key] = min(baseline.first_seen.get(key, first), first)
        for label in client_labels(row):
            baseline.clients[label] += events
            key = f"client:{label}"
            baseline.first_seen[key] = min(baseline.first_seen.get(key, first), first)
    return baseline
