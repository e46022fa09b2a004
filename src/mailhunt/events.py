"""The normalized event model: the one place that defines every column.

Every reader turns its records into plain dicts keyed by the column names below
(ECS names where ECS has the concept). The case store, the Sigma processing
pipeline and the reports all take their column list from here.

Conventions:
- ``@timestamp`` is a naive ``datetime`` in UTC, within years 1 to 9999 (what
  Python, Arrow and every report agree on). Readers parse time text with
  ``utc_from_text`` (or ``parse_time_text`` for a wall clock whose zone they
  settle themselves) and convert with ``utc_time``/``utc_from_offset``/
  ``utc_from_epoch`` (SQL mappings with ``sql_utc_time``); these reject a
  time outside that range, and a time without a zone unless the reader's
  format defines it as UTC. Nothing reads the machine's zone.
- ``params`` maps cmdlet parameter names, lower-cased, to their values as text,
  so one rule serves the audit log, the Exchange admin log and PowerShell logs;
  a System record whose data are numbered insertion strings (Service Control
  Manager 7036, 7040) keeps them there as ``param1``, ``param2`` ...
- ``event.original`` is the record exactly as the source wrote it.
- ``log.file.path``/``log.file.sha256``/``log.record`` locate the record in the
  evidence (line number for text formats, record number for JSON arrays).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import overload

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


PARAMS_TYPE = pa.map_(pa.string(), pa.string())

COLUMNS: tuple[Column, ...] = (
    Column("event.id", pa.string(), "Stable id of the event: the record's own id where it has one, else a hash of the raw record"),
    Column("@timestamp", pa.timestamp("us"), "When the event happened, UTC"),
    Column("event.action", pa.string(), "Operation or cmdlet name as logged (e.g. New-MailboxExportRequest, HardDelete)"),
    Column("event.outcome", pa.string(), "success, failure or unknown"),
    Column("event.provider", pa.string(), "Service or log that produced the record (UAL Workload, EVTX provider)"),
    Column("event.dataset", pa.string(), "mailhunt source format, e.g. m365.audit"),
    Column("event.code", pa.string(), "Record type or event id as logged"),
    Column("user.name", pa.string(), "Actor: the account that performed the action (UPN lower-cased for cloud records)"),
    Column("user.type", pa.string(), "regular, admin, system, application, service_principal, partner or unknown"),
    Column("user.id", pa.string(), "Actor's id as logged: SID, Unix uid/auid, object id"),
    Column("user.domain", pa.string(), "Actor's domain as logged (DOMAIN of DOMAIN\\user)"),
    Column("user.target.name", pa.string(), "Mailbox or account acted upon"),
    Column("source.ip", pa.string(), "Client IP address, without port"),
    Column("source.geo.country_iso_code", pa.string(), "Country of source.ip where known"),
    Column("host.name", pa.string(), "Server or host that logged the record"),
    Column("process.pid", pa.int64(), "Process id"),
    Column("process.name", pa.string(), "Process name"),
    Column("process.executable", pa.string(), "Full path of the process image"),
    Column("process.command_line", pa.string(), "Full command line"),
    Column("process.parent.name", pa.string(), "Parent process name"),
    Column("process.parent.executable", pa.string(), "Full path of the parent process image"),
    Column("process.parent.command_line", pa.string(), "Parent's full command line"),
    Column("powershell.file.script_block_text", pa.large_string(), "PowerShell script block text, reassembled when logged in parts"),
    Column("file.path", pa.string(), "File acted upon (created, written, renamed, deleted)"),
    Column("file.target_path", pa.string(), "New path of a renamed or copied file (mailhunt extension)"),
    Column("registry.path", pa.string(), "Registry key or value acted upon, as logged (Sysmon TargetObject; 4657 ObjectName\\ObjectValueName)"),
    Column("registry.data.strings", pa.string(), "Data written to a registry value, as logged (Sysmon Details, 4657 NewValue)"),
    Column("app.id", pa.string(), "Client application id (ClientAppId, else AppId: the client, not the API it called)"),
    Column("user_agent.original", pa.string(), "User agent or client info string"),
    Column("email.subject", pa.string(), "Subject of the message(s) acted upon, joined by ' | ' when several"),
    Column("email.from.address", pa.string(), "Sender address"),
    Column("email.to.address", pa.string(), "Recipient address"),
    Column("email.message_id", pa.string(), "Internet message id"),
    Column("email.folder", pa.string(), "Mailbox folder path acted upon (mailhunt extension)"),
    Column("email.delivery_status", pa.string(), "Message trace/tracking status or event (Delivered, FilteredAsSpam, Quarantined, RECEIVE ...)"),
    Column("email.direction", pa.string(), "inbound, outbound or internal where the log says"),
    Column("email.item_count", pa.int64(), "Number of mail items the record acted on (1 when not stated)"),
    Column("rule.name", pa.string(), "Inbox or transport rule name"),
    Column("params", PARAMS_TYPE, "Cmdlet parameters, names lower-cased; a System record's numbered insertion strings as param1, param2 ..."),
    Column("parameters", pa.string(), "Cmdlet parameters as one text: -Name value -Name value"),
    Column("organization.id", pa.string(), "Tenant or organization id"),
    Column("winlog.channel", pa.string(), "Windows event log channel (Security, MSExchange Management ...)"),
    Column("winlog.record_id", pa.int64(), "Windows EventRecordID"),
    Column("labels", PARAMS_TYPE, "Facts a reader states about how it read the record (e.g. year_source, user_source), keys lower-cased"),
    Column("log.file.path", pa.string(), "Evidence file the record came from (zip members as archive.zip!member)"),
    Column("log.file.sha256", pa.string(), "SHA-256 of that evidence file"),
    Column("log.record", pa.int64(), "Line number (text formats) or record number (JSON arrays), from 1"),
    Column("event.original", pa.large_string(), "The raw record, verbatim"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])

Event = dict


def new_event() -> dict:
    """An event with every column present and empty."""
    return dict.fromkeys(COLUMN_NAMES)


def event_id_from_record_id(dataset_family: str, record_id: str) -> str:
    """Stable id for a record that carries its own id (UAL Id, EVTX record id)."""
    return hashlib.sha256(f"{dataset_family}\x1f{record_id}".encode()).hexdigest()[:32]


def event_id_from_raw(raw: str) -> str:
    """Stable id for a record without an id of its own: a hash of its raw text."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def to_arrow(events: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(events, schema=SCHEMA)


