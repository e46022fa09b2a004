"""Loading Sigma rules: the shipped ones (package data) and any the analyst adds.

A rule that should produce findings names its indicator in a top-level
``indicator:`` attribute (one word of ``INDICATORS``). Rules without one are
building blocks that correlation rules refer to. Example events for a rule
live beside it in ``<rule file stem>.examples.yml``.

Rule files may come from strangers (``--rules DIR``): whatever is wrong with
one (not YAML, not UTF-8, not a mapping, not a Sigma rule, too large, not a
regular file, YAML aliases that expand a few lines into billions of values
or contain themselves) is a ``RuleLoadError`` of one line that names the file.
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
    """The rule files under ``directory``: every ``*.yml`` but examples files and folders."""
    return sorted(p for p in directory.rglob("*.yml") if not p.name.endswith(".examples.yml") and not p.is_dir())


# libyaml's loader when PyYAML has it: the same documents, several times faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The largest SigmaHQ rule is a few tens of kilobytes.
MAX_RULE_FILE_BYTES = 4 << 20


class UnsafeYAML(ValueError):
    """YAML that mailhunt does not take from a stranger."""


# Far more values than any Sigma rule holds; a few nested aliases ("billion laughs") hold billions.
MAX_EXPANDED_VALUES = 200_000


def expanded_size(document) -> int:
    """How many values ``document`` holds once every alias (``*name``) in it is expanded, as any
    consumer walking it sees them; raises ``UnsafeYAML`` for an alias that contains itself.

    Each mapping or list is counted once and its count reused wherever an alias repeats it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    waiting: list[tuple[object, bool]] = [(document, False)]
    while waiting:
        item, children_counted = waiting.pop()
        if not isinstance(item, dict | list):
            continue
        children = list(item.values()) if isinstance(item, dict) else item
        if children_counted:
            sizes[id(item)] = 1 + sum(sizes.get(id(child), 1) for child in children)
            open_nodes.discard(id(item))
        elif id(item) in open_nodes:
            raise UnsafeYAML("a YAML alias (*name) contains itself")
        elif id(item) not in sizes:
            open_nodes.add(id(item))
            waiting.append((item, True))
            waiting.extend((child, False) for child in children)
    return sizes.get(id(document), 1)


def yaml_documents(text: str) -> list:
    """Every YAML document of a rule file, as ``yaml.safe_load_all`` gives them; raises
    ``yaml.YAMLError`` for text that is not YAML and ``UnsafeYAML`` for a document that aliases
    expand beyond ``MAX_EXPANDED_VALUES`` values or into a cycle."""
    documents = list(yaml.load_all(text, Loader=_YAML_LOADER))
    for document in documents:
        if expanded_size(document) > MAX_EXPANDED_VALUES:
            raise UnsafeYAML(f"holds more than {MAX_EXPANDED_VALUES:,} values once its YAML aliases (*name) "
                             "are expanded")
    return documents


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own message spans several)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{problem}{where}"
    return _one_line(str(exc))


def read_rule_text(path: Path) -> str:
    """A rule file's text: a regular file of UTF-8 text, at most ``MAX_RULE_FILE_BYTES``."""
    if not path.is_file():
        raise RuleLoadError(f"{path}: not a regular file")
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_RULE_FILE_BYTES + 1)
    except OSError as exc:
        raise RuleLoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_RULE_FILE_BYTES:
        raise RuleLoadError(f"{path}: larger than {MAX_RULE_FILE_BYTES >> 20} MiB, too large for a rule file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleLoadError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc


def rule_documents(path: Path) -> list[dict]:
    """The YAML documents of a rule file, each a mapping (empty documents left out)."""
    try:
        documents = yaml_documents(read_rule_text(path))
    except yaml.YAMLError as exc:
        raise RuleLoadError(f"{path}: not valid YAML: {yaml_error_line(exc)}") from exc
    except UnsafeYAML as exc:
        raise RuleLoadError(f"{path}: {exc}") from exc
    except RecursionError as exc:
        raise RuleLoadError(f"{path}: YAML nested too deeply") from exc
    for number, document in enumerate(documents, start=1):
        if document is not None and not isinstance(document, dict):
            raise RuleLoadError(f"{path}: YAML document {number} is a {type(document).__name__}, "
                                "not a mapping (a Sigma rule)")
    return [d for d in documents if d is not None]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_rules(directories: list[Path] | None = None) -> list[LoadedRule]:
    """Parse every rule file; references between rules are resolved across all of them."""
    directories = directories or [shipped_rules_dir()]
    loaded: list[LoadedRule] = []
    collections = []
    for directory in directories:
        for path in rule_files(directory):
            documents = rule_documents(path)
            try:
                collection = SigmaCollection.from_dicts(documents, resolve_references=False)
            except (SigmaError, ValueError) as exc:
                raise RuleLoadError(f"{path}: {_one_line(str(exc))}") from exc
            except Exception as exc:  # pySigma meets odd shapes with any error; name the file
                raise RuleLoadError(f"{path}: not a valid Sigma rule ({type(exc).__name__}: "
                                    f"{_one_line(str(exc))})") from exc
            for rule in collection.rules:
                loaded.append(LoadedRule(rule, path))
            collections.append(collection)
    try:
        SigmaCollection.merge(collections, resolve_references=True)
    except SigmaError as exc:
        raise RuleLoadError(f"rule reference cannot be resolved: {_one_line(str(exc))}") from exc
    for item in loaded:
        indicator = item.indicator
        if indicator is not None and indicator not in INDICATORS:
            raise RuleLoadError(f"{item.path}: indicator '{indicator}' is not one of {', '.join(INDICATORS)}")
    return loaded
