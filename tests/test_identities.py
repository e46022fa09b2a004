"""One actor across sources: how logged names resolve, and correlations over resolved actors."""

from datetime import timedelta

from mailhunt.detect.engine import DetectionSettings, compile_rules, run_rules
from mailhunt.detect.grouping import group_detections
from mailhunt.detect.identities import (
    AS_LOGGED,
    CONFIGURED,
    INFERRED,
    account_key,
    resolve_identities,
)
from mailhunt.events import to_arrow
from mailhunt.store import CaseStore
from tests.test_correlation import T0, export, instances, load_inline_rules, remove

JSMITH = "jsmith@fabrikam-labs.com"


def by_alias(names, configured=None, domains=()):
    return {i.alias: i for i in resolve_identities(names, configured or {}, domains)}


def test_account_key_reads_the_usual_spellings():
    assert account_key("CORP\\JSmith") == ("jsmith", "corp")
    assert account_key("JSmith@Fabrikam-Labs.com") == ("jsmith", "fabrikam-labs.com")
    assert account_key("corp.local/Users/JSmith") == ("jsmith", "corp.local")
    assert account_key("jsmith") == ("jsmith", None)


def test_domain_and_bare_names_resolve_to_the_one_matching_address():
    ids = by_alias(["CORP\\jsmith", "jsmith", "JSmith@Fabrikam-Labs.com", "kim@fabrikam-labs.com"])
    assert ids["CORP\\jsmith"].actor == JSMITH and ids["CORP\\jsmith"].basis == INFERRED
    assert ids["jsmith"].actor == JSMITH
    assert "only address" in ids["jsmith"].note
    assert ids["JSmith@Fabrikam-Labs.com"].actor == JSMITH and ids["JSmith@Fabrikam-Labs.com"].basis == AS_LOGGED


def test_a_sam_name_shared_by_two_addresses_is_not_guessed():
    ids = by_alias(["CORP\\jsmith", "jsmith@fabrikam-labs.com", "jsmith@contoso.com"])
    assert ids["CORP\\jsmith"].actor == "CORP\\jsmith" and ids["CORP\\jsmith"].basis == AS_LOGGED
    assert "2 addresses" in ids["CORP\\jsmith"].note
    # ...unless the organization's domains settle it
    ids = by_alias(["CORP\\jsmith", "jsmith@fabrikam-labs.com", "jsmith@contoso.com"], domains=("fabrikam-labs.com",))
    assert ids["CORP\\jsmith"].actor == JSMITH


def test_configured_mapping_wins_over_inference():
    ids = by_alias(["CORP\\jsmith", "jsmith@fabrikam-labs.com", "john.smith@fabrikam-labs.com"],
                   {"corp\\JSMITH": "John.Smith@fabrikam-labs.com"})
    assert ids["CORP\\jsmith"].actor == "john.smith@fabrikam-labs.com" and ids["CORP\\jsmith"].basis == CONFIGURED


def test_export_and_removal_under_different_spellings_correlate():
    events = [export(1, T0, user="CORP\\jsmith"), remove(2, T0 + timedelta(minutes=10), user=JSMITH)]
    assert instances(events, "c_export_then_remove") == [["e1", "e2"]]


def test_finding_names_the_resolved_actor_and_says_how():
    rules = load_inline_rules()
    events = [export(1, T0, user="CORP\\jsmith"), remove(2, T0 + timedelta(minutes=10), user=JSMITH)]
    store = CaseStore(":memory:")
    try:
        store.append(to_arrow(events))
        run = run_rules(store, compile_rules(rules, DetectionSettings()))
        findings = [f for f in group_detections(store, run.detections) if f.indicator == "export_then_deletion"]
    finally:
        store.close()
    assert findings and all(f.actor == JSMITH for f in findings)
    finding = findings[0].to_json()
    assert finding["actor_resolution"] == [
        "CORP\\jsmith taken as jsmith@fabrikam-labs.com: the only address in the evidence with the account name jsmith"]
    assert {e["logged_actor"] for e in finding["evidence"]} == {"CORP\\jsmith", JSMITH}


def test_without_the_mapping_different_people_stay_apart():
    events = [export(1, T0, user="CORP\\jsmith"), remove(2, T0 + timedelta(minutes=10), user="kim@fabrikam-labs.com")]
    assert instances(events, "c_export_then_remove") == []
