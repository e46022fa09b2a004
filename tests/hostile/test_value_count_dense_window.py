"""A value-count correlation over a burst: thousands of matched events of one actor inside one window.

The count must not build a list of the window's values for every event (that grows with events x
window size: 4,000 events in one hour are 16 million list entries); with the count it needs, the
shipped inbox-rule burst correlation runs on such a burst in a small memory budget and finds one
instance holding every event.
"""

from __future__ import annotations

import duckdb

from mailhunt.case_queries import DETECTION_RELATION
from mailhunt.detect.engine import compile_rules
from mailhunt.detect.rules import load_rules

BURST = 4_000
BURST_RULE = "57ae21ca-d726-5745-a3fa-6e06bea82dcd"  # m365_inbox_rule_burst


def test_inbox_rule_burst_counts_a_dense_window_in_a_small_budget():
    compiled = compile_rules(load_rules())
    [sql] = [sql for rule, sql in compiled.correlations if rule.id == BURST_RULE]
    first_rule = compiled.references[BURST_RULE][0]
    db = duckdb.connect(":memory:", config={"memory_limit": "96MB", "threads": "1"})
    db.execute(f'''CREATE TABLE "{DETECTION_RELATION}" AS
        SELECT 'event-' || i AS "event.id", TIMESTAMP '2026-10-14 09:00:00' + INTERVAL (i) MILLISECOND AS "@timestamp",
               'mallory@contoso.com' AS "user.name"
        FROM range(?) t(i)''', [BURST])
    db.execute(f'CREATE TABLE matches AS SELECT ? AS rule_id, "event.id" AS event_id FROM "{DETECTION_RELATION}"',
               [first_rule])
    instances = db.execute(f"SELECT instance, count(DISTINCT event_id) FROM ({sql}) GROUP BY instance").fetchall()
    assert instances == [("mallory@contoso.com|2026-10-14T09:00:00", BURST)]