@overload
def iso_z(ts: datetime) -> str: ...
@overload
def iso_z(ts: None) -> None: ...
def iso_z(ts: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, second precision unless the value has fractions."""
    if ts is None:
        return None
    text = ts.isoformat(timespec="microseconds" if ts.microsecond else "seconds")
    return text + "Z"


# ---------------------------------------------------------------- a UTC time

EARLIEST_TIME = datetime(1, 1, 1)
LATEST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999)
TIME_RANGE = "years 1-9999 (UTC)"


class TimeOutOfRange(ValueError):
    """A time whose UTC value is outside ``TIME_RANGE``: the record holding it is rejected.

    DuckDB and Arrow would store such a time (year 0, -1, 10000), but Python
    cannot represent it, so every later stage would fail on it."""


def out_of_range(text: object) -> TimeOutOfRange:
    """The rejection for a time given as ``text`` (shown cut to 40 characters)."""
    return TimeOutOfRange(f"time '{str(text)[:40]}' is outside {TIME_RANGE}")


_ISO_YEAR_OUTSIDE = re.compile(r"\s*(?:[+-]\d+|0000|\d{5,})-\d\d-\d\d")


def iso_year_outside_range(text: str) -> bool:
    """Whether ISO-8601-like ``text`` names a year outside 1-9999 (0000, -0001, 10000), which Python
    cannot parse: its rejection then says so instead of "not a time"."""
    return bool(_ISO_YEAR_OUTSIDE.match(text))


def utc_time(moment: datetime) -> datetime:
    """An aware time as ``@timestamp`` holds it (naive UTC); raises TimeOutOfRange past the range's ends."""
    if moment.tzinfo is None:
        raise ValueError("a time without a zone cannot be made UTC here; the reader decides what it means")
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise out_of_range(moment.isoformat()) from None


def utc_from_offset(moment: datetime, offset: timedelta) -> datetime:
    """A wall-clock time written with its UTC ``offset`` (which may be any size), as naive UTC."""
    try:
        return moment - offset
    except OverflowError:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        raise out_of_range(f"{moment.isoformat()}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}") from None


def utc_from_epoch(seconds: float) -> datetime:
    """Seconds since 1970-01-01 UTC as naive UTC; raises TimeOutOfRange when the moment has no such date."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise out_of_range(f"epoch {seconds}") from None


class ZoneMissing(ValueError):
    """A time written without a zone where the format does not define one: the record is rejected."""


def parse_time_text(text: str, formats: Sequence[str] = (), *, iso: bool = True) -> datetime:
    """Time text as written: aware when the text states a zone or offset, naive (a wall clock) when not.

    Tried as ISO 8601 (``T`` or a space between date and time, a fraction of
    any length cut to microseconds, ``Z``/``+hh:mm``/``+hhmm``) unless ``iso``
    is false, then as each ``strptime`` pattern of ``formats`` in turn. The
    machine's own zone is never consulted: a naive result means the text named
    no zone, and the caller decides what that means (``utc_from_text``).
    Raises ``TimeOutOfRange`` for a year outside 1-9999, else ValueError."""
    value = text.strip()
    if iso:
        try:
            return datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
        except ValueError:
            pass
    for pattern in formats:
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    if iso_year_outside_range(value):
        raise out_of_range(text)
    expected = ["ISO 8601"] if iso else []
    expected.extend(f"'{pattern}'" for pattern in formats)
    raise ValueError(f"time '{text[:40]}' is not {' or '.join(expected)}")


def utc_from_text(text: str, formats: Sequence[str] = (), *, zone_less_is_utc: bool = False) -> datetime:
    """The one reading of a time written as text into ``@timestamp`` (naive UTC).

    A time with a zone or offset is converted with it. A time without one is
    UTC only where the reader's format defines it so (``zone_less_is_utc``,
    which the reader's docstring and docs/sources.md state); otherwise it is
    rejected with ``ZoneMissing``. ``formats`` as for ``parse_time_text``."""
    moment = parse_time_text(text, formats)
    if moment.tzinfo is None:
        if not zone_less_is_utc:
            raise ZoneMissing(f"time '{text.strip()[:40]}' has no time zone")
        moment = moment.replace(tzinfo=UTC)
    return utc_time(moment)


def utc_from_analyst(text: str) -> datetime:
    """A time an analyst typed (a filter, a time range): ISO 8601 in UTC, with ``Z`` or ``+00:00``, as
    naive UTC. Raises ZoneMissing for a time without a zone or with another offset (never guessed), and
    ValueError for text that is not ISO 8601."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise ZoneMissing(f"time '{text.strip()[:40]}' is not UTC")
    return moment.replace(tzinfo=None)


def utc_from_document(value: object) -> datetime | None:
    """A time mailhunt itself wrote into findings.json or a case file (ISO 8601, with Z) as naive UTC;
    None when ``value`` is not such a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc_from_text(value, zone_less_is_utc=True)
    except ValueError:
        return None


def sql_within_time_range(expression: str) -> str:
    """SQL condition: ``expression`` (a TIMESTAMP in UTC) is a finite time within ``TIME_RANGE``."""
    return (f"(isfinite({expression}) AND {expression} BETWEEN "
            f"TIMESTAMP '{EARLIEST_TIME.isoformat(sep=' ')}' AND TIMESTAMP '{LATEST_TIME.isoformat(sep=' ')}')")


def sql_utc_time(expression: str) -> str:
    """SQL for ``expression`` (a TIMESTAMP in UTC) where it is within ``TIME_RANGE``, else NULL.

    DuckDB reads '0000-01-01', '10000-01-01', 'infinity' and 'epoch' as
    timestamps; set-based mappings pass their times through this so they
    reject what ``utc_time`` rejects."""
    return f"CASE WHEN {sql_within_time_range(expression)} THEN {expression} END"


def sql_out_of_range_reason(expression: str) -> str:
    """SQL for ``out_of_range``'s message about the time text ``expression``."""
    return (f"'time ' || chr(39) || left({expression}, 40) || chr(39) || "
            f"' is outside {TIME_RANGE}'")
