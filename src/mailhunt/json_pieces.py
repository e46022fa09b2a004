"""An indented JSON document whose one long list is written a batch of members at a time.

findings.json lists every input of the case and the evidence manifest every
file preserved: 100,000 of them in a case of many small files. Dumped whole,
such a document is held three times over (the members as Python objects, the
document, its bytes). Here the document is dumped with that list empty, cut
where the list stands, and the members are dumped one by one as they are
iterated, each indented one level deeper: the bytes are those of the whole
dump (``orjson.OPT_INDENT_2`` puts every member of a top-level list at four
spaces, and a JSON text has no line break but those of its layout, so the
member's own layout moves right by prefixing each of its lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# Members of the long list dumped between two pieces.
MEMBERS_A_PIECE = 5_000
_MEMBER_INDENT = b"\n    "


def indented_json_pieces(document: dict[str, Any], key: str, members: Iterable[Any], option: int = 0) -> Iterator[bytes]:
    """``orjson.dumps(document, option=OPT_INDENT_2 | option)`` with ``members`` as the list at ``document[key]``
    (a key of the document itself, whatever it holds now), in pieces; ``members`` is iterated once."""
    if key not in document:
        raise KeyError(key)
    option |= orjson.OPT_INDENT_2
    whole = orjson.dumps({**document, key: []}, option=option)
    empty_list = b"\n  " + orjson.dumps(key) + b": []"
    start = whole.index(empty_list) + len(empty_list) - len(b"[]")
    yield whole[:start]
    piece: list[bytes] = []
    opening = b"["
    for member in members:
        piece += (opening, _MEMBER_INDENT, orjson.dumps(member, option=option).replace(b"\n", _MEMBER_INDENT))
        opening = b","
        if len(piece) >= 3 * MEMBERS_A_PIECE:
            yield b"".join(piece)
            piece = []
    if opening == b"[":
        piece.append(b"[]")
    else:
        piece.append(b"\n  ]")
    yield b"".join(piece)
    yield whole[start + len(b"[]"):]
