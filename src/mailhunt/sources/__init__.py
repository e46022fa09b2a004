"""Readers, one module per log format, all behind ``mailhunt.sources.base.Source``.

``SOURCES`` is tried in order; the first whose ``sniff`` accepts a file's first
bytes reads it. More specific formats come before more general ones.
"""

from __future__ import annotations

from mailhunt.sources.auditd import AuditdLog
from mailhunt.sources.base import ReadContext, Rejection, Source, read_events
from mailhunt.sources.entra_signin import ENTRA_SOURCES
from mailhunt.sources.eslogger import EsloggerLog
from mailhunt.sources.exchange_admin_audit import EXCHANGE_ADMIN_AUDIT_SOURCES
from mailhunt.sources.exchange_message_tracking import MESSAGE_TRACKING_SOURCES
from mailhunt.sources.m365_audit import M365_SOURCES
from mailhunt.sources.m365_message_trace import MESSAGE_TRACE_SOURCES
from mailhunt.sources.m365_message_trace_report import MESSAGE_TRACE_REPORT_SOURCES
from mailhunt.sources.macos_unified_log import UNIFIED_LOG_SOURCES
from mailhunt.sources.sentinel_syslog import SENTINEL_SYSLOG_SOURCES
from mailhunt.sources.shell_history import SHELL_HISTORY_SOURCES
from mailhunt.sources.syslog import SyslogFile
from mailhunt.sources.windows_evtx import WINDOWS_SOURCES

SOURCES: tuple[Source, ...] = (*ENTRA_SOURCES, *M365_SOURCES, *EXCHANGE_ADMIN_AUDIT_SOURCES, *MESSAGE_TRACKING_SOURCES,
                               *MESSAGE_TRACE_SOURCES, *MESSAGE_TRACE_REPORT_SOURCES, *WINDOWS_SOURCES,
                               AuditdLog(), *UNIFIED_LOG_SOURCES, EsloggerLog(), *SENTINEL_SYSLOG_SOURCES,
                               *SHELL_HISTORY_SOURCES, SyslogFile())

SNIFF_BYTES = 64 * 1024


def identify(head: bytes) -> Source | None:
    for source in SOURCES:
        if source.sniff(head):
            return source
    return None


__all__ = ["SNIFF_BYTES", "SOURCES", "ReadContext", "Rejection", "Source", "identify", "read_events"]
