"""The processing pipeline that fits Sigma rules to mailhunt's event model.

Three jobs, in the order pySigma applies them:
1. map the field names that log-native rules use (``Operation``,
   ``Parameters``, ``CommandLine`` ...) onto event-model columns;
2. restrict each rule to the datasets its ``logsource`` stands for, so a
   PowerShell rule never runs over audit-log rows;
3. leave out records of system accounts (real audit exports are full of
   ``NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)``) unless the case
   configuration asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, FieldMappingTransformation

FIELD_MAPPING: dict[str, str | list[str]] = {
    "Operation": "event.action",
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
    "ParentImage": "process.parent.name",
    "Image": "process.executable",
    "TargetFilename": "file.path",
    "User": "user.name",
}


@dataclass(frozen=True)
class LogsourceDatasets:
    """Which event datasets a Sigma logsource stands for.

    ``actions``, when given, narrows a category to the events that are of it
    (an auditd ``unlinkat`` is a file deletion, not a process creation).
    """

    product: str | None
    service: str | None
    category: str | None
    datasets: tuple[str, ...]
    actions: tuple[str, ...] = ()


UNIX_PROCESS_ACTIONS = ("execve", "execveat", "exec", "command", "sudo_command")
UNIX_DELETE_ACTIONS = ("unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2")
UNIX_FILE_ACTIONS = (*UNIX_DELETE_ACTIONS, "truncate", "ftruncate", "open", "openat", "openat2", "creat", "write",
                     "create", "close")


# Exchange cmdlets are logged alike by the unified audit log and the Exchange
# admin audit log (Search-AdminAuditLog exports, the audit report XML):
# event.action is the cmdlet, params its parameters. So the m365 cmdlet rules
# also run on the admin audit log; rules keyed on UAL-only fields find nothing there.
CMDLET_DATASETS = ("m365.audit", "exchange.admin_audit")

LOGSOURCES: tuple[LogsourceDatasets, ...] = (
    LogsourceDatasets("m365", "audit", None, CMDLET_DATASETS),
    LogsourceDatasets("m365", "exchange", None, CMDLET_DATASETS),
    LogsourceDatasets("m365", "threat_management", None, ("m365.audit",)),
    LogsourceDatasets("azure", "auditlogs", None, ("m365.audit",)),
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


def datasets_for(logsource) -> tuple[str, ...]:
    """Datasets a rule's logsource covers; empty when no reader produces it."""
    found: list[str] = []
    for entry in LOGSOURCES:
        if entry.product and entry.product != logsource.product:
            continue
        if entry.service and entry.service != logsource.service:
            continue
        if entry.category and entry.category != logsource.category:
            continue
        found.extend(d for d in entry.datasets if d not in found)
    return tuple(found)


def _dataset_condition(entry: LogsourceDatasets) -> dict[str, list[str]]:
    condition = {"event.dataset": list(entry.datasets)}
    if entry.actions:
        condition["event.action"] = list(entry.actions)
    return condition


def build_pipeline(include_system_accounts: bool = False) -> ProcessingPipeline:
    items: list[ProcessingItem] = [
        ProcessingItem(identifier="mailhunt_field_mapping",
                       transformation=FieldMappingTransformation(FIELD_MAPPING)),
    ]
    for index, entry in enumerate(LOGSOURCES):
        items.append(ProcessingItem(
            identifier=f"mailhunt_logsource_{index}",
            transformation=AddConditionTransformation(_dataset_condition(entry), name=f"_mailhunt_dataset_{index}"),
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
