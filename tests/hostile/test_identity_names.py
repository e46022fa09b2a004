"""Identity building tolerates any combination of logged names: the case's identities table
(one row per alias, its primary key) is always written, and every name resolves exactly once."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhunt.detect.identities import build_identity_table
from mailhunt.events import new_event, to_arrow
from mailhunt.store import CaseStore
from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

SID = "S-1-5-21-3623811015-3361044348-30300820-1013"
OTHER_SID = "S-1-5-21-3623811015-3361044348-30300820-1099"
# Names built from a few parts so that collisions are likely: case variants, a SID as a name,
# empty and blank names, one person's sam name equal to another's address, domain forms.
NAME = st.one_of(
    st.sampled_from(["jsmith", "JSmith", "CORP\\jsmith", "corp\\JSMITH", "jsmith@fabrikam.com", "JSmith@Fabrikam.com",
                     "jsmith@contoso.com", "kim@fabrikam.com", "kim", "corp.local/Users/kim", SID, OTHER_SID,
                     SID.lower(), "", " ", "jsmith ", "@", "\\", "/", "a@b@c"]),
    st.text(alphabet="aAjJ@\\/ S-15", max_size=6),
)
ROW = st.tuples(st.one_of(st.none(), NAME), st.one_of(st.none(), st.sampled_from([SID, OTHER_SID, "S-1-5-18"])),
                st.one_of(st.none(), NAME))


def _store_with(rows: list[tuple]) -> CaseStore:
    store = CaseStore(":memory:")
    events = []
    for index, (name, user_id, target) in enumerate(rows):
        event = new_event()
        event.update({"event.id": f"e{index}", "user.name": name, "user.id": user_id, "user.target.name": target,
                      "event.dataset": "windows.msexchange_management", "log.record": index + 1})
        events.append(event)
    if events:
        store.append(to_arrow(events))
    return store


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=12), configured=st.dictionaries(NAME, NAME, max_size=3),
       domains=st.sampled_from([(), ("fabrikam.com",)]))
def test_any_combination_of_names_gives_one_identity_per_alias(rows, configured, domains):
    store = _store_with(rows)
    try:
        build_identity_table(store, configured, domains)
        aliases = [row[0] for row in store.db.execute("SELECT alias FROM identities").fetchall()]
    finally:
        store.close()
    assert len(aliases) == len(set(aliases))
    logged = {value for name, _, target in rows for value in (name, target) if value}
    assert logged <= set(aliases), "every logged name resolves to an actor"


def test_caller_logged_as_its_own_sid_keeps_the_findings_of_the_case(tmp_path):
    """MSExchange Management: a cmdlet record whose caller is written as the SID it also logs."""
    lines = []
    template = (REPO / "tests" / "fixtures" / "windows" / "exch01_msexchange_management.jsonl").read_text()
    for line in template.splitlines():
        record = json.loads(line)
        data = record["Event"]["EventData"]["Data"]["#text"]
        data[2] = data[3]  # the caller column holds the SID, as the SID column does
        lines.append(json.dumps(record))
    evidence = tmp_path / "exch01.jsonl"
    evidence.write_text("\n".join(lines) + "\n")

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, outcome.kept) == (2, 0, [1, 2])
    findings = outcome.document["findings"]
    assert any(f["indicator"] == "mailbox_export" for f in findings), [f["indicator"] for f in findings]
