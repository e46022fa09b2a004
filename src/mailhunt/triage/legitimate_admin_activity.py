"""Question 2: does the activity match legitimate administration, or is it out of context?

Legitimate means: the actor is an authorized admin, matching known automation
(every key of its ``[authorized].automation`` entry matches) or named by a
change window that covers the activity; inside a change window when windows
are configured for the account; from the trusted networks when those are
configured; and with the clients authorized people use: no offensive tooling,
scripted HTTP client, IIS worker process or export to a web folder
(``client_patterns.toml``), no IOC, no application id new to the tenant.
"""

from __future__ import annotations

from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.legitimacy import Assessment, assess

NAME = "legitimate_admin_activity"


def answer(finding: Finding, ctx: TriageContext, assessment: Assessment | None = None) -> Answer:
    result = _answer(finding, ctx, assessment)
    if finding.actor_resolution:
        return Answer(result.answer, f"{result.because}; identity: {'; '.join(finding.actor_resolution)}")
    return result


def _answer(finding: Finding, ctx: TriageContext, assessment: Assessment | None) -> Answer:
    config = ctx.config
    a = assessment or assess(finding, ctx)
    if a.iocs:
        return Answer("no", f"the events match known indicators of compromise: {'; '.join(a.iocs[:3])}")
    if a.offensive:
        return Answer("no", "client strings name offensive tooling: " + "; ".join(c.describe() for c in a.offensive[:2]))
    if a.clients:
        return Answer("no", "a client authorized administrators do not use: "
                            + "; ".join(c.describe() for c in a.clients[:2]))
    if a.new_apps:
        return Answer("no", f"done through an application new to the tenant: {'; '.join(a.new_apps[:2])}")
    if not config.admins and not config.automation and not config.change_windows:
        return Answer("unknown", "no authorized admins, automation or change windows are configured "
                                 "(mailhunt.toml [authorized], [[change_windows]])")
    if a.automation_mismatch and not a.admin:
        return Answer("no", f"{finding.actor} is configured as automation, but the {a.automation_mismatch}")
    if not a.authorized and a.windows_for_actor:
        return Answer("no", f"{finding.actor} is not an authorized admin or known automation, and the activity "
                            f"({iso_z(finding.first_seen)}) lies outside all {a.windows_for_actor} change window(s) "
                            f"that name the account")
    if not a.authorized:
        return Answer("no", f"{finding.actor} is not among the authorized admins or known automation, and no "
                            f"change window names the account")
    if a.untrusted_ips:
        return Answer("no", f"{finding.actor} is authorized, but acted from {', '.join(a.untrusted_ips[:3])}, "
                            f"outside the trusted networks {', '.join(config.trusted_networks)}")
    if a.automation_mismatch and a.automation is None:
        return Answer("no", f"{finding.actor} is an admin, but the {a.automation_mismatch}")
    if a.justified:
        return Answer("yes", a.authorization())
    return Answer("no", f"{finding.actor} is authorized, but the activity ({iso_z(finding.first_seen)}) lies outside "
                        f"all {a.windows_for_actor} change window(s) configured for the account")
