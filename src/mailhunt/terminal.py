"""The terminal: rich output in which no value from the evidence can act on the terminal.

Every value is passed through ``shown`` (hidden characters written out, then
rich markup escaped) where it is put into a message or a table cell. As a
second line of defence ``VisibleConsole`` writes out any hidden character
still left in the text it renders, whatever the renderable: rich itself drops
only a few control codes (BEL, backspace, CR, VT, FF) and passes ESC through.
Rich's own styling and cursor control travel in segment styles and control
segments, which are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.markup import escape
from rich.segment import Segment

from mailhunt.visible import visible_text


def shown(value: object, keep_newlines: bool = False) -> str:
    """A value from the evidence, rules or file system, ready for rich markup: visible and inert.

    ``keep_newlines`` as in ``visible_text``: for text of several lines laid out
    for reading (an error message quoting a YAML parser, a printed query)."""
    return escape(visible_text(value, keep_newlines))


class VisibleConsole(Console):
    """A rich ``Console`` whose rendered text holds no hidden character but the line breaks of its layout."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and segment.text:
                safe = visible_text(segment.text, keep_newlines=True)
                if safe != segment.text:
                    segment = Segment(safe, segment.style)
            yield segment
