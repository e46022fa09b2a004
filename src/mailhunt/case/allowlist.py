""""Suggest allowlist": the ``mailhunt.toml`` entries that would have decided a finding as authorized.

Shown to the analyst, never applied: mailhunt does not change its own
configuration. Two entries are offered, because which one is true is the
analyst's call: the actor as known automation doing exactly these operations
(``[[authorized.automation]]``, with the application when the evidence names
one), or a change window over the finding's span (whole minutes around it) (``[[change_windows]]``)
with a ticket to fill in. Values come from the evidence, so each is written
as a TOML basic string with every quote, backslash and hidden character
escaped; an account that cannot be written (a lone surrogate) gets no entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from mailhunt.events import iso_z, utc_from_document
from mailhunt.visible import is_hidden

TICKET_PLACEHOLDER = "CHANGE-TICKET"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string; raises ValueError for text TOML cannot hold (lone surrogates)."""
    out = ['"']
    for char in value:
        point = ord(char)
        if 0xD800 <= point <= 0xDFFF:
            raise ValueError("a lone surrogate cannot be written in TOML")
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif point < 0x20 or point == 0x7F or is_hidden(char):
            out.append(f"\\u{point:04X}" if point < 0x10000 else f"\\U{point:08X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


@dataclass(frozen=True)
class AllowlistSuggestion:
    title: str
    toml: str


def command_pattern(actions: list[str]) -> str:
    """A ``command_pattern`` matching commands that start with one of these operations and nothing else."""
    names = sorted({a for a in actions if a})
    return "^(?:" + "|".join(re.escape(n) for n in names) + r")(?:\s|$)"


def suggest_allowlist(finding: dict, actions: list[str], app_ids: list[str]) -> list[AllowlistSuggestion]:
    """The entries for a finding (a ``findings.json`` entry), given its events' operations and applications."""
    actor = finding.get("actor")
    if not isinstance(actor, str) or not actor:
        return []
    header = f"# Suggested for finding {finding.get('id')} ({finding.get('indicator')}); not applied.\n"
    try:
        account = toml_string(actor)
        suggestions = []
        automation = [header, "# If the account is automation that does exactly this, add:\n",
                      "[[authorized.automation]]\n", f"account = {account}\n"]
        apps = sorted({a.lower() for a in app_ids if a})
        if len(apps) == 1:
            automation.append(f"app_id = {toml_string(apps[0])}\n")
        if any(actions):
            automation.append(f"command_pattern = {toml_string(command_pattern(actions))}\n")
        suggestions.append(AllowlistSuggestion("known automation", "".join(automation)))
        first, last = utc_from_document(finding.get("first_seen")), utc_from_document(finding.get("last_seen"))
        if first is not None and last is not None:
            start = first.replace(second=0, microsecond=0)
            end = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
            suggestions.append(AllowlistSuggestion("approved change window", "".join([
                header, "# If it was an approved change, add (with the real ticket):\n", "[[change_windows]]\n",
                f"start = {toml_string(iso_z(start))}\n", f"end = {toml_string(iso_z(end))}\n",
                f"ticket = {toml_string(TICKET_PLACEHOLDER)}\n", f"actors = [{account}]\n"])))
        return suggestions
    except ValueError:
        return []
