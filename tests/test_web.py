"""``mailhunt serve`` through FastAPI's TestClient: every route, the token, CSRF, traversal, injection, escaping,
and the analyst's state in the case database and the custody log."""

from __future__ import annotations

import html
import json
import os
import re
import tomllib

import duckdb
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mailhunt.case.custody import verify_chain
from mailhunt.case.review import DISPOSITIONS, case_review
from mailhunt.case.verify import verify_case
from mailhunt.cli import app as cli
from mailhunt.config import load_config
from mailhunt.report.html import render_html
from mailhunt.report.markdown import render_markdown
from mailhunt.store import CaseStore
from mailhunt.web import create_app
from mailhunt.web.security import (
    CONTENT_SECURITY_POLICY,
    TOKEN_COOKIE,
    csrf_token,
    is_loopback,
)
from tests.web_support import (
    EXAMPLE,
    HOSTILE_ACTOR,
    PAYLOADS,
    build_hostile_case,
    copy_case,
    hunt_into,
)

TOKEN = "t0k3n-for-the-tests-0123456789abcdefghij"
INJECTIONS = ("'; DROP TABLE events; --", "%' OR 1=1 --", "x') UNION SELECT \"event.original\" FROM events --",
              '"; DELETE FROM findings; --')


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return build_hostile_case(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def document(hostile):
    return json.loads((hostile / "findings.json").read_text(encoding="utf-8"))


@pytest.fixture
def case(hostile, tmp_path):
    """A copy of the hostile case, for tests that write analyst state."""
    return copy_case(hostile, tmp_path)


def _client(case) -> TestClient:
    client = TestClient(create_app(case, TOKEN, "alice"))
    response = client.get(f"/findings?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    return client


@pytest.fixture
def client(case):
    return _client(case)


@pytest.fixture(scope="module")
def reader(hostile):
    """A signed-in client on the shared case, for tests that only read."""
    return _client(hostile)


def _finding(document, indicator, hostile_actor=True):
    return next(f for f in document["findings"] if f["indicator"] == indicator
                and (f["actor"] == HOSTILE_ACTOR) == hostile_actor)


def _custody(case):
    return [json.loads(line) for line in (case / "custody.jsonl").read_text(encoding="utf-8").splitlines()]


def _get_routes(document):
    finding = _finding(document, "inbox_rule_hiding")
    event = finding["evidence"][0]["event_id"]
    return ["/", "/findings", f"/findings/{finding['id']}", f"/findings/{finding['id']}/allowlist", "/timeline",
            f"/events/{event}", "/evidence", "/review", "/static/app.css", "/static/app.js",
            "/files/findings.json", "/evidence/files/0"]


def _post_routes(app) -> list[str]:
    return sorted(r.path for r in app.routes if "POST" in getattr(r, "methods", ()))


# ---------------------------------------------------------------- the token


def test_every_route_answers_401_and_nothing_else_without_the_token(hostile, document):
    anonymous = TestClient(create_app(hostile, TOKEN))
    posts = [p.replace("{finding_id}", "x") for p in _post_routes(anonymous.app)]
    assert posts == ["/evidence/verify", "/findings/x/disposition", "/findings/x/verification", "/review/signoff"]
    for path in _get_routes(document):
        for headers, cookies in (({}, {}), ({}, {TOKEN_COOKIE: "wrong"}), ({"Authorization": f"Bearer {TOKEN}"}, {})):
            anonymous.cookies.clear()
            anonymous.cookies.update(cookies)
            response = anonymous.get(path, headers=headers, follow_redirects=False)
            assert response.status_code == 401, path
            assert response.headers["content-type"].startswith("text/plain")
            assert "j.doe" not in response.text and "mh-" not in response.text
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert anonymous.get(f"{path}?token=not-{TOKEN}", follow_redirects=False).status_code == 401
    for path in posts:
        response = anonymous.post(path, data={"csrf": csrf_token(TOKEN), "disposition": "true_positive",
                                              "analyst_name": "x"}, follow_redirects=False)
        assert response.status_code == 401
    assert [e["action"] for e in _custody(hostile)] == ["hunt"]


def test_the_token_in_the_address_becomes_an_httponly_strict_cookie_and_leaves_the_address(hostile):
    client = TestClient(create_app(hostile, TOKEN))
    response = client.get(f"/timeline?q=HardDelete&token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/timeline?q=HardDelete"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = client.get("/timeline?q=HardDelete")
    assert page.status_code == 200 and "HardDelete" in page.text


# ---------------------------------------------------------------- pages


def test_every_page_renders_with_a_policy_that_forbids_inline_script_and_the_payloads_inert(reader, document):
    for path in _get_routes(document):
        response = reader.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if not response.headers["content-type"].startswith("text/html"):
            continue
        page = response.text
        assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/app.js" defer>']
        assert not re.search(r"\son[a-z]+\s*=", page.replace("onerror=window", "").replace("onload=window", "")), path
        assert " style=" not in page
        for payload in PAYLOADS:
            assert payload.replace("\u202e", "\\u202e") not in page
        assert "<svg onload" not in page and "<img src=x" not in page and "<script>window" not in page
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY


def test_hostile_strings_are_shown_as_text_with_the_bidi_override_written_out(reader, document):
    rule = _finding(document, "inbox_rule_hiding")
    page = reader.get(f"/findings/{rule['id']}").text
    assert "&lt;svg onload=window.pwned=2&gt;j.doe@fabrikam-labs.com" in page
    assert "&lt;script&gt;window.pwned=&#39;rule&#39;&lt;/script&gt;" in page
    found = reader.get("/timeline", params={"q": "txt.exe"}).text
    [event_id] = re.findall(r'<td class="time"><a href="/events/([^"?]+)\?at=[^"]+"', found)
    assert "&lt;img src=x onerror=window.pwned=1&gt;\\u202etxt.exe" in found
    event_page = reader.get(f"/events/{event_id}").text
    assert "&lt;img src=x onerror=window.pwned=1&gt;\\u202etxt.exe" in event_page
    assert "\u202e" not in event_page
    findings_page = reader.get("/findings").text
    assert findings_page.count("&lt;svg onload=window.pwned=2&gt;j.doe@fabrikam-labs.com") >= 8


def test_the_findings_page_filters_sorts_counts_and_groups_per_actor(reader, document):
    escalated = [f for f in document["findings"] if f["escalate"]]
    page = reader.get("/findings?escalate=yes&sort=severity&order=desc").text
    shown = re.findall(r'class="finding-link" href="/findings/([^"]+)"', page)
    assert sorted(shown) == sorted(f["id"] for f in escalated)
    deletions = reader.get("/findings?indicator=bulk_item_deletion").text
    ids = re.findall(r'class="finding-link" href="/findings/([^"]+)"', deletions)
    assert sorted(ids) == sorted(f["id"] for f in document["findings"] if f["indicator"] == "bulk_item_deletion")
    by_time = re.findall(r'class="finding-link" href="/findings/([^"]+)"', reader.get("/findings?sort=first_seen").text)
    assert by_time == [f["id"] for f in sorted(document["findings"], key=lambda f: (f["first_seen"], f["id"]))]
    assert re.search(r"bulk_item_deletion</a> <b>4</b>", reader.get("/findings").text)
    window = reader.get("/findings?since=2026-10-13T00:00:00Z&until=2026-10-14T23:59:59Z").text
    in_window = [f["id"] for f in document["findings"]
                 if f["last_seen"] >= "2026-10-13T00:00:00Z" and f["first_seen"] <= "2026-10-14T23:59:59Z"]
    assert sorted(re.findall(r'class="finding-link" href="/findings/([^"]+)"', window)) == sorted(in_window)
    assert "svc-retention@fabrikam-labs.com</a></h3>" in reader.get("/findings").text
    assert reader.get("/findings?actor=svc-retention@fabrikam-labs.com").text.count('class="finding-link"') == 3


def test_a_time_without_a_zone_is_refused_not_guessed(reader):
    for path in ("/findings?since=2026-10-13T00:00:00", "/timeline?until=2026-10-13T00:00:00%2B02:00",
                 "/timeline?since=yesterday"):
        response = reader.get(path)
        assert response.status_code == 400
        assert "UTC" in response.text or "not a time" in response.text


def test_injection_in_search_filters_and_sort_is_data_only(reader, hostile):
    with duckdb.connect(str(hostile / "case.duckdb"), read_only=True) as db:
        events_before = db.execute("SELECT count(*) FROM events").fetchall()[0][0]
    for text in INJECTIONS:
        page = reader.get("/timeline", params={"q": text})
        assert page.status_code == 200
        assert "No events." in page.text
        listing = reader.get("/findings", params={"actor": text, "indicator": text, "disposition": text,
                                                  "sort": text, "order": text})
        assert listing.status_code == 200 and "No finding matches the filter." in listing.text
    assert reader.get("/findings", params={"sort": "id; DROP TABLE findings"}).text.count('class="finding-link"') == 13
    with duckdb.connect(str(hostile / "case.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM events").fetchall()[0][0] == events_before
        assert db.execute("SELECT count(*) FROM findings").fetchall()[0][0] == 13


def test_the_timeline_search_finds_by_address_and_pages_in_time_order(reader, hostile):
    page = reader.get("/timeline", params={"q": "185.220.101.47"}).text
    with duckdb.connect(str(hostile / "case.duckdb"), read_only=True) as db:
        expected = db.execute("""SELECT count(*) FROM events WHERE "source.ip" = '185.220.101.47'""").fetchall()[0][0]
        ordered = [r[0] for r in db.execute(
            """SELECT "event.id" FROM events ORDER BY "@timestamp", "event.id" LIMIT 100 OFFSET 100""").fetchall()]
    assert 0 < page.count("<td>185.220.101.47</td>") == expected
    second = reader.get("/timeline?page=2").text
    assert re.findall(r'<td class="time"><a href="/events/([^"?]+)\?at=[^"]+"', second) == ordered
    assert "next ▶" in second and "◀ previous" in second
    assert '<text x="4" y="' in page and "m365.audit" in page


def test_the_finding_page_shows_answers_decision_raw_records_containment_verification_and_picture(reader, document):
    finding = _finding(document, "inbox_rule_hiding")
    page = reader.get(f"/findings/{finding['id']}").text
    for answer in finding["answers"].values():
        assert answer["answer"] in page
    assert "Escalate to Tier 2" in page
    raw = (f'{finding["evidence"][0]["source"]}, {finding["evidence"][0]["locator"]}, SHA-256 '
           f'<code>{finding["evidence"][0]["sha256"]}</code>')
    assert raw in page
    assert "preserved as evidence/" in page
    assert "Disable-InboxRule" in page and 'data-copy="step-1"' in page
    assert "To the business unit of" in page
    assert page.count('class="evidence"') >= 1 and "<svg class=\"timeline\"" in page
    assert reader.get("/findings/mh-nope").status_code == 404
    assert reader.get("/events/nope").status_code == 404
    evidence = finding["evidence"][0]
    shown = reader.get(f"/events/{evidence['event_id']}", params={"at": evidence["@timestamp"]}).text
    misled = reader.get(f"/events/{evidence['event_id']}", params={"at": "2001-01-01T00:00:00Z"}).text
    assert raw in shown and raw in misled  # the time is a hint: a wrong one still finds the event


def test_suggest_allowlist_shows_toml_that_loads_and_is_not_applied(reader, document, hostile, tmp_path):
    finding = _finding(document, "transport_rule_change", hostile_actor=False)
    page = reader.get(f"/findings/{finding['id']}/allowlist").text
    blocks = re.findall(r'<pre class="command toml" id="toml-\d">(.*?)</pre>', page, re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        text = html.unescape(block)
        tomllib.loads(text)
        config = tmp_path / "allow.toml"
        config.write_text(text, encoding="utf-8")
        loaded = load_config(config)
        assert loaded.automation or loaded.change_windows
    hostile_toml = html.unescape(re.findall(r'id="toml-1">(.*?)</pre>', reader.get(
        f"/findings/{_finding(document, 'inbox_rule_hiding')['id']}/allowlist").text, re.DOTALL)[0])
    assert tomllib.loads(hostile_toml)["authorized"]["automation"][0]["account"] == HOSTILE_ACTOR
    assert [e["action"] for e in _custody(hostile)] == ["hunt"]


def test_the_change_window_suggested_decides_the_finding_when_hunted_again(document, hostile, tmp_path):
    finding = _finding(document, "transport_rule_change", hostile_actor=False)
    client = _client(hostile)
    page = client.get(f"/findings/{finding['id']}/allowlist").text
    window = html.unescape(re.findall(r'id="toml-2">(.*?)</pre>', page, re.DOTALL)[0])
    config = tmp_path / "mailhunt.toml"
    config.write_text((EXAMPLE / "mailhunt.toml").read_text(encoding="utf-8") + "\n" + window, encoding="utf-8")
    result = CliRunner().invoke(cli, ["hunt", str(hostile.parent / "purview_audit_export.csv"),
                                      "--out", str(tmp_path / "again"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "findings.json").read_text(encoding="utf-8"))
    decided = next(f for f in again["findings"] if f["id"] == finding["id"])
    assert finding["escalate"] is True and decided["escalate"] is False
    assert any("CHANGE-TICKET" in reason for reason in decided["reasons"])


# ---------------------------------------------------------------- analyst actions


def test_a_disposition_is_kept_in_the_case_and_the_custody_log(client, case, document):
    finding = _finding(document, "inbox_rule_hiding")
    form = {"csrf": csrf_token(TOKEN), "disposition": "true_positive", "note": "hidden rule <b>confirmed</b>",
            "analyst_name": "alice"}
    # Chromium sends "Origin: null" for a same-origin form under Referrer-Policy no-referrer
    response = client.post(f"/findings/{finding['id']}/disposition", data=form, follow_redirects=False,
                           headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303
    page = client.get(f"/findings/{finding['id']}").text
    assert 'value="true_positive" id="disposition-true_positive" checked' in page
    assert "hidden rule &lt;b&gt;confirmed&lt;/b&gt;" in page
    entry = _custody(case)[-1]
    assert entry["action"] == "disposition"
    assert entry["details"] == {"finding_id": finding["id"], "value": "true_positive",
                                "note": "hidden rule <b>confirmed</b>", "analyst": "alice"}
    with CaseStore(case / "case.duckdb", read_only=True) as store:
        kept = case_review(store.db).dispositions[finding["id"]]
    assert (kept.value, kept.analyst, kept.custody_seq) == ("true_positive", "alice", entry["seq"])
    assert verify_case(case).intact and not verify_chain(case).problems
    listing = client.get("/findings?disposition=true_positive").text
    assert re.findall(r'class="finding-link" href="/findings/([^"]+)"', listing) == [finding["id"]]
    unreviewed = client.get("/findings?disposition=none").text
    assert unreviewed.count('class="finding-link"') == 12


def test_an_unknown_disposition_or_a_missing_name_is_refused_and_nothing_is_written(client, case, document):
    finding = _finding(document, "inbox_rule_hiding")
    for form in ({"disposition": "delete everything", "analyst_name": "alice"},
                 {"disposition": "false_positive", "analyst_name": "  "},
                 {"disposition": "false_positive", "analyst_name": "alice", "note": "x" * 5000}):
        response = client.post(f"/findings/{finding['id']}/disposition", data={"csrf": csrf_token(TOKEN), **form})
        assert response.status_code == 400 and 'id="problem"' in response.text
    assert client.post("/findings/mh-none/disposition", data={"csrf": csrf_token(TOKEN), "analyst_name": "a",
                                                              "disposition": "false_positive"}).status_code == 404
    assert [e["action"] for e in _custody(case)] == ["hunt"]


def test_every_post_without_the_right_csrf_token_or_from_another_site_is_refused(client, case, document):
    finding = _finding(document, "inbox_rule_hiding")
    routes = [p.replace("{finding_id}", finding["id"]) for p in _post_routes(client.app)]
    form = {"disposition": "false_positive", "answer": "confirmed", "analyst_name": "mallory", "note": "n"}
    for path in routes:
        for extra, headers in (({}, {}), ({"csrf": "0" * 64}, {}), ({"csrf": TOKEN}, {}),
                               ({"csrf": csrf_token(TOKEN)}, {"Origin": "http://evil.example"}),
                               ({"csrf": csrf_token(TOKEN)}, {"Sec-Fetch-Site": "cross-site"})):
            response = client.post(path, data={**form, **extra}, headers=headers, follow_redirects=False)
            assert response.status_code == 403, (path, extra, headers)
    assert [e["action"] for e in _custody(case)] == ["hunt"]
    with CaseStore(case / "case.duckdb", read_only=True) as store:
        assert case_review(store.db).dispositions == {} and case_review(store.db).signoff is None


def test_verification_answer_sign_off_and_verify_are_recorded_and_reach_the_reports(client, case, document):
    finding = _finding(document, "inbox_rule_hiding")
    csrf = csrf_token(TOKEN)
    assert client.post(f"/findings/{finding['id']}/verification",
                       data={"csrf": csrf, "answer": "not_confirmed", "analyst_name": "alice",
                             "note": "owner never made it"}, follow_redirects=False).status_code == 303
    assert client.post(f"/findings/{finding['id']}/disposition",
                       data={"csrf": csrf, "disposition": "true_positive", "analyst_name": "alice"},
                       follow_redirects=False).status_code == 303
    assert client.post("/review/signoff", data={"csrf": csrf, "analyst_name": "Bob Reviewer", "note": "closed"},
                       follow_redirects=False).status_code == 303
    review = client.get("/review").text
    assert "Signed off by <b>Bob Reviewer</b>" in review and "1 of 13 finding(s) have a disposition" in review
    verified = client.post("/evidence/verify", data={"csrf": csrf})
    assert verified.status_code == 200 and "<b>Intact</b>" in verified.text
    assert [e["action"] for e in _custody(case)] == ["hunt", "verification-answer", "disposition", "sign-off",
                                                     "verify"]
    assert verify_case(case).intact
    with CaseStore(case / "case.duckdb", read_only=True) as store:
        review_state = case_review(store.db)
        assert case_review(store.db).signoff.analyst == "Bob Reviewer"
    markdown = render_markdown(document, review=review_state)
    assert "## Analyst review" in markdown and "Bob Reviewer" in markdown
    assert f"| {finding['id']} | {DISPOSITIONS['true_positive']} |" in markdown
    report = render_html(document, review=review_state)
    assert "Analyst review" in report and "Bob Reviewer" in report and "&lt;svg onload" in report


def test_a_second_hunt_into_the_case_keeps_the_analyst_state(client, case, document, hostile):
    finding = _finding(document, "inbox_rule_hiding")
    client.post(f"/findings/{finding['id']}/disposition",
                data={"csrf": csrf_token(TOKEN), "disposition": "true_positive", "analyst_name": "alice"})
    hunt_into(hostile.parent / "purview_audit_export.csv", case)
    with CaseStore(case / "case.duckdb", read_only=True) as store:
        assert case_review(store.db).dispositions[finding["id"]].value == "true_positive"
    assert "## Analyst review" in (case / "report.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- files


def test_no_route_serves_a_file_outside_the_case_folder(client, case):
    (case.parent / "secret.txt").write_text("outside the case", encoding="utf-8")
    for path in ("/files/../secret.txt", "/files/..%2Fsecret.txt", "/files/case.duckdb", "/files/%2e%2e/secret.txt",
                 "/static/..%2F..%2Fapp.py", "/static/../app.py", "/static/%2e%2e%2fsecurity.py",
                 "/evidence/files/-1", "/evidence/files/5", "/evidence/files/..%2F..%2Fsecret.txt",
                 "/files/evidence%2Fmanifest.json", "//etc/passwd", "/files//etc/passwd"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "outside the case" not in response.text and "create_app" not in response.text
    manifest_path = case / "evidence" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for planted in ("../../secret.txt", "/etc/passwd", "../case.duckdb"):
        manifest["files"][0]["evidence_path"] = planted
        os.chmod(manifest_path, 0o644)
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
        response = client.get("/evidence/files/0")
        assert response.status_code == 404, planted
        assert "outside the case" not in response.text
    os.symlink(case.parent / "secret.txt", case / "evidence" / "link.csv")
    manifest["files"][0]["evidence_path"] = "link.csv"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert client.get("/evidence/files/0").status_code == 404
    os.symlink(case.parent / "secret.txt", case / "timeline.csv.tmp")
    (case / "report.md").unlink()
    os.symlink(case.parent / "secret.txt", case / "report.md")
    assert client.get("/files/report.md").status_code == 404


def test_a_preserved_copy_downloads_as_an_attachment(reader, hostile):
    response = reader.get("/evidence/files/0")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == (hostile.parent / "purview_audit_export.csv").read_bytes()


# ---------------------------------------------------------------- the command


def test_serve_binds_loopback_by_default_and_warns_for_other_hosts(monkeypatch, hostile):
    import uvicorn
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append((self.config.host, self.config.port)))
    default = CliRunner().invoke(cli, ["serve", str(hostile)])
    assert default.exit_code == 0, default.output
    assert re.search(r"http://127\.0\.0\.1:8765/\?token=[A-Za-z0-9_-]{40,}", default.output)
    assert "warning" not in default.output
    shared = CliRunner().invoke(cli, ["serve", str(hostile), "--host", "0.0.0.0", "--port", "9999"])
    assert "warning: 0.0.0.0 is not a loopback address" in shared.output
    assert started == [("127.0.0.1", 8765), ("0.0.0.0", 9999)]
    assert CliRunner().invoke(cli, ["serve", str(hostile.parent)]).exit_code == 2
    assert is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_an_event_id_with_slashes_stays_one_path_segment(client, case):
    """Event ids come from readers; one holding ``../`` must neither climb to another route nor break the link."""
    odd = "../../files/custody.jsonl"
    with duckdb.connect(str(case / "case.duckdb")) as db:
        db.execute("""INSERT INTO events SELECT * REPLACE (? AS "event.id") FROM events
                      WHERE "event.action" = 'New-InboxRule' LIMIT 1""", [odd])
    page = client.get("/timeline", params={"q": "New-InboxRule"}).text
    [link] = re.findall(r'href="(/events/\.\.%2F[^"]+)"', page)
    assert link.startswith("/events/..%2F..%2Ffiles%2Fcustody.jsonl?at=")
    shown = client.get(html.unescape(link))
    assert shown.status_code == 200 and f"<code>{html.escape(odd)}</code>" in shown.text
