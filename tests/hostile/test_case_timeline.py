"""The case timeline (timeline.jsonl/.csv, ``mailhunt timeline``) and the indicators (iocs.csv, iocs.stix.json, the
reports' section), on the bundled example incident, the Huntress sample and a hostile copy of the example."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pyarrow as pa
import pytest
import stix2
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator
from typer.testing import CliRunner

from mailhunt import __version__
from mailhunt.case.timeline import timeline_csv
from mailhunt.case_queries import orjson_escapes_sql
from mailhunt.cli import app
from mailhunt.config import ConfigError, load_config
from mailhunt.csv_cells import (
    FORMULA_TRIGGERS,
    csv_bytes,
    csv_line_sql,
    neutralized,
    neutralized_sql,
)
from mailhunt.store import CaseStore
from tests.corpus import EXAMPLES, PUBLIC

runner = CliRunner()
EXAMPLE = EXAMPLES / "incident-2026-10"
ATTACKER_IP = "185.220.101.47"
HOSTILE_RULE = '=HYPERLINK("http://x","y")'
HOSTILE_SUBJECT = "<img src=x onerror=alert(1)>"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def _hunt(evidence, out, *extra):
    result = runner.invoke(app, ["hunt", str(evidence), "--out", str(out), *map(str, extra)])
    assert result.exit_code == 0, result.output
    return result


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


@pytest.fixture(scope="module")
def example_case(tmp_path_factory):
    out = tmp_path_factory.mktemp("timeline") / "case"
    _hunt(EXAMPLE / "purview_audit_export.csv", out, "--config", EXAMPLE / "mailhunt.toml")
    return out


@pytest.fixture(scope="module")
def hostile_case(tmp_path_factory):
    """The example with j.doe's hidden inbox rule renamed to a spreadsheet formula and the subject of one of the
    mails he purged turned into HTML."""
    folder = tmp_path_factory.mktemp("hostile")
    lines = (EXAMPLE / "purview_audit_export.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    rule_json = json.dumps(HOSTILE_RULE).replace('"', '""')
    changed = 0
    for number, line in enumerate(lines):
        if line.startswith("79e69b7b-e9d8-4584-990a-ba15ac5ab001,"):  # New-InboxRule named "."
            lines[number] = line.replace('""Name"",""Value"":"".""', f'""Name"",""Value"":{rule_json}')
        elif line.startswith("e8e446bd-ec41-4d68-9e8f-612814ab334b,"):  # a HardDelete by j.doe
            lines[number] = line.replace("Microsoft account security alert", HOSTILE_SUBJECT)
        changed += lines[number] != line
    assert changed == 2
    evidence = folder / "purview_audit_export.csv"
    evidence.write_text("".join(lines), encoding="utf-8")
    out = folder / "case"
    _hunt(evidence, out, "--config", EXAMPLE / "mailhunt.toml")
    return out


# ---------------------------------------------------------------- timeline.jsonl / timeline.csv


def test_example_timeline_is_timesketch_jsonl_in_time_order_with_finding_ids(example_case):
    entries = _jsonl(example_case / "timeline.jsonl")
    findings = {f["id"]: f for f in json.loads((example_case / "findings.json").read_text())["findings"]}
    assert len(entries) > sum(len(f["evidence"]) for f in findings.values()) // 2
    times = []
    for entry in entries:
        for field in ("message", "datetime", "timestamp_desc"):
            assert isinstance(entry[field], str) and entry[field], (field, entry)
        assert ISO_Z.match(entry["datetime"]), entry["datetime"]
        moment = datetime.fromisoformat(entry["datetime"])
        assert moment.utcoffset() == timedelta(0)
        assert entry["timestamp"] == int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        assert entry["finding_ids"] and set(entry["finding_ids"]) <= set(findings)
        for finding_id in entry["finding_ids"]:  # within the finding's window of 24 hours (the default)
            finding = findings[finding_id]
            first = datetime.fromisoformat(finding["first_seen"])
            last = datetime.fromisoformat(finding["last_seen"])
            assert first - timedelta(hours=24) <= moment <= last + timedelta(hours=24)
        times.append((moment, entry["event_id"]))
    assert times == sorted(times)
    assert len({event for _, event in times}) == len(times)


def test_every_finding_event_is_in_the_timeline_under_its_finding(example_case):
    entries = _jsonl(example_case / "timeline.jsonl")
    findings = json.loads((example_case / "findings.json").read_text())["findings"]
    belongs = {(e["event_id"], f) for e in entries for f in e["finding_ids"]}
    for finding in findings:
        for event in finding["evidence"]:
            assert (event["event_id"], finding["id"]) in belongs, (finding["id"], event)
        count = sum(1 for e in entries if finding["id"] in e["finding_ids"])
        assert finding["timeline_ref"] == {"files": ["timeline.csv", "timeline.jsonl"], "entries": count}


def test_timeline_brings_in_the_events_around_the_findings_from_the_whole_case(example_case):
    """t.nguyen's transport-rule change is one event; the timeline adds his sign-ins and mail of that day."""
    entries = _jsonl(example_case / "timeline.jsonl")
    findings = json.loads((example_case / "findings.json").read_text())["findings"]
    finding = next(f for f in findings if f["actor"] == "t.nguyen@fabrikam-labs.com")
    his = [e for e in entries if finding["id"] in e["finding_ids"]]
    assert finding["event_count"] == 1 and len(his) > 1
    assert {"UserLoggedIn", "Send"} <= {e["action"] for e in his}


