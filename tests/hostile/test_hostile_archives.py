"""Hostile archives and hostile lines: what a compressed or over-long input may cost, and what it keeps.

Each input is crafted here from a few real-format records (test fixtures and
the public corpus): a gzip-wrapped zip, a nested zip bomb against a total
expansion cap lowered for the test, truncated and damaged compressed streams,
and one over-long line in every line-based reader.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tempfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from mailhunt.hunt import InputSummary, ProgressSink, load_evidence_file
from mailhunt.sources import (
    SNIFF_BYTES,
    ReadContext,
    base,
    identify,
    inputs,
    m365_audit,
    read_events,
)
from mailhunt.sources.inputs import iter_evidence
from mailhunt.store import CaseStore
from tests.corpus import PUBLIC

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PURVIEW = PUBLIC / "huntress-ctf-2023" / "purview.csv"
SENTINEL_SYSLOG = (PUBLIC / "otrf-security-datasets"
                   / "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json")
AUDIT_LINE = (b'{"CreationTime":"2026-10-14T09:%02d:%02d","Id":"20000000-0000-0000-0000-%012d",'
              b'"Operation":"HardDelete","OrganizationId":"11111111-2222-3333-4444-555555555555","RecordType":2,'
              b'"ResultStatus":"Succeeded","UserKey":"10032001A1B2C3D4","UserType":0,"Version":1,'
              b'"Workload":"Exchange","ClientIP":"203.0.113.7","UserId":"alice@contoso.com"}\n')


def audit_lines(count: int, first: int = 0) -> bytes:
    """``count`` M365 audit records as the Management Activity API writes them, one per line, distinct ids."""
    return b"".join(AUDIT_LINE % (n // 60 % 60, n % 60, n) for n in range(first, first + count))


RECORD_BYTES = len(audit_lines(1))


def load(paths: list[Path], case: Path) -> list[InputSummary]:
    """What a hunt stores of ``paths``: every evidence file through the loader the hunt uses."""
    with CaseStore(case / "case.duckdb") as store:
        return [load_evidence_file(store, item, ProgressSink()) for item in iter_evidence(paths)]


def open_in(folder: Path) -> list[str]:
    """What this process holds open in ``folder``, named or not (an unnamed temporary file shows as the folder)."""
    held = (os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink())
    return [target for target in held if target.startswith(str(folder))]


# ---------------------------------------------------------------- a gzip-wrapped zip


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="open files are counted in /proc")
def test_gzip_wrapped_zip_is_spooled_once_to_a_temporary_file_not_memory(tmp_path, monkeypatch):
    spool_folder = tmp_path / "tmp"
    spool_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_folder))
    member_bytes = 16 * 1024**2
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:  # stored: the zip is as large as its members
        for name in ("a.ndjson", "b.ndjson", "c.ndjson"):
            z.writestr(name, (audit_lines(1) * (member_bytes // RECORD_BYTES + 1))[:member_bytes])
    path = tmp_path / "export.zip.gz"
    path.write_bytes(gzip.compress(archive.getvalue(), compresslevel=1))
    spools = []
    real_spool = inputs._spool
    monkeypatch.setattr(inputs, "_spool", lambda item: spools.append(item.display) or real_spool(item))

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        digests = {}
        for item in iter_evidence([path]):
            assert item.head(4) == b'{"Cr'
            digests[item.display] = item.sha256()
            with item.open() as stream:
                assert sum(len(chunk) for chunk in iter(lambda s=stream: s.read(1 << 20), b"")) == member_bytes
            assert open_in(spool_folder), "the archive is read from its spooled copy"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sorted(digests) == [f"{tmp_path}/export.zip!{n}.ndjson" for n in "abc"]
    assert spools == [f"{tmp_path}/export.zip"], "one spool for the archive, not one per member open"
    assert peak < 12 * 1024**2, f"{peak} bytes held for a {3 * member_bytes}-byte archive"
    del item, stream
    assert open_in(spool_folder) == [], "the spooled copy is closed once its members are read"
    assert list(spool_folder.iterdir()) == [], "and leaves nothing behind"


def test_members_of_a_gzip_wrapped_zip_are_loaded(tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("one.ndjson", audit_lines(5))
        z.writestr("two.ndjson", audit_lines(7, first=5))
    path = tmp_path / "export.zip.gz"
    path.write_bytes(gzip.compress(archive.getvalue()))
    summaries = load([path], tmp_path)
    assert [(s.path, s.format, s.records, s.rejected, s.skipped_reason) for s in summaries] == [
        (f"{tmp_path}/export.zip!one.ndjson", "ual_ndjson", 5, 0, None),
        (f"{tmp_path}/export.zip!two.ndjson", "ual_ndjson", 7, 0, None)]


# ---------------------------------------------------------------- a total expansion cap per input


def nested_bomb(inner_archives: int, members: int, member_bytes: int) -> bytes:
    """A zip of zips whose members are valid audit records, each far more compressible than the ratio allows
    in all but small enough (under the 16 MiB floor per member) to pass one by one."""
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as top:
        for a in range(inner_archives):
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
                for m in range(members):
                    first = (a * members + m) * 1000
                    z.writestr(f"part{m}.ndjson", (audit_lines(1, first) * (member_bytes // RECORD_BYTES))
                               + audit_lines(1, first + 1))
            top.writestr(f"inner{a}.zip", inner.getvalue())
    return outer.getvalue()


def test_nested_zip_bomb_stops_at_the_total_cap_and_keeps_the_members_before(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MIN_TOTAL_EXPANSION_BYTES", 5 * 1024**2)
    path = tmp_path / "bomb.zip"
    path.write_bytes(nested_bomb(inner_archives=3, members=4, member_bytes=1024**2))
    assert path.stat().st_size * inputs.MAX_EXPANSION_RATIO < 5 * 1024**2, "the floor is the cap here"
    summaries = load([path], tmp_path)
    names = [s.path.removeprefix(f"{path}!") for s in summaries]
    assert names == [*(f"inner{a}.zip!part{m}.ndjson" for a in (0, 1) for m in range(4)), "inner2.zip"]
    read = [s for s in summaries if not s.skipped_reason]
    stopped = summaries[len(read):]
    assert read == summaries[:4], "the members before the cap are kept"
    assert all(s.format == "ual_ndjson" and s.records > 3000 and s.rejected == 0 for s in read)
    cap = f"total expansion cap reached: {path} may expand to 5242880 bytes"
    assert all(cap in s.skipped_reason for s in stopped), [s.skipped_reason for s in stopped]
    assert all(s.skipped_reason.startswith("not expanded: ") for s in stopped[1:])
    assert sum(s.records for s in read) * RECORD_BYTES <= 5 * 1024**2


def test_a_member_over_the_cap_while_read_is_rejected_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MIN_TOTAL_EXPANSION_BYTES", 3 * 1024**2 + 512 * 1024)
    monkeypatch.setattr(inputs, "MAX_EXPANSION_RATIO", 50)  # so that the floor is the cap
    path = tmp_path / "records.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(3):
            z.writestr(f"{n}.ndjson", audit_lines(1, n * 100_000) * (2 * 1024**2 // RECORD_BYTES))
    summaries = load([path], tmp_path)
    first, second, third = summaries
    assert (first.records, first.rejected, first.skipped_reason) == (2 * 1024**2 // RECORD_BYTES, 0, None)
    assert second.skipped_reason is None or "total expansion cap reached" in second.skipped_reason
    if second.skipped_reason is None:
        assert 0 < second.records < first.records
        assert [r.locator for r in second.rejections][-1] == "end"
        assert "total expansion cap reached" in second.rejections[-1].reason
    assert third.skipped_reason and third.skipped_reason.startswith("not expanded: total expansion cap reached")


def test_the_cap_is_per_input_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MIN_TOTAL_EXPANSION_BYTES", 3 * 1024**2)
    lines = 2 * 1024**2 // RECORD_BYTES
    (tmp_path / "ev").mkdir()
    for n in range(3):
        (tmp_path / "ev" / f"{n}.ndjson.gz").write_bytes(gzip.compress(audit_lines(1, n) * lines))
    summaries = load([tmp_path / "ev"], tmp_path)
    assert [(s.records, s.rejected, s.skipped_reason) for s in summaries] == [(lines, 0, None)] * 3


# ---------------------------------------------------------------- truncated and damaged streams


def test_truncated_gzip_of_a_real_purview_export_keeps_what_decompresses(tmp_path):
    whole = gzip.compress(PURVIEW.read_bytes())
    path = tmp_path / "purview.csv.gz"
    path.write_bytes(whole[: len(whole) * 8 // 10])
    [summary] = load([path], tmp_path)
    assert summary.skipped_reason is None and summary.format == "purview_csv"
    assert 150 <= summary.records - summary.rejected < 219, "most of the 219 records are kept"
    [note] = summary.notes
    decompressed = int(re.fullmatch(r"truncated gzip stream: (\d+) bytes decompressed before the end", note)[1])
    assert 0 < decompressed < len(PURVIEW.read_bytes())
    [partial] = summary.rejections
    assert partial.locator == f"line {summary.records + 1}" and partial.reason.startswith("partial last line")
    kept = PURVIEW.read_bytes()[:decompressed]
    assert kept.count(b"\n") == summary.records, "every complete line before the break became a record"


def test_truncated_gzip_ndjson_rejects_the_cut_line_and_keeps_every_whole_one(tmp_path):
    records = audit_lines(400)
    whole = gzip.compress(records)
    path = tmp_path / "audit.ndjson.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    [summary] = load([path], tmp_path)
    with gzip.open(path) as stream:
        readable = b""
        try:
            while chunk := stream.read1(1 << 16):
                readable += chunk
        except EOFError:
            pass
    whole_lines = readable.count(b"\n")
    assert 200 < whole_lines < 400
    assert (summary.records, summary.rejected) == (whole_lines + 1, 1)
    assert [r.locator for r in summary.rejections] == [f"line {whole_lines + 1}"]
    assert summary.notes == [f"truncated gzip stream: {len(readable)} bytes decompressed before the end"]


def test_gzip_truncated_exactly_at_a_line_end_rejects_nothing_and_says_where(tmp_path):
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb") as z:
        z.write(audit_lines(50))
        z.flush()  # a full flush: the 50 lines decompress whole from the bytes so far
        cut = stream.tell()
        z.write(audit_lines(50, first=50))
    path = tmp_path / "audit.ndjson.gz"
    path.write_bytes(stream.getvalue()[:cut])
    [summary] = load([path], tmp_path)
    assert (summary.records, summary.rejected) == (50, 0)
    assert summary.notes == [f"truncated gzip stream: {50 * RECORD_BYTES} bytes decompressed before the end"]


def test_gzip_without_a_single_readable_byte_is_skipped_with_the_reason(tmp_path):
    path = tmp_path / "empty.gz"
    path.write_bytes(gzip.compress(audit_lines(10))[:12])
    [summary] = load([path], tmp_path)
    assert summary.skipped_reason and summary.skipped_reason.startswith("cannot read:")


def zip_with(members: dict[str, bytes], compression: int) -> bytearray:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bytearray(archive.getvalue())


def test_zip_member_failing_its_crc_is_kept_and_reported(tmp_path):
    records = audit_lines(20)
    data = zip_with({"audit.ndjson": records}, zipfile.ZIP_STORED)
    start = data.index(records)
    flipped = start + records.index(b"alice", 5 * RECORD_BYTES)
    data[flipped:flipped + 5] = b"ALICE"  # a changed value the format cannot tell; only the CRC can
    path = tmp_path / "audit.zip"
    path.write_bytes(data)
    [summary] = load([path], tmp_path)
    assert (summary.records, summary.rejected, summary.skipped_reason) == (20, 0, None)
    crc_note = f"zip member fails its CRC-32 check (all {len(records)} bytes read); the content may be damaged"
    assert summary.notes == [crc_note]


def test_zip_member_with_corrupt_data_keeps_the_lines_before(tmp_path):
    records = audit_lines(2000)
    data = zip_with({"audit.ndjson": records, "later.ndjson": audit_lines(3, first=5000)}, zipfile.ZIP_DEFLATED)
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("audit.ndjson")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    # the first 1000 records deflated and flushed to a byte boundary, then a block of the reserved type
    deflate = zlib.compressobj(wbits=-15)
    damaged_data = deflate.compress(audit_lines(1000)) + deflate.flush(zlib.Z_FULL_FLUSH) + b"\x07"
    assert len(damaged_data) < info.compress_size
    data[start:start + info.compress_size] = damaged_data.ljust(info.compress_size, b"\0")
    path = tmp_path / "audit.zip"
    path.write_bytes(data)
    damaged, later = load([path], tmp_path)
    [note] = damaged.notes
    found = re.fullmatch(r"corrupt zip member: (\d+) bytes decompressed before the damage "
                         r"\(Error -3 while decompressing data: invalid block type\)", note)
    delivered = int(found[1])
    assert 1000 * RECORD_BYTES - inputs.BREAK_PIECE_BYTES <= delivered <= 1000 * RECORD_BYTES
    assert damaged.skipped_reason is None and damaged.records == delivered // RECORD_BYTES + 1
    assert [r.locator for r in damaged.rejections] == [f"line {damaged.records}"], "the cut line is rejected"
    assert (later.records, later.rejected, later.notes) == (3, 0, [])


def test_truncated_zip_member_data_keeps_the_lines_before(tmp_path):
    records = audit_lines(300)
    data = zip_with({"audit.ndjson": records}, zipfile.ZIP_STORED)
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("audit.ndjson")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    cut = start + len(records) // 2 + 10
    # the central directory still declares the whole member: its data ends early, then comes the directory
    moved = data[start + len(records):]
    shift = len(records) - (cut - start)
    directory = bytearray(moved)
    end = directory.rindex(b"PK\x05\x06")
    offset = int.from_bytes(directory[end + 16:end + 20], "little")
    directory[end + 16:end + 20] = (offset - shift).to_bytes(4, "little")
    path = tmp_path / "audit.zip"
    path.write_bytes(bytes(data[:cut]) + bytes(directory))
    [summary] = load([path], tmp_path)
    assert summary.skipped_reason is None
    whole = (len(records) // 2 + 10) // RECORD_BYTES
    assert summary.records - summary.rejected == whole
    assert summary.rejections[-1].reason.startswith("partial last line")
    assert summary.notes and summary.notes[0].startswith("truncated zip member: ")


def zip_with_first_member_patched(flag_bits: int = 0, method: int = zipfile.ZIP_STORED) -> bytes:
    """Two members; the first's general purpose flags and compression method as given, in both of its headers."""
    data = zip_with({"a.ndjson": audit_lines(2), "b.ndjson": audit_lines(3, first=10)}, zipfile.ZIP_STORED)
    first_entry = data.index(b"PK\x01\x02")
    for header, at in ((0, 6), (first_entry, 8)):
        data[header + at:header + at + 2] = flag_bits.to_bytes(2, "little")
        data[header + at + 2:header + at + 4] = method.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize("flag_bits, method, reason", [
    (1, zipfile.ZIP_STORED, "is encrypted, password required"),
    (0, 99, "compression method is not supported"),
])
def test_member_zipfile_cannot_open_is_skipped_and_the_others_read(tmp_path, flag_bits, method, reason):
    path = tmp_path / "odd.zip"
    path.write_bytes(zip_with_first_member_patched(flag_bits, method))
    first, second = load([path], tmp_path)
    assert first.path == f"{path}!a.ndjson" and reason in first.skipped_reason
    assert (second.path, second.records, second.rejected) == (f"{path}!b.ndjson", 3, 0)


