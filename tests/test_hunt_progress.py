"""What a hunt tells its progress display: every file's bytes to its size, EVTX files read by path included,
and every analysis stage after reading, counted where it can be (rules compiled, passes, findings triaged)."""

from __future__ import annotations

import struct

from mailhunt.config import load_config
from mailhunt.detect.rules import load_rules, shipped_rules_dir
from mailhunt.hunt import STAGES, InputSummary, ProgressSink, hunt
from mailhunt.sources.windows_evtx import (
    EVTX_CHUNK_BYTES,
    EVTX_CHUNK_MAGIC,
    EVTX_HEADER_BYTES,
    ChunkProgress,
)
from tests.corpus import EXAMPLES, PUBLIC

EXAMPLE = EXAMPLES / "incident-2026-10"


class Recorder(ProgressSink):
    def __init__(self):
        self.events: list[tuple] = []

    def start(self, display: str, total: int | None) -> None:
        self.events.append(("start", display, total))

    def advance(self, nbytes: int) -> None:
        self.events.append(("advance", nbytes))

    def finish(self, summary: InputSummary) -> None:
        self.events.append(("finish", summary.path))

    def stage(self, name: str | None, total: int | None = None) -> None:
        self.events.append(("stage", name, total))

    def step(self) -> None:
        self.events.append(("step",))

    def files(self) -> dict[str, tuple[int | None, int]]:
        """Each file started: its size as announced and the bytes advanced before it finished."""
        seen: dict[str, tuple[int | None, int]] = {}
        current = None
        for event in self.events:
            if event[0] == "start":
                current = event[1]
                seen[current] = (event[2], 0)
            elif event[0] == "advance" and current is not None:
                seen[current] = (seen[current][0], seen[current][1] + event[1])
            elif event[0] == "finish":
                current = None
        return seen

    def stages(self) -> list[tuple[str | None, int | None, int]]:
        """Each stage with its announced total and the steps reported in it."""
        shown: list[tuple[str | None, int | None, int]] = []
        for event in self.events:
            if event[0] == "stage":
                shown.append((event[1], event[2], 0))
            elif event[0] == "step":
                name, total, steps = shown[-1]
                shown[-1] = (name, total, steps + 1)
        return shown


def test_every_stage_after_reading_is_shown_and_counted(tmp_path):
    recorder = Recorder()
    result = hunt([EXAMPLE / "purview_audit_export.csv"], tmp_path / "case", load_config(EXAMPLE / "mailhunt.toml"),
                  recorder)
    stages = recorder.stages()
    assert [name for name, _, _ in stages] == [*STAGES, None]
    counted = {name: (total, steps) for name, total, steps in stages if total is not None}
    assert counted["compiling the rules"] == (len(load_rules([shipped_rules_dir()])),) * 2
    assert counted["triage"] == (len(result.findings), len(result.findings)) == (13, 13)
    total, steps = counted["matching the rules"]
    assert total == steps > 1
    # stages come after the file was read whole
    first_stage = next(i for i, e in enumerate(recorder.events) if e[0] == "stage")
    assert all(e[0] in ("stage", "step") for e in recorder.events[first_stage:])
    size = (EXAMPLE / "purview_audit_export.csv").stat().st_size
    assert list(recorder.files().values()) == [(size, size)]


def test_an_evtx_file_read_by_path_counts_its_bytes(tmp_path):
    """The EVTX parser reads the file by its path, not through the hunt's stream: its bytes were never counted,
    and the display stayed at 0 of the file's size until the file was done."""
    evtx = PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"
    recorder = Recorder()
    hunt([evtx], tmp_path / "case", load_config(None), recorder)
    assert recorder.files() == {str(evtx): (evtx.stat().st_size, evtx.stat().st_size)}


def _chunk(last_record_id: int) -> bytes:
    head = EVTX_CHUNK_MAGIC + struct.pack("<QQQQ", 1, last_record_id, 1, last_record_id)
    return head + bytes(EVTX_CHUNK_BYTES - len(head))


def test_chunk_progress_reports_each_chunk_as_the_parser_leaves_it(tmp_path):
    path = tmp_path / "three.evtx"
    path.write_bytes(bytes(EVTX_HEADER_BYTES) + _chunk(10) + _chunk(25) + b"\0" * 512 + _chunk(40)[:300])
    reported: list[int] = []
    progress = ChunkProgress(str(path), reported.append)
    progress.reached(1)
    progress.reached(10)
    assert reported == []                                         # still in the first chunk
    progress.reached(11)
    assert reported == [EVTX_HEADER_BYTES + EVTX_CHUNK_BYTES]     # the header and the first chunk
    progress.reached(30)
    assert reported[1:] == [EVTX_CHUNK_BYTES]
    progress.reached(31)
    assert len(reported) == 2                                     # past the last whole chunk: nothing more to say
    progress.done()
    assert sum(reported) == path.stat().st_size                   # the tail, once, when the file is done
    progress.done()
    assert sum(reported) == path.stat().st_size


def test_chunk_progress_of_an_unreadable_path_reports_nothing(tmp_path):
    reported: list[int] = []
    progress = ChunkProgress(str(tmp_path / "gone.evtx"), reported.append)
    progress.reached(5)
    progress.done()
    assert reported == []


def test_rich_progress_shows_stages_with_their_unit_and_never_zero_of_zero():
    from rich.console import Console
    from rich.progress import Progress

    from mailhunt.cli import AmountColumn, RichProgress

    console = Console(width=100, record=True, color_system=None, force_terminal=True)
    with Progress(AmountColumn(), console=console, auto_refresh=False) as progress:
        sink = RichProgress(progress)
        sink.stage("triage", 13)
        for _ in range(13):
            sink.step()
        [task] = progress.tasks
        assert str(AmountColumn().render(task)) == "13/13 findings"
        sink.stage("writing the reports")
        [task] = progress.tasks
        assert str(AmountColumn().render(task)) == ""
        sink.stage(None)
        assert progress.tasks == []
        sink.start("archive.json.gz", None)
        sink.advance(2048)
        [task] = progress.tasks
        assert str(AmountColumn().render(task)) == "2.0 kB read"
        sink.finish(InputSummary("archive.json.gz", None, None))
        sink.start("empty.evtx", 0)
        [task] = progress.tasks
        assert "0/0" not in str(AmountColumn().render(task))

