"""Loading Sigma rules: the shipped ones (package data) and any the analyst adds.

A rule that should produce findings names its indicator in a top-level
``indicator:`` attribute (one word of ``INDICATORS``). Rules without one are
building blocks that correlation rules refer to. Example events for a rule
live beside it in ``<rule file stem>.examples.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

INDICATORS: tuple[str, ...] = (
    "mailbox_export",
    "export_request_removed",
    "export_then_deletion",
    "mailbox_purge",
    "bulk_item_deletion",
    "inbox_rule_hiding",
    "transport_rule_change",
    "audit_tampering",
    "new_app_mail_access",
    "mail_cmdlet_execution",
    "local_mail_store_tampering",
    "unix_mail_utility_deletion",
    "applescript_mail_deletion",
)

LEVEL_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class RuleLoadError(Exception):
    pass


@dataclass
class LoadedRule:
    rule: SigmaRule | SigmaCorrelationRule
    path: Path

    @property
    def id(self) -> str:
        return str(self.rule.id) if self.rule.id else (self.rule.name or self.path.stem)

    @property
    def title(self) -> str:
        return self.rule.title

    @property
    def level(self) -> str:
        return self.rule.level.name.lower() if self.rule.level else "medium"

    @property
    def indicator(self) -> str | None:
        return self.rule.custom_attributes.get("indicator")

    @property
    def is_correlation(self) -> bool:
        return isinstance(self.rule, SigmaCorrelationRule)

    @property
    def attack(self) -> list[str]:
        """ATT&CK technique ids from the rule's tags, e.g. ``T1070.008``."""
        found = []
        for tag in self.rule.tags:
            if tag.namespace == "attack" and tag.name[:1] == "t" and tag.name[1:2].isdigit():
                found.append(tag.name.upper())
        return found

    @property
    def is_shipped(self) -> bool:
        return self.path.resolve().is_relative_to(shipped_rules_dir().resolve())

    @property
    def examples_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".yml") + ".examples.yml")


def shipped_rules_dir() -> Path:
    return Path(str(resources.files("mailhunt") / "rules"))


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yml") if not p.name.endswith(".examples.yml"))


# libyaml's loader when PyYAML has it: the same documents, several times faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_documents(text: str) -> list:
    """Every YAML document of a rule file, as ``yaml.safe_load_all`` gives them."""
    return list(yaml.load_all(text, Loader=_YAML_LOADER))


def load_rules(directories: list[Path] | None = None) -> list[LoadedRule]:
    """Parse every rule file; references between rules are resolved across all of them."""
    directories = directories or [shipped_rules_dir()]
    loaded: list[LoadedRule] = []
    collections = []
    for directory in directories:
        for path in rule_files(directory):
            try:
                collection = SigmaCollection.from_dicts(yaml_documents(path.read_text(encoding="utf-8")),
                                                        resolve_references=False)
            except (SigmaError, ValueError, UnicodeDecodeError) as exc:
                raise RuleLoadError(f"{path}: {exc}") from exc
            for rule in collection.rules:
                loaded.append(LoadedRule(rule, path))
            collections.append(collection)
    try:
        SigmaCollection.merge(collections, resolve_references=True)
    except SigmaError as exc:
        raise RuleLoadError(f"rule reference cannot be resolved: {exc}") from exc
    for item in loaded:
        indicator = item.indicator
        if indicator is not None and indicator not in INDICATORS:
            raise RuleLoadError(f"{item.path}: indicator '{indicator}' is not one of {', '.join(INDICATORS)}")
    return loaded
