"""Readers, one module per log format, all behind ``mailhunt.sources.base.Source``.

``SOURCES`` is tried in order; the first whose ``sniff`` accepts a file's first
bytes reads it. More specific formats come before more general ones.
"""

from __future__ import annotations

from collections.abc import Callable

from mailhunt.sources.auditd import AuditdLog
from mailhunt.sources.base import ReadContext, Rejection, Source, read_events
from mailhunt.sources.entra_audit import ENTRA_AUDIT_SOURCES
from mailhunt.sources.entra_signin import ENTRA_SOURCES
from mailhunt.sources.eslogger import EsloggerLog
from mailhunt.sources.exchange_admin_audit import EXCHANGE_ADMIN_AUDIT_SOURCES
from mailhunt.sources.exchange_message_tracking import MESSAGE_TRACKING_SOURCES
from mailhunt.sources.m365_audit import M365_SOURCES
from mailhunt.sources.m365_message_trace import MESSAGE_TRACE_SOURCES
from mailhunt.sources.m365_message_trace_report import MESSAGE_TRACE_REPORT_SOURCES
from mailhunt.sources.macos_unified_log import UNIFIED_LOG_SOURCES
from mailhunt.sources.sentinel_entra import SENTINEL_ENTRA_SOURCES
from mailhunt.sources.sentinel_syslog import SENTINEL_SYSLOG_SOURCES
from mailhunt.sources.sentinel_windows import SENTINEL_WINDOWS_SOURCES
from mailhunt.sources.shell_history import SHELL_HISTORY_SOURCES
from mailhunt.sources.syslog import SyslogFile
from mailhunt.sources.windows_evtx import WINDOWS_SOURCES
from mailhunt.sources.windows_flat import FLAT_WINDOWS_SOURCES

SOURCES: tuple[Source, ...] = (*ENTRA_SOURCES,
                               *ENTRA_AUDIT_SOURCES, *SENTINEL_ENTRA_SOURCES,
                               *M365_SOURCES, *EXCHANGE_ADMIN_AUDIT_SOURCES, *MESSAGE_TRACKING_SOURCES,
                               *MESSAGE_TRACE_SOURCES, *MESSAGE_TRACE_REPORT_SOURCES, *WINDOWS_SOURCES,
                               *FLAT_WINDOWS_SOURCES, *SENTINEL_WINDOWS_SOURCES,
                               AuditdLog(), *UNIFIED_LOG_SOURCES, EsloggerLog(), *SENTINEL_SYSLOG_SOURCES,
                               *SHELL_HISTORY_SOURCES, SyslogFile())

SNIFF_BYTES = 64 * 1024
# A JSON line may be far longer than SNIFF_BYTES (a long user agent, a large
# parameter list); its head is then read on to the line's end, up to this, so
# that sniffers see the whole first record and do not take the file for a
# JSON array. It is the NDJSON readers' own line limit.
MAX_SNIFF_LINE = 64 * 1024 * 1024


def sniff_head(read_head: Callable[[int], bytes]) -> bytes:
    """The first bytes of a file as sniffers see them: ``SNIFF_BYTES``, or, for text starting with a
    JSON object, through the end of its first line (at most ``MAX_SNIFF_LINE``)."""
    size = SNIFF_BYTES
    head = read_head(size)
    while (len(head) == size < MAX_SNIFF_LINE and b"\n" not in head
           and head.lstrip(b"\xef\xbb\xbf \t\r").startswith(b"{")):
        size = min(size * 16, MAX_SNIFF_LINE)
        head = read_head(size)
    return head


def identify(head: bytes) -> Source | None:
    for source in SOURCES:
        if source.sniff(head):
            return source
    return None


__all__ = ["MAX_SNIFF_LINE", "SNIFF_BYTES", "SOURCES", "ReadContext", "Rejection", "Source", "identify",
           "read_events", "sniff_head"]
