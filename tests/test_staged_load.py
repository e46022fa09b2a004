"""Loading audit records as staged batches that several connections map and insert at once."""

import time

import duckdb

from mailhunt.config import Config
from mailhunt.hunt import hunt, read_ahead
from mailhunt.sources import m365_audit

BAD_JSON, BAD_UTF8 = 50, 77


def _audit_lines(count: int) -> bytes:
    lines = []
    for n in range(1, count + 1):
        if n % BAD_JSON == 0:
            lines.append(b'{"CreationTime":"2026-10-14T09:00:00","Id":"bad%d","Operat' % n)
        elif n % BAD_UTF8 == 0:
            lines.append(b'{"CreationTime":"2026-10-14T09:00:00","Id":"x","Operation":"Caf\xe9"}')
        else:
            lines.append(b'{"CreationTime":"2026-10-14T09:%02d:00","Id":"r%d","Operation":"MailItemsAccessed",'
                         b'"Workload":"Exchange","UserId":"u%d@contoso.com","ClientIP":"203.0.113.%d:443"}'
                         % (n % 60, n, n % 7, n % 200))
    return b"\n".join(lines) + b"\n"


def test_many_staged_batches_keep_every_good_record_and_reject_in_line_order(tmp_path, monkeypatch):
    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(m365_audit, "STAGED_RECORDS", 40)
    count = 1000
    evidence = tmp_path / "audit.ndjson"
    evidence.write_bytes(_audit_lines(count))
    bad = [n for n in range(1, count + 1) if n % BAD_JSON == 0 or n % BAD_UTF8 == 0]

    runs = []
    for name in ("one", "two"):
        result = hunt([evidence], tmp_path / name, Config())
        [summary] = result.inputs
        with duckdb.connect(str(tmp_path / name / "case.duckdb"), read_only=True) as db:
            lines = [row[0] for row in db.execute('SELECT "log.record" FROM events ORDER BY 1').fetchall()]
            ips = {row[0] for row in db.execute('SELECT DISTINCT "source.ip" FROM events').fetchall()}
        assert lines == [n for n in range(1, count + 1) if n not in bad]
        assert summary.records == count and summary.rejected == len(bad)
        assert [int(r.locator.split()[1]) for r in summary.rejections] == bad
        assert all(ip.startswith("203.0.113.") and ":" not in ip for ip in ips)
        runs.append([str(r) for r in summary.rejections])
    assert runs[0] == runs[1]


def test_ndjson_batches_hold_exactly_the_staged_count_of_lines_across_chunks(tmp_path, monkeypatch):
    """Batches of one size, whatever the chunks the file is read in, so that commits are of one size too."""
    import io

    from mailhunt.sources.base import ReadContext

    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(m365_audit, "STAGED_RECORDS", 64)
    ctx = ReadContext(str(tmp_path / "audit.ndjson"), "0" * 64)
    batches = list(m365_audit.UnifiedAuditNdjson().read(io.BytesIO(_audit_lines(1000)), ctx))
    assert [b.num_rows for b in batches] == [64] * 15 + [1000 - 1000 // BAD_UTF8 - 15 * 64]
    numbers = [n for b in batches for n in b.stage.column("locator").to_pylist()]
    bad_utf8 = [n for n in range(1, 1001) if n % BAD_UTF8 == 0]
    assert numbers == [n for n in range(1, 1001) if n not in bad_utf8]
    # the reader reuses its buffer: every staged line must still be the file's own
    source = _audit_lines(1000).split(b"\n")
    assert [t for b in batches for t in b.stage.column("raw").to_pylist()] == [
        source[n - 1].decode() for n in numbers]


def test_a_new_file_hashed_while_read_carries_its_sha256_and_a_second_hunt_skips_it(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(m365_audit, "STAGED_RECORDS", 64)
    evidence = tmp_path / "audit.ndjson"
    evidence.write_bytes(_audit_lines(300))
    expected = hashlib.sha256(evidence.read_bytes()).hexdigest()
    first = hunt([evidence], tmp_path / "case", Config())
    second = hunt([evidence], tmp_path / "case", Config())
    assert first.inputs[0].sha256 == expected and first.inputs[0].new_events > 0
    assert second.inputs[0].already_loaded and second.inputs[0].sha256 == expected
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        assert db.execute('SELECT DISTINCT "log.file.sha256" FROM events').fetchall() == [(expected,)]
        assert db.execute("SELECT sha256 FROM inputs").fetchall() == [(expected,)]


def test_a_file_whose_digest_fails_is_reported_unread_and_leaves_no_events(tmp_path, monkeypatch):
    from concurrent.futures import Future

    from mailhunt.sources.inputs import EvidenceFile

    def failing_digest(self):
        digest = Future()
        digest.set_exception(OSError("Input/output error"))
        return digest

    import mailhunt.hunt as hunt_module

    monkeypatch.setattr(EvidenceFile, "sha256_in_background", failing_digest)
    monkeypatch.setattr(hunt_module, "BACKGROUND_HASH_BYTES", 0)  # a small file is hashed first otherwise
    evidence = tmp_path / "audit.ndjson"
    evidence.write_bytes(_audit_lines(200))
    result = hunt([evidence], tmp_path / "case", Config())
    [summary] = result.inputs
    assert summary.skipped_reason == "cannot read: Input/output error"
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_the_reader_reads_no_further_ahead_than_its_depth():
    """What loading holds in memory is bounded: the reader thread builds the next batch only while fewer
    than ``depth`` wait to be taken, and ``before_take`` runs before every take."""
    produced, taken, checks = [], [], []

    def batches():
        for number in range(12):
            produced.append(number)
            yield number

    def before_take():
        checks.append(len(taken))
        time.sleep(0.02)  # time for a reader that ignores its depth to run ahead

    for number in read_ahead(batches(), depth=1, before_take=before_take):
        taken.append(number)
        time.sleep(0.02)
        assert len(produced) <= len(taken) + 1, (produced, taken)
    assert taken == list(range(12)) and checks == list(range(13))


def test_a_stored_batch_frees_its_arrow_buffers_before_the_loading_transaction_commits(tmp_path):
    """The loading connections commit every row group; the records of the batches before a commit must not
    stay in memory as Arrow until then (a view registered and dropped inside a transaction kept them)."""
    import pyarrow as pa

    from mailhunt.sources.m365_normalize import StagedAuditRecords
    from mailhunt.store import EVENTS_DDL

    pool = pa.proxy_memory_pool(pa.default_memory_pool())  # counts only the batch's own records
    lines = _audit_lines(3000).decode("utf-8", "replace").splitlines()
    batch = StagedAuditRecords(pa.array(lines, pa.large_string(), memory_pool=pool),
                               pa.array(range(1, 3001), pa.int64()), None, None, str(tmp_path / "audit.ndjson"),
                               "0" * 64, "line")
    db = duckdb.connect(str(tmp_path / "case.duckdb"))
    db.execute(EVENTS_DDL)
    db.execute("BEGIN TRANSACTION")
    assert pool.bytes_allocated() > 300_000
    batch.insert_into(db, "events")
    assert batch.stage is None
    del batch
    assert pool.bytes_allocated() == 0
    db.execute("COMMIT")
    good = [n for n in range(1, 3001) if n % BAD_JSON]
    assert db.execute('SELECT list("log.record" ORDER BY "log.record") FROM events').fetchone() == (good,)
