"""SigmaHQ's Linux log-clearing rule, unchanged, on the example evidence of our audit_tampering rules.

The rule is loaded from ../shared/corpus/sigmahq (Detection Rule License, see its PROVENANCE.md);
the evidence is the auditd lines beside linux_audit_logging_tampering, read by the real reader.
Where SigmaHQ's rule misses what ours catch, the test says so.
"""

import hashlib
from pathlib import Path

from mailhunt.detect.engine import compile_rules, run_rules
from mailhunt.detect.examples import load_example_cases
from mailhunt.detect.rules import load_rules
from mailhunt.sources import ReadContext, identify, read_events, sniff_head
from mailhunt.store import CaseStore
from tests.corpus import SIGMAHQ

CLEAR_LOGS = "Linux Logs Clearing Attempts"
OURS = {rule.rule.name: rule for rule in load_rules()}
[SIGMA_CLEAR_LOGS] = [rule for rule in load_rules([SIGMAHQ]) if rule.title == CLEAR_LOGS]


def matches(rule, rule_name: str, case_name: str, tmp_path: Path) -> int:
    """How many events of one example case of our rule ``rule`` matches."""
    [case] = [c for c in load_example_cases(OURS[rule_name]) if c.name == case_name]
    data = case.file_bytes()
    path = tmp_path / (case.file_name or "evidence.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    source = identify(sniff_head(lambda size: data[:size]))
    assert source is not None
    ctx = ReadContext(str(path), hashlib.sha256(data).hexdigest(), dict(case.hints))
    store = CaseStore(":memory:")
    try:
        with path.open("rb") as stream:
            for batch in read_events(source, stream, ctx):
                store.append(batch)
        assert ctx.rejected == 0, ctx.rejections
        store.deduplicate()
        compiled = compile_rules([rule])
        assert not compiled.skipped, compiled.skipped
        return run_rules(store, compiled).matched.get(rule.id, 0)
    finally:
        store.close()


def test_sigmahq_clear_logs_rule_matches_our_auditd_rm_of_the_audit_log(tmp_path):
    assert matches(SIGMA_CLEAR_LOGS, "linux_audit_logging_tampering", "auditd: rm of the audit log", tmp_path) == 1
    assert matches(OURS["linux_audit_logging_tampering"], "linux_audit_logging_tampering",
                   "auditd: rm of the audit log", tmp_path) == 1


def test_sigmahq_clear_logs_rule_leaves_our_benign_look_alikes_alone(tmp_path):
    for case in ("auditd: reading the audit rules and the mail log",
                 "auditd: logrotate run by cron, restart and status of the logging services"):
        assert matches(SIGMA_CLEAR_LOGS, "linux_audit_logging_tampering", case, tmp_path / case[:6]) == 0


def test_sigmahq_clear_logs_rule_misses_truncation_and_histories_ours_report(tmp_path):
    """SigmaHQ's rule keys on the rm/shred/unlink image: truncate -s 0, and commands from a shell history
    (which names no image), slip past it."""
    for case, count in (("auditd: truncate -s 0 of the mail log", 1),
                        ("bash history: logging stopped and mail logs wiped", 4)):
        assert matches(SIGMA_CLEAR_LOGS, "linux_audit_logging_tampering", case, tmp_path / case[:6]) == 0
        assert matches(OURS["linux_audit_logging_tampering"], "linux_audit_logging_tampering", case,
                       tmp_path / ("ours" + case[:6])) == count
