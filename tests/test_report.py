"""The HTML and Markdown reports: structure, timeline, escaping of hostile strings, determinism."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from html.parser import HTMLParser

import orjson
import pytest
from markdown_it import MarkdownIt

from mailhunt.report.html import render_html, timeline, write_html_report
from mailhunt.report.markdown import md, render_markdown, write_markdown_report

SCRIPT = "<script>alert(1)</script>"
ATTR = '" onmouseover='
STYLE = "</style>"
HOSTILE = f"{SCRIPT} {ATTR}alert(2) x {STYLE}<b>"
RAW_HOSTILE = (SCRIPT, ATTR, STYLE, "<b>")


def _evidence(ts, action, target, parameters=None, subject=None, source="purview_audit_export.csv", line=2):
    return {"source": source, "sha256": "ab" * 32, "locator": f"line {line}", "@timestamp": ts,
            "action": action, "target": target, "parameters": parameters, "subject": subject,
            "event_id": f"e{line}"}


def _answers(export="no", legit="no", usual="no", transport="unknown"):
    return {
        "export_followed_by_deletion": {"answer": export, "because": "export at 10:02, removal at 10:14"},
        "legitimate_admin_activity": {"answer": legit, "because": "actor is not an authorized admin"},
        "usual_for_account": {"answer": usual, "because": "first time in 14 days of history"},
        "transport_rule_with_suspicious_mail": {"answer": transport, "because": "no transport rule change"},
    }


def _finding(fid, indicator, actor, first, last, severity, escalate, evidence, **extra):
    finding = {
        "id": fid, "indicator": indicator,
        "rule": {"id": f"mh-{indicator}", "title": f"Rule for {indicator}", "level": "high"},
        "rules": [{"id": f"mh-{indicator}", "title": f"Rule for {indicator}", "level": "high"}],
        "attack": ["T1070.008"], "actor": actor, "targets": ["cfo@fabrikam-labs.com"], "host": None,
        "first_seen": first, "last_seen": last, "event_count": len(evidence), "evidence": evidence,
        "answers": _answers(), "escalate": escalate, "severity": severity,
        "reasons": ["mailbox export/deletion activity lacks legitimate justification"] if escalate else
                   ["not escalated: change window CHG-1234"],
    }
    finding.update(extra)
    return finding


def sample_document() -> dict:
    return {
        "schema": "mailhunt.findings/1",
        "tool": {"name": "mailhunt", "version": "0.1.0"},
        "inputs": [
            {"path": "incident/purview_audit_export.csv", "sha256": "ab" * 32, "format": "m365.purview_csv",
             "records": 2113, "rejected": 1, "skipped_reason": None},
            {"path": "incident/notes.txt", "sha256": "cd" * 32, "format": None, "records": 0, "rejected": 0,
             "skipped_reason": "format not recognized"},
        ],
        "findings": [
            _finding("mh-aaaaaaaaaaaaaaaaaaaa", "mailbox_export", "compliance-admin@fabrikam-labs.com",
                     "2026-10-06T21:05:00Z", "2026-10-06T21:05:00Z", "low", False,
                     [_evidence("2026-10-06T21:05:00Z", "New-MailboxExportRequest", "legal@fabrikam-labs.com",
                                "-Mailbox legal -FilePath \\\\fs01\\pst$\\legal.pst", line=120)]),
            _finding("mh-bbbbbbbbbbbbbbbbbbbb", "export_then_deletion", "j.doe@fabrikam-labs.com",
                     "2026-10-14T02:10:00Z", "2026-10-14T02:22:00Z", "critical", True,
                     [_evidence("2026-10-14T02:10:00Z", "New-MailboxExportRequest", "cfo@fabrikam-labs.com",
                                "-Mailbox cfo -FilePath \\\\203.0.113.50\\share\\cfo.pst", line=1500),
                      _evidence("2026-10-14T02:22:00Z", "Remove-MailboxExportRequest", "cfo@fabrikam-labs.com",
                                "-Identity cfo\\MailboxExport -Confirm False", line=1510)],
                     answers=_answers(export="yes")),
            _finding("mh-cccccccccccccccccccc", "bulk_item_deletion", "j.doe@fabrikam-labs.com",
                     "2026-10-14T02:30:00Z", "2026-10-14T03:20:00Z", "high", True,
                     [_evidence(f"2026-10-14T02:{30 + i:02d}:00Z", "HardDelete", "cfo@fabrikam-labs.com",
                                subject=f"Q3 board pack v{i}", line=1600 + i) for i in range(5)]),
            _finding("mh-dddddddddddddddddddd", "transport_rule_change", "helpdesk-admin@fabrikam-labs.com",
                     "2026-10-14T04:00:00Z", "2026-10-14T04:00:00Z", "medium", True,
                     [_evidence("2026-10-14T04:00:00Z", "New-TransportRule", "Bypass lookalike",
                                "-Name Bypass lookalike -SenderDomainIs fabrikam-1abs.com -SetSCL -1", line=1700)]),
        ],
        "rejections": [{"path": "incident/purview_audit_export.csv", "locator": "line 77",
                        "reason": "AuditData is not JSON"}],
        "skipped_rules": [{"id": "mh-unix-mail-deletion", "reason": "no auditd events in the case"}],
    }


def hostile_document(document: dict) -> dict:
    """Every attacker-controllable string of the document set to the hostile payload."""
    doc = copy.deepcopy(document)
    doc["inputs"][0]["path"] = f"evidence/{HOSTILE}.csv"
    doc["inputs"][1]["skipped_reason"] = HOSTILE
    doc["rejections"][0]["reason"] = HOSTILE
    doc["skipped_rules"][0]["id"] = HOSTILE
    for finding in doc["findings"]:
        finding["actor"] = HOSTILE
        finding["targets"] = [HOSTILE, "cfo@fabrikam-labs.com"]
        finding["host"] = HOSTILE
        finding["indicator"] = HOSTILE
        finding["id"] = HOSTILE
        finding["rule"] = {"id": HOSTILE, "title": HOSTILE, "level": HOSTILE}
        finding["rules"] = [finding["rule"]]
        finding["attack"] = [HOSTILE]
        finding["reasons"] = [HOSTILE]
        finding["severity"] = HOSTILE
        for answer in finding["answers"].values():
            answer["because"] = HOSTILE
            answer["answer"] = HOSTILE
        finding["l1"] = [{"step": HOSTILE, "result": HOSTILE, "detail": HOSTILE},
                         {"step": "sign_ins", "result": "flag", "detail": HOSTILE}]
        finding["baseline"] = {"statement": HOSTILE}
        finding["actor_resolution"] = [HOSTILE]
        for evidence in finding["evidence"]:
            evidence.update({"subject": HOSTILE, "parameters": f"-Name {HOSTILE} | -Body `x`", "source": HOSTILE,
                             "locator": HOSTILE, "action": HOSTILE, "target": HOSTILE, "sha256": HOSTILE})
    return doc


@pytest.fixture()
def document() -> dict:
    return sample_document()


@pytest.fixture()
def hostile(document) -> dict:
    return hostile_document(document)


class Tree(HTMLParser):
    """Checks nesting while collecting the elements we look at."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.marks: list[dict] = []
        self.events: list[dict] = []
        self.titles_in_marks = 0
        self.titles_in_events = 0
        self.classes: list[list[str]] = []
        self.in_svg = 0
        self.svg_id = None
        self.in_style = False
        self.style = ""
        self.tags: list[tuple[str, dict]] = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "svg":
            self.in_svg += 1
            self.svg_id = attributes.get("id")
        if tag == "style":
            self.in_style = True
        classes = (attributes.get("class") or "").split()
        if self.in_svg and "mark" in classes:
            self.marks.append(dict(attributes, svg=self.svg_id))
        if self.in_svg and "event" in classes:
            self.events.append(dict(attributes, svg=self.svg_id))
        if tag == "title" and self.stack and self.stack[-1] in ("circle", "rect", "polygon"):
            self.titles_in_marks += "mark" in self.classes[-1]
            self.titles_in_events += "event" in self.classes[-1]
        if tag not in self.VOID:
            self.stack.append(tag)
            self.classes.append(classes)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()
        self.classes.pop()
        if tag == "svg":
            self.in_svg -= 1
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.style += data
        self.text.append(data)


