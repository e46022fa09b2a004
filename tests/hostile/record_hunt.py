"""Running a whole hunt on crafted hostile evidence, and reading back what it kept and rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mailhunt.config import Config
from mailhunt.hunt import hunt


@dataclass
class Outcome:
    document: dict
    records: int
    rejected: int
    rejections: list[tuple[str, str]]
    kept: list[int]
    notes: list[str]


def hunt_file(evidence: Path, out: Path, hints: dict[str, str] | None = None) -> Outcome:
    """Hunt one evidence file into ``out``; the hunt must finish and write findings.json.

    ``kept`` is the locators (line or record numbers) of the events stored from it."""
    result = hunt([evidence], out, Config(), read_hints=hints)
    document = json.loads((out / "findings.json").read_text())
    assert document["schema"] == "mailhunt.findings/1"
    [summary] = result.inputs
    assert summary.skipped_reason is None, summary.skipped_reason
    with duckdb.connect(str(out / "case.duckdb"), read_only=True) as db:
        kept = [row[0] for row in db.execute(
            """SELECT "log.record" FROM events WHERE "event.provider" IS DISTINCT FROM 'mailhunt'
               ORDER BY 1""").fetchall()]
    return Outcome(document, summary.records, summary.rejected,
                   [(r.locator, r.reason) for r in summary.rejections], kept, summary.notes)
