"""Per-actor baselines from the evidence that could have seen the behaviour.

A finding's baseline is built from the actor's events (after identity
resolution) of the same scopes as the finding's events -- the same tenant
(``scope.tenant``) and source family (``scope.family``, see
``mailhunt.case_queries``) -- within the look-back before the finding
(``tuning.baseline_days``, 30 days unless configured), never from the span of
every file in the case. It holds the operations the actor performed before
(action x class of target: the actor's own mailbox or another's), the rules
their events matched, the usual hours (UTC), source addresses with their
countries and autonomous systems, and the clients used (application ids, user
agents / ClientInfoString, processes).

The scope and history available are always stated. With less than
``MIN_HISTORY`` of the scope's evidence before the finding, or fewer than
``MIN_ACTOR_EVENTS`` earlier events by the actor, the baseline is thin and the
questions built on it answer "unknown", never "no".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailhunt.case_queries import HistoryRequest, HistoryRow, ResolvedEvents, Scope
from mailhunt.events import iso_z
from mailhunt.triage.geo import place_of
from mailhunt.wording import count_of

MIN_HISTORY = timedelta(days=1)
DEFAULT_LOOKBACK_DAYS = 30
OWN_MAILBOX = "own mailbox"
OTHER_MAILBOX = "another user's mailbox"
MIN_ACTOR_EVENTS = 3
RECENT = timedelta(hours=24)


@dataclass
class ActorBaseline:
    actor: str | None
    start: datetime | None
    end: datetime
    scopes: list[Scope] = field(default_factory=list)
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    actor_events: int = 0
    operations: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    operations_on: dict[tuple[str, str | None], tuple[int, datetime]] = field(default_factory=dict)
    rules: dict[str, tuple[int, datetime]] = field(default_factory=dict)
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

    def scope_text(self) -> str:
        """What evidence the baseline was built from."""
        scopes = "; ".join(s.describe() for s in self.scopes) or "no evidence of the finding's own sources"
        return f"{scopes}, look-back {self.lookback_days} days"

    def coverage(self) -> str:
        if self.start is None or self.end <= self.start:
            return (f"baseline covers nothing: no earlier {self.scope_text()} before the finding")
        return (f"baseline covers {iso_z(self.start)[:10]} .. {iso_z(self.end)[:10]}, {self.days:.0f} days, "
                f"{count_of(self.actor_events, 'earlier event', zero='no earlier events')} by {self.actor or 'the actor'} "
                f"({self.scope_text()})")

    def why_thin(self) -> str:
        if self.start is None or self.end - self.start < MIN_HISTORY:
            hours = 0 if self.start is None else (self.end - self.start).total_seconds() / 3600
            return (f"only {hours:.1f} h of {self.scope_text()} before the finding "
                    f"(at least {MIN_HISTORY.days} day needed)")
        had = ("has no earlier events" if not self.actor_events
               else f"has only {count_of(self.actor_events, 'earlier event')}")
        return f"{self.actor or 'the actor'} {had} (at least {MIN_ACTOR_EVENTS} needed)"

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
            "scope": [{"tenant": s.tenant, "family": s.family} for s in self.scopes],
            "lookback_days": self.lookback_days,
            "actor_events": self.actor_events, "sufficient": not self.thin,
            "operations": {op: {"count": n, "first_seen": iso_z(first)} for op, (n, first) in sorted(self.operations.items())},
            "rules_matched": {r: {"count": n, "first_seen": iso_z(first)} for r, (n, first) in sorted(self.rules.items())},
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


def names_an_account(name: str) -> bool:
    """Whether a target names an account (an address, DOMAIN\\sam or a canonical name), not a rule or a search."""
    return any(mark in name for mark in ("@", "\\", "/"))


def target_class(actor: str | None, target: str | None) -> str | None:
    """The class of target of one operation: the actor's own mailbox, another user's, or None when the
    target is no account (a rule name, a search) or not named."""
    if not target or not names_an_account(target):
        return OWN_MAILBOX if target and target == actor else None
    return OWN_MAILBOX if target == actor else OTHER_MAILBOX


def build_actor_baseline(resolved: ResolvedEvents, actor: str | None, before: datetime, scopes: list[Scope],
                         lookback_days: int = DEFAULT_LOOKBACK_DAYS, rule_ids: tuple[str, ...] = ()) -> ActorBaseline:
    """The actor's history in ``scopes`` within ``lookback_days`` before ``before``; ``rule_ids``: the rules whose
    earlier matches by the actor are counted too."""
    return build_actor_baselines(resolved, [(actor, before, scopes, rule_ids)], lookback_days)[0]


def build_actor_baselines(resolved: ResolvedEvents,
                          wanted: list[tuple[str | None, datetime, list[Scope], tuple[str, ...]]],
                          lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> list[ActorBaseline]:
    """``build_actor_baseline`` of each (actor, before, scopes, rule ids), with one query over the people's events
    for the histories of all of them and one for their rule matches."""
    baselines, requests, of_request = [], [], []
    coverage: dict[tuple[Scope, ...], datetime | None] = {}
    for actor, before, scopes, rule_ids in wanted:
        since = before - timedelta(days=lookback_days)
        if tuple(scopes) not in coverage:
            coverage[tuple(scopes)] = resolved.scope_coverage(scopes)[0]
        first = coverage[tuple(scopes)]
        start = max(first, since) if first is not None and first < before else None
        baselines.append(ActorBaseline(actor, start, before, list(scopes), lookback_days))
        if actor is not None:
            of_request.append(baselines[-1])
            requests.append(HistoryRequest(actor, tuple(scopes), since, before, tuple(rule_ids)))
    for baseline, rules, history in zip(of_request, resolved.matched_by_actors(requests),
                                        resolved.actor_histories(requests), strict=True):
        baseline.rules = rules
        _add_history(baseline, history)
    return baselines


def _add_history(baseline: ActorBaseline, rows: list[HistoryRow]) -> None:
    actor = baseline.actor
    for history in rows:
        row = {"source.ip": history.source_ip, "source.geo.country_iso_code": history.country,
               "app.id": history.app_id, "user_agent.original": history.user_agent, "process.name": history.process,
               "labels": {"asn": history.asn} if history.asn is not None else {}}
        events, first = history.events, history.first
        baseline.actor_events += events
        action = history.action
        if action:
            count, earliest = baseline.operations.get(action, (0, first))
            baseline.operations[action] = (count + events, min(earliest, first))
            key = (action, target_class(actor, history.target))
            count, earliest = baseline.operations_on.get(key, (0, first))
            baseline.operations_on[key] = (count + events, min(earliest, first))
        baseline.hours[history.hour] += events
        country, asn = place_of_event(row)
        for kind, value, counter in (("ip", history.source_ip, baseline.ips), ("country", country, baseline.countries),
                                     ("asn", asn, baseline.asns)):
            if value:
                counter[value] += events
                key_text = f"{kind}:{value}"
                baseline.first_seen[key_text] = min(baseline.first_seen.get(key_text, first), first)
        for label in client_labels(row):
            baseline.clients[label] += events
            key_text = f"client:{label}"
            baseline.first_seen[key_text] = min(baseline.first_seen.get(key_text, first), first)
