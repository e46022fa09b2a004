"""One actor across sources: the names an account goes by, resolved to one.

The same person appears as ``jsmith@fabrikam-labs.com`` in the audit log,
``CORP\\jsmith`` in the Exchange cmdlet log, ``corp.fabrikam.com/Users/John
Smith`` as an Exchange admin audit caller, ``jsmith`` on a Unix host and uid
``501`` on a Mac. Correlations and triage group by actor, so before rules run
every name in the case is resolved once into the ``identities`` table (alias,
actor, basis, note), in this order:

1. A mapping the analyst wrote in ``[identities]`` wins for its alias (basis
   ``configured``), and joins the alias's other names to the mapped actor.
2. Names the evidence pairs are one person (basis ``inferred``, the note says
   which records pair them):

   - a Windows SID (``S-1-5-21-...``) with every name records write beside it
     (MSExchange Management caller, Security and PowerShell records);
   - a Unix uid with the user name on the same host: an audit record's
     enriched ``AUID="alice"``, or the one home folder (``/Users/alice``,
     ``/home/alice``) that uid's unnamed records (Endpoint Security, unified
     log, raw audit) work in. uids are per host: the records of a host that
     does not log one (eslogger, unified log) are taken as one host per
     evidence folder, and the uid alias resolves only when every host it acts
     on pairs it with the same name;
   - a display name with the account: an Entra sign-in's ``userDisplayName``
     with its UPN, and a canonical name (``corp.example.com/IT/Admins/Legal
     Compliance``) whose last part is that display name.

   A key that pairs two different accounts (a uid paired with ``alice`` and
   ``bob`` on one host, a SID logged with two sam names, a display name of two
   UPNs) pairs nothing, and the names it would have joined say so.
3. The person's primary name is their address (UPN) when the joined names hold
   exactly one, else the one address in the case whose local part is their sam
   or Unix name (within the organization's domains when configured), else
   ``DOMAIN\\sam``, else the name as logged. Two addresses for one person are
   not chosen between: such names stay as logged, and say so.
4. A name nothing pairs: a ``DOMAIN\\sam``, bare ``sam`` or canonical name
   resolves to the one address whose local part is that sam name, when
   exactly one exists (``inferred``); everything else stands for itself
   (``as logged``).

Addresses and UPNs are compared lower-cased. The resolution is deterministic
for the same evidence and never guesses between candidates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from mailhunt.store import CaseStore

# Runs a read-only query over the events and returns its rows (the case database's, or another engine's).
Rows = Callable[[str], list[tuple]]

CONFIGURED = "configured"
INFERRED = "inferred"
AS_LOGGED = "as logged"

_SID = re.compile(r"^S-1-5-21-[0-9-]+$", re.IGNORECASE)
_UID = re.compile(r"^[0-9]+$")
# Home folders that belong to no one person.
_SHARED_HOMES = frozenset({"shared", "guest", "public"})


@dataclass(frozen=True)
class Identity:
    alias: str
    actor: str
    basis: str
    note: str


@dataclass(frozen=True)
class Pairing:
    """Evidence that logged names are one account: every name one key is written with.

    ``key`` says what pairs them (``SID S-1-5-21-...``, ``uid 501``, ``display
    name Legal Compliance``) and ``how`` where the evidence says so."""

    key: str
    names: tuple[str, ...]
    how: str


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


def name_form(name: str) -> str:
    """What kind of name a logged name is: address, sid, uid, canonical, domain (``DOMAIN\\sam``) or name."""
    text = name.strip()
    if "@" in text:
        return "address"
    if _SID.match(text):
        return "sid"
    if _UID.match(text):
        return "uid"
    if "/" in text:
        return "canonical"
    if "\\" in text:
        return "domain"
    return "name"


def _account_conflict(names: Iterable[str]) -> str | None:
    """Why ``names`` cannot be one account (two addresses, two sam names, two canonical names), or None.

    ``CORP\\jsmith`` and ``jsmith`` are one sam name; ids (SIDs, uids) are the keys, not names."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for name in names:
        form = name_form(name)
        if form in ("sid", "uid"):
            continue
        text = name.strip().lower()
        kinds["sam" if form in ("domain", "name") else form].add(account_key(text)[0] if form != "address"
                                                                 and form != "canonical" else text)
    plural = {"sam": "sam names", "address": "addresses", "canonical": "canonical names"}
    for form, values in sorted(kinds.items()):
        if len(values) > 1:
            return f"{len(values)} different {plural[form]} ({', '.join(sorted(values)[:3])})"
    return None


