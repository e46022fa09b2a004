"""Cmdlet parameters written as PowerShell text, e.g. ``-SearchName "Q3" -Purge -Confirm:$false``.

Security & Compliance audit records and the MSExchange Management event log
write parameters this way; the unified audit log for Exchange writes a list of
``{Name, Value}``. Both become the same ``params`` map, so one rule serves all.
A switch without a value is "True"; ``$true``/``$false`` become "True"/"False".
"""

from __future__ import annotations

import shlex
from functools import lru_cache

_BOOLEANS = {"$true": "True", "$false": "False"}


def _value(text: str) -> str:
    return _BOOLEANS.get(text.lower(), text)


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return text.split()


def parse_parameter_text(text: str) -> list[tuple[str, str]]:
    """Ordered (name, value) pairs; values spanning several words are joined with spaces."""
    return list(_parsed(text))


@lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[tuple[str, str], ...]:
    """``parse_parameter_text`` once per distinct text: Exchange and scripts repeat the same calls."""
    pairs: list[tuple[str, str]] = []
    name: str | None = None
    words: list[str] = []

    def close() -> None:
        if name is not None:
            pairs.append((name, _value(" ".join(words)) if words else "True"))

    for token in _tokens(text):
        if token.startswith("-") and len(token) > 1 and (token[1].isalpha() or token[1] == "_"):
            close()
            head, colon, rest = token[1:].partition(":")
            name, words = head, ([rest] if colon else [])
        elif name is not None:
            words.append(token)
    close()
    return tuple(pairs)


def params_by_name(pairs) -> dict[str, str]:
    """Parameter names lower-cased, the first value of a name winning, as every reader keeps ``params``.

    A parameter given twice (``-Identity a -identity b``) is legal PowerShell;
    a map column cannot hold the name twice.
    """
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name.lower(), value)
    return params


_IDENTITY_TARGETS = frozenset({"search-mailbox", "set-mailbox", "add-mailboxpermission",
                               "set-mailboxauditbypassassociation"})
_TARGET_SUFFIXES = ("-mailboxexportrequest", "-inboxrule", "-transportrule", "inboxrules")


def names_target_or_rule(cmdlet: str) -> bool:
    """Whether ``parameter_target`` or ``cmdlet_rule_name`` can give anything for this cmdlet.

    For any other cmdlet both are None whatever its parameters, so
    a reader mapping records in bulk asks the rule only about records of these.
    """
    op = cmdlet.lower()
    return op in _IDENTITY_TARGETS or op.endswith(_TARGET_SUFFIXES)


class ActorTarget:
    """The answer of ``parameter_target`` when a cmdlet acts on its caller's own mailbox."""

    def __repr__(self) -> str:
        return "ACTOR"


ACTOR = ActorTarget()


def parameter_target(cmdlet: str, params: dict[str, str]) -> str | ActorTarget | None:
    """The mailbox or account a mailbox cmdlet acts on: the one rule of every reader.

    ``ACTOR`` when it is the record's actor (an inbox rule cmdlet naming no
    mailbox). ``params`` has lower-cased names. Export-request identities look
    like ``mailbox\\RequestName``; inbox-rule identities like
    ``mailbox\\RuleName``. The Exchange admin audit log, the MSExchange
    Management and PowerShell event logs ask per record (``cmdlet_target``),
    the unified audit log once per distinct (operation, parameters) of a batch.
    """
    op = cmdlet.lower()
    identity = params.get("identity") or ""
    mailbox = params.get("mailbox") or ""
    if op.endswith("-mailboxexportrequest") and not op.startswith("new-") and identity:
        return identity.split("\\", 1)[0]
    if op in ("new-mailboxexportrequest", "new-inboxrule") and mailbox:
        return mailbox
    if op in _IDENTITY_TARGETS and identity:
        return identity
    if op.endswith("-inboxrule"):
        if mailbox:
            return mailbox
        if "\\" in identity:
            return identity.split("\\", 1)[0]
        return ACTOR
    return None


def cmdlet_target(cmdlet: str, params: dict[str, str], actor: str | None) -> str | None:
    """``parameter_target`` of one record, whose actor is ``actor``."""
    target = parameter_target(cmdlet, params)
    return actor if isinstance(target, ActorTarget) else target


def cmdlet_rule_name(cmdlet: str, params: dict[str, str]) -> str | None:
    """The inbox or transport rule a rule cmdlet names.

    Outlook's own rule changes (the unified audit log's ``UpdateInboxRules``)
    name the rule in ``RuleName``.
    """
    op = cmdlet.lower()
    if op.endswith("inboxrules"):
        return params.get("rulename") or None
    if not op.endswith(("-inboxrule", "-transportrule")):
        return None
    if params.get("name"):
        return params["name"]
    identity = params.get("identity") or ""
    return identity.split("\\", 1)[1] if "\\" in identity else (identity or None)
