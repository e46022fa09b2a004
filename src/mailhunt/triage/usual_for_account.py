"""Question 3: does this account usually perform this operation, from here, at this hour?

Answered from the actor's baseline (``triage.baselines``): the actor's earlier
events of the finding's tenant and source family within the look-back, after
identity resolution. A thin history answers "unknown", never "no".

"This operation" is the behaviour, not the kind of record: the same rule or
indicator matched the actor's earlier events (the ``matches`` the rules
wrote), and, where the record names the operation itself (a cmdlet or a
unified audit log Operation), the same operation against the same class of
target (the actor's own mailbox, or another user's). Endpoint records name
only a generic action (a script block was logged, a program ran): there the
rule that matched says which tool did what to which mail store. The actor's
other activity is shown as context, never as the answer.

"From here" compares the finding's countries and autonomous systems (source
addresses when neither is known) with the baseline's; "at this hour" compares
the UTC hour with the hours the account was active before (the hour either
side counts as usual); the client (application id, process) is compared with
the ones the account used before (user agents are not: browsers update too
often to tell).
"""

from __future__ import annotations

from mailhunt.case_queries import source_family
from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.baselines import (
    ActorBaseline,
    client_labels,
    place_of_event,
    target_class,
)
from mailhunt.triage.context import TriageContext
from mailhunt.wording import account_name

NAME = "usual_for_account"
# Families whose records name the operation itself (cmdlet, Operation); elsewhere the action is generic.
OPERATION_FAMILIES = ("m365", "exchange")
CONTEXT_ACTIONS = 3


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    result = _answer(finding, ctx)
    if finding.actor_resolution:
        return Answer(result.answer, f"{result.because}; identity: {'; '.join(finding.actor_resolution)}")
    return result


def _named(operation: str, target: str | None) -> str:
    return f"{operation} on {target}" if target else operation


def _operations(finding: Finding, rows: list[dict]) -> list[tuple[str, str | None]]:
    """(operation, class of target) of the finding's events whose records name the operation."""
    return sorted({(r["event.action"], target_class(r.get("user.name") or finding.actor, r.get("user.target.name")))
                   for r in rows if r.get("event.action") and source_family(r.get("event.dataset")) in OPERATION_FAMILIES},
                  key=lambda item: (item[0], item[1] or ""))


def _rule_history(finding: Finding, ctx: TriageContext, baseline: ActorBaseline) -> tuple[str | None, str | None]:
    """(what matched before, what never did) for the finding's rules and indicator."""
    titles = {r.id: r.title for r in finding.rules}
    own = [(titles[r], *baseline.rules[r]) for r in sorted(titles) if r in baseline.rules]
    if own:
        return "; ".join(f"rule '{title}' matched {n}x since {iso_z(first)}" for title, n, first in own), None
    same_indicator = [baseline.rules[r] for r in ctx.rules_of_indicator(finding.indicator) if r in baseline.rules]
    if same_indicator:
        count = sum(n for n, _ in same_indicator)
        first = min(f for _, f in same_indicator)
        return f"indicator {finding.indicator} matched {count}x since {iso_z(first)}", None
    return None, (f"no rule of indicator {finding.indicator} matched their earlier events ("
                  + ", ".join(f"'{t}'" for t in sorted(titles.values())) + ")")


def _answer(finding: Finding, ctx: TriageContext) -> Answer:
    if finding.actor is None:
        return Answer("unknown", "the finding has no actor to build a baseline for")
    baseline = ctx.baseline(finding)
    if baseline.thin:
        return Answer("unknown", f"{baseline.why_thin()}; {baseline.coverage()}")
    rows = ctx.details(finding)
    unusual, usual = [], []
    matched_before, never_matched = _rule_history(finding, ctx, baseline)
    operations = _operations(finding, rows)
    done = [(op, cls, *baseline.operations_on[(op, cls)]) for op, cls in operations if (op, cls) in baseline.operations_on]
    never = [(op, cls) for op, cls in operations if (op, cls) not in baseline.operations_on]
    if never:
        unusual.append("never did " + ", ".join(_named(op, cls) for op, cls in never) + " before")
    if never_matched:
        unusual.append(f"never did this operation before: {never_matched}")
    if done or matched_before:
        parts = [f"{_named(op, cls)} {n}x since {iso_z(first)}" for op, cls, n, first in done]
        if matched_before:
            parts.append(matched_before)
        usual.append("did this operation before: " + "; ".join(parts))
    finding_actions = {op for op, _ in operations}
    other = sorted(((a, n) for a, (n, _) in baseline.operations.items() if a not in finding_actions),
                   key=lambda item: (-item[1], item[0]))
    context = ("; other activity before, context only: "
               + ", ".join(f"{a} {n}x" for a, n in other[:CONTEXT_ACTIONS])) if other and not done else ""

    places = [place_of_event(r) for r in rows]
    countries = sorted({c for c, _ in places if c})
    asns = sorted({a for _, a in places if a})
    ips = sorted({r["source.ip"] for r in rows if r.get("source.ip")})
    new_countries = [c for c in countries if baseline.is_new("country", c)]
    new_asns = [a for a in asns if baseline.is_new("asn", a)]
    if new_countries:
        known = (", ".join(sorted(c for c in baseline.countries if not baseline.is_new("country", c)))
                 or "no located address")
        unusual.append(f"from a new country {', '.join(new_countries)} (before: {known})")
    if new_asns:
        unusual.append(f"from a new network {', '.join(new_asns)}")
    if not countries and not asns and ips:
        new_ips = [ip for ip in ips if baseline.is_new("ip", ip)]
        if new_ips:
            unusual.append(f"from new addresses {', '.join(new_ips[:3])}")
    if (countries or asns or ips) and not new_countries and not new_asns:
        usual.append(f"from known places ({', '.join(countries + asns) or ', '.join(ips[:3])})")

    clients = sorted({label for r in rows for label in client_labels(r) if not label.startswith("agent:")})
    kinds_seen = {c.split(":", 1)[0] for c in baseline.clients}
    # a kind of client the baseline never saw (processes when only cloud records came before) cannot be new
    new_clients = [c for c in clients if c.split(":", 1)[0] in kinds_seen and baseline.is_new("client", c)]
    if new_clients:
        unusual.append(f"with a client new for the account: {', '.join(new_clients[:3])}")
    elif clients:
        usual.append(f"with known clients ({', '.join(clients[:3])})")

    hour = finding.first_seen.hour
    if baseline.usual_hour(hour):
        usual.append(f"at a usual hour ({hour:02d}:00 UTC)")
    else:
        hours = ", ".join(f"{h:02d}" for h in sorted(baseline.hours))
        unusual.append(f"at an unusual hour ({hour:02d}:00 UTC; active before at {hours} h)")

    span = baseline.coverage()
    if unusual:
        return Answer("no", f"{account_name(finding.actor)} " + "; ".join(unusual)
                      + (f" (though: {'; '.join(usual)})" if usual else "") + f"{context}; {span}")
    return Answer("yes", f"{account_name(finding.actor)} " + "; ".join(usual) + f"{context}; {span}")
