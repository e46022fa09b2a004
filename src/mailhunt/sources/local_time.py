"""Date and time text as Exchange exports write it, turned into UTC without guessing a zone.

PowerShell's ``Export-Csv`` writes a ``DateTime`` in the exporting session's
culture and local time, with no zone: ``10/14/2026 9:31:02 AM`` (en-US),
``14/10/2026 09:31:02`` (en-GB), ``14.10.2026 09:31:02`` (de-DE). Such text is
read here in two steps:

1. ``parse_wall_clock`` finds the date and time fields and any explicit zone
   (``Z``, ``+02:00``). ISO-8601 text is unambiguous; ``M/D/YYYY h:mm:ss AM``
   is month first (only en-US writes AM/PM with slashes); ``D.M.YYYY`` is day
   first; slashes without AM/PM are day first when the first number is above
   12, month first when the second is; otherwise the analyst's ``date_order``
   hint (``mdy`` or ``dmy``) decides, and without it the text is rejected.
   The hint never overrides what the text itself shows.
2. ``to_utc`` converts with the explicit zone, else with the zone the caller
   knows (a source documented as UTC), else with the analyst's ``timezone``
   hint (``UTC``, ``+02:00`` or an IANA name such as ``Europe/Berlin``, whose
   daylight-saving rules are applied). Without any of these it raises
   ``ZoneUnknown``: the reader rejects the record rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailhunt.events import utc_from_offset, utc_time
from mailhunt.sources.base import ReadContext

TIMEZONE_HINT = "timezone"
DATE_ORDER_HINT = "date_order"

_ZONE = r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
_ISO = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})"
                  r"(?:[.,](?P<f>\d{1,7}))?)?\s*" + _ZONE + "$")
_LOCALE = re.compile(r"^(?P<a>\d{1,2})(?P<sep>[/.\-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4})[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})"
                     r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,7}))?)?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*" + _ZONE + "$")


class BadTime(ValueError):
    """The text is not a date and time this module reads."""


class ZoneUnknown(ValueError):
    """The text is a valid local time, but nothing says in which zone."""


@dataclass(frozen=True)
class WallClock:
    moment: datetime
    offset: timedelta | None


def _offset(zone: str | None) -> timedelta | None:
    if not zone:
        return None
    return _zone_offset(zone)


def _zone_offset(zone: str) -> timedelta:
    """The offset of ``Z`` or ``[+-]HH[:]MM``."""
    if zone == "Z":
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def _fraction(text: str | None) -> int:
    return int((text or "0").ljust(6, "0")[:6])


def parse_wall_clock(text: str, date_order: str | None = None) -> WallClock:
    """Fields of ``text``; raises BadTime when it is not a time or its day and month cannot be told apart."""
    value = text.strip()
    try:
        iso = _ISO.match(value)
        if iso:
            moment = datetime(int(iso["y"]), int(iso["mo"]), int(iso["d"]), int(iso["h"]), int(iso["mi"]),
                              int(iso["s"] or 0), _fraction(iso["f"]))
            return WallClock(moment, _offset(iso["zone"]))
        local = _LOCALE.match(value)
        if not local:
            raise BadTime(f"'{value[:40]}' is not a date and time")
        first, second, hour = int(local["a"]), int(local["b"]), int(local["h"])
        if local["ampm"]:
            if not 1 <= hour <= 12:
                raise BadTime(f"'{value[:40]}': hour {hour} with AM/PM")
            hour = hour % 12 + (12 if local["ampm"][0] in "Pp" else 0)
        order = _order(value, local, first, second, date_order)
        month, day = (first, second) if order == "mdy" else (second, first)
        moment = datetime(int(local["y"]), month, day, hour, int(local["mi"]), int(local["s"] or 0),
                          _fraction(local["f"]))
    except ValueError as exc:
        if isinstance(exc, BadTime):
            raise
        raise BadTime(f"'{value[:40]}' is not a valid date and time ({exc})") from exc
    return WallClock(moment, _offset(local["zone"]))


def _order(value: str, local: re.Match, first: int, second: int, date_order: str | None) -> str:
    if local["sep"] == "/" and local["ampm"]:
        return "mdy"
    if local["sep"] == ".":
        return "dmy"
    if first > 12 >= second:
        return "dmy"
    if second > 12 >= first:
        return "mdy"
    if first == second:
        return "mdy"
    if date_order in ("mdy", "dmy"):
        return date_order
    raise BadTime(f"'{value[:40]}': day and month cannot be told apart; give the hint date_order=mdy or dmy")


def zone_from_hint(hint: str | None) -> tzinfo | None:
    """The zone an analyst named: ``UTC``, ``Z``, ``+02:00`` or an IANA name. None when not given."""
    if not hint:
        return None
    text = hint.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if re.fullmatch(r"[+-]\d{2}:?\d{2}", text):
        return timezone(_zone_offset(text))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timezone hint '{text}' is not UTC, an offset like +02:00 or an IANA zone name") from exc


def to_utc(clock: WallClock, known_zone: tzinfo | None) -> datetime:
    """Naive UTC for ``clock``; raises ZoneUnknown when it has no offset and no zone is known,
    TimeOutOfRange when the UTC time falls outside years 1-9999."""
    if clock.offset is not None:
        return utc_from_offset(clock.moment, clock.offset)
    if known_zone is None:
        raise ZoneUnknown("no time zone")
    return utc_time(clock.moment.replace(tzinfo=known_zone))


class ExportZone:
    """The analyst's ``timezone`` and ``date_order`` hints for an ``Export-Csv`` file, checked once per file."""

    def __init__(self, ctx: ReadContext):
        self.date_order = ctx.hints.get(DATE_ORDER_HINT)
        self.error: str | None = None
        try:
            self.zone = zone_from_hint(ctx.hints.get(TIMEZONE_HINT))
        except ValueError as exc:
            self.zone, self.error = None, str(exc)
        self.label = {"time_zone_source": f"hint {ctx.hints[TIMEZONE_HINT]}"} if self.zone else {}

    def utc(self, text: str, column: str) -> tuple[datetime, dict[str, str]]:
        """(UTC time, labels saying where its zone came from) of ``column``'s ``text``, written by
        ``Export-Csv`` in the exporting session's culture and local time; raises ValueError with the
        reason when the text is no time or carries no zone and no ``timezone`` hint was given."""
        clock = parse_wall_clock(text, self.date_order)
        if clock.offset is not None:
            return to_utc(clock, None), {"time_zone_source": "recorded"}
        if self.error:
            raise ValueError(self.error)
        try:
            return to_utc(clock, self.zone), self.label
        except ZoneUnknown:
            raise ValueError(f"{column} '{text.strip()[:40]}' has no time zone (Export-Csv writes the exporting "
                             f"session's local time); give the hint {TIMEZONE_HINT}=<zone of that session>, e.g. "
                             f"{TIMEZONE_HINT}=Europe/Berlin or {TIMEZONE_HINT}=UTC") from None
