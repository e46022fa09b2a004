"""The Spark engine finds what the DuckDB engine finds: the same findings.json, ids, evidence and decisions.

One Spark session (local[2]) serves the module; the tests share its hunts.
They need pyspark (``pip install 'mailhunt[spark]'``) and Java 17+, which
.ci/run installs; without them they are skipped, saying which is missing.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from unittest import mock

import orjson
import pytest
import sqlglot
from sqlglot import expressions

from mailhunt import hunt as hunt_module
from mailhunt.case_queries import EVENT_QUESTIONS, ResolvedEvents
from mailhunt.config import load_config
from mailhunt.detect.engine import run_rules
from mailhunt.detect.rules import load_rules
from mailhunt.hunt import hunt
from mailhunt.spark.session import SparkUnavailable, check_requirements, start_session
from mailhunt.triage import QUESTION_MODULES, legitimate_admin_activity, triage
from tests.indicator_set import write_indicator_set

REPO = Path(__file__).resolve().parent.parent
INCIDENT = REPO / "examples" / "incident-2026-10"

try:
    check_requirements()
    MISSING = None
except SparkUnavailable as exc:
    MISSING = str(exc)

pytestmark = [pytest.mark.skipif(MISSING is not None, reason=MISSING or ""), pytest.mark.xdist_group("spark")]

# Fields that describe this run rather than what it found: where the case lies.
RUN_FIELDS = ("evidence_preservation",)


@pytest.fixture(scope="session")
def spark():
    session = start_session("local[2]")
    yield session
    session.stop()


# The rules each engine ran in the last hunt of each set: rule id -> events matched (``DetectionRun.matched``).
RAN: dict[tuple[str, str], dict[str, int]] = {}
# The questions over the events triage asked in the last hunt of each set, by (set, engine): what
# ``ResolvedEvents.asked`` noted (engine name, question), and each ``ask`` with its answer.
ASKED: dict[tuple[str, str], list[tuple[str, str]]] = {}
ANSWERS: dict[tuple[str, str], list[tuple[str, list[str], list[tuple]]]] = {}
# What triage read of the events in the case database itself while the Spark engine was to answer: (relations, SQL).
BYPASSED: dict[tuple[str, str], list[tuple[set[str], str]]] = {}

# The questions whose rows are read by column name (the others by position: an unnamed expression's name is the
# engine's own).
NAMED_QUESTIONS = {"events_of", "messages_between", "persons_events"}
# Registered questions neither set reaches, and why (remove one once a set reaches it: the test then requires it).
UNREACHED = {"records_containing": "asked only for an [authorized].automation entry with script_sha256 that no "
                                   "event's parameters name; neither set configures one"}
# The case database's relations that hold or derive from every event (``case_queries.relation_plan``).
EVENT_RELATIONS = {"events", "resolved_events", "detection_events", "people_events", "people_events_kept",
                   "app_first_seen", "scope_start", "family_tenants", "external_recipients"}


@cache
def _hunts(name: str, workdir: str) -> dict[str, dict]:
    """findings.json of the DuckDB and the Spark engine over one evidence set; what each ran goes to RAN."""
    from mailhunt.spark import spark_rule_engine

    base = Path(workdir) / name
    if name == "incident":
        evidence, config_path, hints = INCIDENT, INCIDENT / "mailhunt.toml", {}
    else:
        evidence, config_path, hints = write_indicator_set(load_rules(), base / "set")
    config = load_config(config_path)
    documents = {}
    for engine, factory in (("duckdb", None), ("spark", spark_rule_engine())):
        out = base / engine
        with mock.patch.object(hunt_module, "run_rules", _recording(name, engine)), \
                mock.patch.object(hunt_module, "triage", _watching(name, engine)), \
                mock.patch.object(ResolvedEvents, "ask", _answering(name, engine)):
            hunt([evidence], out, config, read_hints=hints, copy_evidence=False, rule_engine=factory)
        documents[engine] = orjson.loads((out / "findings.json").read_bytes())
    return documents


def _recording(name: str, engine: str):
    def run(*args, **kwargs):
        done = run_rules(*args, **kwargs)
        RAN[(name, engine)] = dict(done.matched)
        return done
    return run


class EventReadWatch:
    """The case database's connection, noting each statement that reads one of ``EVENT_RELATIONS``."""

    def __init__(self, db):
        self.db = db
        self.reads: list[tuple[set[str], str]] = []

    def _note(self, sql) -> None:
        try:
            read = {table.name for table in sqlglot.parse_one(str(sql), read="duckdb").find_all(expressions.Table)}
        except sqlglot.errors.SqlglotError:
            read = {"(SQL that does not parse)"}
        if read & EVENT_RELATIONS or "(SQL that does not parse)" in read:
            self.reads.append((read, " ".join(str(sql).split())[:200]))

    def execute(self, sql, *args, **kwargs):
        self._note(sql)
        return self.db.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self._note(sql)
        return self.db.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.db, name)


def _watching(name: str, engine: str):
    """``triage``, with the case database watched: under the Spark engine, no question may read the events there."""
    def run(findings, ctx, **kwargs):
        resolved = ctx.store.resolved
        watch = EventReadWatch(resolved.db)
        if engine == "spark":
            resolved.db = watch
        try:
            triage(findings, ctx, **kwargs)
        finally:
            resolved.db = watch.db
        ASKED[(name, engine)] = list(resolved.asked)
        BYPASSED[(name, engine)] = watch.reads
    return run


