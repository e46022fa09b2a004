"""Convert rules one by one to a target query language and write them with an index.

Every rule given is in the result, exported or not: a rule that cannot be
expressed on the target (a field the platform does not have, a logsource
without a mapping, a correlation type the backend rejects) carries the reason.
Correlation rules are converted together with the rules they refer to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sigma.backends.elasticsearch import ESQLBackend, LuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from mailhunt import __version__
from mailhunt.detect.mitre_data import use_shipped_mitre_data
from mailhunt.detect.rules import LoadedRule
from mailhunt.export.backends import (
    MailhuntEqlBackend,
    MailhuntKustoBackend,
    MailhuntSplunkBackend,
)
from mailhunt.export.mapping import NotExportable, build_pipeline, map_unit
from mailhunt.export.platforms import load_platform

INDEX_SCHEMA = "mailhunt.export/1"
PARAMETER_NOTE = ("cmdlet parameters are matched where the record lists them as Name/Value pairs (Exchange "
                  "cmdlets); Security & Compliance records that log them as one text line are not matched")


@dataclass(frozen=True)
class Target:
    name: str
    platform: str
    backend: type
    extension: str
    language: str


TARGETS: dict[str, Target] = {
    "splunk": Target("splunk", "splunk", MailhuntSplunkBackend, "spl", "Splunk SPL"),
    "esql": Target("esql", "elastic", ESQLBackend, "esql", "Elasticsearch ES|QL"),
    "eql": Target("eql", "elastic", MailhuntEqlBackend, "eql", "Elasticsearch EQL"),
    "lucene": Target("lucene", "elastic", LuceneBackend, "lucene", "Elasticsearch Lucene query"),
    "kusto": Target("kusto", "sentinel", MailhuntKustoBackend, "kql", "Kusto (Microsoft Sentinel)"),
}


@dataclass
class ExportResult:
    id: str
    name: str | None
    title: str
    kind: str
    level: str
    indicator: str | None
    rule_file: str
    exported: bool
    query: str | None = None
    file: str | None = None
    reason: str | None = None
    dataset: str | None = None
    source: str | None = None
    location: str | None = None
    fields: dict[str, str | list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _kind(rule: LoadedRule) -> str:
    return f"correlation ({rule.rule.type.name.lower()})" if isinstance(rule.rule, SigmaCorrelationRule) else "rule"


def _lookup(rules: list[LoadedRule]) -> dict[str, LoadedRule]:
    found: dict[str, LoadedRule] = {}
    for rule in rules:
        found[rule.id] = rule
        if rule.rule.name:
            found[rule.rule.name] = rule
    return found


def _unit(rule: LoadedRule, by_ref: dict[str, LoadedRule]) -> list[LoadedRule]:
    """The rule and, for a correlation, every rule it refers to (transitively), the rule first."""
    unit, pending = [rule], [rule]
    while pending:
        current = pending.pop()
        if not isinstance(current.rule, SigmaCorrelationRule):
            continue
        if current.rule.rules is None:
            raise NotExportable("a correlation without a rules list is not supported")
        for reference in current.rule.rules:
            target = by_ref.get(str(reference.reference))
            if target is None:
                raise NotExportable(f"refers to rule {reference.reference}, which is not in the rule set")
            if target not in unit:
                unit.append(target)
                pending.append(target)
    return unit


def _fresh(unit: list[LoadedRule]):
    """Parse the unit's rules again: pipelines change the rules they are applied to."""
    wanted = {r.id for r in unit}
    parsed: list[SigmaRule | SigmaCorrelationRule | SigmaFilter] = []  # what SigmaCollection takes
    for path in dict.fromkeys(r.path for r in unit):
        collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), resolve_references=False)
        parsed.extend(r for r in collection.rules if (str(r.id) if r.id else (r.name or path.stem)) in wanted)
    collection = SigmaCollection(parsed)
    collection.resolve_rule_references()
    primary = next(r for r in parsed if (str(r.id) if r.id else (r.name or unit[0].path.stem)) == unit[0].id)
    return collection, primary


_CONTEXT = re.compile(r"\s*\(while [^)]*\)\s*$")


def _reason(exc: Exception) -> str:
    text = _CONTEXT.sub("", str(exc).strip()) or type(exc).__name__
    return text if isinstance(exc, (SigmaError, NotExportable, NotImplementedError)) else f"{type(exc).__name__}: {text}"


def _backend_objection(target: Target, unit: list[LoadedRule]) -> str | None:
    """What the backend says about the rule's structure (e.g. a correlation type), fields aside."""
    if not unit[0].is_correlation:
        return None
    collection, _ = _fresh(unit)
    try:
        target.backend().convert(collection)
    except NotImplementedError as exc:
        return _reason(exc)
    except Exception:  # noqa: BLE001 - other failures here come from the unmapped fields, already reported
        return None
    return None


def _notes(rule: LoadedRule, unit_fields: Mapping[str, str | list[str]],
           referenced_by: dict[str, list[str]]) -> list[str]:
    notes = []
    users = referenced_by.get(rule.id)
    if users and not rule.indicator:
        notes.append(f"building block of {', '.join(sorted(users))}: no finding on its own")
    if any(name.lower().startswith("params.") for name in unit_fields):
        notes.append(PARAMETER_NOTE)
    return notes


