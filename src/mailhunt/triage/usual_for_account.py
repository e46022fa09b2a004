"""Question 3: has this account done this kind of operation before, from here, at this hour?

Answered from the actor's baseline (``triage.baselines``): everything in the
case before the finding, after identity resolution. A thin history answers
"unknown", never "no". "From here" compares the finding's countries and
autonomous systems (source addresses when neither is known) with the
baseline's; "at this hour" compares the UTC hour with the hours the account
was active before (the hour either side counts as usual); the client
(application id, process) is compared with the ones the account used before
(user agents are not: browsers update too often to tell).
"""

from __future__ import annotations

from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.baselines import client_labels, place_of_event
from mailhunt.triage.context import TriageContext

NAME = "usual_for_account"


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    result = _answer(finding, ctx)
    if finding.actor_resolution:
        return Answer(result.answer, f"{result.because}; identity: {'; '.join(finding.actor_resolution)}")
    return result


def _answer(finding: Finding, ctx: TriageContext) -> Answer:
    if finding.actor is None:
        return Answer("unknown", "the finding has no actor to build a baseline for")
    baseline = ctx.baseline(finding)
    if baseline.thin:
        return Answer("unknown", f"{baseline.why_thin()}; {baseline.coverage()}")
    actions = finding.actions
    if not actions:
        return Answer("unknown", "the finding's events name no operation to compare with")
    rows = ctx.details(finding)
    unusual, usual = [], []
    done = [(a, *baseline.operations[a]) for a in actions if a in baseline.operations]
    never = [a for a in actions if a not in baseline.operations]
    if never:
        unusual.append(f"never did {', '.join(never)} before")
    if done:
        usual.append("did this before: " + "; ".join(f"{a} {n}x since {iso_z(first)}" for a, n, first in done))

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
        return Answer("no", f"{finding.actor} " + "; ".join(unusual)
                      + (f" (though: {'; '.join(usual)})" if usual else "") + f"; {span}")
    return Answer("yes", f"{finding.actor} " + "; ".join(usual) + f"; {span}")
