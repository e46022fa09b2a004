"""An indented JSON document whose one long list is written as its members come.

findings.json lists every input of the case and the evidence manifest every
file preserved: 100,000 of them in a case of many small files. Dumped whole,
such a document is held three times over (the members as Python objects, the
document, its bytes). Here the document is dumped with that list empty and cut
where the list stands, and the members are dumped one by one as they come
(``indented_json_pieces`` reads them from an iterable; the evidence manifest
takes each file as it is preserved), each indented one level deeper: the bytes
are those of the whole dump (``orjson.OPT_INDENT_2`` puts every member of a
top-level list at four spaces, and a JSON text has no line break but those of
its layout, so the member's own layout moves right by prefixing each of its
lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# Members of the long list dumped between two pieces.
MEMBERS_A_PIECE = 5_000
_MEMBER_INDENT = b"\n    "


class IndentedJsonList:
    """The bytes of ``orjson.dumps(document, option=OPT_INDENT_2 | option)`` around the list at ``document[key]`` (a
    key of the document itself, whatever it holds now), and of the list's members, one after the other: ``head``,
    then ``member`` of each, then ``end``."""

    def __init__(self, document: dict[str, Any], key: str, option: int = 0):
        if key not in document:
            raise KeyError(key)
        self._option = option | orjson.OPT_INDENT_2
        whole = orjson.dumps({**document, key: []}, option=self._option)
        empty_list = b"\n  " + orjson.dumps(key) + b": []"
        start = whole.index(empty_list) + len(empty_list) - len(b"[]")
        self.head, self._tail = whole[:start], whole[start + len(b"[]"):]
        self.members = 0

    def member(self, member: Any) -> bytes:
        """The next member of the list, with what comes before it."""
        before = b"," if self.members else b"["
        self.members += 1
        return before + _MEMBER_INDENT + orjson.dumps(member, option=self._option).replace(b"\n", _MEMBER_INDENT)

    def end(self) -> bytes:
        """What follows the last member: the end of the list and the rest of the document."""
        return (b"\n  ]" if self.members else b"[]") + self._tail


def indented_json_pieces(document: dict[str, Any], key: str, members: Iterable[Any], option: int = 0) -> Iterator[bytes]:
    """The bytes of ``IndentedJsonList(document, key, option)`` with ``members`` as the list, in pieces of
    ``MEMBERS_A_PIECE`` members; ``members`` is iterated once."""
    layout = IndentedJsonList(document, key, option)
    yield layout.head
    piece: list[bytes] = []
    for member in members:
        piece.append(layout.member(member))
        if len(piece) >= MEMBERS_A_PIECE:
            yield b"".join(piece)
            piece = []
    piece.append(layout.end())
    yield b"".join(piece)