def parse(html: str) -> Tree:
    tree = Tree()
    tree.feed(html)
    tree.close()
    assert not tree.errors, tree.errors
    assert tree.stack == [], f"unclosed: {tree.stack}"
    return tree


# ---------------------------------------------------------------- HTML


def test_html_parses_and_has_one_mark_per_finding(document, tmp_path):
    path = tmp_path / "report.html"
    write_html_report(document, path)
    html = path.read_text(encoding="utf-8")
    tree = parse(html)
    svgs = [a.get("id") for tag, a in tree.tags if tag == "svg"]
    assert svgs[0] == "timeline-all"
    overview = [m for m in tree.marks if m["svg"] == "timeline-all"]
    assert len(overview) == len(document["findings"])
    assert tree.titles_in_marks == len(tree.marks)
    assert sorted(m["data-finding"] for m in overview) == sorted(f["id"] for f in document["findings"])
    # each mark links to its finding's section, and that section exists
    ids = {a.get("id") for _, a in tree.tags if a.get("id")}
    for finding in document["findings"]:
        assert f"finding-{finding['id']}" in ids


def test_html_contents(document, tmp_path):
    html = render_html(document)
    text = " ".join(parse(html).text)
    for finding in document["findings"]:
        assert finding["indicator"] in text
        assert finding["actor"] in text
    assert "2113" in text and "format not recognized" in text          # inputs table
    assert "escalated to Tier 2" in text
    assert "Is there a pattern of mailbox export followed by immediate deletion?" in text
    assert "export at 10:02, removal at 10:14" in text                    # because
    assert "Remove-MailboxExportRequest" in text and "line 1510" in text  # evidence
    assert "AuditData is not JSON" in text and "mh-unix-mail-deletion" in text
    assert "2026-10-14 02:10:00 UTC" in text


