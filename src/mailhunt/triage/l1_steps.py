"""The playbook's additional steps for L1, done for the analyst and attached to each finding.

- ``sign_ins``: the actor's sign-ins within ``AROUND`` of the finding (UAL
  UserLoggedIn/UserLoginFailed, Entra sign-ins, sshd, 4624/4625): countries
  and networks new to the actor or outside the home countries, impossible
  travel between consecutive sign-ins (country-centroid distance over elapsed
  time faster than ``MAX_TRAVEL_KMH``), bursts of ``FAILED_BURST`` failures
  within ``FAILED_BURST_WINDOW``.
- ``password_changes``, ``mfa_changes``, ``consent_grants``: those operations
  on or by the actor within ``AROUND``.
- ``correlated_findings``: the actor's or host's other findings.

Each step says ``flag`` (something for the analyst), ``clear`` (looked, nothing
found) or ``unknown`` (the evidence cannot tell), and why, with times and ids.
Which operations count is data: ``account_operations.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from itertools import pairwise

from mailhunt.events import iso_z
from mailhunt.findings import Finding, L1Step
from mailhunt.triage.baselines import place_of_event
from mailhunt.triage.context import TriageContext
from mailhunt.triage.geo import country_distance_km
from mailhunt.wording import account_name, count_of

AROUND = timedelta(hours=72)
MAX_TRAVEL_KMH = 900.0
MIN_TRAVEL_KM = 500.0
FAILED_BURST = 5
FAILED_BURST_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class OperationSet:
    actions: tuple[str, ...]
    codes: tuple[str, ...]
    failure_actions: tuple[str, ...] = ()
    failure_codes: tuple[str, ...] = ()
    property_actions: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.actions:
            clauses.append(f'lower("event.action") IN ({", ".join("?" * len(self.actions))})')
            params += [a.lower() for a in self.actions]
        if self.codes:
            clauses.append(f'"event.code" IN ({", ".join("?" * len(self.codes))})')
            params += list(self.codes)
        if self.property_actions and self.properties:
            changed = " OR ".join(['contains("parameters", ?)'] * len(self.properties))
            clauses.append(f'(lower("event.action") IN ({", ".join("?" * len(self.property_actions))}) '
                           f'AND ({changed}))')
            params += [a.lower() for a in self.property_actions] + [f'-{p} "' for p in self.properties]
        return " OR ".join(clauses) or "false", params

    def failed(self, row: dict) -> bool:
        return (row.get("event.outcome") == "failure"
                or (row.get("event.action") or "").lower() in {a.lower() for a in self.failure_actions}
                or row.get("event.code") in self.failure_codes)


@lru_cache(maxsize=1)
def operation_sets() -> dict[str, OperationSet]:
    data = tomllib.loads(resources.files("mailhunt.triage").joinpath("account_operations.toml").read_text("utf-8"))
    return {name: OperationSet(**{k: tuple(v) for k, v in spec.items()}) for name, spec in data.items()}


def _window(finding: Finding):
    return finding.first_seen - AROUND, finding.last_seen + AROUND


def _question(name: str) -> tuple[str, list]:
    """The condition (and its parameters) on the actor's events that the step ``name`` reads."""
    ops = operation_sets()[name]
    where, params = ops.where()
    if name == "sign_ins":
        # Windows logon events name the account logged on as the target; everything else as the actor
        return (f'("user.name" = "request.person" OR "event.code" IN (SELECT unnest(CAST(? AS VARCHAR[])))) AND ({where})',
                [list(ops.codes), *params])
    return where, params


EVENT_STEPS = ("sign_ins", "password_changes", "mfa_changes", "consent_grants")


def prepare_steps(findings: list[Finding], ctx: TriageContext) -> None:
    """Read the events every finding's steps ask about, one query per step for all findings, and the baselines
    of the sign-ins' scopes."""
    asked = [(finding, (finding.actor, *_window(finding))) for finding in findings if finding.actor is not None]
    for name in EVENT_STEPS:
        ctx.prepare_actor_events([request for _, request in asked], *_question(name))
    sign_in_scopes = []
    for finding, (actor, start, end) in asked:
        rows = ctx.actor_events(actor, start, end, *_question("sign_ins"))
        if rows:
            sign_in_scopes.append((finding, ctx.scopes_of_rows(rows)))
    ctx.prepare_baselines(sign_in_scopes)


def _ref(row: dict) -> str:
    return f"{row.get('event.action')} at {iso_z(row['@timestamp'])}"


def _no_actor(step: str) -> L1Step:
    return L1Step(step, "unknown", "the finding has no actor")