@pytest.mark.parametrize("method, reason", [(zipfile.ZIP_BZIP2, "Invalid data stream"),
                                            (zipfile.ZIP_LZMA, "Corrupt input data")])
def test_member_whose_one_block_is_corrupt_is_skipped_and_the_others_read(tmp_path, method, reason):
    data = zip_with({"audit.ndjson": audit_lines(300), "later.ndjson": audit_lines(3, first=5000)}, method)
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("audit.ndjson")
    middle = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[middle:middle + 64] = bytes(range(64))
    path = tmp_path / "audit.zip"
    path.write_bytes(data)
    damaged, later = load([path], tmp_path)
    assert damaged.skipped_reason == f"cannot read: {reason}"
    assert (later.records, later.rejected, later.notes) == (3, 0, [])


# ---------------------------------------------------------------- one over-long line in every line-based reader

LONG = 4096


def insert_before(data: bytes, number: int, line: bytes) -> tuple[bytes, int]:
    """``data`` with ``line`` as its line ``number``, and the byte offset it starts at."""
    lines = data.splitlines(keepends=True)
    head = b"".join(lines[: number - 1])
    return head + line + b"".join(lines[number - 1:]), len(head)


# (fixture, number of the line the over-long one becomes: a record boundary)
LINE_READERS = [
    (FIXTURES / "unix" / "audit.log", 2),
    (FIXTURES / "unix" / "ausearch-i.txt", 8),
    (FIXTURES / "unix" / "home" / "mallory" / ".bash_history", 4),
    (FIXTURES / "unix" / "Users" / "alice" / ".zsh_history", 2),
    (FIXTURES / "unix" / "home" / "bob" / ".local" / "share" / "fish" / "fish_history", 5),
    (FIXTURES / "unix" / "syslog" / "mail.log", 3),
    (FIXTURES / "unix" / "unified.ndjson", 2),
    (FIXTURES / "unix" / "eslogger.ndjson", 2),
    (SENTINEL_SYSLOG, 3),
    (FIXTURES / "exchange" / "MSGTRK20261014-1.LOG", 7),
    (FIXTURES / "exchange" / "message_trace.csv", 3),
    (FIXTURES / "exchange" / "admin_audit_export.csv", 4),
    (FIXTURES / "entra" / "signins.csv", 3),
    (FIXTURES / "m365" / "classic.csv", 3),
    (FIXTURES / "m365" / "purview_bom_crlf.csv", 3),
    (FIXTURES / "m365" / "records.ndjson", 3),
    (FIXTURES / "windows" / "exch01_msexchange_management.jsonl", 2),
    (FIXTURES / "windows" / "ws042_powershell.winlogbeat.ndjson", 1),
    (FIXTURES / "windows" / "ws042_powershell_parts.evtx_dump.json", 50),
]


