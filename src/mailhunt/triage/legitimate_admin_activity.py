"""Question 2: does the activity match legitimate administration, or is it out of context?

Legitimate means: the actor is an authorized admin or known automation, the
activity falls inside a change window that names the actor (when windows are
configured), and no known offensive tool shows in the client strings.
"""

from __future__ import annotations

import re

from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext

NAME = "legitimate_admin_activity"

OFFENSIVE_TOOLING = re.compile(
    r"aadinternals|roadtools|roadrecon|mailsniper|ruler|o365-attack-toolkit|graphrunner|tokentactics|"
    r"python-requests|go-http-client|\bcurl/|powershell/\S+ \(aad",
    re.IGNORECASE)


def offensive_clients(finding: Finding) -> list[str]:
    seen = []
    for ev in finding.events:
        for text in (ev.user_agent, ev.parameters):
            if text and OFFENSIVE_TOOLING.search(text) and text not in seen:
                seen.append(text)
    return seen


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    config = ctx.config
    actor = (finding.actor or "").lower()
    tools = offensive_clients(finding)
    if tools:
        return Answer("no", f"client strings name offensive tooling: {tools[0][:120]}")
    automation = [a for a in config.automation if str(a.get("account", "")).lower() == actor]
    authorized = actor in config.admins or bool(automation)
    if not config.admins and not config.automation:
        return Answer("unknown", "no authorized admins or automation are configured (mailhunt.toml [authorized])")
    if not authorized:
        return Answer("no", f"{finding.actor} is not among the authorized admins or known automation")
    windows = [w for w in config.change_windows if not w.actors or actor in w.actors]
    if not windows:
        kind = "known automation" if automation else "an authorized admin"
        return Answer("yes", f"{finding.actor} is {kind}; no change windows are configured for this account")
    covering = [w for w in windows if w.start <= finding.first_seen and finding.last_seen <= w.end]
    if covering:
        w = covering[0]
        return Answer("yes", f"{finding.actor} is authorized and the activity lies inside change window "
                             f"{iso_z(w.start)} .. {iso_z(w.end)} (ticket {w.ticket or 'none given'})")
    return Answer("no", f"{finding.actor} is authorized, but the activity ({iso_z(finding.first_seen)}) lies outside "
                        f"every change window configured for the account")
