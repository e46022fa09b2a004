"""What the Linux and macOS readers share: event rows, command lines, users from paths, lenient lines.

Unix logs are written by processes that do not promise UTF-8: a command line
may hold any bytes. Those bytes are kept, escaped as ``\\xNN``, and the event
says so in ``labels.encoding``, instead of losing the record.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from mailhunt.events import event_id_from_raw, new_event, to_arrow
from mailhunt.sources.base import ReadContext, numbered_lines
from mailhunt.sources.local_time import TIMEZONE_HINT, WallClock, to_utc, zone_from_hint

BATCH_EVENTS = 20_000
NOT_UTF8 = "not UTF-8, bytes kept as \\xNN escapes"

# A dot file or dot folder right inside the home, at the end of the path: /home/alice/.bash_history,
# /Users/alice/.local/share/fish/fish_history. Anchoring at the end keeps the analyst's own home
# (/home/analyst/cases/...) from being taken for the owner.
_IN_HOME = r"[/\\]\.[^/\\]+(?:[/\\][^/\\]+){0,3}$"
_HOME_USER = re.compile(r"(?:^|[/\\!])(?:home|Users)[/\\]([^/\\]+)" + _IN_HOME)
_ROOT_HOME = re.compile(r"(?:^|[/\\!])(?:root|var[/\\]root)" + _IN_HOME)


def decode_lenient(raw: bytes) -> tuple[str, bool]:
    """Text of ``raw``; undecodable bytes become ``\\xNN``. The flag says whether that happened."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace"), True


def lenient_lines(stream: BinaryIO, ctx: ReadContext) -> Iterator[tuple[int, str, bool]]:
    """Numbered lines without their line ends, with a flag for lines that were not UTF-8 (capped as
    ``numbered_lines`` says)."""
    for number, raw in numbered_lines(stream, ctx):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        text, escaped = decode_lenient(raw.rstrip(b"\r\n"))
        yield number, text, escaped


def _quote(arg: str) -> str:
    if not arg:
        return "''"
    quoted = shlex.quote(arg)
    if quoted != arg and "'" in arg and not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return quoted


ZONE_NOT_LOGGED = "not logged; read as UTC"


def local_time_to_utc(moment: datetime, ctx: ReadContext) -> tuple[datetime, str]:
    """A zone-less wall-clock time in UTC: with the analyst's ``timezone`` hint when given, else read as UTC.

    The second value is what ``labels.time_zone_source`` states. A hint that is
    not a zone raises ValueError (the record is rejected with it).
    """
    hint = ctx.hints.get(TIMEZONE_HINT)
    zone = zone_from_hint(hint)
    if zone is None:
        ctx.note("times carry no time zone and were read as UTC; give --hint timezone=<zone> if the host "
                 "logged local time")
        return moment, ZONE_NOT_LOGGED
    return to_utc(WallClock(moment, None), zone), f"hint {hint}"


def command_line(argv: list[str]) -> str:
    """argv as one line a shell would split back the same way: quoted only when needed, and with
    double quotes around an argument holding single quotes (JXA ``Application('Mail')``), as people write it."""
    return " ".join(_quote(arg) for arg in argv)


def split_command(text: str) -> list[str]:
    """Words of a shell command line; unbalanced quotes fall back to splitting on blanks."""
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def program_name(path_or_word: str | None) -> str | None:
    if not path_or_word:
        return None
    return path_or_word.rstrip("/").rsplit("/", 1)[-1] or None


def user_from_path(path: str) -> str | None:
    """The account whose home holds the dot file ``path`` ends in: /home/<u>/.x, /Users/<u>/.x, /root/.x (root)."""
    found = _HOME_USER.search(path)
    if found:
        return found.group(1)
    if _ROOT_HOME.search(path):
        return "root"
    return None


def unix_event(ctx: ReadContext, dataset: str, provider: str, line: int, raw: str,
               timestamp: datetime | None, labels: dict[str, str] | None = None) -> dict:
    """An event row with provenance filled in; the caller adds what the record says."""
    event = new_event()
    event["event.id"] = event_id_from_raw(f"{dataset}\x1f{raw}")
    event["@timestamp"] = timestamp
    event["event.dataset"] = dataset
    event["event.provider"] = provider
    event["event.outcome"] = "unknown"
    event["log.file.path"] = ctx.path
    event["log.file.sha256"] = ctx.sha256
    event["log.record"] = line
    event["event.original"] = raw
    event["labels"] = dict(labels or {})
    return event


class EventBatches:
    """Collects event rows and hands them out as Arrow tables of bounded size."""

    def __init__(self, size: int = BATCH_EVENTS):
        self.size = size
        self.rows: list[dict] = []

    def add(self, event: dict) -> Iterator:
        if not event["labels"]:
            event["labels"] = None
        self.rows.append(event)
        if len(self.rows) >= self.size:
            yield from self.flush()

    def flush(self) -> Iterator:
        if self.rows:
            table = to_arrow(self.rows)
            self.rows = []
            yield table
