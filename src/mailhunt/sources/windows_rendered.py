"""EventData put back from a Windows event's rendered text, for shippers that keep only that text.

Flat exports (OTRF/Mordor datasets, NXLog, Sentinel's ``Event`` table) write
the message Windows renders from an event's template and data, and for some
events nothing else: MSExchange Management cmdlet records, ``Windows
PowerShell`` 800, System 104 and Security 1102 (whose data is ``UserData``,
which flatteners drop). Each template below is inverted to give back the
EventData (or UserData) the EVTX record holds, in the EVTX layout, so
``windows_events.map_record`` maps it as it maps the EVTX record: one
definition of what a cmdlet record or a log clear becomes.

``recovered_data`` returns None when the record is not one of these or its
text does not follow the template; the record then keeps its common columns.
"""

from __future__ import annotations

import re

# MSExchange CmdletLogs 1 and 6: "Cmdlet suceeded. Cmdlet %1, parameters %2." (sic: Exchange writes
# "suceeded"); the template's own final period is not part of the parameters.
_CMDLET = re.compile(r"^\s*Cmdlet (?:suceeded|succeeded|failed)\. Cmdlet (?P<cmdlet>[^\s,]+), parameters ?"
                     r"(?P<parameters>.*)\.\s*$", re.DOTALL)
# Windows PowerShell 800: "Pipeline execution details for command line: %1. \r\n\r\nContext Information: \r\n%2
# \r\n\r\nDetails: \r\n%3". The first "Context Information:" and the first "Details:" after it split the text
# (each searched for once, forward: the command line and the details are the actor's text, and may be long).
_PIPELINE_START = "Pipeline execution details for command line: "
_CONTEXT_MARK = re.compile(r"\. ?\r?\n\r?\nContext Information: ?\r?\n")
_DETAILS_MARK = re.compile(r"\r?\n\r?\nDetails: ?\r?\n")
# System 104 (Microsoft-Windows-Eventlog): "The %1 log file was cleared."
_LOG_CLEARED = re.compile(r"^The (?P<channel>.+?) log file was cleared\.\s*$", re.DOTALL)
# Security 1102: "The audit log was cleared.\r\nSubject:\r\n\tSecurity ID:\t%1\r\n\tAccount Name:\t%2 ..."
_AUDIT_CLEARED = re.compile(r"^The audit log was cleared\.")
_SUBJECT_FIELDS = {"Security ID": "SubjectUserSid", "Account Name": "SubjectUserName",
                   "Domain Name": "SubjectDomainName", "Account Domain": "SubjectDomainName",
                   "Logon ID": "SubjectLogonId"}


def cmdlet_from_message(message: str) -> tuple[str, str] | None:
    """(cmdlet, parameter text) of an MSExchange Management record's rendered text, or None."""
    found = _CMDLET.match(message)
    if not found:
        return None
    return found["cmdlet"], found["parameters"].strip()


def _pipeline_items(message: str) -> list[str] | None:
    """The three Data items of a PowerShell 800 record from its rendered text."""
    if not message.startswith(_PIPELINE_START):
        return None
    context = _CONTEXT_MARK.search(message, len(_PIPELINE_START))
    details = _DETAILS_MARK.search(message, context.end()) if context else None
    if not context or not details:
        return None
    return [message[len(_PIPELINE_START):context.start()], message[context.end():details.start()],
            message[details.end():]]


def _subject(message: str) -> dict[str, str]:
    """The Subject lines of a 1102's rendered text (``\tAccount Name:\tjsmith``), by EventData field name."""
    found: dict[str, str] = {}
    for line in message.splitlines():
        label, colon, value = line.partition(":")
        field = _SUBJECT_FIELDS.get(label.strip())
        if colon and field:
            found.setdefault(field, value.strip())
    return found


def recovered_data(channel: str, code: str, provider: str, message: str) -> dict | None:
    """``{"EventData": ...}`` or ``{"UserData": ...}`` as the EVTX record of this event holds it, or None."""
    channel, provider = channel.lower(), provider.lower()
    if channel == "msexchange management" and code in ("1", "6"):
        cmdlet = cmdlet_from_message(message)
        return {"EventData": {"Data": list(cmdlet)}} if cmdlet else None
    if channel == "windows powershell" and code == "800":
        items = _pipeline_items(message)
        return {"EventData": {"Data": items}} if items else None
    if channel == "system" and code == "104" and "eventlog" in provider:
        found = _LOG_CLEARED.match(message)
        return {"UserData": {"LogFileCleared": {"Channel": found["channel"]}}} if found else None
    if channel == "security" and code == "1102" and _AUDIT_CLEARED.match(message):
        subject = _subject(message)
        return {"UserData": {"LogFileCleared": subject}} if subject else None
    return None
