"""Text pasted into SQL as a literal or a name, quoted the way DuckDB reads it.

One helper for every layer (sources, the store, detect, triage): it imports
nothing of mailhunt, so any module may use it. It is for the text SQL must
hold as text: the modules' own constants (channel names, event codes, source
families, parameter names), column names, and the values of Sigma rules,
which ``--rules DIR`` takes from strangers. Evidence never reaches SQL text:
it is bound as a parameter or registered as a table.

In a DuckDB string literal only the quote is special (a backslash is an
ordinary character), and in a quoted name only the double quote; each is
doubled. Spark SQL reads the same literals after sqlglot carries them over.
"""

from __future__ import annotations

from collections.abc import Iterable


def sql_string(text: str) -> str:
    """``text`` as a DuckDB string literal: in quotes, each quote doubled (a backslash is an ordinary character)."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier (a column such as ``event.id``), each double quote doubled."""
    return '"' + name.replace('"', '""') + '"'


def sql_list(values: Iterable[str]) -> str:
    """Text values as a parenthesized list of literals, for ``IN``; an empty list is an error (``IN ()`` is no SQL)."""
    literals = [sql_string(value) for value in values]
    if not literals:
        raise ValueError("an SQL list needs at least one value")
    return "(" + ", ".join(literals) + ")"