def test_timeline_csv_holds_the_same_entries(example_case):
    rows = _csv(example_case / "timeline.csv")
    entries = _jsonl(example_case / "timeline.jsonl")
    header, body = rows[0], rows[1:]
    assert header[:3] == ["datetime", "timestamp_desc", "message"]
    assert [r[header.index("event_id")] for r in body] == [e["event_id"] for e in entries]
    assert [r[header.index("finding_ids")].split() for r in body] == [e["finding_ids"] for e in entries]


def test_the_timeline_is_kept_one_entry_a_row_and_reports_rewrite_it_byte_for_byte(example_case, tmp_path):
    """The timeline grows with the events of the findings' people and hosts (most of a large EVTX file): kept as
    one JSON value it made the case database allocate hundreds of MiB at once and fail. Each entry is a row, and
    ``mailhunt report`` (the same case, also one an earlier mailhunt saved as a single part) writes the same files."""
    case = tmp_path / "case"
    shutil.copytree(example_case, case)
    lines = (case / "timeline.jsonl").read_bytes().splitlines()
    csv_before = (case / "timeline.csv").read_bytes()
    db = duckdb.connect(str(case / "case.duckdb"))
    try:
        rows = db.execute("SELECT entry FROM timeline_entries ORDER BY position").fetchall()
        assert [text.encode() for (text,) in rows] == lines and len(lines) > 10
        assert db.execute("SELECT count(*) FROM report_parts WHERE name = 'timeline'").fetchone() == (0,)
        db.execute("INSERT INTO report_parts VALUES ('timeline', ?)",
                   ["[" + ",".join(text for (text,) in rows) + "]"])
        db.execute("DELETE FROM timeline_entries")
    finally:
        db.close()
    (case / "timeline.jsonl").unlink()
    (case / "timeline.csv").unlink()
    assert runner.invoke(app, ["report", str(case)]).exit_code == 0
    assert (case / "timeline.jsonl").read_bytes().splitlines() == lines
    assert (case / "timeline.csv").read_bytes() == csv_before


