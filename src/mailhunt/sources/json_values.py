"""Values of a record as the typed columns of an event take them.

A record written by the adversary may hold any JSON type where a reader
expects a string or a number, and any run of digits where it expects a small
number: a column value of the wrong type or size must become text, or
nothing, never an exception that ends the reader.
"""

from __future__ import annotations

import json
import re

import orjson

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"[0-9]{1,19}")


def text_value(value: object) -> str | None:
    """A value for a text column: a string as it is, null or "" as nothing, any other value as its JSON text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, or nesting deeper than orjson writes
        pass
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):
        return None


def int64_value(value: object) -> int | None:
    """A value for an integer column: an integer (not a boolean) that 64 bits hold, else nothing."""
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def json_text(value: object) -> str:
    """A parsed JSON value written back as JSON text, whatever its integers (orjson writes 64 bits at most).

    Raises ValueError when the value cannot be written (nested too deep).
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        pass
    try:
        return json.dumps(value)
    except RecursionError:
        raise ValueError("nested too deep to be written back as JSON") from None


def int64_from_text(text: str | None) -> int | None:
    """The number an unsigned decimal text (ASCII digits only) writes, if 64 bits hold it, else nothing.

    ``str.isdigit`` accepts superscripts ``int`` refuses, and ``int`` refuses
    more than 4300 digits: neither may stop a reader.
    """
    if text is None or not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


def dynamic_value(value: object) -> object:
    """A Log Analytics ``dynamic`` column (or a Graph member) as a parsed value.

    Exports write these columns as JSON text (the portal's CSV, ``az monitor
    log-analytics query``, many NDJSON exports) or as nested JSON (others): text
    that is a JSON object or array is parsed, anything else is given back as it
    is; text that does not parse stays text.
    """
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            try:
                return json.loads(value)
            except (ValueError, RecursionError):
                return value
    return value


def member(obj: object, *names: str) -> object:
    """The first of ``names`` that the JSON object ``obj`` holds, whatever the case of its keys (Graph writes
    ``userPrincipalName``, its PowerShell module ``UserPrincipalName``); None when it holds none or is no object."""
    if not isinstance(obj, dict):
        return None
    for name in names:
        if name in obj:
            return obj[name]
    lowered = {key.lower(): value for key, value in obj.items() if isinstance(key, str)}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None
