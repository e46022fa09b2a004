"""Export seen in the MSExchange Management log, its removal in a PowerShell script block: one actor, one finding.

The three evidence files name the same person three ways: ``CORP\\jsmith``
(the cmdlet log's caller), ``jsmith`` (Winlogbeat's resolved user of the
script block) and ``jsmith@corp.example`` (the unified audit log).
"""

import shutil
from pathlib import Path

import orjson

from mailhunt.config import Config
from mailhunt.hunt import hunt

FIXTURES = Path(__file__).parent / "fixtures" / "windows"
WINDOWS_SEQUENCE = "Mail Export Followed By Cleanup In A PowerShell Script Block, Same Actor"
EVIDENCE = ("exch01_msexchange_management.jsonl", "ws042_powershell.winlogbeat.ndjson", "ual_jsmith.ndjson")


def run(tmp_path: Path, files: tuple[str, ...]) -> dict:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in files:
        shutil.copy(FIXTURES / name, evidence / name)
    hunt([evidence], tmp_path / "case", Config())
    return orjson.loads((tmp_path / "case" / "findings.json").read_bytes())


def test_export_and_script_block_removal_correlate_across_identity_spellings(tmp_path):
    document = run(tmp_path, EVIDENCE)
    assert {i["format"] for i in document["inputs"]} == {"evtx_dump_jsonl", "winlogbeat_ndjson", "ual_ndjson"}
    sequences = [f for f in document["findings"] if f["indicator"] == "export_then_deletion"]
    by_actor = [f for f in sequences if f["rule"]["title"] == WINDOWS_SEQUENCE]
    assert len(by_actor) == 1
    [finding] = by_actor
    assert finding["actor"] == "jsmith@corp.example"
    logged = {e["logged_actor"] for e in finding["evidence"]}
    assert logged == {"CORP\\jsmith", "jsmith"}
    actions = [e["action"] for e in finding["evidence"]]
    assert actions == ["New-MailboxExportRequest", "script-block-logged"]
    assert any("jsmith" in note for note in finding["actor_resolution"])


def test_without_the_address_the_sid_both_records_carry_joins_the_spellings(tmp_path):
    document = run(tmp_path, EVIDENCE[:2])
    [finding] = [f for f in document["findings"] if f["indicator"] == "export_then_deletion"
                 and f["rule"]["title"] == WINDOWS_SEQUENCE]
    assert finding["actor"] == "CORP\\jsmith"
    assert finding["actor_resolution"] == [
        "jsmith taken as CORP\\jsmith: SID S-1-5-21-3623811015-3361044348-30300820-1013 is logged with CORP\\jsmith, jsmith"]


def test_script_block_with_only_a_sid_joins_the_actor_named_elsewhere_with_that_sid(tmp_path):
    """evtx_dump/EVTX 4104 records carry the user's SID only; the cmdlet log pairs that SID with CORP\\jsmith."""
    document = run(tmp_path, (EVIDENCE[0], "ws042_powershell_sid_only.jsonl", EVIDENCE[2]))
    [finding] = [f for f in document["findings"] if f["rule"]["title"] == WINDOWS_SEQUENCE]
    assert finding["actor"] == "jsmith@corp.example"
    assert [e["action"] for e in finding["evidence"]] == ["New-MailboxExportRequest", "script-block-logged"]
    assert [e["logged_actor"] for e in finding["evidence"]] == ["CORP\\jsmith", None]