def read_with(source, data: bytes, name: str) -> tuple[list[dict], ReadContext]:
    ctx = ReadContext(name, "0" * 64, {"year": "2026", "timezone": "UTC"})
    stream = io.BufferedReader(io.BytesIO(data))
    events = [row for table in read_events(source, stream, ctx) for row in table.to_pylist()]
    return events, ctx


@pytest.mark.parametrize("path, number", LINE_READERS, ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_over_long_line_is_rejected_with_its_number_and_offset_and_the_rest_kept(path, number, monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_BYTES", LONG)
    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 1024)
    data = path.read_bytes()
    source = identify(data[:SNIFF_BYTES])
    assert source is not None
    before, before_ctx = read_with(source, data, path.name)
    assert before
    hostile, offset = insert_before(data, number, b"A" * (LONG + 1) + b"\n")
    after, ctx = read_with(source, hostile, path.name)
    assert [e["event.original"] for e in after] == [e["event.original"] for e in before], "every good record kept"
    assert (ctx.records, ctx.rejected) == (before_ctx.records + 1, before_ctx.rejected + 1)
    [long] = [r for r in ctx.rejections if "longer than" in r.reason]
    assert long.locator == f"line {number}"
    assert long.reason == f"line longer than {LONG} bytes (it starts at byte {offset}); skipped up to the next line"


def test_over_long_line_in_utf16_csv_is_rejected_and_the_rest_kept(monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_BYTES", LONG)
    data = (FIXTURES / "m365" / "search_unifiedauditlog_utf16.csv").read_bytes()
    text = data.decode("utf-16")
    lines = text.splitlines(keepends=True)
    hostile = "".join([*lines[:3], "A" * (LONG + 1) + "\r\n", *lines[3:]]).encode("utf-16")
    source = identify(data[:SNIFF_BYTES])
    before, before_ctx = read_with(source, data, "utf16.csv")
    after, ctx = read_with(source, hostile, "utf16.csv")
    assert before and [e["event.original"] for e in after] == [e["event.original"] for e in before]
    assert (ctx.records, ctx.rejected) == (before_ctx.records + 1, before_ctx.rejected + 1)
    [long] = [r for r in ctx.rejections if "longer than" in r.reason]
    assert long.locator == "line 4"
    assert long.reason == (f"line longer than {LONG} characters (it starts at character "
                           f"{len(''.join(lines[:3]))}); skipped up to the next line")


def test_line_exactly_at_the_cap_is_kept(monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_BYTES", LONG)
    source = identify((FIXTURES / "unix" / "syslog" / "mail.log").read_bytes())
    line = b"Oct 14 09:31:02 mx1 postfix/smtpd[42]: "
    data = line + b"x" * (LONG - len(line)) + b"\r\n" + line + b"y" * (LONG - len(line) + 1) + b"\n" + line + b"z\n"
    events, ctx = read_with(source, data, "mail.log")
    assert [e["log.record"] for e in events] == [1, 3]
    assert [r.locator for r in ctx.rejections] == ["line 2"]


@pytest.mark.parametrize("path, number", LINE_READERS, ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_over_long_line_is_never_held_whole(path, number, monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_BYTES", LONG)
    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 64 * 1024)
    data = path.read_bytes()
    source = identify(data[:SNIFF_BYTES])
    line_bytes = 24 * 1024**2
    hostile, _ = insert_before(data, number, b"A" * line_bytes + b"\n")
    stream = io.BufferedReader(io.BytesIO(hostile))
    del hostile
    ctx = ReadContext(path.name, "0" * 64, {"year": "2026", "timezone": "UTC"})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        kept = sum(table.num_rows for table in read_events(source, stream, ctx))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kept and ctx.rejected >= 1
    assert peak < 8 * 1024**2, f"{peak} bytes held to skip a {line_bytes}-byte line"


def test_csv_field_longer_than_the_csv_modules_default_limit_is_kept():
    data = (FIXTURES / "m365" / "classic.csv").read_bytes()
    header, first, *rest = data.splitlines(keepends=True)
    long_value = b"x" * (200 * 1024)
    widened = first.replace(b'""Workload""', b'""Padding"":""' + long_value + b'"",""Workload""', 1)
    assert widened != first
    source = identify(data[:SNIFF_BYTES])
    before, _ = read_with(source, data, "classic.csv")
    after, ctx = read_with(source, header + widened + b"".join(rest), "classic.csv")
    assert (ctx.records, ctx.rejected) == (len(before), 0)
    assert long_value.decode() in after[0]["event.original"]
