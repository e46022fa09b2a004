"""Baselines the evidence itself provides, offered to rules as extra fields.

Sigma matches one event at a time; "an application never seen before in this
tenant" needs the whole case. This module measures it once and exposes it as
fields of the ``detection_events`` view, so the rule that uses it stays a
plain Sigma rule:

- ``user.name`` and ``user.target.name`` are the resolved actors of the
  ``identities`` table (``detect/identities.py``), and ``user.name_logged``
  keeps the name as the record gives it.
- ``app.first_seen``: when the event's ``app.id`` first appears in the case.
- ``app.new``: true when that first appearance comes after the learning period
  (the first ``LEARNING_MAX`` of the evidence, or its first quarter when the
  evidence is shorter) and the event falls within ``NEW_FOR`` of it. Without
  an app id, or with less than ``MIN_EVIDENCE`` to learn from, it is false.
- ``email.to.external``: true when one of the event's recipients
  (``email.to.address``, ``;``-separated) has a domain outside the
  organization's domains (``[organization] domains``: the domain itself or one
  of its subdomains), false when all are inside; NULL without recipients or
  without configured domains, so a rule on it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailhunt.store import CaseStore

DETECTION_RELATION = "detection_events"
LEARNING_MAX = timedelta(days=7)
MIN_EVIDENCE = timedelta(days=2)
NEW_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class DerivedField:
    name: str
    sql_type: str
    doc: str


DERIVED_FIELDS: tuple[DerivedField, ...] = (
    DerivedField("user.name_logged", "VARCHAR",
                 "The actor as the record names it; user.name here is the resolved actor (see identities)"),
    DerivedField("app.first_seen", "TIMESTAMP", "First time the event's app.id appears in the case"),
    DerivedField("app.new", "BOOLEAN", "app.id first appeared after the learning period, within 24 h of this event"),
    DerivedField("email.to.external", "BOOLEAN",
                 "A recipient in email.to.address is outside organization.domains (NULL when none are configured)"),
)
ORGANIZATION_DOMAINS = "organization_domains"
EXTERNAL_RECIPIENTS = "external_recipients"


def create_detection_view(store: CaseStore, org_domains: tuple[str, ...] = ()) -> None:
    store.db.execute("""CREATE OR REPLACE TEMP TABLE app_first_seen AS
                        SELECT "app.id" AS app_id, min("@timestamp") AS first_seen
                        FROM events WHERE "app.id" IS NOT NULL GROUP BY 1""")
    _measure_external_recipients(store, org_domains)
    store.db.execute(f"CREATE OR REPLACE TEMP VIEW {DETECTION_RELATION} AS {detection_select(store)}")


def detection_select(store: CaseStore, relation: str = "events") -> str:
    """The query behind the detection view, over ``relation`` (``events`` or a subset of its rows
    with all its columns); the baselines are measured over the whole case."""
    start, end = store.db.execute('SELECT min("@timestamp"), max("@timestamp") FROM events').fetchall()[0]
    new_for = int(NEW_FOR.total_seconds())
    if start is None or end - start < MIN_EVIDENCE:
        is_new = "false"
    else:
        learned_until = start + min(LEARNING_MAX, (end - start) / 4)
        is_new = (f"coalesce(a.first_seen > TIMESTAMP '{learned_until:%Y-%m-%d %H:%M:%S.%f}' "
                  f"AND e.\"@timestamp\" <= a.first_seen + INTERVAL '{new_for} seconds', false)")
    return f"""SELECT e.* REPLACE (coalesce(actor.actor, e."user.name") AS "user.name",
                               coalesce(target.actor, e."user.target.name") AS "user.target.name"),
                  e."user.name" AS "user.name_logged",
                  a.first_seen AS "app.first_seen", {is_new} AS "app.new",
                  x.external AS "email.to.external"
           FROM {relation} e
           LEFT JOIN app_first_seen a ON a.app_id = e."app.id"
           LEFT JOIN {EXTERNAL_RECIPIENTS} x ON x.event_id = e."event.id"
           LEFT JOIN identities actor ON actor.alias = coalesce(e."user.name", e."user.id")
           LEFT JOIN identities target ON target.alias = e."user.target.name" """


def _measure_external_recipients(store: CaseStore, org_domains: tuple[str, ...]) -> None:
    """Per event with recipients, whether one is outside ``org_domains``; no rows when none are configured."""
    db = store.db
    db.execute(f"CREATE OR REPLACE TEMP TABLE {ORGANIZATION_DOMAINS} (domain VARCHAR)")
    db.execute(f"CREATE OR REPLACE TEMP TABLE {EXTERNAL_RECIPIENTS} (event_id VARCHAR, external BOOLEAN)")
    domains = sorted({d.strip().lower().lstrip("@") for d in org_domains if d and d.strip()})
    if not domains:
        return
    db.executemany(f"INSERT INTO {ORGANIZATION_DOMAINS} VALUES (?)", [[d] for d in domains])
    db.execute(f"""INSERT INTO {EXTERNAL_RECIPIENTS}
                   SELECT event_id, bool_or(NOT EXISTS (
                              SELECT 1 FROM {ORGANIZATION_DOMAINS} o
                              WHERE r.domain = o.domain OR ends_with(r.domain, '.' || o.domain)))
                   FROM (SELECT event_id, split_part(trim(address), '@', 2) AS domain
                         FROM (SELECT "event.id" AS event_id,
                                      unnest(string_split(lower("email.to.address"), ';')) AS address
                               FROM events WHERE "email.to.address" IS NOT NULL)) r
                   WHERE r.domain <> ''
                   GROUP BY event_id""")
