"""One case hunted into several times: every output describes the whole case, counts are the database's."""

import hashlib
import re
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from mailhunt.case.custody import verify_chain
from mailhunt.case_document import OUTPUT_FILES
from mailhunt.cli import app
from tests.corpus import PUBLIC

runner = CliRunner()
PURVIEW = PUBLIC / "huntress-ctf-2023" / "purview.csv"
EVTX = PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"
AUDITD = Path(__file__).parent / "fixtures" / "unix" / "audit.log"
OUTPUTS = OUTPUT_FILES


def run(*args):
    return runner.invoke(app, [*map(str, args)])


def event_count(case: Path) -> int:
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def added(output: str) -> int:
    """The new events the terminal summary says the hunt added."""
    match = re.search(r"Hunt \d+ added (\d+) new events", output)
    assert match, output
    return int(match.group(1))


def document(case: Path) -> dict:
    return orjson.loads((case / "findings.json").read_bytes())


@pytest.fixture(scope="module")
def three_hunts(tmp_path_factory):
    """purview.csv, then an EVTX file, then an auditd log into one case; the output and event count after each."""
    case = tmp_path_factory.mktemp("multi") / "case"
    steps = []
    for evidence in (PURVIEW, EVTX, AUDITD):
        before = event_count(case) if (case / "case.duckdb").exists() else 0
        result = run("hunt", evidence, "--out", case)
        assert result.exit_code == 0, result.output
        steps.append((result.output, before, event_count(case)))
    return case, steps


def test_every_output_lists_every_input_with_its_hunt(three_hunts):
    case, steps = three_hunts
    doc = document(case)
    assert [(Path(i["path"]).name, i["hunt"]) for i in doc["inputs"]] == [
        ("purview.csv", 1), (EVTX.name, 2), ("audit.log", 3)]
    assert [h["id"] for h in doc["hunts"]] == [1, 2, 3]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h["started_at"]) for h in doc["hunts"])
    markdown = (case / "report.md").read_text()
    html = (case / "report.html").read_text()
    assert "3 inputs" in markdown and "Gathered in 3 hunts" in markdown and "Gathered in 3 hunts" in html
    for entry in doc["inputs"]:
        assert entry["sha256"] in markdown and entry["sha256"] in html
        row = next(line for line in markdown.splitlines() if entry["sha256"] in line)
        assert row.startswith(f"| {entry['hunt']} |")
    last_output = steps[-1][0]
    for name in ("purview.csv", EVTX.name, "audit.log"):
        assert name in last_output


def test_every_cited_file_is_an_input_of_the_case(three_hunts):
    case, _ = three_hunts
    doc = document(case)
    listed = {i["sha256"] for i in doc["inputs"]}
    hiding = [f for f in doc["findings"] if f["indicator"] == "inbox_rule_hiding"]
    assert hiding, "the purview.csv finding of hunt 1 is still in the case after hunts 2 and 3"
    cited = {s["sha256"] for f in doc["findings"] for e in f["evidence"] for s in [e, *e["sources"]]}
    assert cited <= listed


def test_new_events_printed_are_what_the_database_gained(three_hunts):
    case, steps = three_hunts
    doc = document(case)
    for number, (output, before, after) in enumerate(steps, start=1):
        assert after > before
        assert added(output) == after - before
        hunt = doc["hunts"][number - 1]
        assert (hunt["events_before"], hunt["events_after"], hunt["new_events"]) == (before, after, after - before)
        assert sum(i["new_events"] for i in doc["inputs"] if i["hunt"] == number) == after - before


def test_hunting_the_same_file_again_adds_nothing_and_says_so(three_hunts, tmp_path):
    case = tmp_path / "case"
    shutil.copytree(three_hunts[0], case)
    before = event_count(case)
    result = run("hunt", EVTX, "--out", case)
    assert result.exit_code == 0, result.output
    assert added(result.output) == 0 and event_count(case) == before
    doc = document(case)
    assert doc["hunts"][-1]["new_events"] == 0 and doc["hunts"][-1]["inputs"] == 0
    assert [Path(i["path"]).name for i in doc["inputs"]] == ["purview.csv", EVTX.name, "audit.log"]


