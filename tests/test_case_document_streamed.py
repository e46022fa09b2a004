"""findings.json and the reports of a case of many inputs, written in pieces: the same bytes as the whole document's
rendering, and memory that does not grow with the number of inputs."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import orjson
import pytest

from mailhunt import case_document, json_pieces
from mailhunt.case.review import case_review
from mailhunt.case_document import case_outputs
from mailhunt.config import load_config
from mailhunt.hunt import hunt
from mailhunt.json_pieces import indented_json_pieces
from mailhunt.report.html import render_html
from mailhunt.report.markdown import markdown_pieces, render_markdown
from mailhunt.store import CaseStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "incident-2026-10"
STREAMED = ("findings.json", "report.html", "report.md")


def _input_row(number: int, hunt_number: int) -> tuple:
    """``record_input``'s arguments for made-up input ``number``; every seventh is hostile or odd in some way."""
    odd = number % 7
    path = f"/evidence/{number // 1000:03d}/audit-{number:06d}.ndjson"
    if odd == 1:
        path = f"/evidence/<script>alert({number})</script> | `x` \u202e\n{number}.csv"
    notes = [f"note {number}: cut off after line 3", "= formula"] if odd == 2 else []
    skipped = "format not recognized" if odd == 3 else None
    return (path, "" if odd == 4 else f"{number:064x}", None if skipped else "ual_ndjson", 20 + odd,
            odd % 2, 20 - odd, skipped, "line", hunt_number, notes)


def _case_with_inputs(folder: Path, count: int) -> Path:
    """The example incident hunted into ``folder/case``, and ``count`` more inputs recorded over two hunts."""
    case = folder / "case"
    hunt([EXAMPLE / "purview_audit_export.csv"], case, load_config(EXAMPLE / "mailhunt.toml"), copy_evidence=False)
    with CaseStore(case / "case.duckdb") as store:
        for hunt_number in (2, 3):
            store.begin_hunt(f"2026-12-0{hunt_number}T00:00:00Z")
            store.record_inputs([_input_row(n, hunt_number) for n in range(hunt_number, count, 2)])
    return case


@pytest.fixture(scope="module")
def case_of_many_inputs(tmp_path_factory) -> Path:
    return _case_with_inputs(tmp_path_factory.mktemp("many-inputs"), 3_000)


@pytest.fixture()
def small_pieces(monkeypatch):
    """Batches and pieces far smaller than the inputs, so that every boundary between them is crossed."""
    monkeypatch.setattr(case_document, "INPUTS_BATCH", 97)
    monkeypatch.setattr(case_document, "UTF8_PIECE", 4096)
    monkeypatch.setattr(json_pieces, "MEMBERS_A_PIECE", 89)


def test_streamed_outputs_are_the_whole_documents_rendering(case_of_many_inputs: Path, small_pieces):
    with CaseStore(case_of_many_inputs / "case.duckdb") as store:
        document, outputs = case_outputs(store, case_of_many_inputs)
        whole = {**document, "inputs": list(document["inputs"])}
        review = case_review(store.db)
        written = {name: b"".join(outputs[case_of_many_inputs / name]) for name in STREAMED}
    assert len(whole["inputs"]) == len(document["inputs"]) == 1 + 2_998  # the example's own input, and 2..2,999
    assert written["findings.json"] == orjson.dumps(whole, option=orjson.OPT_INDENT_2)
    assert orjson.loads(written["findings.json"])["inputs"] == whole["inputs"]
    assert written["report.html"] == render_html(whole, review).encode("utf-8")
    assert written["report.md"] == render_markdown(whole, review=review).encode("utf-8")
    assert whole["findings"], "the example's findings are in the document, so the rest of it is compared too"
    assert b"<script>alert(" not in written["report.html"]


@pytest.mark.parametrize("document", [
    {"schema": "s", "inputs": [], "findings": [{"a": []}]},
    {"inputs": [{"path": "a\nb", "notes": ["x"], "sha256": None}, {}, [], "text", 3], "z": {"inputs": []}},
    {"a": {"b": [1, {"c": {}}]}, "inputs": [{"d": "\u202e\"quoted\"\\", "e": [[], [1.5]]}]},
])
@pytest.mark.parametrize("option", [0, orjson.OPT_SORT_KEYS])
def test_a_list_written_in_pieces_is_the_whole_dump(document: dict, option: int, monkeypatch):
    monkeypatch.setattr(json_pieces, "MEMBERS_A_PIECE", 1)
    pieces = list(indented_json_pieces(document, "inputs", iter(document["inputs"]), option))
    assert b"".join(pieces) == orjson.dumps(document, option=orjson.OPT_INDENT_2 | option)


@pytest.mark.parametrize("lines", [[], [""], ["", ""], ["a"], ["a", ""], ["a", "", "", "b", "", ""], ["", "a\n", ""],
                                   ["a\n\n", "", "b"], ["\n", "a"]])
def test_markdown_lines_joined_in_pieces_as_whole(lines, monkeypatch):
    from mailhunt.report import markdown

    monkeypatch.setattr(markdown, "_report_lines", lambda *args: iter(lines))
    assert "".join(markdown_pieces({})) == "\n".join(lines).rstrip("\n") + "\n"


def _peak_of_writing(case: Path) -> tuple[int, dict[str, int]]:
    """The peak of memory traced while the outputs that list every input are made and read a piece at a time, and
    the size of each."""
    sizes = dict.fromkeys(STREAMED, 0)
    with CaseStore(case / "case.duckdb") as store:
        tracemalloc.start()
        try:
            _, outputs = case_outputs(store, case)
            for name in STREAMED:
                for piece in outputs[case / name]:
                    sizes[name] += len(piece)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak, sizes


def test_memory_of_writing_does_not_grow_with_the_inputs(tmp_path: Path, small_pieces):
    """The outputs of 200 and of 4,000 inputs take about the same memory to write (measured: within 20 kB of each
    other); the rendering of the whole document held every input as objects and each output whole, 10.4 MB more
    at 4,000 inputs than at 200."""
    few = _case_with_inputs(tmp_path / "few", 200)
    many = _case_with_inputs(tmp_path / "many", 4_000)
    _peak_of_writing(few)  # the template and the queries compiled once, outside what is compared
    peak_few, _ = _peak_of_writing(few)
    peak_many, sizes = _peak_of_writing(many)
    assert sizes["report.html"] > 1_500_000 and sizes["findings.json"] > 1_000_000
    assert peak_many - peak_few < 500_000, (peak_few, peak_many, sizes)
    shutil.rmtree(tmp_path)
