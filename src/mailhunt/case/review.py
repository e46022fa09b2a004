"""The analyst's review of a case: dispositions, notes, verification answers and the sign-off.

This is the only state ``mailhunt serve`` writes. Each action is one row of
the case database's ``analyst_actions`` table and one entry of
``custody.jsonl`` (``custody.record``), whose ``seq`` and hash the row keeps,
so a reviewer can match every decision shown in a report to the custody log.
Rows are only ever added: the latest row of a kind for a finding is its
current state, the earlier ones are its history.

The evidence and the findings are never changed: a disposition says what the
analyst concluded, beside what mailhunt decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from mailhunt.case import custody

ANALYST_TABLE = "analyst_actions"
ANALYST_DDL = f"""CREATE TABLE IF NOT EXISTS {ANALYST_TABLE} (
    seq BIGINT, time TIMESTAMP, action VARCHAR, finding_id VARCHAR, value VARCHAR, note VARCHAR,
    analyst VARCHAR, custody_seq BIGINT, custody_hash VARCHAR)"""

DISPOSITION = "disposition"
VERIFICATION_ANSWER = "verification-answer"
SIGNOFF = "sign-off"

# value -> how it reads
DISPOSITIONS = {
    "true_positive": "true positive",
    "benign_authorized": "benign, authorized",
    "false_positive": "false positive",
}
VERIFICATION_ANSWERS = {
    "confirmed": "the business confirmed it",
    "not_confirmed": "the business did not recognize it",
    "no_reply": "no reply yet",
}
MAX_NOTE = 4000
MAX_NAME = 200


class ReviewError(ValueError):
    """An analyst action that cannot be recorded as given (unknown value, missing name, note too long)."""


@dataclass(frozen=True)
class AnalystAction:
    seq: int
    time: datetime
    action: str
    finding_id: str | None
    value: str | None
    note: str | None
    analyst: str
    custody_seq: int
    custody_hash: str

    @property
    def label(self) -> str:
        """The value as it reads (``true positive``), or the value itself."""
        labels = DISPOSITIONS if self.action == DISPOSITION else VERIFICATION_ANSWERS
        return labels.get(self.value or "", self.value or "")


@dataclass(frozen=True)
class CaseReview:
    """Where the review of a case stands: the current disposition and verification answer of each finding, and
    the latest sign-off."""

    dispositions: dict[str, AnalystAction]
    verification_answers: dict[str, AnalystAction]
    signoff: AnalystAction | None

    @property
    def empty(self) -> bool:
        return not self.dispositions and not self.verification_answers and self.signoff is None


def has_review_table(db: duckdb.DuckDBPyConnection) -> bool:
    """Whether the case holds the table (a case no analyst has touched, opened read-only, does not)."""
    return db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
                      [ANALYST_TABLE]).fetchall()[0][0] > 0


def analyst_actions(db: duckdb.DuckDBPyConnection, finding_id: str | None = None) -> list[AnalystAction]:
    """Every recorded action (of one finding, when given), oldest first."""
    if not has_review_table(db):
        return []
    where, params = ("WHERE finding_id = ?", [finding_id]) if finding_id is not None else ("", [])
    rows = db.execute(f"""SELECT seq, time, action, finding_id, value, note, analyst, custody_seq, custody_hash
                          FROM {ANALYST_TABLE} {where} ORDER BY seq""", params).fetchall()
    return [AnalystAction(*row) for row in rows]


def case_review(db: duckdb.DuckDBPyConnection) -> CaseReview:
    dispositions: dict[str, AnalystAction] = {}
    answers: dict[str, AnalystAction] = {}
    signoff = None
    for entry in analyst_actions(db):
        if entry.action == DISPOSITION and entry.finding_id:
            dispositions[entry.finding_id] = entry
        elif entry.action == VERIFICATION_ANSWER and entry.finding_id:
            answers[entry.finding_id] = entry
        elif entry.action == SIGNOFF:
            signoff = entry
    return CaseReview(dispositions, answers, signoff)


def _checked(action: str, finding_id: str | None, value: str | None, note: str, analyst: str) -> None:
    if not analyst.strip():
        raise ReviewError("the analyst's name is required")
    if len(analyst) > MAX_NAME:
        raise ReviewError(f"the analyst's name is longer than {MAX_NAME} characters")
    if len(note) > MAX_NOTE:
        raise ReviewError(f"the note is longer than {MAX_NOTE} characters")
    if action == DISPOSITION and value not in DISPOSITIONS:
        raise ReviewError(f"a disposition is one of {', '.join(DISPOSITIONS)}")
    if action == VERIFICATION_ANSWER and value not in VERIFICATION_ANSWERS:
        raise ReviewError(f"a verification answer is one of {', '.join(VERIFICATION_ANSWERS)}")
    if action in (DISPOSITION, VERIFICATION_ANSWER) and not finding_id:
        raise ReviewError("the finding is required")
    if action not in (DISPOSITION, VERIFICATION_ANSWER, SIGNOFF):
        raise ReviewError(f"unknown action {action!r}")


def record_action(case_dir: Path, db: duckdb.DuckDBPyConnection, action: str, finding_id: str | None,
                  value: str | None, note: str, analyst: str) -> AnalystAction:
    """Record one analyst action: a custody entry, and a row of ``analyst_actions`` naming it.

    ``db`` is the case database opened for writing. The row is written in a
    transaction that commits only once the custody entry is on disk, so the
    table never holds a decision the custody log lacks."""
    _checked(action, finding_id, value, note, analyst)
    db.execute(ANALYST_DDL)
    db.execute("BEGIN TRANSACTION")
    try:
        seq = db.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {ANALYST_TABLE}").fetchall()[0][0]
        details = {"finding_id": finding_id, "value": value, "note": note, "analyst": analyst}
        entry = custody.record(case_dir, action, {k: v for k, v in details.items() if v is not None})
        when = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).replace(tzinfo=None)
        row = AnalystAction(seq, when, action, finding_id, value, note, analyst, entry["seq"], entry["hash"])
        db.execute(f"INSERT INTO {ANALYST_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [row.seq, row.time, row.action, row.finding_id, row.value, row.note, row.analyst,
                    row.custody_seq, row.custody_hash])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return row


def review_rows(review: CaseReview, findings: list[dict]) -> list[dict]:
    """One row per finding with a disposition or a verification answer, in the findings' order, for the reports:
    finding id, indicator, actor, disposition, answer, analyst, time, note, custody entry (raw values)."""
    rows = []
    for finding in findings:
        fid = str(finding.get("id"))
        disposition, answer = review.dispositions.get(fid), review.verification_answers.get(fid)
        if disposition is None and answer is None:
            continue
        latest = max((a for a in (disposition, answer) if a is not None), key=lambda a: a.seq)
        rows.append({"id": fid, "indicator": finding.get("indicator"), "actor": finding.get("actor"),
                     "disposition": disposition.label if disposition else "",
                     "answer": answer.label if answer else "", "analyst": latest.analyst,
                     "time": latest.time, "note": disposition.note if disposition else answer.note if answer else "",
                     "custody": ", ".join(f"#{a.custody_seq}" for a in (disposition, answer) if a is not None)})
    return rows