def export_rule(rule: LoadedRule, target: Target, by_ref: dict[str, LoadedRule],
                referenced_by: dict[str, list[str]]) -> ExportResult:
    platform = load_platform(target.platform)
    result = ExportResult(id=rule.id, name=rule.rule.name, title=rule.title, kind=_kind(rule), level=rule.level,
                          indicator=rule.indicator, rule_file=rule.path.name, exported=False)
    try:
        unit = _unit(rule, by_ref)
        collection, primary = _fresh(unit)
        try:
            mapping = map_unit(list(collection.rules), platform)
        except NotExportable as exc:
            objection = _backend_objection(target, unit)
            raise NotExportable(f"{exc}; also: {objection}" if objection else str(exc)) from exc
        dataset = mapping.datasets[0]
        result.dataset, result.source = dataset.dataset, dataset.source
        result.location = dataset.index or dataset.table or dataset.scope
        result.fields = dict(sorted(mapping.fields.items()))
        backend = target.backend(processing_pipeline=build_pipeline(mapping, platform))
        backend.convert(collection)
        queries = primary.get_conversion_result()
    except Exception as exc:  # noqa: BLE001 - any rule, however odd, is reported with the reason, never a traceback
        result.reason = f"not supported by {target.name}: {_reason(exc)}"
        return result
    if not queries:
        result.reason = f"not supported by {target.name}: the backend produced no query"
        return result
    result.exported = True
    result.query = "\n\n".join(str(q).strip("\n") for q in queries) + "\n"
    result.notes = _notes(rule, result.fields, referenced_by)
    return result


def export_rules(rules: list[LoadedRule], target_name: str) -> list[ExportResult]:
    """Every rule of ``rules`` converted for the target (or the reason it cannot be), in a stable order."""
    use_shipped_mitre_data()
    target = TARGETS[target_name]
    by_ref = _lookup(rules)
    referenced_by: dict[str, list[str]] = {}
    for rule in rules:
        if isinstance(rule.rule, SigmaCorrelationRule) and rule.rule.rules is not None:
            for reference in rule.rule.rules:
                if (base := by_ref.get(str(reference.reference))) is not None:
                    referenced_by.setdefault(base.id, []).append(rule.rule.name or rule.id)
    results = [export_rule(rule, target, by_ref, referenced_by) for rule in rules]
    return sorted(results, key=lambda r: (r.name or "", r.id))


def _file_stem(result: ExportResult) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", result.name or result.id)


class ExportDirError(Exception):
    pass


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportDirError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        index = out / "index.json"
        if not index.is_file():
            raise ExportDirError(f"{out}: folder is not empty and holds no earlier export (index.json)")
        try:
            earlier = json.loads(index.read_text(encoding="utf-8"))
            files = [r["file"] for r in earlier.get("rules", []) if r.get("file")]
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise ExportDirError(f"{index}: not an export index ({exc})") from exc
        for name in files + ["index.json", "index.md"]:
            stale = out / Path(name).name
            if stale.is_file():
                stale.unlink()
    out.mkdir(parents=True, exist_ok=True)


def index_document(results: list[ExportResult], target_name: str) -> dict:
    target = TARGETS[target_name]
    platform = load_platform(target.platform)
    rules = []
    for result in results:
        entry = asdict(result)
        entry.pop("query")
        rules.append(entry)
    exported = sum(1 for r in results if r.exported)
    return {"schema": INDEX_SCHEMA, "generator": f"mailhunt {__version__}", "target": target.name,
            "language": target.language, "platform": platform.title,
            "summary": {"rules": len(results), "exported": exported, "not_supported": len(results) - exported},
            "rules": rules}


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def index_markdown(results: list[ExportResult], target_name: str) -> str:
    document = index_document(results, target_name)
    lines = [f"# mailhunt rules exported to {document['language']} ({document['platform']})", "",
             (f"{document['summary']['exported']} of {document['summary']['rules']} rules exported; "
              f"{document['summary']['not_supported']} not supported (reason below)."), "",
             "| rule | kind | level | result |", "|---|---|---|---|"]
    for r in results:
        outcome = f"[{r.file}]({r.file})" if r.exported else _markdown_cell(r.reason or "")
        if r.exported and r.notes:
            outcome += " — " + _markdown_cell("; ".join(r.notes))
        lines.append(f"| {_markdown_cell(r.name or r.id)}: {_markdown_cell(r.title)} | {r.kind} | {r.level} | {outcome} |")
    return "\n".join(lines) + "\n"


def write_export(results: list[ExportResult], target_name: str, out: Path) -> None:
    """One query file per exported rule, plus index.json and index.md listing every rule."""
    _prepare(out)
    target = TARGETS[target_name]
    used: set[str] = set()
    for result in results:
        if not result.exported:
            continue
        stem = _file_stem(result)
        if stem in used:
            stem = f"{stem}-{result.id}"
        used.add(stem)
        result.file = f"{stem}.{target.extension}"
        (out / result.file).write_text(result.query or "", encoding="utf-8")
    (out / "index.json").write_text(json.dumps(index_document(results, target_name), indent=2, ensure_ascii=False)
                                    + "\n", encoding="utf-8")
    (out / "index.md").write_text(index_markdown(results, target_name), encoding="utf-8")
