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


OTRF = PUBLIC / "otrf-security-datasets"


def test_otrf_eventlog_service_disabled_by_powershell_is_found_in_the_flat_export(tmp_path: Path):
    """OTRF's atomic T1562.002 dataset (flat NDJSON in a zip): Set-Service EventLog -StartupType Disabled."""
    result = hunt([OTRF / "psh_disable_eventlog_service_startuptype_modification.zip"], tmp_path / "case", Config())
    by_rule = {name: findings_of(result, name) for name in
               ("windows_event_log_tampering_in_powershell", "windows_event_log_service_disabled")}
    assert all(by_rule.values()), {k: len(v) for k, v in by_rule.items()}
    assert all(f.indicator == "audit_tampering" and f.escalate for fs in by_rule.values() for f in fs)
    powershell = {e.action for f in by_rule["windows_event_log_tampering_in_powershell"] for e in f.events}
    assert {"Set-Service", "script-block-logged"} <= powershell
    assert any(f.actor == "pedro" for f in by_rule["windows_event_log_tampering_in_powershell"])


def test_otrf_command_line_logging_disabled_by_reg_is_found_in_the_flat_export(tmp_path: Path):
    """OTRF's reg.exe dataset: ProcessCreationIncludeCmdLine_Enabled set to 0, seen in 4688, Sysmon 1,
    Sysmon 13 and 4657, and the logs cleared after (104)."""
    result = hunt([OTRF / "reg_cmd_process_commandline_logging_disabled.zip"], tmp_path / "case", Config())
    process = findings_of(result, "windows_event_log_tampering_in_process_creation")
    registry = findings_of(result, "windows_logging_policy_disabled_in_registry")
    cleared = findings_of(result, "windows_event_log_cleared")
    assert process and registry and cleared
    assert any(f.actor == "pedro-admin" and f.escalate for f in process)
    # the commands (4688, Sysmon 1) and their effect on the registry (4657, Sysmon 13) are one finding
    actions = [e.action for f in process for e in f.events]
    assert actions.count("process-created") >= 2 and "SetValue" in actions
    assert {e.action for f in registry for e in f.events} >= {"SetValue"}
    assert all(f.indicator == "audit_tampering" for f in process + registry + cleared)
