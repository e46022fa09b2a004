"""First-seen applications, measured over the whole case and offered to rules as app.new."""

from datetime import datetime, timedelta

from mailhunt.detect.baselines import create_detection_view
from mailhunt.events import new_event, to_arrow
from mailhunt.store import CaseStore

T0 = datetime(2026, 10, 1)


def ev(n, when, app):
    e = new_event()
    e.update({"event.id": f"e{n}", "@timestamp": when, "event.action": "MailItemsAccessed", "app.id": app})
    return e


def flags(events):
    store = CaseStore(":memory:")
    store.append(to_arrow(events))
    create_detection_view(store)
    return dict(store.db.execute('SELECT "event.id", "app.new" FROM detection_events').fetchall())


def test_app_first_seen_after_learning_is_new_for_a_day():
    events = [ev(i, T0 + timedelta(days=i), "outlook") for i in range(14)]
    events += [ev(100, T0 + timedelta(days=10), "evil-app"), ev(101, T0 + timedelta(days=10, hours=5), "evil-app"),
               ev(102, T0 + timedelta(days=12), "evil-app"), ev(103, T0 + timedelta(days=10), None)]
    result = flags(events)
    assert result["e100"] and result["e101"]
    assert not result["e102"], "more than 24 h after the first appearance the app is no longer new"
    assert not result["e5"] and not result["e103"]


def test_app_seen_during_learning_is_not_new():
    events = [ev(i, T0 + timedelta(days=i), "outlook") for i in range(14)]
    events.append(ev(100, T0 + timedelta(hours=20), "backup-tool"))
    events.append(ev(101, T0 + timedelta(days=11), "backup-tool"))
    assert not flags(events)["e101"]


def test_too_little_evidence_makes_nothing_new():
    events = [ev(1, T0, "outlook"), ev(2, T0 + timedelta(hours=30), "brand-new")]
    assert flags(events) == {"e1": False, "e2": False}


def _external(recipients_by_id: dict[str, str | None], domains: tuple[str, ...]) -> dict[str, bool | None]:
    events = []
    for n, (event_id, recipients) in enumerate(recipients_by_id.items()):
        e = ev(n, T0, None)
        e.update({"event.id": event_id, "event.action": "AGENTINFO", "email.to.address": recipients})
        events.append(e)
    store = CaseStore(":memory:")
    store.append(to_arrow(events))
    create_detection_view(store, domains)
    return dict(store.db.execute('SELECT "event.id", "email.to.external" FROM detection_events').fetchall())


def test_recipient_outside_the_organization_domains_is_external():
    recipients = {"out": "cfo@contoso.com;archive.box@protonmail.com", "sub": "ops@mail.contoso.com",
                  "near": "cfo@evilcontoso.com", "none": None, "own": "CFO@Contoso.com"}
    assert _external(recipients, ("contoso.com",)) == {"out": True, "sub": False, "near": True, "none": None,
                                                       "own": False}


def test_without_organization_domains_external_is_unknown():
    assert _external({"out": "archive.box@protonmail.com"}, ()) == {"out": None}
