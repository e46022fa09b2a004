"""``mailhunt serve`` in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright for Python).

Few and slow on purpose: one walk through an analyst's work (filter, open a
finding, set a disposition, reload, see it kept and in the custody log,
every page photographed), and one check that the hostile case's payloads
run nowhere. Screenshots go to ``tests/artifacts/web/`` (git-ignored), or to
``$MAILHUNT_ARTIFACTS``. Without Chromium these tests skip, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.web_support import HOSTILE_ACTOR, build_hostile_case, copy_case, live_server

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TOKEN = "browser-test-token-0123456789abcdefghijklmn"
ARTIFACTS = Path(os.environ.get("MAILHUNT_ARTIFACTS") or Path(__file__).parent / "artifacts" / "web")


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.is_file():
        why = "Playwright for Python is not installed" if sync_playwright is None else f"no browser at {CHROMIUM}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: CI must run the browser tests (.ci/run installs chromium)")
        pytest.skip(f"{why} (apt-get install -y chromium); the browser tests are skipped here")
    return sync_playwright


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return build_hostile_case(tmp_path_factory.mktemp("browser"))


@pytest.fixture
def page_in(tmp_path, hostile):
    """A Chromium page signed in to a server on a copy of the hostile case; yields (page, base, case)."""
    sync_playwright = _browser_or_skip()
    case = copy_case(hostile, tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(case, TOKEN, "alice") as base, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.violations = []
            page.on("console", lambda message: page.violations.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.on("dialog", lambda dialog: (page.violations.append(f"dialog: {dialog.message}"), dialog.dismiss()))
            page.goto(f"{base}/?token={TOKEN}")
            yield page, base, case
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_an_analyst_filters_opens_a_finding_sets_a_disposition_and_it_stays(page_in):
    page, base, case = page_in
    assert page.url == f"{base}/findings"
    assert page.locator("#findings-table tbody tr").count() == 13
    _shot(page, "findings")

    page.select_option("select[name=indicator]", "inbox_rule_hiding")
    page.click("#apply-filters")
    page.wait_for_url(re.compile(r".*indicator=inbox_rule_hiding.*"))
    rows = page.locator("#findings-table tbody tr")
    assert rows.count() == 1
    assert HOSTILE_ACTOR in rows.first.inner_text()

    page.click("a.finding-link")
    page.wait_for_url(re.compile(r".*/findings/mh-[0-9a-f]+$"))
    finding_id = page.locator("#finding-id").inner_text()
    assert page.locator("#finding-actor").inner_text() == HOSTILE_ACTOR
    _shot(page, "finding")

    page.check("#disposition-true_positive")
    page.fill("#disposition-note", "hidden rule made by the intruder, confirmed with the owner")
    page.click("#save-disposition")
    page.wait_for_url(re.compile(r".*#review$"))
    page.reload()
    assert page.is_checked("#disposition-true_positive")
    assert "true positive" in page.locator("#history").inner_text()
    last = json.loads((case / "custody.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["details"]["finding_id"], last["details"]["value"]) == (
        "disposition", finding_id, "true_positive")

    page.goto(f"{base}/findings?disposition=true_positive")
    assert page.locator("a.finding-link").all_inner_texts() == [finding_id]

    page.goto(f"{base}/findings/{finding_id}/allowlist")
    assert "[[authorized.automation]]" in page.locator("#toml-1").inner_text()
    _shot(page, "allowlist")

    page.goto(f"{base}/timeline")
    page.fill("#search", "185.220.101.47")
    page.click("#search-button")
    page.wait_for_url(re.compile(r".*q=185\.220\.101\.47.*"))
    assert page.locator("#events-table tbody tr").count() > 5
    _shot(page, "timeline")
    page.locator("#events-table tbody tr td.time a").first.click()
    page.wait_for_url(re.compile(r".*/events/.+"))
    assert "185.220.101.47" in page.locator("pre.raw").first.inner_text()
    _shot(page, "event")

    page.goto(f"{base}/evidence")
    page.click("#verify-button")
    assert page.locator("#verdict").inner_text().startswith("Intact")
    _shot(page, "evidence")

    page.goto(f"{base}/review")
    page.fill("#signoff-name", "Bob Reviewer")
    page.click("#signoff-button")
    page.wait_for_url(f"{base}/review")
    assert "Signed off by Bob Reviewer" in page.locator("#signoff").inner_text()
    _shot(page, "review")
    actions = [json.loads(line)["action"] for line in (case / "custody.jsonl").read_text().splitlines()]
    assert actions == ["hunt", "disposition", "verify", "sign-off"]
    assert page.violations == []


def test_the_hostile_case_renders_its_payloads_as_text_and_runs_none(page_in):
    page, base, case = page_in
    visited = [f"{base}/findings", f"{base}/timeline?q=pwned", f"{base}/review"]
    page.goto(f"{base}/findings")
    visited += [f"{base}{href}" for href in page.locator("a.finding-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")]
    page.goto(f"{base}/timeline?q=txt.exe")
    visited += [f"{base}{page.locator('#events-table td.time a').first.get_attribute('href')}"]
    for url in visited:
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.pwned") is None, url
        assert page.locator("svg[onload], img[onerror], script:not([src])").count() == 0, url
    assert "<img src=x onerror=window.pwned=1>\\u202etxt.exe" in page.locator("pre.raw").first.inner_text()
    page.goto(visited[-1])
    _shot(page, "hostile-event")
    page.goto(f"{base}/findings?actor={HOSTILE_ACTOR}")
    assert page.locator("td.actor").first.inner_text() == HOSTILE_ACTOR
    assert page.evaluate("window.pwned") is None
    assert page.violations == []
    actions = [json.loads(line)["action"] for line in (case / "custody.jsonl").read_text().splitlines()]
    assert actions == ["hunt"]  # browsing writes nothing
