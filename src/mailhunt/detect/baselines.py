"""Baselines the evidence itself provides, offered to rules as extra fields.

Sigma matches one event at a time; "an application never seen before in this
tenant" needs the whole case. The case store measures it once
(``mailhunt.case_queries``) and exposes it as fields of the
``detection_events`` view, so the rule that uses it stays a plain Sigma rule:

- ``user.name`` and ``user.target.name`` are the resolved actors of the
  ``identities`` table (``detect/identities.py``), and ``user.name_logged`` /
  ``user.target.name_logged`` keep the names as the record gives them.
- ``scope.tenant`` and ``scope.family``: the tenant and source family of the
  event, the scope its baselines are measured in.
- ``app.first_seen``: when the event's ``app.id`` first appears in its tenant
  and source family.
- ``app.new``: true when that first appearance comes at least
  ``NEW_APP_LEARNING`` (7 days) after that tenant's first evidence of that
  family, and the event falls within ``NEW_FOR`` (24 h) of it. Without an app
  id, or without a learning period of the tenant's own evidence, it is false.
  Triage's "application new to the tenant" reads the same field.
- ``email.to.external``: true when one of the event's recipients
  (``email.to.address``, ``;``-separated) has a domain outside the
  organization's domains (``[organization] domains``: the domain itself or one
  of its subdomains), false when all are inside; NULL without recipients or
  without configured domains, so a rule on it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailhunt.case_queries import DETECTION_RELATION, NEW_APP_LEARNING, NEW_FOR
from mailhunt.store import CaseStore

__all__ = ["DERIVED_FIELDS", "DETECTION_RELATION", "NEW_APP_LEARNING", "NEW_FOR", "DerivedField",
           "create_detection_view"]


@dataclass(frozen=True)
class DerivedField:
    name: str
    sql_type: str
    doc: str


DERIVED_FIELDS: tuple[DerivedField, ...] = (
    DerivedField("user.name_logged", "VARCHAR",
                 "The actor as the record names it; user.name here is the resolved actor (see identities)"),
    DerivedField("user.target.name_logged", "VARCHAR",
                 "The target as the record names it; user.target.name here is the resolved target"),
    DerivedField("scope.tenant", "VARCHAR",
                 "Tenant of the event: organization.id, else the only tenant the case holds for its source family"),
    DerivedField("scope.family", "VARCHAR",
                 "Source family derived from event.dataset: m365, exchange, windows, unix, macos"),
    DerivedField("app.first_seen", "TIMESTAMP", "First time the event's app.id appears in its tenant and source family"),
    DerivedField("app.new", "BOOLEAN", "app.id first appeared at least 7 days into its tenant's evidence of the "
                                       "family, within 24 h of this event"),
    DerivedField("email.to.external", "BOOLEAN",
                 "A recipient in email.to.address is outside organization.domains (NULL when none are configured)"),
)


def create_detection_view(store: CaseStore, org_domains: tuple[str, ...] = ()) -> None:
    """Build (or rebuild) the case's resolved-events relation and the detection view over it."""
    store.resolved.refresh(org_domains)