def test_answers_coloured_by_what_they_mean(document):
    doc = copy.deepcopy(document)
    doc["findings"] = [doc["findings"][1]]
    doc["findings"][0]["answers"] = _answers(export="yes", legit="yes", usual="no", transport="unknown")
    tree = parse(render_html(doc))
    tones = [a["class"] for tag, a in tree.tags if tag == "span" and "ans" in (a.get("class") or "").split()]
    # export then deletion: yes is worrying; legitimate: yes reassures; usual: no is worrying
    assert tones == ["ans concern", "ans reassure", "ans concern", "ans unknown"]
    markdown = render_markdown(doc)
    assert "| Does the account usually perform such operations? | **no** |" in markdown
    assert "| **yes** | actor is not an authorized admin |" not in markdown


def test_marks_coloured_by_severity(document):
    tree = parse(render_html(document))
    colours = {m["data-finding"]: m["fill"] for m in tree.marks}
    by_id = {f["id"]: f["severity"] for f in document["findings"]}
    assert len({colours[i] for i in by_id}) == 4
    for fid, severity in by_id.items():
        assert f"sev-{severity}" in next(m["class"] for m in tree.marks if m["data-finding"] == fid)


def test_timeline_rows_ticks_and_determinism(document):
    geometry = timeline(document["findings"])
    assert geometry["by"] == "actor"
    assert [r["full"] for r in geometry["rows"]] == [
        "compliance-admin@fabrikam-labs.com", "j.doe@fabrikam-labs.com", "helpdesk-admin@fabrikam-labs.com"]
    assert len(geometry["marks"]) == 4
    assert 2 <= len(geometry["ticks"]) <= 10
    xs = [float(t["x"]) for t in geometry["ticks"]]
    assert xs == sorted(xs) and all(geometry["x0"] <= x <= geometry["x1"] for x in xs)
    # the marks are in time order along x
    marks = geometry["marks"]
    assert float(marks[0].x) < float(marks[1].x) < float(marks[2].x) < float(marks[3].x)
    # a one-moment finding is a point
    assert marks[0].point
    assert timeline(copy.deepcopy(document["findings"])) == geometry


