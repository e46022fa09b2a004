"""One story per actor and the timeline picture per event, in both reports, on real hunts: the bundled example
incident, the Huntress sample and a case of three Windows and Microsoft 365 sources naming one person three ways."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from mailhunt.config import Config, load_config
from mailhunt.hunt import hunt
from mailhunt.report.actors import split_reason
from mailhunt.report.html import render_html
from mailhunt.report.markdown import render_markdown
from tests.corpus import EXAMPLES, PUBLIC, REPO
from tests.test_report import hostile_document, parse, sample_document

EXAMPLE = EXAMPLES / "incident-2026-10"
ATTACKER = "j.doe@fabrikam-labs.com"
ATTACKER_IP = "185.220.101.47"
WINDOWS = REPO / "tests" / "fixtures" / "windows"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    out = tmp_path_factory.mktemp("actors") / "case"
    hunt([EXAMPLE / "purview_audit_export.csv"], out, load_config(EXAMPLE / "mailhunt.toml"))
    return out


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    """An export in the MSExchange Management log, its removal in a script block and the unified audit log:
    one person logged as CORP\\jsmith, jsmith and jsmith@corp.example."""
    folder = tmp_path_factory.mktemp("three")
    evidence = folder / "evidence"
    evidence.mkdir()
    for name in ("exch01_msexchange_management.jsonl", "ws042_powershell.winlogbeat.ndjson", "ual_jsmith.ndjson"):
        shutil.copy(WINDOWS / name, evidence / name)
    hunt([evidence], folder / "case", Config())
    return folder / "case"


def _section(markdown: str, heading: str) -> str:
    """The Markdown from ``heading`` to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = markdown.index(heading + "\n")
    rest = markdown[start + len(heading) + 1:]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return heading + "\n" + (rest[:end.start()] if end else rest)


