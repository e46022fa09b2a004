"""The correlation engine on events built directly: group-by, order, timespan, windows, sums."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sigma.collection import SigmaCollection

from mailhunt.detect.engine import DetectionSettings, compile_rules, run_rules
from mailhunt.detect.rules import LoadedRule
from mailhunt.events import new_event, to_arrow
from mailhunt.store import CaseStore

T0 = datetime(2026, 10, 3, 22, 14, 5)
ADMIN = "adm-jmorgan@fabrikam-labs.com"
OTHER_ADMIN = "adm-lchen@fabrikam-labs.com"
KIM = "kim.akers@fabrikam-labs.com"
PAT = "pat.obrien@fabrikam-labs.com"


def _single(name: str, operation: str) -> str:
    return f"""
title: {name}
name: {name}
logsource: {{product: m365, service: audit}}
detection:
    selection:
        Operation: {operation}
    condition: selection
"""


def _correlation(name: str, kind: str, rules: list[str], group_by: list[str], timespan: str,
                 condition: str = "", extra: str = "indicator: export_then_deletion") -> str:
    return f"""
title: {name}
name: {name}
correlation:
    type: {kind}
    rules: [{', '.join(rules)}]
    group-by: [{', '.join(group_by)}]
    timespan: {timespan}
{condition}
level: high
{extra}
"""


RULES_YAML = "\n---\n".join([
    _single("t_export", "New-MailboxExportRequest"),
    _single("t_remove", "Remove-MailboxExportRequest"),
    _single("t_delete", "HardDelete"),
    _correlation("c_export_then_remove", "temporal_ordered", ["t_export", "t_remove"], ["user.name"], "24h",
                 extra="indicator: export_then_deletion\ntimespan_setting: export_deletion_window"),
    _correlation("c_export_then_remove_by_mailbox", "temporal_ordered", ["t_export", "t_remove"],
                 ["user.target.name"], "24h"),
    _correlation("c_export_and_remove_any_order", "temporal", ["t_export", "t_remove"], ["user.name"], "1h"),
    _correlation("c_three_deletions", "event_count", ["t_delete"], ["user.name"], "1h",
                 condition="    condition: {gte: 3}", extra="indicator: bulk_item_deletion"),
    _correlation("c_bulk_items", "value_sum", ["t_delete"], ["user.name"], "1h",
                 condition="    condition: {gte: 50, field: email.item_count}",
                 extra="indicator: bulk_item_deletion\nthreshold_setting: bulk_delete_per_hour"),
    _correlation("c_export_then_bulk", "temporal_ordered", ["t_export", "c_bulk_items"], ["user.name"], "24h"),
])


def load_inline_rules() -> list[LoadedRule]:
    collection = SigmaCollection.from_yaml(RULES_YAML)
    return [LoadedRule(rule, Path("inline.yml")) for rule in collection.rules]


def ev(number: int, when: datetime, action: str, user: str | None = ADMIN, target: str | None = KIM,
       items: int | None = 1) -> dict:
    event = new_event()
    event.update({
        "event.id": f"e{number}",
        "@timestamp": when,
        "event.action": action,
        "event.dataset": "m365.audit",
        "user.name": user,
        "user.type": "admin",
        "user.target.name": target,
        "email.item_count": items,
    })
    return event


def export(number, when, **kw):
    return ev(number, when, "New-MailboxExportRequest", **kw)


def remove(number, when, **kw):
    return ev(number, when, "Remove-MailboxExportRequest", **kw)


def delete(number, when, items=1, **kw):
    return ev(number, when, "HardDelete", items=items, **kw)


def instances(events: list[dict], rule_name: str, settings: DetectionSettings | None = None) -> list[list[str]]:
    """Each detection of the named correlation as its sorted event ids."""
    rules = load_inline_rules()
    compiled = compile_rules(rules, settings)
    assert not compiled.skipped, compiled.skipped
    store = CaseStore(":memory:")
    try:
        store.append(to_arrow(events))
        run = run_rules(store, compiled)
    finally:
        store.close()
    [rule] = [r for r in rules if r.rule.name == rule_name]
    return sorted(sorted(d.event_ids) for d in run.detections if d.rule.id == rule.id)


# ------------------------------------------------------------------ temporal_ordered

def test_export_then_removal_by_the_same_actor_is_one_instance():
    found = instances([export(1, T0), remove(2, T0 + timedelta(minutes=10))], "c_export_then_remove")
    assert found == [["e1", "e2"]]


def test_removal_before_the_export_does_not_match():
    events = [remove(1, T0), export(2, T0 + timedelta(minutes=20))]
    assert instances(events, "c_export_then_remove") == []


def test_pair_ten_minutes_apart_and_another_export_a_month_later():
    events = [export(1, T0), remove(2, T0 + timedelta(minutes=10)), export(3, T0 + timedelta(days=31))]
    assert instances(events, "c_export_then_remove") == [["e1", "e2"]]


def test_timespan_is_inclusive_and_respected():
    at_limit = [export(1, T0), remove(2, T0 + timedelta(hours=24))]
    beyond = [export(1, T0), remove(2, T0 + timedelta(hours=24, seconds=1))]
    assert instances(at_limit, "c_export_then_remove") == [["e1", "e2"]]
    assert instances(beyond, "c_export_then_remove") == []


def test_timespan_setting_overrides_the_rule():
    events = [export(1, T0), remove(2, T0 + timedelta(hours=2))]
    assert instances(events, "c_export_then_remove") == [["e1", "e2"]]
    narrow = DetectionSettings(timespans={"export_deletion_window": 3600})
    assert instances(events, "c_export_then_remove", narrow) == []


def test_group_by_actor_is_respected():
    events = [export(1, T0, user=ADMIN), remove(2, T0 + timedelta(minutes=10), user=OTHER_ADMIN)]
    assert instances(events, "c_export_then_remove") == []


def test_group_by_mailbox_joins_different_actors_on_one_mailbox():
    same_mailbox = [export(1, T0, user=ADMIN, target=KIM), remove(2, T0 + timedelta(minutes=10), user=OTHER_ADMIN,
                                                                     target=KIM)]
    other_mailbox = [export(1, T0, user=ADMIN, target=KIM), remove(2, T0 + timedelta(minutes=10), user=ADMIN,
                                                                      target=PAT)]
    assert instances(same_mailbox, "c_export_then_remove_by_mailbox") == [["e1", "e2"]]
    assert instances(other_mailbox, "c_export_then_remove_by_mailbox") == []


def test_null_group_by_values_do_not_correlate():
    no_actor = [export(1, T0, user=None), remove(2, T0 + timedelta(minutes=10), user=None)]
    no_mailbox = [export(1, T0, target=None), remove(2, T0 + timedelta(minutes=10), target=None)]
    assert instances(no_actor, "c_export_then_remove") == []
    assert instances(no_mailbox, "c_export_then_remove_by_mailbox") == []


def test_equal_timestamps_count_as_in_order():
    assert instances([export(1, T0), remove(2, T0)], "c_export_then_remove") == [["e1", "e2"]]


def test_two_exports_before_one_removal_each_form_an_instance():
    events = [export(1, T0), export(2, T0 + timedelta(minutes=5)), remove(3, T0 + timedelta(minutes=10))]
    assert instances(events, "c_export_then_remove") == [["e1", "e3"], ["e2", "e3"]]


# ------------------------------------------------------------------ temporal (unordered)

def test_unordered_temporal_matches_either_order_within_the_timespan():
    forward = [export(1, T0), remove(2, T0 + timedelta(minutes=30))]
    backward = [remove(1, T0), export(2, T0 + timedelta(minutes=30))]
    too_far = [remove(1, T0), export(2, T0 + timedelta(minutes=61))]
    assert instances(forward, "c_export_and_remove_any_order") == [["e1", "e2"]]
    assert instances(backward, "c_export_and_remove_any_order") == [["e1", "e2"]]
    assert instances(too_far, "c_export_and_remove_any_order") == []


# ------------------------------------------------------------------ event_count windows

def test_event_count_window_includes_its_end():
    inside = [delete(1, T0), delete(2, T0 + timedelta(minutes=30)), delete(3, T0 + timedelta(hours=1))]
    outside = [delete(1, T0), delete(2, T0 + timedelta(minutes=30)), delete(3, T0 + timedelta(hours=1, seconds=1))]
    assert instances(inside, "c_three_deletions") == [["e1", "e2", "e3"]]
    assert instances(outside, "c_three_deletions") == []


def test_event_count_overlapping_windows_merge_into_one_instance():
    events = [delete(n, T0 + timedelta(minutes=20 * n)) for n in range(6)]
    assert instances(events, "c_three_deletions") == [[f"e{n}" for n in range(6)]]


def test_event_count_separate_bursts_are_separate_instances():
    first = [delete(n, T0 + timedelta(minutes=n)) for n in range(3)]
    second = [delete(10 + n, T0 + timedelta(hours=5, minutes=n)) for n in range(3)]
    assert instances(first + second, "c_three_deletions") == [["e0", "e1", "e2"], ["e10", "e11", "e12"]]


def test_event_count_counts_per_group():
    events = [delete(1, T0, user=KIM), delete(2, T0 + timedelta(minutes=1), user=KIM),
              delete(3, T0 + timedelta(minutes=2), user=PAT)]
    assert instances(events, "c_three_deletions") == []


# ------------------------------------------------------------------ value_sum

def test_value_sum_adds_items_not_records():
    events = [delete(1, T0, items=20), delete(2, T0 + timedelta(minutes=15), items=20),
              delete(3, T0 + timedelta(minutes=40), items=15)]
    assert instances(events, "c_bulk_items") == [["e1", "e2", "e3"]]


def test_value_sum_just_under_the_threshold_does_not_match():
    events = [delete(1, T0, items=25), delete(2, T0 + timedelta(minutes=30), items=24)]
    assert instances(events, "c_bulk_items") == []


def test_value_sum_one_record_with_many_items_matches():
    assert instances([delete(1, T0, items=120)], "c_bulk_items") == [["e1"]]


def test_value_sum_ignores_records_without_a_count():
    events = [delete(1, T0, items=None), delete(2, T0 + timedelta(minutes=1), items=49)]
    assert instances(events, "c_bulk_items") == []


def test_value_sum_respects_the_window_and_the_group():
    spread = [delete(n, T0 + timedelta(minutes=70 * n), items=20) for n in range(3)]
    two_users = [delete(1, T0, items=30, user=KIM), delete(2, T0 + timedelta(minutes=10), items=30, user=PAT)]
    assert instances(spread, "c_bulk_items") == []
    assert instances(two_users, "c_bulk_items") == []


def test_threshold_setting_overrides_the_rule():
    events = [delete(1, T0, items=30), delete(2, T0 + timedelta(minutes=10), items=30)]
    assert instances(events, "c_bulk_items") == [["e1", "e2"]]
    stricter = DetectionSettings(thresholds={"bulk_delete_per_hour": 100})
    assert instances(events, "c_bulk_items", stricter) == []


# ------------------------------------------------------------------ a correlation of a correlation

def test_correlation_can_refer_to_another_correlation():
    events = [export(1, T0), delete(2, T0 + timedelta(minutes=50), items=60)]
    assert instances(events, "c_export_then_bulk") == [["e1", "e2"]]


def test_correlation_of_correlation_respects_order():
    events = [delete(1, T0, items=60), export(2, T0 + timedelta(minutes=50))]
    assert instances(events, "c_export_then_bulk") == []


@pytest.mark.parametrize("gap_days", [31, 60])
def test_unrelated_later_exports_do_not_pair_with_old_removals(gap_days):
    events = [remove(1, T0), export(2, T0 + timedelta(days=gap_days))]
    assert instances(events, "c_export_then_remove") == []


# ------------------------------------------------------------------ boolean temporal conditions

@pytest.mark.parametrize(("condition", "runs"), [
    ("t_export and t_remove", True),
    ("t_remove and t_export", True),
    ("t_export and not t_remove", False),
    ("t_export or t_remove", False),
    ("t_export and (t_remove or t_export)", False),
])
def test_a_boolean_temporal_condition_runs_only_when_it_means_every_rule(condition, runs):
    """``a and not b`` used to run as ``a and b``: a rule that asks for anything but every
    referenced rule is refused with its reason, never run as something it does not say."""
    yaml = "\n---\n".join([
        _single("t_export", "New-MailboxExportRequest"),
        _single("t_remove", "Remove-MailboxExportRequest"),
        _correlation("c_bool", "temporal", ["t_export", "t_remove"], ["user.name"], "1h",
                     condition=f"    condition: {condition}"),
    ])
    rules = [LoadedRule(rule, Path("inline.yml")) for rule in SigmaCollection.from_yaml(yaml).rules]
    compiled = compile_rules(rules)
    [correlation] = [r for r in rules if r.rule.name == "c_bool"]
    if runs:
        assert correlation.id not in compiled.skipped
        store = CaseStore(":memory:")
        try:
            store.append(to_arrow([export(1, T0), remove(2, T0 + timedelta(minutes=5))]))
            run = run_rules(store, compiled)
        finally:
            store.close()
        assert [sorted(d.event_ids) for d in run.detections if d.rule.id == correlation.id] == [["e1", "e2"]]
    else:
        assert "temporal condition" in compiled.skipped[correlation.id]


def test_a_correlation_without_a_rules_list_fails_alone():
    """pySigma accepts a boolean condition without ``rules:``; the rule is refused, the others still compile."""
    yaml = "\n---\n".join([
        _single("t_export", "New-MailboxExportRequest"),
        _single("t_remove", "Remove-MailboxExportRequest"),
        """
