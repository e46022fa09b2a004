"""The read hints: what the analyst tells the readers that the evidence does not say itself.

``READ_HINTS`` is the one list of hint keys the readers consume (through
``ReadContext.hints``) and of the values each accepts. The command line checks
every ``--hint KEY=VALUE`` (and ``--year``, ``--user``) against it before
anything is read: an unknown key or a value the readers would not understand
is a usage error naming the close match, never a hunt that silently ignores
the hint or rejects every record because of it.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from mailhunt.sources.local_time import DATE_ORDER_HINT, TIMEZONE_HINT, zone_from_hint

YEAR_HINT = "year"
USER_HINT = "user"
DATE_ORDERS = ("mdy", "dmy")
YEARS = range(1970, 2101)


class HintError(ValueError):
    """A hint the readers cannot use: an unknown key or a value outside what the key accepts."""


@dataclass(frozen=True)
class ReadHint:
    key: str
    meaning: str
    check: Callable[[str], None]  # raises HintError for a value the readers cannot use


def _suggestion(value: str, choices) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_timezone(value: str) -> None:
    try:
        zone_from_hint(value)
    except ValueError as exc:
        raise HintError(f"{exc}{_suggestion(value, zoneinfo.available_timezones())}") from None


def _check_date_order(value: str) -> None:
    if value not in DATE_ORDERS:
        raise HintError(f"date order '{value}' is not one of {', '.join(DATE_ORDERS)}"
                        f"{_suggestion(value.lower(), DATE_ORDERS)}")


def _check_year(value: str) -> None:
    if not (value.isascii() and value.isdigit()) or int(value) not in YEARS:
        raise HintError(f"year '{value}' is not a year from {YEARS.start} to {YEARS.stop - 1}")


def _check_user(value: str) -> None:
    if not value.strip() or re.search(r"[/\\\x00-\x1f\x7f]", value):
        raise HintError(f"user {value!r} is not an account name")


READ_HINTS = {hint.key: hint for hint in (
    ReadHint(TIMEZONE_HINT, "zone of times the evidence writes without one: UTC, an offset like +02:00, "
                            "or an IANA name like Europe/Berlin", _check_timezone),
    ReadHint(DATE_ORDER_HINT, "mdy or dmy, for exported dates whose day and month cannot be told apart",
             _check_date_order),
    ReadHint(YEAR_HINT, "year of the first line of syslog files whose times have none (also --year)", _check_year),
    ReadHint(USER_HINT, "owner of shell histories whose location does not say (also --user)", _check_user),
)}


def check_read_hint(key: str, value: str) -> None:
    """Raise HintError unless ``key`` is a read hint and ``value`` one it accepts."""
    hint = READ_HINTS.get(key)
    if hint is None:
        suggestion = _suggestion(key, READ_HINTS) or f"; the hints are {', '.join(READ_HINTS)}"
        raise HintError(f"'{key}' is not a read hint{suggestion}")
    hint.check(value)
