"""The report at 900 px in a real browser, and the terminal summary at 80 and 120 columns.

The HTML check renders report.html of the example incident in headless
Chromium (Debian's /usr/bin/chromium through Playwright). Without a browser
it is skipped, saying so, except in CI (CI=true), where it must run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from mailhunt.cli import findings_table
from mailhunt.config import Config, load_config
from mailhunt.hunt import hunt
from mailhunt.report.html import write_html_report
from tests.corpus import EXAMPLES, REPO
from tests.test_report import sample_document

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXAMPLE = EXAMPLES / "incident-2026-10"

# Every word of every header (table header cells, section and finding headings), with the
# lines its letters are laid out on: a word on more than one line was broken inside.
SPLIT_WORDS = """
() => {
  const split = [];
  for (const header of document.querySelectorAll("th, h1, h2, h3, h4")) {
    const walker = document.createTreeWalker(header, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) split.push(header.tagName + ": " + match[0]);
      }
    }
  }
  return split;
}
"""


def _browser():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is not installed: the layout at 900 px is not checked"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed: the layout at 900 px is not checked")
    return sync_playwright


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[Path]:
    """report.html of the example incident, of a case of three sources, and of the reports' sample document."""
    base = tmp_path_factory.mktemp("layout")
    hunt([EXAMPLE / "purview_audit_export.csv"], base / "example", load_config(EXAMPLE / "mailhunt.toml"))
    evidence = base / "evidence"
    evidence.mkdir()
    for name in ("exch01_msexchange_management.jsonl", "ws042_powershell.winlogbeat.ndjson", "ual_jsmith.ndjson"):
        shutil.copy(REPO / "tests" / "fixtures" / "windows" / name, evidence / name)
    hunt([evidence], base / "three", Config())
    write_html_report(sample_document(), base / "sample.html")
    return [base / "example" / "report.html", base / "three" / "report.html", base / "sample.html"]


def test_report_fits_900_pixels_and_no_header_breaks_inside_a_word(reports):
    sync_playwright = _browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            for report in reports:
                page.goto(report.as_uri())
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 900, f"{report}: {width} px wide at a 900 px window"
                for picture in page.query_selector_all(".timeline svg"):
                    box = picture.bounding_box()
                    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 900, report
                assert page.evaluate(SPLIT_WORDS) == [], report
                assert page.query_selector_all("th"), report
        finally:
            browser.close()


# ---------------------------------------------------------------- terminal


@pytest.mark.parametrize("width", [80, 120])
def test_summary_never_cuts_a_finding_id(width, tmp_path):
    result = hunt([EXAMPLE / "purview_audit_export.csv"], tmp_path / "case", load_config(EXAMPLE / "mailhunt.toml"))
    findings = result.document["findings"]
    assert findings
    console = Console(width=width, record=True, color_system=None)
    console.print(findings_table(findings, "Findings"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    for finding in findings:
        assert any(finding["id"] in line for line in lines), f"{finding['id']} cut at {width} columns"
    # and every id is whole: no line holds a part of an id that is not the whole of one
    ids = {f["id"] for f in findings}
    for fragment in re.findall(r"mh-[0-9a-f]*", "\n".join(lines)):
        assert fragment in ids, f"{fragment!r} at {width} columns"