title: c_no_list
name: c_no_list
correlation:
    type: temporal
    group-by: [user.name]
    timespan: 1h
    condition: t_export and t_remove
level: high
""",
    ])
    rules = [LoadedRule(rule, Path("inline.yml")) for rule in SigmaCollection.from_yaml(yaml).rules]
    compiled = compile_rules(rules)
    [correlation] = [r for r in rules if r.rule.name == "c_no_list"]
    assert "must list the rules" in compiled.skipped[correlation.id]
    assert sorted(r.rule.name for r, _ in compiled.single) == ["t_export", "t_remove"]


def test_a_correlation_names_the_reason_of_the_very_rule_that_cannot_run():
    """Only the second reference cannot run: the reason shown beside its name is its own."""
    yaml = "\n---\n".join([
        _single("t_export", "New-MailboxExportRequest"),
        """
title: t_broken
name: t_broken
logsource: {product: no_such_product}
detection:
    selection:
        Operation: x
    condition: selection
""",
        _correlation("c_uses_broken", "temporal", ["t_export", "t_broken"], ["user.name"], "1h"),
    ])
    rules = [LoadedRule(rule, Path("inline.yml")) for rule in SigmaCollection.from_yaml(yaml).rules]
    compiled = compile_rules(rules)
    [broken] = [r for r in rules if r.rule.name == "t_broken"]
    [correlation] = [r for r in rules if r.rule.name == "c_uses_broken"]
    assert compiled.skipped[correlation.id] == (
        f"refers to a rule that cannot run: t_broken ({compiled.skipped[broken.id]})")