def test_zoomed_timeline_of_escalated_findings(document):
    tree = parse(render_html(document))
    zoomed = [m["data-finding"] for m in tree.marks if m["svg"] == "timeline-escalated"]
    assert sorted(zoomed) == sorted(f["id"] for f in document["findings"] if f["escalate"])
    # not drawn when the escalated findings already fill the whole range
    near = copy.deepcopy(document)
    near["findings"][0].update(first_seen="2026-10-14T01:00:00Z", last_seen="2026-10-14T01:00:00Z")
    tree = parse(render_html(near))
    assert {m["svg"] for m in tree.marks} == {"timeline-all"}


def test_overlapping_marks_of_one_row_are_stacked(document):
    findings = copy.deepcopy(document["findings"][1:3])
    findings[1].update(first_seen="2026-10-14T02:12:00Z", last_seen="2026-10-14T02:40:00Z")  # overlaps the first
    geometry = timeline(findings)
    assert len(geometry["rows"]) == 1
    first, second = geometry["marks"]
    assert first.y != second.y
    # the row grows to hold both lanes, and the axis sits below it
    assert float(geometry["rows"][0]["height"]) > 2 * 12
    assert float(geometry["axis_y"]) >= max(float(first.y), float(second.y)) + 6
    # apart in time, they share one lane again
    findings[1].update(first_seen="2026-10-14T05:00:00Z", last_seen="2026-10-14T05:30:00Z")
    first, second = timeline(findings)["marks"]
    assert first.y == second.y


def test_zoom_rows_are_indicators(document):
    geometry = timeline(document["findings"], {1, 2, 3}, by="indicator")
    assert [r["full"] for r in geometry["rows"]] == ["export_then_deletion", "bulk_item_deletion",
                                                      "transport_rule_change"]


def test_timeline_single_finding_and_no_actor(document):
    one = [dict(document["findings"][1], actor=None)]
    geometry = timeline(one)
    assert geometry["by"] == "indicator"
    assert len(geometry["marks"]) == 1 and not geometry["marks"][0].point  # 12 minutes over a 1-hour axis
    assert geometry["ticks"]
    empty = timeline([])
    assert empty["marks"] == [] and empty["rows"] == []
    html = render_html(dict(document, findings=[]))
    assert "No findings" in html and len(parse(html).marks) == 0


