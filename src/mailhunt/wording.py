"""Counts and names in sentences: "1 finding", "3 findings", "no earlier events", never "by None"."""

from __future__ import annotations


def count_of(number: int, singular: str, plural: str | None = None, zero: str | None = None) -> str:
    """``number`` with the noun in the right number: ``count_of(1, "finding") == "1 finding"``.

    ``zero``, when given, is the whole phrase for 0 (``"no earlier events"``)."""
    if number == 0 and zero is not None:
        return zero
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def account_name(name: str | None) -> str:
    """An account as a sentence names it: the logged name, or that the log named none."""
    return name if name else "an account the log does not name"
