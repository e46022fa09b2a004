"""The platform field mappings (``platforms/*.yml``) as typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class DatasetMapping:
    """Where one mailhunt dataset lives on a platform and what its fields are called there."""

    dataset: str
    source: str
    fields: dict[str, str | list[str]]
    parameter: str | None
    conditions: dict[str, str] = field(default_factory=dict)
    scope: str | None = None
    table: str | None = None
    index: str | None = None


@dataclass(frozen=True)
class Platform:
    name: str
    title: str
    datasets: dict[str, DatasetMapping]


@dataclass(frozen=True)
class ModelFacts:
    """What all platforms share: cmdlet parameter spellings and the fields mailhunt derives itself."""

    parameter_names: dict[str, str]
    derived: dict[str, str]


def _read(name: str) -> dict:
    return yaml.safe_load((resources.files("mailhunt.export") / "platforms" / name).read_text(encoding="utf-8"))


@cache
def load_platform(name: str) -> Platform:
    document = _read(f"{name}.yml")
    datasets = {
        dataset: DatasetMapping(dataset=dataset, source=entry["source"], fields=dict(entry.get("fields") or {}),
                                parameter=entry.get("parameter"), conditions=dict(entry.get("conditions") or {}),
                                scope=entry.get("scope"), table=entry.get("table"), index=entry.get("index"))
        for dataset, entry in (document.get("datasets") or {}).items()
    }
    return Platform(document["name"], document["title"], datasets)


@cache
def model_facts() -> ModelFacts:
    document = _read("model.yml")
    return ModelFacts({name.lower(): name for name in document["parameter_names"]}, dict(document["derived"]))