class Articles(HTMLParser):
    """The text of each <article> by id, and the event marks of each <svg> by id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: dict[str, list[str]] = {}
        self.svg: str | None = None
        self.events: dict[str, list[dict]] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "article":
            self.open.append(attributes.get("id") or "")
            self.text.setdefault(self.open[-1], [])
        if tag == "svg" and attributes.get("id"):
            self.svg = attributes["id"]
        if "event" in (attributes.get("class") or "").split() and self.svg:
            self.events.setdefault(self.svg, []).append(dict(attributes, tag=tag))

    def handle_endtag(self, tag):
        if tag == "article":
            self.open.pop()

    def handle_data(self, data):
        for article in self.open:
            self.text[article].append(data)


def articles(html: str) -> Articles:
    tree = Articles()
    tree.feed(html)
    tree.close()
    return tree


def _article_text(tree: Articles, article: str) -> str:
    return re.sub(r"\s+", " ", "".join(tree.text[article]))


# ---------------------------------------------------------------- reasons


@pytest.mark.parametrize("reason, label, clauses", [
    ("supporting: sign ins: country new: DE (first at 22:51); network new: X; 12 sign-ins a .. b",
     "supporting: sign ins", ["country new: DE (first at 22:51)", "network new: X", "12 sign-ins a .. b"]),
    ("supporting: unusual for the account: never did A; from a new network N (though: x; y (z)); baseline",
     "supporting: unusual for the account", ["never did A", "from a new network N (though: x; y (z))", "baseline"]),
    ("known threat pattern: export followed by deletion: A then B; 27 such pairs",
     "known threat pattern", ["export followed by deletion: A then B", "27 such pairs"]),
    ("a reason with no label", "", ["a reason with no label"]),
])
def test_reasons_split_into_label_and_clauses(reason, label, clauses):
    assert split_reason(reason) == (label, clauses)


# ---------------------------------------------------------------- the example incident


def test_example_tells_one_story_per_actor_with_shared_reasons_once(example):
    document = json.loads((example / "findings.json").read_text())
    markdown = (example / "report.md").read_text()
    actors = {f["actor"] for f in document["findings"]}
    stories = _section(markdown, "## What each actor did")
    assert sorted(re.findall(r"^### (\S+): ", stories, re.MULTILINE)) == sorted(actors)
    # the attacker first: the actor with the most severe escalated findings
    assert re.findall(r"^### (\S+): ", stories, re.MULTILINE)[0] == ATTACKER
    story = _section(stories, f"### {ATTACKER}: critical, 8 of 8 escalated")
    mine = [f for f in document["findings"] if f["actor"] == ATTACKER]
    assert len(mine) == 8
    # every finding is a step of the story, in time order, with its id
    steps = re.findall(r"^- \*\*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC.*Id (mh-[0-9a-f]{20})\.$", story, re.MULTILINE)
    assert [fid for _, fid in steps] == [f["id"] for f in sorted(mine, key=lambda f: (f["first_seen"], f["id"]))]
    assert [when for when, _ in steps] == sorted(when for when, _ in steps)
    # the attacker's address with its country and network, in the story's text
    assert f"- IP address: {ATTACKER_IP} (DE, Stiftung Erneuerbare Freiheit), " in story
    assert story.count(f"from {ATTACKER_IP} (DE, Stiftung Erneuerbare Freiheit)") == 8
    # a reason all 8 findings give is said once, in the story, and no finding repeats it
    shared = next(r for r in mine[0]["reasons"] if r.startswith("supporting: password changes"))
    assert all(shared in f["reasons"] for f in mine)
    assert markdown.count(shared) == 1
    assert f"- {shared} (all 8 findings)" in story
    for finding in mine:
        number = document["findings"].index(finding) + 1
        heading = re.search(rf"^### {number}\. .*$", markdown, re.MULTILINE).group(0)
        decision = _section(markdown, heading).split("| Field | Value |")[0]
        assert "password changes" not in decision
        assert "see j.doe@fabrikam-labs.com under What each actor did" in decision
    # a reason of one finding alone stays with it
    audit = next(f for f in mine if f["indicator"] == "audit_tampering")
    pattern = next(r for r in audit["reasons"] if r.startswith("known threat pattern: audit evidence tampered"))
    assert markdown.count(pattern) == 1 and pattern not in stories


def test_example_report_before_the_stories_said_the_same_reasons_eight_times(example):
    """The example as the reports read before: every reason repeated in every finding of the actor."""
    document = json.loads((example / "findings.json").read_text())
    shared = next(r for r in document["findings"][-1]["reasons"] if r.startswith("supporting: password changes"))
    assert sum(shared in f["reasons"] for f in document["findings"]) == 8
    assert (example / "report.md").read_text().count(shared) == 1
    assert (example / "report.html").read_text().count(shared) == 1


def test_example_html_story_and_event_picture(example):
    document = json.loads((example / "findings.json").read_text())
    html = (example / "report.html").read_text()
    parse(html)
    tree = articles(html)
    story = _article_text(tree, "actor-1")
    assert story.startswith(f" {ATTACKER}") or ATTACKER in story[:80]
    assert f"{ATTACKER_IP} (DE, Stiftung Erneuerbare Freiheit)" in story
    assert "Client=OWA;Mozilla/5.0" in story           # the user agent of the deletions
    assert "9b1d7c4e-2f63-4a58-b0e1-6c3d8a7f2e95" in story  # the application new to the tenant
    # the case picture: one mark per distinct event of the findings, escalated ones filled diamonds
    events = {e["event_id"]: any(f["escalate"] for f in document["findings"] if e in f["evidence"])
              for f in document["findings"] for e in f["evidence"]}
    escalated_ids = {e["event_id"] for f in document["findings"] if f["escalate"] for e in f["evidence"]}
    every = {e["event_id"] for f in document["findings"] for e in f["evidence"]}
    marks = tree.events["events-all"]
    assert sorted(m["data-event"] for m in marks) == sorted(every) and len(events) == len(every)
    for mark in marks:
        escalated = mark["data-event"] in escalated_ids
        assert (mark["tag"], "escalated" in mark["class"].split()) == (("polygon", True) if escalated
                                                                      else ("circle", False))
    assert {m["data-event"] for m in marks if m["tag"] == "circle"}, "the automation's deletions are not escalated"
    # a legend says which shape is which, in words
    assert "filled diamond: event of a finding escalated to Tier 2" in html
    assert "hollow circle: event of findings not escalated" in html
    # the attacker's own picture holds exactly its events
    mine = {e["event_id"] for f in document["findings"] if f["actor"] == ATTACKER for e in f["evidence"]}
    assert {m["data-event"] for m in tree.events["events-actor-1"]} == mine


def test_huntress_attacker_network_is_in_the_actor_story(tmp_path):
    hunt([PUBLIC / "huntress-ctf-2023" / "purview.csv"], tmp_path / "case", Config())
    markdown = (tmp_path / "case" / "report.md").read_text()
    stories = _section(markdown, "## What each actor did")
    assert re.search(r"IP address(es)?: .*185\.73\.124\.135", stories)
    html = (tmp_path / "case" / "report.html").read_text()
    tree = articles(html)
    assert any("185.73.124.135" in _article_text(tree, a) for a in tree.text if a.startswith("actor-"))


# ---------------------------------------------------------------- several sources


def test_three_sources_one_person_one_story_lanes_per_source(three_sources):
    document = json.loads((three_sources / "findings.json").read_text())
    assert {f["actor"] for f in document["findings"]} == {"jsmith@corp.example"}
    markdown = (three_sources / "report.md").read_text()
    stories = _section(markdown, "## What each actor did")
    assert len(re.findall(r"^### ", stories, re.MULTILINE)) == 1
    assert "Also logged as: CORP\\\\jsmith, jsmith." in stories
    # the resolution is told once, in the story, not under every finding
    note = document["findings"][0]["actor_resolution"][0].replace("\\", "\\\\")
    assert f"- {note}" in stories
    actor_rows = [line for line in markdown.splitlines() if line.startswith("| Actor |")]
    assert len(actor_rows) == 3 and not any("taken as" in row for row in actor_rows)
    assert all("the names it stands for: see the actor's story" in row for row in actor_rows)
    html = (three_sources / "report.html").read_text()
    lanes = re.findall(r'class="rowlabel"[^>]*><title>([^<]*): \d+ events?</title>', html)
    sources = {e["source"] for f in document["findings"] for e in f["evidence"]}
    assert len(sources) == 2
    assert set(lanes) == sources  # the exchange log and the script block log, each a lane


# ---------------------------------------------------------------- hostile strings


def test_stories_escape_hostile_strings():
    hostile = hostile_document(sample_document())
    for finding in hostile["findings"]:
        finding["actor_aliases"] = ["<img src=x onerror=alert(1)>"]
        for entry in finding["evidence"]:
            entry.update({"source_ip": "<svg onload=alert(1)>", "user_agent": "</title><script>x</script>",
                          "app_id": "`a|b`"})
    html = render_html(hostile)
    tree = parse(html)
    assert "<img" not in html and "<svg onload" not in html and "<script>x" not in html
    assert tree.titles_in_events == len(tree.events) > 0
    markdown = render_markdown(hostile)
    assert re.search(r"(?<!\\)[<>]", markdown) is None
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<img" not in rendered and "<svg onload" not in rendered and "<script>x" not in rendered