def test_html_deterministic_for_same_document(document, tmp_path):
    write_html_report(document, tmp_path / "a.html")
    reloaded = orjson.loads(orjson.dumps(document))
    write_html_report(reloaded, tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    assert str(datetime.now().year) + "-" not in (tmp_path / "a.html").read_text().replace("2026-", "")


def test_html_escapes_every_attacker_string(hostile):
    html = render_html(hostile)
    assert html.lower().count("</style>") == 1                  # only the stylesheet's own
    head, body = html.split("</style>")
    assert "</head>" not in head and "<body>" in body
    for raw in RAW_HOSTILE:
        assert raw not in head.split("<style>")[0] + body, raw
    assert "<script" not in html.lower()
    assert "onmouseover=" not in html.replace("&#34; onmouseover=", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html      # shown, not dropped
    tree = parse(html)
    for _, attributes in tree.tags:
        assert not any(name.startswith("on") for name in attributes), attributes
    assert "alert" not in tree.style
    # the hostile text comes back intact as text, in the title tooltips as well
    assert any(HOSTILE in t for t in tree.text)
    assert len([m for m in tree.marks if m["svg"] == "timeline-all"]) == len(hostile["findings"])


def test_html_fetches_nothing(document):
    doc = copy.deepcopy(document)
    doc["findings"][1]["evidence"][0]["subject"] = "see https://evil.example/x.png"
    html = render_html(doc)
    assert not re.search(r"""\b(?:src|href|action|poster|data|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*[a-z][a-z0-9+.-]*:""", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html.lower()
    assert "<link" not in html.lower() and "<img" not in html.lower() and "<iframe" not in html.lower()
    # outside the hostile subject (escaped text) there is no URL at all
    plain = render_html(document)
    assert "http://" not in plain and "https://" not in plain
    assert "default-src 'none'" in plain


# ---------------------------------------------------------------- Markdown

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _table_rows(markdown: str) -> list[list[str]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_markdown_tables_stay_intact_with_pipes_in_data(document, tmp_path):
    doc = copy.deepcopy(document)
    doc["findings"][1]["evidence"][0]["parameters"] = "-Name a|b -Value `c|d` \\| e"
    doc["findings"][1]["evidence"][1]["subject"] = "multi\nline | subject\r\nwith\ttab"
    doc["findings"][2]["actor"] = "x|y@fabrikam-labs.com"
    path = tmp_path / "report.md"
    write_markdown_report(doc, path)
    markdown = path.read_text(encoding="utf-8")
    tables = _table_rows(markdown)
    assert len(tables) >= 3 + 3 * len(doc["findings"])
    for table in tables:
        widths = {len(_UNESCAPED_PIPE.split(row)) for row in table}
        assert len(widths) == 1, table
        assert re.fullmatch(r"\|( ?-{3}:? \|)+", table[1].replace("---:", "---")), table[1]
    assert "a\\|b" in markdown and "x\\|y@fabrikam-labs.com" in markdown
    assert "\\`c\\|d\\`" in markdown


def test_markdown_escapes_attacker_strings(hostile):
    markdown = render_markdown(hostile)
    assert re.search(r"(?<!\\)[<>]", markdown) is None     # no tag can be opened
    assert re.search(r"(?<!\\)`", markdown) is None          # no code span can be opened
    assert "\\<script\\>alert(1)\\</script\\>" in markdown   # shown, not dropped
    assert re.search(r"(?<!\\)&#?\w+;", markdown) is None      # plain Markdown: no HTML entity
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in rendered and "<b>" not in rendered and "<style" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # the renderer shows it as text
    for table in _table_rows(markdown):
        assert len({len(_UNESCAPED_PIPE.split(row)) for row in table}) == 1


@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(A1)", "\\=HYPERLINK(A1)"),
    ("+1", "\\+1"),
    ("-Identity cfo", "\\-Identity cfo"),
    ("@SUM(A1)", "\\@SUM(A1)"),
    ("  =1+1", "\\=1+1"),
    ("# heading", "\\# heading"),
    ("1. item", "1\\. item"),
    ("a|b", "a\\|b"),
    ("[click](javascript:x)", "\\[click\\](javascript:x)"),
    ("<b>&", "\\<b\\>&"),
    ("AT&T &amp; &#60;", "AT&T \\&amp; \\&#60;"),   # only an & that would start an entity is escaped
    ('" onmouseover=x', '" onmouseover=x'),          # a quote means nothing outside a tag
    ("line\nbreak", "line\\\\nbreak"),  # the break written out (\\n), the backslash escaped
    ("admin\u202egpj.exe", "admin\\\\u202egpj.exe"),  # a bidi override shown, not obeyed
    (None, ""),
])
def test_md_escape(value, expected):
    assert md(value) == expected


def test_markdown_contents_and_determinism(document):
    first = render_markdown(document)
    assert first == render_markdown(orjson.loads(orjson.dumps(document)))
    assert "**4 findings, 3 escalated to Tier 2.** 1 critical, 1 high, 1 medium, 1 low." in first
    assert "### 2. export\\_then\\_deletion: critical, escalate to Tier 2" in first
    assert "export at 10:02, removal at 10:14" in first
    assert "Remove-MailboxExportRequest" in first


def test_markdown_caps_evidence_rows(document):
    doc = copy.deepcopy(document)
    finding = doc["findings"][2]
    finding["evidence"] = [_evidence("2026-10-14T02:30:00Z", "HardDelete", "cfo@fabrikam-labs.com",
                                     subject=f"s{i}", line=i) for i in range(60)]
    finding["event_count"] = 84
    markdown = render_markdown(doc, max_evidence_rows=25)
    assert "**Evidence** (25 of 84 events; the rest in findings.json)" in markdown
    assert "| s24 |" in markdown and "| s25 |" not in markdown


# ---------------------------------------------------------------- against the real model


def test_reports_from_findings_document(tmp_path):
    findings_mod = pytest.importorskip("mailhunt.findings")
    event = findings_mod.EvidenceEvent(
        event_id="e1", timestamp=datetime(2026, 10, 14, 2, 10), action="New-MailboxExportRequest",
        actor="j.doe@fabrikam-labs.com", target="cfo@fabrikam-labs.com", host=None, source_ip="185.220.101.7",
        user_agent=None, app_id=None, parameters="-Mailbox cfo -FilePath \\\\x\\y.pst", subject=SCRIPT,
        rule_name=None, source="purview_audit_export.csv", sha256="ab" * 32, record=12)
    finding = findings_mod.Finding(
        indicator="mailbox_export", actor="j.doe@fabrikam-labs.com",
        rules=[findings_mod.RuleRef("mh-export", "Mailbox export request", "medium")], attack=["T1070.008"],
        events=[event], answers={"usual_for_account": findings_mod.Answer("no", "never before")},
        escalate=True, severity="high", reasons=["export lacks justification"])
    document = orjson.loads(orjson.dumps(findings_mod.findings_document([finding], [], [], {})))
    write_html_report(document, tmp_path / "r.html")
    write_markdown_report(document, tmp_path / "r.md")
    html = (tmp_path / "r.html").read_text()
    assert len(parse(html).marks) == 1 and SCRIPT not in html
    assert "never before" in html and "line 12" in html
    assert SCRIPT not in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("doc", [
    {},
    {"findings": None, "inputs": None, "rejections": None, "skipped_rules": None},
    {"findings": [{}]},
    {"inputs": [{"path": "x"}, "not a dict"],
     "findings": [{"id": "a b", "first_seen": "not a time", "evidence": [{}, "x"], "rules": [{}], "targets": None,
                   "answers": {"usual_for_account": "weird"}, "severity": None, "event_count": None}]},
])
def test_partial_documents_still_render(doc):
    html = render_html(doc)
    parse(html)
    render_markdown(doc)


def test_reports_show_l1_steps_and_baseline(document):
    doc = copy.deepcopy(document)
    finding = doc["findings"][0]
    finding["l1"] = [{"step": "sign_ins", "result": "flag",
                      "detail": "impossible travel US → NG: about 9500 km in 1.0 h"},
                     {"step": "password_changes", "result": "clear", "detail": "no password changes within ±72 h"}]
    finding["baseline"] = {"statement": "baseline covers 2026-09-14 .. 2026-10-14, 30 days, 120 earlier events"}
    html, markdown = render_html(doc), render_markdown(doc)
    for rendered in (html, markdown):
        assert "impossible travel US → NG: about 9500 km in 1.0 h" in rendered
        assert "baseline covers 2026-09-14 .. 2026-10-14, 30 days" in rendered
        assert "Password changes and resets within ±72 h" in rendered
    assert "| Sign-ins around the finding" in markdown and "| **flag** |" in markdown
    assert '<span class="ans concern">flag</span>' in html and '<span class="ans reassure">clear</span>' in html
