"""A last EVTX chunk the file holds only part of is reported with its offset and the records it held,
instead of vanishing with 0 rejected."""

from tests.corpus import PUBLIC
from tests.hostile.record_hunt import hunt_file

CLEARED = PUBLIC / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx"  # one chunk: records 1..91
NATIVE = PUBLIC / "evtx-to-mitre-attack" / "ID4688-Clear_event_log_attempt__native_.evtx"  # one chunk: 1..28
HEADER, CHUNK = 4096, 65536


def test_a_cut_off_second_chunk_is_rejected_with_its_records_and_the_first_is_kept(tmp_path):
    evidence = tmp_path / "Security.evtx"
    evidence.write_bytes(CLEARED.read_bytes() + NATIVE.read_bytes()[HEADER:HEADER + 30000])

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.records == 91 + 28 and outcome.rejected == 28
    where = f"only 30000 of its {CHUNK} bytes, from byte {HEADER + CHUNK}, are in the file"
    assert outcome.rejections == [
        ("record 1", f"last chunk cut off: {where} (truncated file); its records 1..28 are lost")]
    assert len(outcome.kept) == 91
    assert any(f["indicator"] for f in outcome.document["findings"])


def test_a_file_cut_inside_its_only_chunk_says_so(tmp_path):
    evidence = tmp_path / "cleared.evtx"
    evidence.write_bytes(CLEARED.read_bytes()[:HEADER + 20000])

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, outcome.kept) == (91, 91, [])
    [(locator, reason)] = outcome.rejections
    assert locator == "record 1" and f"from byte {HEADER}" in reason and "records 1..91 are lost" in reason


def test_a_cut_chunk_header_is_counted_as_one_unknown_loss(tmp_path):
    evidence = tmp_path / "cleared.evtx"
    evidence.write_bytes(CLEARED.read_bytes() + CLEARED.read_bytes()[HEADER:HEADER + 20])

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, len(outcome.kept)) == (92, 1, 91)
    assert outcome.rejections[0][0] == f"byte {HEADER + CHUNK}"


def test_bytes_after_the_last_chunk_that_are_no_chunk_are_noted(tmp_path):
    evidence = tmp_path / "cleared.evtx"
    evidence.write_bytes(CLEARED.read_bytes() + b"\x00" * 512)

    outcome = hunt_file(evidence, tmp_path / "case")

    assert (outcome.records, outcome.rejected, len(outcome.kept)) == (91, 0, 91)
    where = f"(from byte {HEADER + CHUNK})"
    assert outcome.notes == [f"512 bytes after the last whole chunk {where} are not an EVTX chunk; not read"]


def test_an_intact_file_has_nothing_to_report(tmp_path):
    outcome = hunt_file(CLEARED, tmp_path / "case")
    assert (outcome.records, outcome.rejected, outcome.notes, len(outcome.kept)) == (91, 0, [], 91)