def _answering(name: str, engine: str):
    asking = ResolvedEvents.ask

    def ask(self, question, sql, params=(), inputs=None):
        names, rows = asking(self, question, sql, params, inputs)
        ANSWERS.setdefault((name, engine), []).append((question, names, rows))
        return names, rows
    return ask


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-hunts")
    yield str(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _comparable(document: dict) -> dict:
    """The document without what differs between two runs: the run's own fields and each hunt's start time."""
    kept = {key: value for key, value in document.items() if key not in RUN_FIELDS}
    kept["hunts"] = [{**h, "started_at": None} for h in document.get("hunts") or []]
    return kept


def _assert_same(documents: dict[str, dict]) -> None:
    duck, spark = (_comparable(documents[e]) for e in ("duckdb", "spark"))
    assert duck["skipped_rules"] == [] and spark["skipped_rules"] == []
    assert [f["id"] for f in spark["findings"]] == [f["id"] for f in duck["findings"]]
    for mine, theirs in zip(spark["findings"], duck["findings"], strict=True):
        assert mine == theirs, f"finding {theirs['id']} ({theirs['indicator']}) differs between the engines"
    assert spark == duck


def test_example_incident_same_findings_on_both_engines(spark, workdir):
    documents = _hunts("incident", workdir)
    assert len(documents["duckdb"]["findings"]) >= 10
    assert any(f["escalate"] for f in documents["duckdb"]["findings"])
    _assert_same(documents)


def test_every_indicator_same_findings_on_both_engines(spark, workdir):
    documents = _hunts("every-indicator", workdir)
    shipped = {rule.indicator for rule in load_rules() if rule.indicator}
    assert {f["indicator"] for f in documents["duckdb"]["findings"]} == shipped
    _assert_same(documents)


def test_every_rule_and_triage_step_ran_on_both_engines(spark, workdir):
    """Each rule of the registry ran on both engines and matched the same number of events; each triage
    question and L1 step answered every finding of both."""
    documents = _hunts("every-indicator", workdir)
    duck, spark_ran = RAN[("every-indicator", "duckdb")], RAN[("every-indicator", "spark")]
    for rule in load_rules():
        assert rule.id in duck and rule.id in spark_ran, f"{rule.title} did not run on both engines"
        assert spark_ran[rule.id] == duck[rule.id], f"{rule.title} matched differently on the engines"
    assert sum(1 for count in duck.values() if count) >= len(duck) * 3 // 4, "the set exercises most rules"
    questions = {module.NAME for module in QUESTION_MODULES} | {legitimate_admin_activity.NAME}
    steps = {step["step"] for f in documents["duckdb"]["findings"] for step in f["l1"]}
    assert {"sign_ins", "password_changes", "correlated_findings"} <= steps
    for engine, document in documents.items():
        for finding in document["findings"]:
            assert set(finding["answers"]) == questions, f"{engine}: {finding['id']} misses a question"
            assert {step["step"] for step in finding["l1"]} <= steps
            assert finding["decision"], f"{engine}: {finding['id']} has no escalation decision"


def test_every_triage_question_ran_on_both_engines_with_the_same_answers(spark, workdir):
    """Each question triage asks of the events (``case_queries.EVENT_QUESTIONS``) was run by the engine that ran
    the rules, both engines asked the same questions in the same order and got the same rows, and under Spark
    no triage step read the events in the case database instead."""
    asked_anywhere: set[str] = set()
    for name in ("incident", "every-indicator"):
        _hunts(name, workdir)
        duck, spark_asked = ASKED[(name, "duckdb")], ASKED[(name, "spark")]
        assert {engine for engine, _ in duck} == {"DuckDB"} and {engine for engine, _ in spark_asked} == {"Spark"}
        assert [q for _, q in spark_asked] == [q for _, q in duck], f"{name}: the engines asked different questions"
        asked_anywhere |= {q for _, q in duck}
        assert BYPASSED[(name, "spark")] == [], f"{name}: triage read the events outside the Spark engine"
        duck_answers, spark_answers = ANSWERS[(name, "duckdb")], ANSWERS[(name, "spark")]
        assert len(spark_answers) == len(duck_answers)
        for (question, names, rows), (_, spark_names, spark_rows) in zip(duck_answers, spark_answers, strict=True):
            if question in NAMED_QUESTIONS:
                assert spark_names == names, f"{name}: {question} has other column names on Spark"
            assert spark_rows == rows, f"{name}: {question} answered differently on Spark"
    assert EVENT_QUESTIONS - asked_anywhere == set(UNREACHED), f"never asked: {sorted(EVENT_QUESTIONS - asked_anywhere)}"



def test_a_case_with_no_events_hunts_on_spark_as_on_duckdb(spark, workdir):
    """A case whose evidence holds no event writes no Parquet partition: Spark still gets the columns."""
    from mailhunt.spark import spark_rule_engine

    evidence = Path(workdir) / "empty" / "audit.ndjson"
    evidence.parent.mkdir(parents=True)
    evidence.write_text('{"CreationTime":"yesterday","Id":"x","Operation":"HardDelete"}\n')  # rejected: no time
    documents = {}
    for engine, factory in (("duckdb", None), ("spark", spark_rule_engine())):
        out = Path(workdir) / f"empty-{engine}"
        result = hunt([evidence], out, load_config(None), copy_evidence=False, rule_engine=factory)
        assert result.inputs[0].rejected == 1 and result.findings == []
        documents[engine] = orjson.loads((out / "findings.json").read_bytes())
    assert _comparable(documents["spark"]) == _comparable(documents["duckdb"])
