"""Quoting identities from the evidence into commands a human will run.

Identities (account names, rule names, app ids, paths) are attacker-influenced:
an inbox rule can be named ``a'; Remove-Mailbox -Identity * ;'``. Each is
written as one literal argument of the target shell, or refused:

- any control character (C0, DEL, C1), line or paragraph separator, or format
  character (bidi overrides, zero-width characters) is refused, so a value can
  never end a command line nor make the printed command read differently from
  what runs;
- PowerShell: a single-quoted string, every quote character doubled, the
  typographic quotes PowerShell also accepts (U+2018..U+201B) included;
- POSIX shells: ``shlex.quote``; a value starting with ``-`` is refused, since
  a quoted word is still read as an option by the command.
"""

from __future__ import annotations

import re
import shlex
import unicodedata

UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_POWERSHELL_QUOTES = re.compile(r"(['\u2018\u2019\u201a\u201b])")


class UnsafeIdentity(ValueError):
    """A value that cannot be placed in a command safely."""


def check_printable(value: str) -> str:
    if any(unicodedata.category(c) in UNSEEN_CATEGORIES for c in value):
        raise UnsafeIdentity("contains control characters, line breaks or invisible formatting characters")
    if not value.strip():
        raise UnsafeIdentity("is empty")
    return value


def powershell_quote(value: str) -> str:
    """``value`` as one single-quoted PowerShell string literal."""
    return "'" + _POWERSHELL_QUOTES.sub(r"\1\1", check_printable(value)) + "'"


def shell_quote(value: str) -> str:
    """``value`` as one POSIX shell word that no command reads as an option."""
    if check_printable(value).startswith("-"):
        raise UnsafeIdentity("starts with '-' and would be read as an option")
    return shlex.quote(value)


QUOTERS = {"powershell": powershell_quote, "sh": shell_quote}
