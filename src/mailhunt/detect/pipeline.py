"""The processing pipeline that fits Sigma rules to mailhunt's event model.

Three jobs, in the order pySigma applies them:
1. map the field names that log-native rules use (``Operation``,
   ``Parameters``, ``CommandLine`` ...) onto event-model columns;
2. restrict each rule to the datasets its ``logsource`` stands for, so a
   PowerShell rule never runs over audit-log rows; a Sigma category (such as
   ``process_creation``) also fixes the kind of event by ``event.action``;
3. leave out records of system accounts (real audit exports are full of
   ``NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)``) unless the case
   configuration asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
)

from mailhunt.sources.windows_events import DATASETS as WINDOWS_DATASETS
from mailhunt.sources.windows_events import REGISTRY_EVENT_TYPES

FIELD_MAPPING: dict[str, str | list[str]] = {
    "Operation": "event.action",
    "OperationName": "event.action",
    "ActivityDisplayName": "event.action",
    "properties.message": "event.action",
    "Operations": "event.action",
    "ActionType": "event.action",
    "UserId": "user.name",
    "UserIds": "user.name",
    "ClientIP": "source.ip",
    "ClientIPAddress": "source.ip",
    "Workload": "event.provider",
    "eventSource": "event.provider",
    "Parameters": "parameters",
    "Payload": "parameters",
    "ObjectId": "user.target.name",
    "AppId": "app.id",
    "ClientAppId": "app.id",
    "UserAgent": "user_agent.original",
    "Subject": "email.subject",
    "CommandLine": "process.command_line",
    "Image": "process.executable",
    "ParentImage": ["process.parent.executable", "process.parent.name"],
    "ParentCommandLine": "process.parent.command_line",
    "ProcessId": "process.pid",
    "ScriptBlockText": "powershell.file.script_block_text",
    "Path": "file.path",
    "TargetFilename": "file.path",
    "EventID": "event.code",
    "Provider_Name": "event.provider",
    "Channel": "winlog.channel",
    "Computer": "host.name",
    "EventRecordID": "winlog.record_id",
    "User": "user.name",
    "SubjectUserName": "user.name",
    "SubjectUserSid": "user.id",
    "TargetUserName": "user.target.name",
    "TargetObject": "registry.path",
    "Details": "registry.data.strings",
    "NewValue": "registry.data.strings",
    "EventType": "event.action",
    # System records' numbered insertion strings (Service Control Manager 7036: param1 the service, param2 its state)
    **{f"param{number}": f"params.param{number}" for number in range(1, 10)},
}


@dataclass(frozen=True)
class LogsourceDatasets:
    """Which event datasets a Sigma logsource stands for.

    ``actions``, when given, narrows a category to the events that are of it
    (an auditd ``unlinkat`` is a file deletion, not a process creation);
    ``codes`` does the same by event code (Windows EventID).
    """

    product: str | None
    service: str | None
    category: str | None
    datasets: tuple[str, ...]
    actions: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()

    def condition(self) -> dict[str, int | str | list[str]]:
        """The event-model condition a rule with this logsource gets (in ``AddConditionTransformation``'s terms)."""
        found: dict[str, int | str | list[str]] = {"event.dataset": list(self.datasets)}
        if self.actions:
            found["event.action"] = list(self.actions)
        if self.codes:
            found["event.code"] = list(self.codes)
        return found


UNIX_PROCESS_ACTIONS = ("execve", "execveat", "exec", "command", "sudo_command")
UNIX_DELETE_ACTIONS = ("unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2")
UNIX_FILE_ACTIONS = (*UNIX_DELETE_ACTIONS, "truncate", "ftruncate", "open", "openat", "openat2", "creat", "write",
                     "create", "close")


WINDOWS = "windows"

# Exchange cmdlets are logged alike by the unified audit log, the Exchange
# admin audit log (Search-AdminAuditLog exports, the audit report XML), the
# MSExchange Management event log and PowerShell module logging (4103):
# event.action is the cmdlet, params its parameters. So the m365 cmdlet rules
# also run on those datasets; rules keyed on UAL-only fields find nothing there.
CMDLET_DATASETS = ("m365.audit", "exchange.admin_audit", "windows.msexchange_management", "windows.powershell")

LOGSOURCES: tuple[LogsourceDatasets, ...] = (
    LogsourceDatasets("m365", "audit", None, CMDLET_DATASETS),
    LogsourceDatasets("m365", "exchange", None, CMDLET_DATASETS),
    LogsourceDatasets("m365", "threat_management", None, ("m365.audit",)),
    # Entra ID's own audit and sign-in logs (Sigma's azure/auditlogs and azure/signinlogs); the unified
    # audit log's copies of the same records keep their own names (trailing periods), so m365 rules read those.
    LogsourceDatasets("azure", "auditlogs", None, ("entra.audit",)),
    LogsourceDatasets("azure", "signinlogs", None, ("entra.signin",)),
    LogsourceDatasets(WINDOWS, None, None, WINDOWS_DATASETS),
    LogsourceDatasets(WINDOWS, "msexchange-management", None, ("windows.msexchange_management",)),
    LogsourceDatasets(WINDOWS, "powershell", None, ("windows.powershell",)),
    LogsourceDatasets(WINDOWS, "powershell-classic", None, ("windows.powershell",), codes=("400", "403", "600", "800")),
    LogsourceDatasets(WINDOWS, "security", None, ("windows.security",)),
    LogsourceDatasets(WINDOWS, "system", None, ("windows.system",)),
    LogsourceDatasets(WINDOWS, "sysmon", None, ("windows.sysmon",)),
    LogsourceDatasets(WINDOWS, None, "ps_script", ("windows.powershell",), actions=("script-block-logged",)),
    LogsourceDatasets(WINDOWS, None, "ps_module", ("windows.powershell",), codes=("4103",)),
    LogsourceDatasets(WINDOWS, None, "ps_classic_start", ("windows.powershell",), codes=("400",)),
    LogsourceDatasets(WINDOWS, None, "process_creation", ("windows.security", "windows.sysmon"),
                      actions=("process-created",)),
    LogsourceDatasets(WINDOWS, None, "file_event", ("windows.sysmon",), actions=("file-created",)),
    LogsourceDatasets(WINDOWS, None, "file_delete", ("windows.sysmon",), actions=("file-deleted",)),
    LogsourceDatasets(WINDOWS, None, "registry_set", ("windows.sysmon",), actions=("SetValue",)),
    LogsourceDatasets(WINDOWS, None, "registry_add", ("windows.sysmon",), actions=("CreateKey",)),
    LogsourceDatasets(WINDOWS, None, "registry_delete", ("windows.sysmon",), actions=("DeleteKey", "DeleteValue")),
    LogsourceDatasets(WINDOWS, None, "registry_rename", ("windows.sysmon",), actions=("RenameKey",)),
    LogsourceDatasets(WINDOWS, None, "registry_event", ("windows.sysmon",), actions=REGISTRY_EVENT_TYPES),
    LogsourceDatasets("exchange", "message_tracking", None, ("exchange.message_tracking", "m365.message_trace")),
    LogsourceDatasets("linux", "auditd", None, ("linux.auditd", "linux.auoms")),
    LogsourceDatasets("linux", "syslog", None, ("unix.syslog",)),
    LogsourceDatasets("macos", "syslog", None, ("unix.syslog",)),
    LogsourceDatasets("macos", "unifiedlog", None, ("macos.unified_log",)),
    LogsourceDatasets("macos", "eslogger", None, ("macos.eslogger",)),
    LogsourceDatasets("linux", None, "process_creation",
                      ("linux.auditd", "linux.auoms", "unix.shell_history", "unix.syslog"),
                      UNIX_PROCESS_ACTIONS),
    LogsourceDatasets("linux", None, "file_event", ("linux.auditd",), UNIX_FILE_ACTIONS),
    LogsourceDatasets("linux", None, "file_delete", ("linux.auditd",), UNIX_DELETE_ACTIONS),
    LogsourceDatasets("macos", None, "process_creation", ("macos.eslogger", "unix.shell_history", "unix.syslog"),
                      UNIX_PROCESS_ACTIONS),
    LogsourceDatasets("macos", None, "file_event", ("macos.eslogger",), UNIX_FILE_ACTIONS),
    LogsourceDatasets("macos", None, "file_delete", ("macos.eslogger",), UNIX_DELETE_ACTIONS),
)


def _matching_entries(logsource) -> list[LogsourceDatasets]:
    return [entry for entry in LOGSOURCES
            if (not entry.product or entry.product == logsource.product)
            and (not entry.service or entry.service == logsource.service)
            and (not entry.category or entry.category == logsource.category)]


def _datasets(entries: list[LogsourceDatasets]) -> tuple[str, ...]:
    found: list[str] = []
    for entry in entries:
        found.extend(d for d in entry.datasets if d not in found)
    return tuple(found)


def datasets_for(logsource) -> tuple[str, ...]:
    """Datasets a rule's logsource covers; empty when no reader produces it."""
    return _datasets(_matching_entries(logsource))


def most_specific_datasets(logsource) -> tuple[str, ...]:
    """The datasets of the most specific entries the logsource matches: for ``product: windows,
    category: ps_script`` the PowerShell log, not every Windows log that ``product: windows`` covers.
    Detection applies all matching entries' conditions together, which comes to the same; an export
    must name the one place the records are."""
    entries = _matching_entries(logsource)
    if not entries:
        return ()
    rank = max(bool(e.service) + bool(e.category) for e in entries)
    return _datasets([e for e in entries if bool(e.service) + bool(e.category) == rank])


def build_pipeline(include_system_accounts: bool = False) -> ProcessingPipeline:
    items: list[ProcessingItem] = [
        # pySigma only reads the mapping but types it as a dict keyed by str | None, invariant in the key.
        ProcessingItem(identifier="mailhunt_field_mapping",
                       transformation=FieldMappingTransformation(FIELD_MAPPING)),  # type: ignore[arg-type]
    ]
    for index, entry in enumerate(LOGSOURCES):
        items.append(ProcessingItem(
            identifier=f"mailhunt_logsource_{index}",
            transformation=AddConditionTransformation(entry.condition(), name=f"_mailhunt_dataset_{index}"),
            rule_conditions=[LogsourceCondition(product=entry.product, service=entry.service,
                                                category=entry.category)],
        ))
    if not include_system_accounts:
        items.append(ProcessingItem(
            identifier="mailhunt_exclude_system_accounts",
            transformation=AddConditionTransformation({"user.type": "system"}, negated=True,
                                                      name="_mailhunt_not_system"),
        ))
    return ProcessingPipeline(name="mailhunt event model", priority=20, items=items)