def test_report_rewrites_the_same_outputs_from_the_case(three_hunts):
    case, _ = three_hunts
    written = {name: (case / name).read_bytes() for name in OUTPUTS}
    for name in OUTPUTS:
        (case / name).unlink()
    result = run("report", case)
    assert result.exit_code == 0, result.output
    assert {name: (case / name).read_bytes() for name in OUTPUTS} == written
    assert {"findings.ocsf.jsonl", "timeline.csv", "timeline.jsonl", "iocs.csv", "iocs.stix.json"} <= set(OUTPUTS)
    assert orjson.loads(written["findings.json"])["logging_gaps"] and written["timeline.csv"].count(b"\n") > 1
    chain = verify_chain(case)
    assert not chain.problems
    last = chain.entries[-1].entry
    assert last["action"] == "report"
    assert last["details"]["written"] == {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}


def test_a_timeline_export_is_in_the_custody_log(three_hunts, tmp_path):
    case, _ = three_hunts
    out = tmp_path / "slice.jsonl"
    result = run("timeline", case, "--format", "jsonl", "--out", out)
    assert result.exit_code == 0, result.output
    chain = verify_chain(case)
    assert not chain.problems
    last = chain.entries[-1].entry
    assert last["action"] == "export"
    assert last["details"]["export"] == "timeline" and last["details"]["to"] == str(out)
    assert last["details"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert last["details"]["entries"] == len(out.read_bytes().splitlines())


def test_a_record_seen_in_two_files_keeps_both_sources(tmp_path):
    lines = PURVIEW.read_text(encoding="utf-8").splitlines(keepends=True)
    rules = [line for line in lines[1:] if "New-InboxRule" in line]
    assert len(rules) >= 10
    # Both copies in one folder, the second named to sort first: the copy read first must stay the event's
    # source all the same, wherever the test runs.
    first = tmp_path / "evidence" / "purview.csv"
    first.parent.mkdir()
    shutil.copyfile(PURVIEW, first)
    again = tmp_path / "evidence" / "a_inbox_rules_again.csv"
    again.write_text(lines[0] + "".join(rules), encoding="utf-8")
    case = tmp_path / "case"
    assert run("hunt", first, "--out", case).exit_code == 0
    before = event_count(case)
    result = run("hunt", again, "--out", case)
    assert result.exit_code == 0, result.output
    assert added(result.output) == 0 and event_count(case) == before
    doc = document(case)
    [entry] = [i for i in doc["inputs"] if i["path"] == str(again)]
    assert (entry["records"], entry["new_events"], entry["hunt"]) == (len(rules), 0, 2)
    [hiding] = [f for f in doc["findings"] if f["indicator"] == "inbox_rule_hiding"]
    for evidence in hiding["evidence"]:
        assert evidence["source"] == str(first)
        assert [s["source"] for s in evidence["sources"]] == [str(again), str(first)]
        locators = {s["source"]: s["locator"] for s in evidence["sources"]}
        assert locators[str(first)] == evidence["locator"]
        assert 2 <= int(locators[str(again)].removeprefix("line ")) <= len(rules) + 1


def test_rejection_caps_are_stated_where_the_numbers_are(tmp_path):
    lines = PURVIEW.read_text(encoding="utf-8").splitlines(keepends=True)
    damaged = tmp_path / "damaged.csv"
    bad = "".join(f"bad-{n},9/20/2023 4:05:03 AM,8,Op,user,\"{{not json\",,\n" for n in range(250))
    damaged.write_text(lines[0] + lines[1] + bad, encoding="utf-8")
    case = tmp_path / "case"
    result = run("hunt", damaged, "--out", case)
    assert result.exit_code == 0, result.output
    doc = document(case)
    with duckdb.connect(str(case / "case.duckdb"), read_only=True) as db:
        kept = db.execute("SELECT count(*) FROM rejections").fetchone()[0]
    assert kept == 250 and len(doc["rejections"]) == 200
    assert doc["rejections_count"] == {"total": 250, "kept_in_case": 250, "listed": 200}
    assert "showing 200 of 250; the case database keeps 250" in (case / "report.md").read_text()
    assert "showing 200 of 250; the case database keeps 250" in (case / "report.html").read_text()
    assert "showing 20 of this hunt's 250 rejected records" in result.output


def test_a_hunt_resumed_after_ctrl_c_counts_what_the_database_gained(tmp_path, monkeypatch):
    import mailhunt.hunt as hunt_module

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for source in (PURVIEW, EVTX):
        shutil.copy(source, evidence / source.name)
    real_load = hunt_module.load_evidence_file
    loaded = []

    def ctrl_c_at_the_second_file(*args, **kwargs):
        if loaded:
            raise KeyboardInterrupt
        loaded.append(real_load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(hunt_module, "load_evidence_file", ctrl_c_at_the_second_file)
    case = tmp_path / "case"
    assert run("hunt", evidence, "--out", case).exit_code == 130
    stored = event_count(case)
    assert stored > 0
    monkeypatch.undo()
    result = run("hunt", evidence, "--out", case)
    assert result.exit_code == 0, result.output
    after = event_count(case)
    second = re.search(r"Hunt 2 added (\d+) new events, and counted (\d+) new events of the files a stopped "
                       r"earlier hunt had stored", result.output)
    assert second, result.output
    assert int(second.group(2)) == stored and int(second.group(1)) == after - stored
    doc = document(case)
    assert [(i["hunt"], i["new_events"]) for i in doc["inputs"]] == [(1, stored), (2, after - stored)]
    assert [(h["id"], h["inputs"], h["new_events"], h["events_after"]) for h in doc["hunts"]] == [
        (1, 1, stored, None), (2, 1, after - stored, after)]


def test_a_case_from_before_hunts_were_recorded_is_upgraded_in_place(tmp_path):
    case = tmp_path / "case"
    assert run("hunt", PURVIEW, "--out", case).exit_code == 0
    with duckdb.connect(str(case / "case.duckdb")) as db:  # as an earlier mailhunt left it
        for table in ("hunts", "event_sources", "report_parts"):
            db.execute(f"DROP TABLE {table}")
        db.execute("""CREATE TABLE old_inputs (path VARCHAR, sha256 VARCHAR, format VARCHAR, records BIGINT,
                      rejected BIGINT, new_events BIGINT, skipped_reason VARCHAR, locator_unit VARCHAR,
                      PRIMARY KEY (path, sha256))""")
        db.execute("""INSERT INTO old_inputs SELECT path, sha256, format, records, rejected, new_events,
                      skipped_reason, locator_unit FROM inputs""")
        db.execute("DROP TABLE inputs")
        db.execute("ALTER TABLE old_inputs RENAME TO inputs")
        old_findings = []
        for finding_id, indicator, stored in db.execute("SELECT id, indicator, document FROM findings").fetchall():
            finding = orjson.loads(stored)
            for evidence in finding["evidence"]:
                del evidence["sources"]
            old_findings.append((finding_id, indicator, orjson.dumps(finding).decode()))
        db.execute("DROP TABLE findings")
        db.execute("CREATE TABLE findings (id VARCHAR PRIMARY KEY, indicator VARCHAR, document JSON)")
        db.executemany("INSERT INTO findings VALUES (?, ?, ?)", old_findings)
    result = run("report", case)
    assert result.exit_code == 0, result.output
    assert "1 input of 1 hunt, " in result.output
    doc = document(case)
    assert [(Path(i["path"]).name, i["hunt"]) for i in doc["inputs"]] == [("purview.csv", 1)]
    assert doc["hunts"][0]["id"] == 1 and doc["hunts"][0]["started_at"] is None
    [hiding] = [f for f in doc["findings"] if f["indicator"] == "inbox_rule_hiding"]
    assert all([s["source"] for s in e["sources"]] == [str(PURVIEW)] for e in hiding["evidence"])
    before = event_count(case)
    result = run("hunt", EVTX, "--out", case)
    assert result.exit_code == 0, result.output
    assert added(result.output) == event_count(case) - before
    assert [i["hunt"] for i in document(case)["inputs"]] == [1, 2]
