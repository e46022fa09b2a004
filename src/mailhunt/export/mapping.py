"""From a rule (and the rules a correlation refers to) to a pySigma pipeline for one platform.

A field in a rule goes through two names: mailhunt's own pipeline maps
log-native Sigma names (``Operation``, ``Parameters`` ...) onto event-model
columns (``mailhunt.detect.pipeline.FIELD_MAPPING``), and the platform file
maps the column to the platform's field for the rule's dataset. A field that
has no platform counterpart is collected with the reason, and the rule is
reported as not exportable rather than exported with a field that would
never match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.processing.conditions import IsSigmaRuleCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    SetStateTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from mailhunt.detect.pipeline import FIELD_MAPPING, most_specific_datasets
from mailhunt.events import COLUMN_NAMES
from mailhunt.export.backends import PARAMS_STATE, SCOPE_STATE, TABLE_STATE
from mailhunt.export.platforms import DatasetMapping, Platform, model_facts

PARAMS_PREFIX = "params."


class NotExportable(Exception):
    """The rule cannot be expressed on the platform; the message says why."""


@dataclass
class UnitMapping:
    """Field names and pipeline for one exported unit (a rule, or a correlation with its rules)."""

    fields: dict[str, str | list[str]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetMapping] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _detection_fields(detection: SigmaDetection | SigmaDetectionItem) -> set[str]:
    if isinstance(detection, SigmaDetectionItem):
        return {detection.field} if detection.field else set()
    found: set[str] = set()
    for item in detection.detection_items:
        found |= _detection_fields(item)
    return found


def rule_fields(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    """Field names a rule itself uses (a correlation: group-by, aliases and the aggregated field)."""
    if isinstance(rule, SigmaCorrelationRule):
        found = set(rule.group_by or [])
        for alias in rule.aliases:
            found |= set(alias.mapping.values())
        # an extended (boolean) condition of a temporal correlation aggregates no field
        fieldref = rule.condition.fieldref if isinstance(rule.condition, SigmaCorrelationCondition) else None
        found |= set(fieldref if isinstance(fieldref, list) else [fieldref] if fieldref else [])
        aliases = {alias.alias for alias in rule.aliases}
        return found - aliases
    found = set()
    for detection in rule.detection.detections.values():
        found |= _detection_fields(detection)
    return found


def _logsource_text(rule: SigmaRule) -> str:
    ls = rule.logsource
    return ", ".join(f"{k}={v}" for k, v in (("product", ls.product), ("service", ls.service),
                                             ("category", ls.category)) if v) or "(empty)"


def dataset_mapping(rule: SigmaRule, platform: Platform) -> DatasetMapping:
    datasets = most_specific_datasets(rule.logsource)
    if not datasets:
        raise NotExportable(f"logsource {_logsource_text(rule)} is not one mailhunt has a field mapping for")
    known = [platform.datasets[d] for d in datasets if d in platform.datasets]
    if not known:
        raise NotExportable(f"mailhunt has no field mapping for dataset {', '.join(datasets)} "
                            f"(logsource {_logsource_text(rule)}) on this platform")
    if len(known) > 1:
        # Rules on Exchange cmdlets also run on the Windows logs that record cmdlets; a platform
        # keeps those apart, and the export targets the rule's own product.
        own = [d for d in known if d.dataset.split(".")[0] == rule.logsource.product]
        if len(own) == 1:
            return own[0]
        raise NotExportable(f"logsource {_logsource_text(rule)} stands for several datasets "
                            f"({', '.join(d.dataset for d in known)}) that the platform keeps apart")
    return known[0]


def _platform_field(name: str, dataset: DatasetMapping) -> tuple[str | list[str] | None, str | None, str]:
    """(platform field, parameter name if computed, why not) for one rule field."""
    facts = model_facts()
    model = FIELD_MAPPING.get(name, name)
    if isinstance(model, list):
        return None, None, f"{name} (mailhunt maps it to several columns)"
    is_parameter = model.lower().startswith(PARAMS_PREFIX)
    derived = facts.derived.get(model.lower() if is_parameter else model)
    if derived:
        return None, None, f"{name} ({derived})"
    if is_parameter:
        parameter = model[len(PARAMS_PREFIX):].lower()
        if dataset.parameter is None:
            return None, None, f"{name} (cmdlet parameters are not fields there)"
        if "{Name}" in dataset.parameter:
            spelled = facts.parameter_names.get(parameter)
            if spelled is None:
                return None, None, (f"{name} (field names are case-sensitive there and the parameter's "
                                    f"spelling is not in mailhunt's parameter_names list)")
            return dataset.parameter.format(Name=spelled), None, ""
        return dataset.parameter.format(name=parameter), parameter, ""
    if model in dataset.fields:
        return dataset.fields[model], None, ""
    if model not in COLUMN_NAMES:
        return None, None, f"{name} (neither an event-model column nor a name mailhunt maps to one)"
    return None, None, f"{name} (the platform mapping has no field for event-model column {model})"


def map_unit(rules: list[SigmaRule | SigmaCorrelationRule], platform: Platform) -> UnitMapping:
    """The field mapping for a rule and the rules it refers to; raises NotExportable naming every gap."""
    unit = UnitMapping()
    detection_rules = [r for r in rules if isinstance(r, SigmaRule)]
    per_rule = {id(r): dataset_mapping(r, platform) for r in detection_rules}
    for mapping in per_rule.values():
        if mapping not in unit.datasets:
            unit.datasets.append(mapping)
    if len(unit.datasets) > 1:
        raise NotExportable("the correlated rules read different datasets "
                            f"({', '.join(d.dataset for d in unit.datasets)})")
    missing: list[str] = []
    for rule in rules:
        dataset = per_rule.get(id(rule)) or unit.datasets[0]
        for name in sorted(rule_fields(rule)):
            target, parameter, why = _platform_field(name, dataset)
            if target is None:
                if why not in missing:
                    missing.append(why)
                continue
            unit.fields[name] = target
            if parameter is not None and isinstance(target, str):
                unit.params[target] = parameter
    if missing:
        raise NotExportable(f"fields the platform does not have: {'; '.join(missing)}")
    return unit


def build_pipeline(unit: UnitMapping, platform: Platform) -> ProcessingPipeline:
    dataset = unit.datasets[0]
    # pySigma only reads the mapping but types it as a dict keyed by str | None, invariant in the key.
    fields = FieldMappingTransformation(unit.fields)  # type: ignore[arg-type]
    items = [ProcessingItem(identifier="mailhunt_export_fields", transformation=fields)]
    if dataset.conditions:
        items.append(ProcessingItem(identifier="mailhunt_export_dataset",
                                    transformation=AddConditionTransformation(dict(dataset.conditions)),
                                    rule_conditions=[IsSigmaRuleCondition()]))
    for key, value in (("index", dataset.index), (SCOPE_STATE, dataset.scope), (TABLE_STATE, dataset.table),
                       (PARAMS_STATE, dict(unit.params))):
        if value:
            items.append(ProcessingItem(identifier=f"mailhunt_export_state_{key}",
                                        transformation=SetStateTransformation(key, value)))
    return ProcessingPipeline(name=f"mailhunt export: {platform.title} {dataset.dataset}", priority=20, items=items)
