"""Every record a reader meets is either stored or rejected: a line that is not UTF-8 is counted
among the file's records as well as among its rejections."""

from tests.corpus import REPO
from tests.hostile.record_hunt import hunt_file

FIXTURES = REPO / "tests" / "fixtures"


def test_a_line_that_is_not_utf8_counts_as_a_record_of_the_file(tmp_path):
    outcome = hunt_file(FIXTURES / "m365" / "bad_utf8.csv", tmp_path / "case")
    assert (outcome.rejected, len(outcome.kept)) == (1, 2)
    assert outcome.records == outcome.rejected + len(outcome.kept)


def test_the_same_in_a_message_tracking_log(tmp_path):
    lines = (FIXTURES / "exchange" / "MSGTRK20261014-1.LOG").read_bytes().splitlines(keepends=True)
    data = [line for line in lines if line.startswith(b"#")]
    body = [line for line in lines if not line.startswith(b"#")]
    evidence = tmp_path / "MSGTRK20261014-1.LOG"
    evidence.write_bytes(b"".join(data + body[:1] + [b"2026-10-14T09:00:00.000Z,\xff\xfe broken\r\n"] + body[1:]))

    outcome = hunt_file(evidence, tmp_path / "case")

    assert outcome.rejected == 1 and outcome.rejections[0][1].startswith("not UTF-8 text")
    assert outcome.records == len(body) + 1
