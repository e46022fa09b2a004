"""The attempt to clear or switch off logging is a finding, not only its result (1102/104).

Real samples: EVTX-to-MITRE-Attack's "Clear event log attempt" files, whose clears left no
1102/104 behind, hunted as a responder would hunt them.
"""

from pathlib import Path

from mailhunt.config import Config
from mailhunt.detect.rules import load_rules
from mailhunt.hunt import hunt
from tests.corpus import PUBLIC

MITRE = PUBLIC / "evtx-to-mitre-attack"
RULE_IDS = {rule.rule.name: rule.id for rule in load_rules()}


def findings_of(result, rule_name: str) -> list:
    return [f for f in result.findings if RULE_IDS[rule_name] in {r.id for r in f.rules}]


def test_wevtutil_clears_in_4688_are_an_escalated_finding(tmp_path: Path):
    result = hunt([MITRE / "ID4688-Clear_event_log_attempt__native_.evtx"], tmp_path / "case", Config())
    [finding] = findings_of(result, "windows_event_log_tampering_in_process_creation")
    assert finding.indicator == "audit_tampering" and finding.actor == "admmig"
    assert finding.escalate and finding.severity == "high"
    # every wevtutil cl of the sample, none of the conhost.exe processes started beside them
    assert len(finding.events) == 14 and {e.action for e in finding.events} == {"process-created"}
    assert not any(f.indicator == "audit_tampering" and f.escalate and f is not finding for f in result.findings)


def test_clear_eventlog_in_4103_4104_800_is_an_escalated_finding(tmp_path: Path):
    result = hunt([MITRE / "ID800-4103-4104-Clear_event_log_attempt.evtx"], tmp_path / "case", Config())
    [finding] = findings_of(result, "windows_event_log_tampering_in_powershell")
    assert finding.indicator == "audit_tampering" and finding.actor == "admmig" and finding.escalate
    # the 4104 script block, the 4103 and 800 records of the cmdlet; not the "prompt" script block nor
    # the Out-Default pipeline records of the same sample
    assert sorted(e.action for e in finding.events) == ["Clear-EventLog", "Clear-EventLog", "script-block-logged"]