def test_timeline_hours_is_configurable(tmp_path):
    config = tmp_path / "mailhunt.toml"
    config.write_text((EXAMPLE / "mailhunt.toml").read_text() + "\n", encoding="utf-8")
    text = config.read_text()
    text = text.replace("[tuning]", "[tuning]\ntimeline_hours = 1") if "[tuning]" in text \
        else text + "\n[tuning]\ntimeline_hours = 1\n"
    config.write_text(text, encoding="utf-8")
    assert load_config(config).timeline_hours == 1
    _hunt(EXAMPLE / "purview_audit_export.csv", tmp_path / "case", "--config", config)
    narrow = _jsonl(tmp_path / "case" / "timeline.jsonl")
    findings = {f["id"]: f for f in json.loads((tmp_path / "case" / "findings.json").read_text())["findings"]}
    for entry in narrow:
        moment = datetime.fromisoformat(entry["datetime"])
        assert any(datetime.fromisoformat(findings[f]["first_seen"]) - timedelta(hours=1) <= moment
                   <= datetime.fromisoformat(findings[f]["last_seen"]) + timedelta(hours=1)
                   for f in entry["finding_ids"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[tuning]\ntimeline_hours = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="timeline_hours"):
        load_config(bad)


# ---------------------------------------------------------------- mailhunt timeline


def test_timeline_command_slices_by_actor_and_time(example_case):
    result = runner.invoke(app, ["timeline", str(example_case), "--actor", "T.Nguyen@Fabrikam-Labs.com",
                                 "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert entries and all("t.nguyen@fabrikam-labs.com" in (e["actor"], e["actor_logged"], e["target"])
                           for e in entries)
    whole = _jsonl(example_case / "timeline.jsonl")
    assert len(entries) < len(whole)

    since, until = "2026-10-13T23:30:00Z", "2026-10-14T00:00:00Z"
    result = runner.invoke(app, ["timeline", str(example_case), "--since", since, "--until", until])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
    times = [r[0] for r in rows[1:]]
    expected = [e["datetime"] for e in whole if since <= e["datetime"] <= until]
    assert times == expected and times


def test_timeline_command_writes_a_file(example_case, tmp_path):
    target = tmp_path / "slice.jsonl"
    result = runner.invoke(app, ["timeline", str(example_case), "--format", "jsonl", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == (example_case / "timeline.jsonl").read_bytes()


@pytest.mark.parametrize("when", ["2026-10-13T23:00:00", "2026-10-13T23:00:00+02:00", "yesterday"])
def test_timeline_command_refuses_a_time_that_is_not_utc_with_a_z(example_case, when):
    result = runner.invoke(app, ["timeline", str(example_case), "--since", when])
    assert result.exit_code == 2
    assert "--since" in result.output and "Z" in result.output


def test_timeline_command_refuses_a_folder_without_a_case(tmp_path):
    result = runner.invoke(app, ["timeline", str(tmp_path)])
    assert result.exit_code == 2 and "not a case folder" in result.output


# ---------------------------------------------------------------- hunt summary filters, --version


def test_hunt_summary_lists_only_escalated_or_severe_findings(tmp_path):
    findings_of = None
    for flags, name in ((["--escalated-only"], "esc"), (["--min-severity", "critical"], "crit"), ([], "all")):
        result = _hunt(EXAMPLE / "purview_audit_export.csv", tmp_path / name, "--config", EXAMPLE / "mailhunt.toml",
                       *flags)
        findings_of = json.loads((tmp_path / name / "findings.json").read_text())["findings"]
        for finding in findings_of:
            listed = finding["id"] in result.stdout
            if name == "esc":
                assert listed == finding["escalate"], finding["id"]
            elif name == "crit":
                assert listed == (finding["severity"] == "critical"), finding["id"]
            else:
                assert listed
    assert findings_of


def test_hunt_refuses_an_unknown_severity(tmp_path):
    result = runner.invoke(app, ["hunt", str(EXAMPLE / "purview_audit_export.csv"), "--out", str(tmp_path / "c"),
                                 "--min-severity", "severe"])
    assert result.exit_code == 2 and "--min-severity" in result.output


def test_version_option():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"mailhunt {__version__}"


# ---------------------------------------------------------------- indicators


def test_example_indicators_name_the_attacker_address_with_country_and_network(example_case):
    iocs = json.loads((example_case / "findings.json").read_text())["iocs"]
    attacker = next(i for i in iocs if i["kind"] == "ip" and i["value"] == ATTACKER_IP)
    assert attacker["country"] == "DE" and attacker["network"] and attacker["escalated"]
    assert ATTACKER_IP in (example_case / "report.md").read_text()
    assert ATTACKER_IP in (example_case / "report.html").read_text()
    rows = _csv(example_case / "iocs.csv")
    assert ["ip", ATTACKER_IP, "DE"] == rows[[r[1] for r in rows].index(ATTACKER_IP)][:3]
    kinds = {i["kind"] for i in iocs}
    assert {"ip", "user_agent", "app_id", "rule_name"} <= kinds


def test_indicators_are_drawn_only_from_events_that_hold_any(example_case, tmp_path):
    """A host's log-cleared finding holds one event per record (200,000 on a large EVTX file) and none of them
    names an address, agent, application, rule or recipient: they are not fetched one by one to find nothing.
    The example's events that do hold indicators still come, in time order."""
    out = tmp_path / "evtx"
    _hunt(PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx", out)
    with CaseStore(out / "case.duckdb") as store:
        events = [e for (e,) in store.db.execute('SELECT "event.id" FROM events').fetchall()]
        store.resolved.ensure()
        assert len(events) > 50
        assert store.resolved.indicator_rows(pa.table({"finding": ["f"] * len(events), "event_id": events})) == []
    with CaseStore(example_case / "case.duckdb", read_only=True) as store:
        events = [e for (e,) in store.db.execute('SELECT "event.id" FROM events').fetchall()]
        rows = store.resolved.indicator_rows(pa.table({"finding": ["f"] * len(events), "event_id": events}))
    assert 0 < len(rows) < len(events) and any(r["ip"] == ATTACKER_IP for r in rows)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert all(r["ip"] or r["user_agent"] or r["app_id"] or r["rule_name"] or r["recipients"] or r["forwarded_to"]
               for r in rows)


def test_huntress_attacker_address_is_in_the_report_text(tmp_path):
    _hunt(PUBLIC / "huntress-ctf-2023" / "purview.csv", tmp_path / "case")
    assert "185.73.124.135" in (tmp_path / "case" / "report.md").read_text()
    assert "185.73.124.135" in (tmp_path / "case" / "report.html").read_text()


def test_stix_bundle_validates_and_is_deterministic(example_case, tmp_path):
    data = (example_case / "iocs.stix.json").read_text()
    bundle = stix2.parse(data)
    iocs = json.loads((example_case / "findings.json").read_text())["iocs"]
    assert len(bundle.objects) == len(iocs)
    for indicator in bundle.objects:
        assert indicator.type == "indicator" and indicator.spec_version == "2.1"
        assert run_validator(indicator.pattern, stix_version="2.1") == []
        assert indicator.created == indicator.modified == indicator.valid_from
    patterns = {o.pattern for o in bundle.objects}
    assert f"[ipv4-addr:value = '{ATTACKER_IP}']" in patterns
    _hunt(EXAMPLE / "purview_audit_export.csv", tmp_path / "again", "--config", EXAMPLE / "mailhunt.toml")
    for name in ("iocs.stix.json", "iocs.csv", "timeline.jsonl", "timeline.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (example_case / name).read_bytes(), name


# ---------------------------------------------------------------- hostile strings


def _no_cell_is_a_formula(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS), cell


def test_hostile_rule_name_and_subject_are_inert_in_csv(hostile_case):
    timeline = _csv(hostile_case / "timeline.csv")
    iocs = _csv(hostile_case / "iocs.csv")
    _no_cell_is_a_formula(timeline)
    _no_cell_is_a_formula(iocs)
    header = timeline[0]
    assert "'" + HOSTILE_RULE in [r[header.index("rule_name")] for r in timeline[1:]]
    assert HOSTILE_SUBJECT in [r[header.index("subject")] for r in timeline[1:]]
    assert ["rule_name", "'" + HOSTILE_RULE] in [r[:2] for r in iocs]
    entries = _jsonl(hostile_case / "timeline.jsonl")  # the data keeps the exact strings
    assert HOSTILE_RULE in {e["rule_name"] for e in entries}
    assert HOSTILE_SUBJECT in {e["subject"] for e in entries}


def test_hostile_rule_name_is_a_quoted_literal_in_stix(hostile_case):
    bundle = stix2.parse((hostile_case / "iocs.stix.json").read_text())
    indicator = next(o for o in bundle.objects if HOSTILE_RULE in o.name)
    assert indicator.pattern == "[x-mailhunt-mail-rule:name = '=HYPERLINK(\"http://x\",\"y\")']"
    assert run_validator(indicator.pattern, stix_version="2.1") == []


def test_hostile_strings_are_inert_in_the_reports(hostile_case):
    markdown = (hostile_case / "report.md").read_text()
    html = (hostile_case / "report.html").read_text()
    assert HOSTILE_SUBJECT not in markdown and HOSTILE_SUBJECT not in html
    assert "<img" not in html
    for line in markdown.splitlines():
        assert not line.startswith(tuple("=+-@")) or line.startswith("- "), line
    assert f"`{HOSTILE_RULE}`" in markdown  # the indicators table shows it verbatim, in a code span
    assert "&quot;http://x&quot;" in html or "&#34;http://x&#34;" in html


# ---------------------------------------------------------------- the neutralizing rule itself


@given(st.text())
def test_every_csv_cell_reads_back_as_the_value_or_quoted_value(value):
    rows = list(csv.reader(io.StringIO(csv_bytes(["v"], [[value]]).decode("utf-8"), newline="")))
    cell = rows[1][0] if len(rows) > 1 else ""
    assert cell == neutralized(value)
    assert not cell.startswith(FORMULA_TRIGGERS)
    assert cell == ("'" + value if value.startswith(FORMULA_TRIGGERS) else value)


@settings(deadline=None)  # a database connection an example: no time limit on a shared machine
@given(st.text(), st.sampled_from(["", "x", "=1+2", 'a,"b"', "-\r\n", "\t"]))
def test_csv_lines_the_database_writes_are_the_lines_csv_bytes_writes(value, other):
    """timeline.csv's cells are neutralized and quoted by the case database (``neutralized_sql``,
    ``csv_line_sql``): the same rules, the same bytes as ``csv_bytes``, whatever the text (formula triggers,
    quotes, commas, line ends, nothing at all)."""
    cells = [neutralized_sql(name) for name in ("v", "o", "n")]
    with duckdb.connect() as db:
        line = db.execute(f"SELECT {csv_line_sql(cells)} FROM (SELECT CAST(? AS VARCHAR) AS v, CAST(? AS VARCHAR) AS o, "
                          "CAST(NULL AS VARCHAR) AS n)", [value, other]).fetchone()[0]
    assert csv_bytes(["v", "o", "n"], []) + line.encode("utf-8") == csv_bytes(["v", "o", "n"], [[value, other, None]])


@settings(deadline=None)  # a database connection an example: no time limit on a shared machine
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")) | st.sampled_from(
    ["\x0b", "\\u000B", "\\\x0b", "\\\\u001F\x1f", "\x1a\x1b\x1c\x1d\x1e\x1f\x0e\x0f", "é😀\u2028/\x7f"]))
def test_timeline_entries_the_database_writes_are_the_bytes_orjson_writes(value):
    """timeline.jsonl's entries are written as JSON by the case database; they must be the bytes orjson writes
    for the same values (the timeline files are compared byte for byte across hunts and ``mailhunt report``).
    DuckDB writes \\u000B where orjson writes \\u000b, and a logged backslash followed by "u000B" must stay."""
    with duckdb.connect() as db:
        text = db.execute(f"SELECT {orjson_escapes_sql('j')} FROM (SELECT CAST(to_json(struct_pack(v := CAST(? AS VARCHAR), "
                          "l := [CAST(? AS VARCHAR)], b := true, n := CAST(NULL AS VARCHAR))) AS VARCHAR) AS j)",
                          [value, value]).fetchone()[0]
        read_back = db.execute("""SELECT e.v, array_to_string(e.l, ' '), e.b, e.n FROM (SELECT from_json(?,
                                  '{"v": "VARCHAR", "l": "VARCHAR[]", "b": "VARCHAR", "n": "VARCHAR"}') AS e)""",
                               [text]).fetchone()
    assert text == orjson.dumps({"v": value, "l": [value], "b": True, "n": None}).decode()
    assert read_back == (value, value, "true", None)  # what timeline.csv's cells are made of


def test_hostile_timeline_csv_is_csv_bytes_of_the_jsonl_entries(hostile_case):
    """The CSV the database writes from the stored entries is the one ``csv_bytes`` writes from the same entries."""
    entries = [orjson.loads(line) for line in (hostile_case / "timeline.jsonl").read_bytes().splitlines()]
    assert any(e["rule_name"] == HOSTILE_RULE for e in entries)
    assert (hostile_case / "timeline.csv").read_bytes() == timeline_csv(entries)


# ---------------------------------------------------------------- across sources, people and hosts

WINDOWS = EXAMPLES.parent / "tests" / "fixtures" / "windows"


def _other_users_script_block(host: str, record_id: int) -> str:
    """ws042's script block record, by another user (another SID), with a harmless script, on ``host``."""
    record = json.loads((WINDOWS / "ws042_powershell.winlogbeat.ndjson").read_text(encoding="utf-8").splitlines()[0])
    record["@timestamp"] = "2026-10-03T22:50:00.000Z"
    record["host"]["name"] = record["winlog"]["computer_name"] = host
    record["winlog"]["record_id"] = record_id
    record["winlog"]["user"].update(identifier="S-1-5-21-3623811015-3361044348-30300820-2001", name="backupsvc")
    record["winlog"]["event_data"].update(ScriptBlockText="Get-Date", ScriptBlockId=f"block-{record_id}")
    return json.dumps(record)


def test_timeline_joins_every_source_by_person_and_endpoint_host(tmp_path):
    """jsmith's export (Exchange cmdlet log), its cleanup (a PowerShell script block on WS042) and his mailbox
    access (unified audit log) are one timeline; another user's script block on WS042 belongs to it through the
    host, the same on another workstation does not."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("exch01_msexchange_management.jsonl", "ws042_powershell.winlogbeat.ndjson", "ual_jsmith.ndjson"):
        (evidence / name).write_bytes((WINDOWS / name).read_bytes())
    (evidence / "other_users.ndjson").write_text(
        _other_users_script_block("WS042.corp.example", 9001) + "\n"
        + _other_users_script_block("WS099.corp.example", 9002) + "\n", encoding="utf-8")
    _hunt(evidence, tmp_path / "case")
    entries = _jsonl(tmp_path / "case" / "timeline.jsonl")
    assert {"m365.audit", "windows.msexchange_management", "windows.powershell"} <= {e["dataset"] for e in entries}
    assert "MailItemsAccessed" in {e["action"] for e in entries}  # in no finding, but jsmith's, the same evening
    others = [e for e in entries if e["actor_logged"] == "backupsvc"]
    assert [e["host"] for e in others] == ["WS042.corp.example"]
    findings = json.loads((tmp_path / "case" / "findings.json").read_text())["findings"]
    on_ws042 = {f["id"] for f in findings if f["host"] == "WS042.corp.example"}
    assert on_ws042 and set(others[0]["finding_ids"]) == on_ws042
