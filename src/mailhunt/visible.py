"""Text from the evidence made safe to show: every character that is not seen is written out.

Evidence, file names and rules are written by the adversary. A value shown to
the analyst must not act on the display: an ESC or C1 control can drive the
terminal (OSC 52 writes the clipboard, OSC 8 plants a link, CSI clears or
moves text), a carriage return or line separator can overwrite or fake a
line, and a bidirectional override or a zero-width character makes
``admin\\u202egpj.exe`` read as ``adminexe.jpg`` or two different names
look the same. ``visible_text`` is the one place that decides which
characters those are; the terminal output and both reports use it for every
value they show. Data for tools (``findings.json``, the case database) keeps
the exact original string.
"""

from __future__ import annotations

import re
import unicodedata

# Control (Cc: C0, DEL, C1), format (Cf: bidi controls, zero-width spaces and
# joiners, soft hyphen, tag characters), lone surrogates (Cs: undecodable file
# name bytes) and the line and paragraph separators (Zl, Zp).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Unicode's Default_Ignorable_Code_Point characters outside those categories:
# they draw nothing either (Hangul fillers, variation selectors, the combining
# grapheme joiner), so they can pad a name or make two names look alike.
INVISIBLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)

_ASCII_HIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def is_hidden(char: str) -> bool:
    """Whether ``char`` draws nothing visible of its own, or acts on the display."""
    point = ord(char)
    if unicodedata.category(char) in HIDDEN_CATEGORIES:
        return True
    return any(low <= point <= high for low, high in INVISIBLE_RANGES)


_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_char(char: str) -> str:
    """``char`` written out as a Python-style escape: ``\\n``, ``\\x1b``, ``\\u202e``, ``\\U000e0041``."""
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def visible_text(value: object, keep_newlines: bool = False) -> str:
    """``value`` as text in which every hidden character (see ``is_hidden``) is written out as an escape.

    ``keep_newlines`` keeps ``\\n`` as a line break, for text whose lines are
    laid out by mailhunt itself (a table rendered for the terminal, a query
    printed over several lines); a value from the evidence is passed without
    it, so its line breaks show as ``\\n`` and it cannot fake a line of its own.
    The result holds only visible characters and spaces, so applying it again
    changes nothing.
    """
    text = value if isinstance(value, str) else str(value)
    if keep_newlines and "\n" in text:
        return "\n".join(visible_text(line) for line in text.split("\n"))
    if text.isascii():
        return _ASCII_HIDDEN.sub(lambda match: escape_char(match.group()), text)
    return "".join(escape_char(char) if is_hidden(char) else char for char in text)