class _Joined:
    """Union-find over lower-cased names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, keys: Sequence[str]) -> None:
        roots = sorted({self.find(k) for k in keys})
        for other in roots[1:]:
            self.parent[other] = roots[0]

    def groups(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for key in self.parent:
            found[self.find(key)].add(key)
        return found


def _address_index(names: Iterable[str], org_domains: tuple[str, ...]) -> dict[str, set[str]]:
    addresses: dict[str, set[str]] = defaultdict(set)
    for name in names:
        text = name.strip().lower()
        if "@" in text:
            local, domain = account_key(text)
            if not org_domains or domain in org_domains:
                addresses[local].add(text)
    return addresses


def _primary(members: set[str], spelled: dict[str, str], addresses: dict[str, set[str]]) -> tuple[str | None, str]:
    """(primary name, why) of one joined person, or (None, why not)."""
    own = sorted(m for m in members if name_form(m) == "address")
    if len(own) == 1:
        return own[0], ""
    if len(own) > 1:
        return None, f"the names the evidence pairs hold {len(own)} addresses ({', '.join(own[:3])})"
    locals_ = sorted({account_key(m)[0] for m in members if name_form(m) in ("domain", "name", "canonical")})
    candidates = sorted({a for local in locals_ for a in addresses.get(local, ())})
    if len(candidates) == 1:
        local = account_key(candidates[0])[0]
        return candidates[0], f"the only address in the evidence with the account name {local}"
    for form in ("domain", "name", "canonical"):
        found = sorted(m for m in members if name_form(m) == form)
        if found:
            return spelled.get(found[0], found[0]), ""
    return None, "no name but ids"


def resolve_identities(names: list[str], configured: dict[str, str], org_domains: tuple[str, ...] = (),
                       pairings: Sequence[Pairing] = (), unresolved: dict[str, str] | None = None) -> list[Identity]:
    """Resolve every logged name to an actor; deterministic for the same names and pairings.

    ``unresolved`` maps an alias the evidence could not pair to why (a uid
    paired with two names on one host); its row says so."""
    explicit = {alias.strip().lower(): actor.strip().lower() for alias, actor in configured.items()}
    unresolved = {k.strip().lower(): v for k, v in (unresolved or {}).items()}
    every = sorted(set(names) | set(explicit.values()))
    spelled: dict[str, str] = {}
    for name in every:
        spelled.setdefault(name.strip().lower(), name)
    addresses = _address_index(every, org_domains)

    joined = _Joined()
    reasons: dict[str, list[str]] = defaultdict(list)
    for pairing in sorted(pairings, key=lambda p: (p.key, p.names)):
        paired = sorted({n.strip().lower() for n in pairing.names if n.strip()})
        conflict = _account_conflict(paired)
        if conflict:
            for member in paired:
                if name_form(member) in ("sid", "uid"):
                    unresolved.setdefault(member, f"{pairing.key} is logged with {conflict}")
            continue
        joined.union(paired)
        for member in paired:
            reasons[member].append(pairing.how)
    for alias, actor in sorted(explicit.items()):
        joined.union([alias, actor])
    groups = joined.groups()
    primaries: dict[str, tuple[str | None, str, list[str]]] = {}
    for root, members in groups.items():
        conflict = _account_conflict(members)
        why = sorted({r for m in members for r in reasons.get(m, ())})
        configured_actors = sorted({explicit[m] for m in members if m in explicit})
        if len(configured_actors) == 1:
            primaries[root] = (configured_actors[0], "", why)
        elif conflict or len(configured_actors) > 1:
            primaries[root] = (None, f"the names the evidence pairs hold {conflict or 'two configured actors'}", why)
        else:
            primary, how = _primary(members, spelled, addresses)
            primaries[root] = (primary, how, why)

    resolved: list[Identity] = []
    for name in sorted(set(names)):
        text = name.strip().lower()
        if text in explicit:
            resolved.append(Identity(name, explicit[text], CONFIGURED, f"[identities] maps {name} to {explicit[text]}"))
            continue
        if text in joined.parent and len(groups[joined.find(text)]) > 1:
            resolved.append(_joined_identity(name, text, primaries[joined.find(text)]))
            continue
        if text in unresolved:
            resolved.append(Identity(name, name, AS_LOGGED, f"{name} left as logged: {unresolved[text]}"))
            continue
        resolved.append(_by_account_name(name, text, addresses))
    return resolved


def _joined_identity(name: str, text: str, primary: tuple[str | None, str, list[str]]) -> Identity:
    actor, how, why = primary
    evidence = "; ".join(why)
    if actor is None:
        return Identity(name, name, AS_LOGGED, f"{name} left as logged: {how}" + (f" ({evidence})" if evidence else ""))
    if actor.lower() == text:
        return Identity(name, actor if name_form(actor) != "address" else text, AS_LOGGED, "")
    because = "; ".join(filter(None, (evidence, how)))
    return Identity(name, actor, INFERRED, f"{name} taken as {actor}: {because}")


def _by_account_name(name: str, text: str, addresses: dict[str, set[str]]) -> Identity:
    if "@" in text or not text:
        return Identity(name, text, AS_LOGGED, "")
    if name_form(name) in ("sid", "uid"):
        return Identity(name, name, AS_LOGGED, "")
    local, _ = account_key(text)
    candidates = sorted(addresses.get(local, ()))
    if len(candidates) == 1:
        return Identity(name, candidates[0], INFERRED, f"{name} taken as {candidates[0]}: the only address in the "
                                                        f"evidence with the account name {local}")
    if len(candidates) > 1:
        return Identity(name, name, AS_LOGGED, f"{name} left as logged: {len(candidates)} addresses share the account "
                                               f"name {local} ({', '.join(candidates[:3])})")
    return Identity(name, name, AS_LOGGED, "")


# ---------------------------------------------------------------- what the evidence pairs

def sid_pairings(rows: Rows) -> list[Pairing]:
    """A Windows SID with every name records write beside it (the SID itself is one of the names)."""
    found = rows(
        """SELECT "user.id", list(DISTINCT "user.name") FROM events
           WHERE regexp_matches("user.id", '(?i)^S-1-5-21-[0-9-]+\\z')
             AND "user.name" IS NOT NULL AND "user.name" <> '' AND "user.name" <> "user.id"
           GROUP BY 1""")
    return [Pairing(f"SID {sid}", (sid, *sorted(logged)), f"SID {sid} is logged with {', '.join(sorted(logged))}")
            for sid, logged in sorted(found)]


def display_name_pairings(rows: Rows, names: Iterable[str]) -> tuple[list[Pairing], dict[str, str]]:
    """A canonical name whose last part is the display name the evidence gives one account (an Entra
    sign-in's ``userDisplayName`` beside its UPN); a display name of several accounts pairs nothing."""
    canonical: dict[str, list[str]] = defaultdict(list)
    for name in names:
        if name_form(name) == "canonical":
            parts = [p for p in name.strip().split("/") if p]
            if len(parts) > 1:
                canonical[parts[-1].strip().lower()].append(name)
    if not canonical:
        return [], {}
    found = rows(
        """SELECT lower(trim(display)), list(DISTINCT account), min(display) FROM (
             SELECT labels['user_display_name'] AS display, lower("user.name") AS account
             FROM events WHERE "user.name" LIKE '%@%')
           WHERE display IS NOT NULL AND trim(display) <> '' GROUP BY 1""")
    pairings, unresolved = [], {}
    for display, unordered, written in sorted(found):
        accounts = sorted(unordered)
        if display not in canonical:
            continue
        callers = sorted(canonical[display])
        if len(accounts) > 1:
            for caller in callers:
                unresolved[caller] = (f"its last part '{written}' is the display name of {len(accounts)} accounts "
                                      f"({', '.join(accounts[:3])})")
            continue
        pairings.append(Pairing(f"display name {written}", (accounts[0], *callers),
                                f"{written} is the display name the sign-in log gives {accounts[0]} and the last "
                                f"part of {', '.join(callers)}"))
    return pairings, unresolved


# Per uid and scope (the host the record names, else the folder its evidence file is in: one host's
# collection), the names records log beside the uid and the home folders its unnamed records work in
# (cwd, executable, file paths).
_UID_ROWS = """
WITH r AS (
  SELECT CASE WHEN coalesce(trim("host.name"), '') <> '' THEN 'host ' || lower(trim("host.name"))
              ELSE 'folder ' || coalesce(regexp_extract("log.file.path", '^(.*)[/\\\\!][^/\\\\!]*$', 1), '') END
           AS scope,
         "user.id" AS uid,
         CASE WHEN coalesce(trim("user.name"), '') NOT IN ('', "user.id")
                   AND NOT regexp_matches(trim("user.name"), '^[0-9]+\\z') THEN trim("user.name") END AS name,
         [e."file.path", e."file.target_path", e."process.executable", e.labels['cwd']] AS paths
  FROM events e WHERE regexp_matches(coalesce("user.id", ''), '^[0-9]+\\z'))
SELECT DISTINCT scope, uid, name,
       CASE WHEN name IS NULL AND NOT contains(path, '/../') THEN
         nullif(regexp_extract(path, '^/(?:Users|home)/([^/]+)(?:/|$)', 1), '') END AS home
FROM (SELECT scope, uid, name, unnest(CASE WHEN name IS NULL THEN paths ELSE [NULL] END) AS path FROM r) p
"""


def _nulls_last(row: tuple) -> tuple:
    """Sort key of a row as SQL's ``ORDER BY ALL`` orders it (NULLs last), whichever engine gave it."""
    return tuple((value is None, "" if value is None else value) for value in row)


def _on(scope: str) -> str:
    kind, _, where = scope.partition(" ")
    return f"on host {where}" if kind == "host" else f"in evidence folder {where or '.'}"


def uid_pairings(rows: Rows) -> tuple[list[Pairing], dict[str, str]]:
    """uid alias -> the user name its hosts pair it with, where every host it acts on agrees.

    On one host a uid is paired with a name by records that log both (an
    enriched audit record), and by the home folders its unnamed records work in
    (cwd, executable, file paths; never for uid 0). Two names on one host, a
    host where nothing pairs it, or hosts that disagree leave the uid as logged."""
    named: dict[tuple[str, str], set[str]] = defaultdict(set)
    homes: dict[tuple[str, str], set[str]] = defaultdict(set)
    unnamed: dict[str, set[str]] = defaultdict(set)
    for scope, uid, name, home in sorted(rows(_UID_ROWS), key=_nulls_last):
        if name is not None:
            named[(uid, scope)].add(name)
            continue
        unnamed[uid].add(scope)
        if home and uid != "0" and home.lower() not in _SHARED_HOMES and not home.startswith("."):
            homes[(uid, scope)].add(home)
    pairings, unresolved = [], {}
    for uid in sorted(unnamed):
        per_scope: dict[str, tuple[set[str], str]] = {}
        for scope in sorted(unnamed[uid]):
            by_record = {n.lower() for n in named.get((uid, scope), ())}
            by_home = {h.lower() for h in homes.get((uid, scope), ())}
            how = "; ".join(filter(None, (
                f"records log it as {', '.join(sorted(by_record))}" if by_record else "",
                f"its records work in the home folder of {', '.join(sorted(by_home))}" if by_home else "")))
            per_scope[scope] = (by_record | by_home, how)
        if not any(found for found, _ in per_scope.values()):
            elsewhere = sorted((scope, name) for (paired_uid, scope), names in named.items() if paired_uid == uid
                               for name in names)
            if elsewhere:
                unresolved[uid] = (f"uid {uid} is paired with " + ", ".join(f"{name} {_on(scope)}" for scope, name
                                                                            in elsewhere)
                                   + f", but nothing pairs it {_on(min(per_scope))} (uids are per host)")
            continue
        split = {scope: found for scope, (found, _) in per_scope.items() if len(found) > 1}
        missing = [scope for scope, (found, _) in per_scope.items() if not found]
        agreed = {n for found, _ in per_scope.values() for n in found}
        if split:
            scope, found = next(iter(sorted(split.items())))
            unresolved[uid] = f"uid {uid} {_on(scope)} is paired with {' and '.join(sorted(found))}"
        elif missing:
            unresolved[uid] = (f"uid {uid} is paired with {', '.join(sorted(agreed))} "
                               f"{', '.join(_on(s) for s in sorted(per_scope) if s not in missing)}, but nothing pairs it "
                               f"{_on(missing[0])} (uids are per host)")
        elif len(agreed) > 1:
            unresolved[uid] = (f"uid {uid} is " + ", ".join(f"{next(iter(found))} {_on(scope)}" for scope, (found, _)
                                                            in sorted(per_scope.items()))
                               + " (uids are per host)")
        else:
            name = next(iter(agreed))
            hows = "; ".join(f"{_on(scope)} {how}" for scope, (_, how) in sorted(per_scope.items()))
            pairings.append(Pairing(f"uid {uid}", (uid, name), f"uid {uid} is {name}: {hows}"))
    return pairings, unresolved


_BASIS_RANK = {CONFIGURED: 0, INFERRED: 1, AS_LOGGED: 2}


def one_per_alias(identities: list[Identity]) -> list[Identity]:
    """One identity per alias (the table's key), whatever names the evidence holds.

    The firmer basis wins (configured, then inferred, then as logged); between
    equals, the first given."""
    chosen: dict[str, Identity] = {}
    for identity in identities:
        kept = chosen.get(identity.alias)
        if kept is None or _BASIS_RANK[identity.basis] < _BASIS_RANK[kept.basis]:
            chosen[identity.alias] = identity
    return list(chosen.values())


def build_identity_table(store: CaseStore, configured: dict[str, str], org_domains: tuple[str, ...] = (),
                         rows: Rows | None = None) -> None:
    """(Re)write the case's ``identities`` table from every actor and target name in it.

    The aliases are what stages join on: ``coalesce(user.name, user.id)`` of
    each event, and ``user.target.name``. ``rows`` runs the queries over the
    events (default: in the case database; ``RuleEngine.rows`` elsewhere)."""
    rows = rows or (lambda sql: store.db.execute(sql).fetchall())
    names = [row[0] for row in rows(
        """SELECT DISTINCT name FROM (SELECT coalesce(nullif("user.name", ''), "user.id") AS name FROM events
           UNION ALL SELECT "user.target.name" AS name FROM events) u WHERE name IS NOT NULL AND name <> ''""")]
    names.extend(configured)
    by_sid = sid_pairings(rows)
    by_uid, unpaired_uids = uid_pairings(rows)
    by_display, unpaired_callers = display_name_pairings(rows, names)
    identities = one_per_alias(resolve_identities(
        names, configured, tuple(d.lower() for d in org_domains), [*by_sid, *by_uid, *by_display],
        {**unpaired_uids, **unpaired_callers}))
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