def sign_ins(finding: Finding, ctx: TriageContext) -> L1Step:
    actor = finding.actor
    if actor is None:
        return _no_actor("sign_ins")
    ops = operation_sets()["sign_ins"]
    start, end = _window(finding)
    rows = ctx.actor_events(actor, start, end, *_question("sign_ins"))
    if not rows:
        return L1Step("sign_ins", "unknown", f"no sign-in records of {actor} within ±72 h in the evidence; "
                                             "add the Entra ID sign-in log or the unified audit log's UserLoggedIn")
    # places are compared with the actor's earlier events of the sign-ins' own tenant and log
    baseline = ctx.baseline(finding, ctx.scopes_of_rows(rows))
    home = set(ctx.config.home_countries)
    flags, facts = [], []
    failed = [r for r in rows if ops.failed(r)]
    facts.append(f"{len(rows) - len(failed)} successful and {len(failed)} failed sign-ins "
                 f"{iso_z(start)} .. {iso_z(end)}")
    located = []
    for row in rows:
        country, asn = place_of_event(row)
        located.append((row, country, asn))
    countries = sorted({c for _, c, _ in located if c})
    if countries:
        facts.append(f"countries {', '.join(countries)}")
    new_countries = sorted({c for _, c, _ in located if c and not baseline.thin and baseline.is_new("country", c)})
    if new_countries:
        flags.append(f"country new for the actor: {', '.join(new_countries)} "
                     f"(first {_ref(next(r for r, c, _ in located if c == new_countries[0]))})")
    outside_home = sorted({c for _, c, _ in located if c and home and c not in home})
    if outside_home:
        flags.append(f"outside the home countries {', '.join(sorted(home))}: {', '.join(outside_home)}")
    new_asns = sorted({a for _, _, a in located if a and not baseline.thin and baseline.is_new("asn", a)})
    if new_asns:
        flags.append(f"network new for the actor: {', '.join(new_asns[:3])}")
    successes = [(r, c) for r, c, _ in located if c and not ops.failed(r)]
    for (one, c1), (two, c2) in pairwise(successes):
        if c1 == c2:
            continue
        km = country_distance_km(c1, c2)
        hours = max((two["@timestamp"] - one["@timestamp"]).total_seconds() / 3600, 1 / 60)
        if km is not None and km >= MIN_TRAVEL_KM and km / hours > MAX_TRAVEL_KMH:
            flags.append(f"impossible travel {c1} → {c2}: about {km:.0f} km in {hours:.1f} h "
                         f"({iso_z(one['@timestamp'])} → {iso_z(two['@timestamp'])}, from {one.get('source.ip')} "
                         f"to {two.get('source.ip')})")
            break
    for index, row in enumerate(failed):
        burst = [r for r in failed[index:] if r["@timestamp"] - row["@timestamp"] <= FAILED_BURST_WINDOW]
        if len(burst) >= FAILED_BURST:
            sources = sorted({r.get("source.ip") or "?" for r in burst})
            flags.append(f"failed-login burst: {len(burst)} failures {iso_z(row['@timestamp'])} .. "
                         f"{iso_z(burst[-1]['@timestamp'])} from {', '.join(sources[:3])}")
            break
    if baseline.thin:
        facts.append(f"new country/network not judged: {baseline.why_thin()}")
    return L1Step("sign_ins", "flag" if flags else "clear", "; ".join(flags + facts))


def _operations_step(name: str, label: tuple[str, str], finding: Finding, ctx: TriageContext) -> L1Step:
    """``label``: what the operations are called, (one, several)."""
    actor = finding.actor
    if actor is None:
        return _no_actor(name)
    start, end = _window(finding)
    rows = ctx.actor_events(actor, start, end, *_question(name))
    if not rows:
        return L1Step(name, "clear", f"no {label[1]} on or by {actor} within ±72 h "
                                     f"({iso_z(start)} .. {iso_z(end)})")
    listed = "; ".join(f"{_ref(r)} by {account_name(r.get('user.name'))} on "
                       f"{r.get('user.target.name') or account_name(r.get('user.name'))}"
                       for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return L1Step(name, "flag", f"{count_of(len(rows), *label)} within ±72 h: {listed}{more}")


def password_changes(finding: Finding, ctx: TriageContext) -> L1Step:
    return _operations_step("password_changes", ("password change or reset", "password changes or resets"), finding, ctx)


def mfa_changes(finding: Finding, ctx: TriageContext) -> L1Step:
    return _operations_step("mfa_changes", ("MFA method change", "MFA method changes"), finding, ctx)


def consent_grants(finding: Finding, ctx: TriageContext) -> L1Step:
    return _operations_step("consent_grants", ("consent grant", "consent grants"), finding, ctx)


CLOUD_DATASETS = ("m365.", "entra.")


def correlated_findings(finding: Finding, others: list[Finding], host: str | None) -> L1Step:
    """``host`` is None for cloud findings: their host is a Microsoft server, shared by everyone."""
    related = sorted((f for f in others if f is not finding and (
        (finding.actor and f.actor == finding.actor) or (host and f.host == host))),
        key=lambda f: (f.first_seen, f.indicator, f.id))
    if not related:
        return L1Step("correlated_findings", "clear", f"no other finding for {account_name(finding.actor)}"
                      + (f" or host {host}" if host else ""))
    listed = "; ".join(f"{f.id} {f.indicator} at {iso_z(f.first_seen)}" for f in related[:6])
    more = f" and {len(related) - 6} more" if len(related) > 6 else ""
    return L1Step("correlated_findings", "flag", f"{count_of(len(related), 'other finding')} for the same actor or host: "
                                                 f"{listed}{more}")


def l1_steps(finding: Finding, ctx: TriageContext, others: list[Finding]) -> list[L1Step]:
    steps = [sign_ins(finding, ctx), password_changes(finding, ctx), mfa_changes(finding, ctx),
             consent_grants(finding, ctx)]
    on_premises = any(not (r.get("event.dataset") or "").startswith(CLOUD_DATASETS) for r in ctx.details(finding))
    return steps + [correlated_findings(finding, others, finding.host if on_premises else None)]
