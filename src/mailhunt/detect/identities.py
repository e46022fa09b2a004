"""One actor across sources: the names an account goes by, resolved to one.

The same person appears as ``jsmith@fabrikam-labs.com`` in the audit log,
``CORP\\jsmith`` in the Exchange cmdlet log and ``jsmith`` in a script block or
on a Unix host. Correlations group by actor, so before rules run every name in
the case is resolved once into the ``identities`` table:

- a mapping the analyst wrote in ``[identities]`` wins (basis ``configured``);
- a ``DOMAIN\\sam``, bare ``sam`` or ``corp.local/Users/sam`` name resolves to
  the one address in the case whose local part is that sam name, when exactly
  one such address exists (within the organization's domains when those are
  configured); basis ``inferred``, and the finding says so;
- everything else stands for itself (basis ``as logged``), and a sam name that
  matches several addresses stays unresolved rather than guessed;
- a Windows SID (``S-1-5-21-...``) that the case's records pair with exactly
  one account name stands for that account (basis ``inferred``); records
  without a name (a PowerShell script block) are resolved by their SID.

Addresses and UPNs are compared lower-cased. The table is part of the case, so
triage and reports can show which logged names an actor was seen under.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from mailhunt.store import CaseStore

CONFIGURED = "configured"
INFERRED = "inferred"
AS_LOGGED = "as logged"


@dataclass(frozen=True)
class Identity:
    alias: str
    actor: str
    basis: str
    note: str


def account_key(name: str) -> tuple[str, str | None]:
    """(local name, domain) of a logged account name, both lower-cased.

    ``CORP\\jsmith`` -> (jsmith, corp); ``jsmith@corp.com`` -> (jsmith, corp.com);
    ``corp.local/Users/jsmith`` -> (jsmith, corp.local); ``jsmith`` -> (jsmith, None).
    """
    text = name.strip().lower()
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return local, domain
    if "\\" in text:
        domain, _, local = text.partition("\\")
        return local, domain
    if "/" in text:
        parts = [p for p in text.split("/") if p]
        return (parts[-1], parts[0]) if parts else (text, None)
    return text, None


def resolve_identities(names: list[str], configured: dict[str, str],
                       org_domains: tuple[str, ...] = ()) -> list[Identity]:
    """Resolve every logged name to an actor; deterministic for the same names."""
    explicit = {alias.strip().lower(): actor.strip().lower() for alias, actor in configured.items()}
    addresses: dict[str, set[str]] = defaultdict(set)
    for name in names:
        text = name.strip().lower()
        if "@" in text:
            local, domain = account_key(text)
            if not org_domains or domain in org_domains:
                addresses[local].add(text)
    resolved: list[Identity] = []
    for name in sorted(set(names)):
        text = name.strip().lower()
        if text in explicit:
            resolved.append(Identity(name, explicit[text], CONFIGURED, f"[identities] maps {name} to {explicit[text]}"))
            continue
        if "@" in text or not text:
            resolved.append(Identity(name, text, AS_LOGGED, ""))
            continue
        local, _ = account_key(text)
        candidates = sorted(addresses.get(local, ()))
        if len(candidates) == 1:
            resolved.append(Identity(name, candidates[0], INFERRED,
                                     f"{name} taken as {candidates[0]}: the only address in the evidence "
                                     f"with the account name {local}"))
        elif len(candidates) > 1:
            resolved.append(Identity(name, name, AS_LOGGED,
                                     f"{name} left as logged: {len(candidates)} addresses share the account name "
                                     f"{local} ({', '.join(candidates[:3])})"))
        else:
            resolved.append(Identity(name, name, AS_LOGGED, ""))
    return resolved


def sid_identities(store: CaseStore, actors: dict[str, str]) -> list[Identity]:
    """A Windows SID stands for the account other records name with it, when they name exactly one.

    A PowerShell script block records only the SID of its user; the same SID
    with a name in a 4103, 4688 or MSExchange Management record of the case
    lets it take part in correlations by actor. Records that carry a name keep
    resolving by that name.
    """
    rows = store.db.execute(
        """SELECT "user.id", min("user.name") FROM events
           WHERE "user.id" LIKE 'S-1-5-21-%' AND "user.name" IS NOT NULL AND "user.name" <> ''
           GROUP BY 1 HAVING count(DISTINCT lower("user.name")) = 1 ORDER BY 1""").fetchall()
    found = []
    for sid, name in rows:
        actor = actors.get(name, name)
        found.append(Identity(sid, actor, INFERRED, f"{sid} taken as {actor}: the account other records in the "
                                                    f"evidence name with this SID"))
    return found


_BASIS_RANK = {CONFIGURED: 0, INFERRED: 1, AS_LOGGED: 2}


def one_per_alias(identities: list[Identity]) -> list[Identity]:
    """One identity per alias (the table's key), whatever names the evidence holds.

    A name may be resolved twice: a record whose caller is logged as its SID
    (``S-1-5-21-...`` as both name and id) is resolved as a name and as a SID.
    The firmer basis wins (configured, then inferred, then as logged); between
    equals, the first given."""
    chosen: dict[str, Identity] = {}
    for identity in identities:
        kept = chosen.get(identity.alias)
        if kept is None or _BASIS_RANK[identity.basis] < _BASIS_RANK[kept.basis]:
            chosen[identity.alias] = identity
    return list(chosen.values())


def build_identity_table(store: CaseStore, configured: dict[str, str], org_domains: tuple[str, ...] = ()) -> None:
    """(Re)write the case's ``identities`` table from every actor and target name in it."""
    names = [row[0] for row in store.db.execute(
        'SELECT DISTINCT name FROM (SELECT "user.name" AS name FROM events UNION ALL '
        'SELECT "user.target.name" FROM events) WHERE name IS NOT NULL AND name <> \'\'').fetchall()]
    names.extend(configured)
    identities = resolve_identities(names, configured, tuple(d.lower() for d in org_domains))
    identities = one_per_alias([*identities, *sid_identities(store, {i.alias: i.actor for i in identities})])
    store.db.execute("DELETE FROM identities")
    if identities:
        table = pa.table({
            "alias": [i.alias for i in identities], "actor": [i.actor for i in identities],
            "basis": [i.basis for i in identities], "note": [i.note for i in identities]})
        store.db.register("resolved_identities", table)
        try:
            store.db.execute("INSERT INTO identities SELECT * FROM resolved_identities")
        finally:
            store.db.unregister("resolved_identities")
