"""What transport agents wrote into a message tracking record's ``custom-data`` and ``message-info``.

Both fields hold ``;``-separated entries ``S:<key>=<value>`` (``S:`` a string,
``I:`` a number ...). The Transport Rule Agent writes one entry per rule that
acted on the message (Microsoft: "View DLP policy detection reports", "Data
logging format")::

    S:TRA=ETR|ruleId=<guid>|st=<rule's last change>|action=BlindCopyTo|action=PrependSubject|sev=1|mode=Enforce

and entries ``TRA=DC``/``CI``/``ETRP`` for data classifications, client
overrides and rule timings, which name no action. ``S:RecipientType=Bcc``
marks a recipient added as blind copy. Exported through
``Get-MessageTrackingLog`` the field is ``EventData``, a list of key/value
pairs; it reads the same when written as ``TRA=ETR|…`` or as PowerShell prints
a pair, ``[TRA, ETR|…]``.

Values are read as text only: a rule id, an action name and a mode are
labels for rules and the analyst, nothing is evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENTRY = re.compile(r"^(?:[A-Z]:)?(?P<key>[A-Za-z][\w-]*)=(?P<value>.*)$", re.DOTALL)
_PAIR = re.compile(r"^\[(?P<key>[A-Za-z][\w-]*), (?P<value>.*)\]$", re.DOTALL)


@dataclass(frozen=True)
class AgentData:
    """The transport rules that acted on a message and the recipient type an agent noted."""

    rule_ids: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    recipient_type: str | None = None

    def labels(self) -> dict[str, str]:
        found = {"transport_rule_id": ", ".join(self.rule_ids), "transport_rule_action": ", ".join(self.actions),
                 "transport_rule_mode": ", ".join(self.modes), "recipient_type": self.recipient_type or ""}
        return {key: value for key, value in found.items() if value}


def _entries(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(";"):
        part = part.strip()
        found = _ENTRY.match(part) or _PAIR.match(part)
        if found:
            pairs.append((found["key"], found["value"].strip()))
    return pairs


def _add(found: list[str], value: str) -> None:
    if value and value not in found:
        found.append(value)


def agent_data(*fields: str | None) -> AgentData:
    """The transport rule entries (``TRA=ETR``) and ``RecipientType`` of ``custom-data``/``message-info`` texts."""
    rule_ids: list[str] = []
    actions: list[str] = []
    modes: list[str] = []
    recipient_type = None
    for text in fields:
        for key, value in _entries(text or ""):
            if key.lower() == "recipienttype":
                recipient_type = recipient_type or value or None
                continue
            if key.upper() != "TRA":
                continue
            group, *pairs = value.split("|")
            if group.strip().upper() != "ETR":
                continue
            for pair in pairs:
                name, _, item = pair.partition("=")
                name, item = name.strip().lower(), item.strip()
                if name == "ruleid":
                    _add(rule_ids, item)
                elif name == "action":
                    _add(actions, item)
                elif name == "mode":
                    _add(modes, item)
    return AgentData(tuple(rule_ids), tuple(actions), tuple(modes), recipient_type)
