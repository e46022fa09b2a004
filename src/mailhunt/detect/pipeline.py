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
}


@dataclass(frozen=True)
class LogsourceDatasets:
    """Which event datasets a Sigma logsource stands for."""

    product: str | None
    service: str | None
    category: str | None
    datasets: tuple[str, ...]


LOGSOURCES: tuple[LogsourceDatasets, ...] = (
    LogsourceDatasets("m365", "audit", None, ("m365.audit",)),
    LogsourceDatasets("m365", "exchange", None, ("m365.audit",)),
    LogsourceDatasets("m365", "threat_management", None, ("m365.audit",)),
    LogsourceDatasets("azure", "auditlogs", None, ("m365.audit",)),
    # The Exchange admin audit log records the same cmdlets with the same
    # parameters as the unified audit log's Exchange admin records.
    LogsourceDatasets("m365", "audit", None, ("exchange.admin_audit",)),
    LogsourceDatasets("m365", "exchange", None, ("exchange.admin_audit",)),
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


def _datasets_by_logsource() -> dict[tuple[str | None, str | None, str | None], tuple[str, ...]]:
    """LOGSOURCES entries for the same logsource merged, so that adding an entry widens a rule, never ANDs."""
    merged: dict[tuple[str | None, str | None, str | None], tuple[str, ...]] = {}
    for entry in LOGSOURCES:
        key = (entry.product, entry.service, entry.category)
        known = merged.get(key, ())
        merged[key] = known + tuple(d for d in entry.datasets if d not in known)
    return merged


def build_pipeline(include_system_accounts: bool = False) -> ProcessingPipeline:
    items: list[ProcessingItem] = [
        ProcessingItem(identifier="mailhunt_field_mapping",
                       transformation=FieldMappingTransformation(FIELD_MAPPING)),
    ]
    for index, (key, datasets) in enumerate(_datasets_by_logsource().items()):
        product, service, category = key
        items.append(ProcessingItem(
            identifier=f"mailhunt_logsource_{index}",
            transformation=AddConditionTransformation({"event.dataset": list(datasets)},
                                                      name=f"_mailhunt_dataset_{index}"),
            rule_conditions=[LogsourceCondition(product=product, service=service, category=category)],
        ))
    if not include_system_accounts:
        items.append(ProcessingItem(
            identifier="mailhunt_exclude_system_accounts",
            transformation=AddConditionTransformation({"user.type": "system"}, negated=True,
                                                      name="_mailhunt_not_system"),
        ))
    return ProcessingPipeline(name="mailhunt event model", priority=20, items=items)
