"""A generated evidence set with every indicator: the records of every shipped rule's ``match`` examples,
written as the evidence files they stand for (``mailhunt.detect.examples``), in one folder.

A hunt gives its reader hints (``--year``, ``--user``) to every file, so the
cases' hints are gathered into one set for the hunt, and a case whose hints
disagree with those already gathered is left out; the organization's domains
of every case go into one ``mailhunt.toml``."""

from __future__ import annotations

from pathlib import Path

from mailhunt.detect.examples import ExampleFileError, _case_files, load_example_cases
from mailhunt.detect.rules import LoadedRule


def write_indicator_set(rules: list[LoadedRule], folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """Write the set into ``folder/evidence`` and its config to ``folder/mailhunt.toml``; returns both and the
    reader hints to hunt it with."""
    evidence = folder / "evidence"
    evidence.mkdir(parents=True)
    domains: set[str] = set()
    hints: dict[str, str] = {}
    for rule in rules:
        try:
            cases = load_example_cases(rule)
        except ExampleFileError:
            continue
        for number, case in enumerate(cases, start=1):
            if case.expect != "match" or any(hints.get(k, v) != v for k, v in case.hints.items()):
                continue
            hints.update(case.hints)
            domains.update(case.org_domains)
            for part, (data, _) in enumerate(_case_files(case), start=1):
                if case.file_name:
                    path = evidence / f"{rule.path.stem}-{number}" / case.file_name
                else:
                    kind = "log" if case.evidence is not None else "ndjson"
                    path = evidence / f"{rule.path.stem}-{number}-{part}.{kind}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    config = folder / "mailhunt.toml"
    config.write_text("[organization]\ndomains = [" + ", ".join(f'"{d}"' for d in sorted(domains)) + "]\n")
    return evidence, config, hints
