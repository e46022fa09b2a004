"""Windows event log readers on real EVTX files and on the JSON forms tools write."""

import io
import struct
import zipfile
import zlib
from itertools import pairwise
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from evtx import PyEvtxParser

from mailhunt.sources import ReadContext, identify, windows_stream
from mailhunt.sources.windows_stream import GAP_ACTION
from tests.corpus import PUBLIC

MITRE = PUBLIC / "evtx-to-mitre-attack"
ATTACK_SAMPLES = PUBLIC / "evtx-attack-samples"
FIXTURES = Path(__file__).parent / "fixtures" / "windows"
REAL_EVTX = sorted([*MITRE.glob("*.evtx"), *ATTACK_SAMPLES.glob("*.evtx")])
CHUNK = 65536
HEADER = 4096


def read(data: bytes, name: str = "evidence") -> tuple[list[dict], ReadContext, str]:
    source = identify(data[:65536])
    assert source is not None, f"{name} not recognized"
    ctx = ReadContext(name, "0" * 64)
    tables = list(source.read(io.BufferedReader(io.BytesIO(data)), ctx))
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return rows, ctx, source.name


def parser_records(path: Path) -> list[dict]:
    return [orjson.loads(r["data"]) for r in PyEvtxParser(str(path)).records_json()]


def real_events(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["event.action"] != GAP_ACTION]


@pytest.mark.parametrize("path", REAL_EVTX, ids=lambda p: p.name)
def test_real_evtx_keeps_every_record_the_parser_reads(path):
    expected = parser_records(path)
    rows, ctx, name = read(path.read_bytes(), path.name)
    assert name == "evtx" and ctx.rejected == 0
    assert ctx.records == len(expected)
    events = real_events(rows)
    assert sorted(e["winlog.record_id"] for e in events) == sorted(
        r["Event"]["System"]["EventRecordID"] for r in expected)
    header_ids = {r["event_record_id"] for r in PyEvtxParser(str(path)).records_json()}
    assert {e["log.record"] for e in events} == header_ids, "log.record is the record number evtx_dump shows"
    assert all(e["event.dataset"].startswith("windows.") and e["event.id"] for e in rows)


def test_msexchange_management_cmdlet_record_fields():
    rows, _, _ = read((MITRE / "ID6-Failed_to_install_an_Exchange_transport_agent.evtx").read_bytes())
    first = min(real_events(rows), key=lambda e: e["winlog.record_id"])
    assert first["event.dataset"] == "windows.msexchange_management"
    assert first["event.provider"] == "MSExchange CmdletLogs" and first["event.code"] == "6"
    assert first["winlog.channel"] == "MSExchange Management" and first["host.name"] == "exchange01.offsec.lan"
    assert first["event.action"] == "Install-TransportAgent" and first["event.outcome"] == "failure"
    assert dict(first["params"]) == {"name": "Evil", "assemblypath": ".\\NetshHelperBeacon.dll",
                                     "transportagentfactory": "hack"}
    assert first["parameters"].startswith('-Name "Evil" -AssemblyPath')
    assert first["user.name"] == "offsec.lan/OFFSEC-COMPANY/Administrators/admmig"
    assert first["user.id"] == "S-1-5-21-4230534742-2542757381-3142984815-1111"
    assert (first["process.pid"], first["process.name"]) == (8372, "w3wp#MSExchangePowerShellAppPool")
    assert ("exchange_client", "Remote-ManagementShell-Unknown") in first["labels"]
    assert first["@timestamp"].isoformat() == "2021-06-04T08:41:47.982128"


def test_powershell_4103_4104_800_fields():
    rows, _, _ = read((MITRE / "ID800-4103-4104-Clear_event_log_attempt.evtx").read_bytes())
    by_code = {}
    for row in real_events(rows):
        by_code.setdefault(row["event.code"], []).append(row)
    block = next(r for r in by_code["4104"] if "Clear-EventLog" in (r["powershell.file.script_block_text"] or ""))
    assert block["powershell.file.script_block_text"] == "Clear-EventLog -LogName application, system -confirm"
    assert block["event.action"] == "script-block-logged" and block["user.id"].startswith("S-1-5-21-")
    module = next(r for r in by_code["4103"] if r["event.action"] == "Clear-EventLog")
    assert dict(module["params"]) == {"logname": "application, system", "confirm": "True"}
    assert (module["user.name"], module["user.domain"]) == ("admmig", "OFFSEC")
    assert module["process.command_line"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    classic = next(r for r in by_code["800"] if ("commands", "Clear-EventLog") in r["labels"])
    assert classic["winlog.channel"] == "Windows PowerShell" and classic["user.name"] == "admmig"


def test_security_4688_process_fields():
    rows, _, _ = read((MITRE / "ID4688-Clear_event_log_attempt__native_.evtx").read_bytes())
    created = [r for r in rows if r["event.code"] == "4688"]
    assert len(created) == 28 and all(r["event.action"] == "process-created" for r in created)
    first = min(created, key=lambda r: r["winlog.record_id"])
    assert first["process.executable"] == "C:\\Windows\\System32\\wevtutil.exe"
    assert first["process.name"] == "wevtutil.exe" and first["process.pid"] == 0xA04
    assert first["process.command_line"] == '"C:\\Windows\\system32\\wevtutil.exe"  cl RTWorkQueueTheading'
    assert (first["user.name"], first["user.domain"]) == ("admmig", "OFFSEC")


def test_log_cleared_and_sysmon_file_fields():
    rows, _, _ = read((MITRE / "ID104-1102-Event_log_cleared.evtx").read_bytes())
    [security] = [r for r in rows if r["event.code"] == "1102"]
    assert security["event.action"] == "audit-log-cleared" and security["user.name"] == "admmig"
    system = [r for r in rows if r["event.code"] == "104"]
    assert len(system) == 90 and {r["event.action"] for r in system} == {"log-cleared"}
    assert all(dict(r["labels"]).get("cleared_channel") for r in system)
    rows, _, _ = read((MITRE / "ID11-Exchange_transport_config_modified.evtx").read_bytes())
    [created] = rows
    assert created["event.action"] == "file-created" and created["event.dataset"] == "windows.sysmon"
    assert created["file.path"] == "E:\\Exchange2016\\TransportRoles\\Shared\\agents.config"
    assert created["process.name"] == "notepad++.exe" and created["user.id"] is None


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_record_id_gaps_become_events(sql_min_records, monkeypatch):
    """Both mappings (record by record for a small file, in SQL for large batches) find the same gaps."""
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    path = MITRE / "ID4688-Clear_event_log_attempt__native_.evtx"
    ids = [r["Event"]["System"]["EventRecordID"] for r in parser_records(path)]
    expected = [(a + 1, b - 1) for a, b in pairwise(ids) if b > a + 1]
    assert expected, "the sample is a filtered export with gaps"
    rows, _, _ = read(path.read_bytes())
    gaps = [r for r in rows if r["event.action"] == GAP_ACTION]
    assert [(int(dict(g["labels"])["first_missing_record_id"]), int(dict(g["labels"])["last_missing_record_id"]))
            for g in gaps] == expected
    assert all(g["winlog.channel"] == "Security" and g["event.provider"] == "mailhunt" for g in gaps)
    # a filtered save numbers its records from 1: each gap says so, with the record's number in the file
    assert all(dict(g["labels"])["exported_log"] == "true"
               and dict(g["labels"])["file_record_number"] == str(g["log.record"]) for g in gaps)


def two_chunk_evtx(first: Path, second: Path) -> bytearray:
    """A valid EVTX of two real chunks: the public samples hold one chunk each."""
    data = bytearray(first.read_bytes()[:HEADER + CHUNK] + second.read_bytes()[HEADER:HEADER + CHUNK])
    struct.pack_into("<Q", data, 16, 1)
    struct.pack_into("<H", data, 42, 2)
    struct.pack_into("<I", data, 124, zlib.crc32(bytes(data[:120])))
    return data


def test_corrupt_chunk_is_reported_and_other_chunks_kept(tmp_path):
    cleared, created = MITRE / "ID104-1102-Event_log_cleared.evtx", MITRE / "ID4688-Clear_event_log_attempt__native_.evtx"
    data = two_chunk_evtx(cleared, created)
    intact, _, _ = read(bytes(data))
    assert len(real_events(intact)) == 91 + 28
    data[HEADER + 512 + 3000:HEADER + 512 + 3400] = b"\xff" * 400
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(data)
    rows, ctx, _ = read(damaged.read_bytes(), str(damaged))
    kept = real_events(rows)
    assert sorted(r["winlog.record_id"] for r in kept) == sorted(
        r["Event"]["System"]["EventRecordID"] for r in parser_records(created))
    assert ctx.rejected >= 1
    assert any("cannot be parsed" in str(r) and str(damaged) in str(r) for r in ctx.rejections)


def test_evtx_inside_a_zip_is_read_from_the_stream(tmp_path):
    from mailhunt.config import Config
    from mailhunt.hunt import hunt

    archive = tmp_path / "evidence.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(MITRE / "ID6-Failed_to_install_an_Exchange_transport_agent.evtx", "exch01/MSExchange Management.evtx")
    result = hunt([archive], tmp_path / "case", Config())
    [summary] = result.inputs
    assert summary.format == "evtx" and summary.records == 4 and summary.rejected == 0
    assert summary.path.endswith("evidence.zip!exch01/MSExchange Management.evtx")


@pytest.mark.parametrize("path", REAL_EVTX, ids=lambda p: p.name)
def test_evtx_dump_jsonl_in_bulk_reads_like_the_binary_record_by_record(path, monkeypatch):
    """Small files are mapped record by record in Python, large batches in SQL: both give the same events."""
    from_binary, _, _ = read(path.read_bytes())
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    jsonl = b"".join(orjson.dumps(r) + b"\n" for r in parser_records(path))
    from_json, ctx, name = read(jsonl)
    assert name == "evtx_dump_jsonl" and ctx.records == len(parser_records(path)) and ctx.rejected == 0
    def gaps(rows):
        return sorted(dict(r["labels"])["first_missing_record_id"] for r in rows if r["event.action"] == GAP_ACTION)

    assert gaps(from_json) == gaps(from_binary)
    from_json, from_binary = real_events(from_json), real_events(from_binary)
    from_json.sort(key=lambda r: r["winlog.record_id"])
    from_binary.sort(key=lambda r: r["winlog.record_id"])
    ignore = {"log.record", "event.original"}
    assert [{k: v for k, v in r.items() if k not in ignore} for r in from_json] == \
           [{k: v for k, v in r.items() if k not in ignore} for r in from_binary]


def test_bad_json_line_is_rejected_with_its_line(tmp_path):
    good = (FIXTURES / "exch01_msexchange_management.jsonl").read_bytes()
    lines = good.splitlines(keepends=True)
    data = lines[0] + lines[1][:200] + b"\n" + lines[1]
    rows, ctx, _ = read(data, "exch.jsonl")
    assert ctx.records == 3 and ctx.rejected == 1 and ctx.rejections[0].locator == "line 2"
    assert [r["event.action"] for r in rows] == ["Get-MailboxExportRequest", "New-MailboxExportRequest"]


def test_bad_json_line_in_a_batch_mapped_in_sql_is_rejected_with_its_line(monkeypatch):
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    lines = (FIXTURES / "exch01_msexchange_management.jsonl").read_bytes().splitlines(keepends=True)
    rows, ctx, _ = read(lines[0] + lines[1][:200] + b"\n" + lines[1], "exch.jsonl")
    assert ctx.records == 3 and ctx.rejected == 1 and ctx.rejections[0].locator == "line 2"
    assert "not valid JSON" in ctx.rejections[0].reason
    assert [r["event.action"] for r in rows] == ["Get-MailboxExportRequest", "New-MailboxExportRequest"]


def test_script_block_parts_reassembled_and_missing_part_said():
    rows, ctx, name = read((FIXTURES / "ws042_powershell_parts.evtx_dump.json").read_bytes())
    assert name == "evtx_dump_json" and ctx.records == 2 and ctx.rejected == 0
    [block] = rows
    text = block["powershell.file.script_block_text"]
    assert text.startswith("$outlook = New-Object -ComObject Outlook.Application") and "$item.Delete()" in text
    labels = dict(block["labels"])
    assert labels["script_block_parts"] == "2/3" and labels["script_block_missing_parts"] == "3"
    assert labels["script_block_records"] == "4461,4462" and block["winlog.record_id"] == 4461


def test_winlogbeat_document_fields():
    rows, ctx, name = read((FIXTURES / "ws042_powershell.winlogbeat.ndjson").read_bytes())
    [row] = rows
    assert name == "winlogbeat_ndjson" and ctx.rejected == 0
    assert (row["user.name"], row["user.domain"]) == ("jsmith", "CORP")
    assert row["event.code"] == "4104" and row["winlog.record_id"] == 4470
    assert "Remove-MailboxExportRequest" in row["powershell.file.script_block_text"]


@pytest.mark.parametrize("path", REAL_EVTX, ids=lambda p: p.name)
def test_sql_mapping_agrees_with_the_python_mapping(path):
    """The bulk path (SQL) and the per-record path (Python) give the same columns for the same record."""
    from mailhunt.sources.windows_events import map_record
    from mailhunt.sources.windows_normalize import WindowsNormalizer

    texts = [r["data"] for r in PyEvtxParser(str(path)).records_json()]
    table, needs_python = WindowsNormalizer().normalize(
        pa.array(texts, pa.large_string()), pa.array(range(1, len(texts) + 1), pa.int64()), "f", "0" * 64)
    compared = 0
    for text, row, special in zip(texts, table.to_pylist(), needs_python):
        if special:
            continue
        event, _ = map_record(orjson.loads(text))
        event["labels"] = event["labels"] or None
        for column, value in event.items():
            if column in ("log.file.path", "log.file.sha256", "log.record", "event.original"):
                continue
            assert row[column] == value, (column, row[column], value)
        compared += 1
    assert compared == sum(1 for s in needs_python if not s)


@pytest.mark.parametrize("path", REAL_EVTX[:3], ids=lambda p: p.name)
def test_a_plain_file_is_parsed_in_place_with_the_same_result_as_from_a_stream(path):
    data = path.read_bytes()
    from_stream, _, _ = read(data, str(path))
    source = identify(data[:65536])
    ctx = ReadContext(str(path), "0" * 64, local_path=str(path))
    in_place = [row for batch in source.read(io.BytesIO(b"not read when the file is on disk"), ctx)
                for row in batch.to_pylist()]
    assert in_place == from_stream and ctx.rejected == 0


def test_a_record_number_no_column_can_hold_is_rejected_and_the_rest_kept():
    path = MITRE / "ID104-1102-Event_log_cleared.evtx"
    data = bytearray(path.read_bytes())
    first_record = data.index(b"\x2a\x2a\x00\x00", HEADER + 512)
    data[first_record + 8:first_record + 16] = struct.pack("<Q", 2**64 - 5)
    rows, ctx, _ = read(bytes(data))
    expected = len(parser_records(path))
    assert ctx.records == expected and ctx.rejected == 1 and len([r for r in rows if r["event.action"] != GAP_ACTION]) \
        == expected - 1
    assert "out of range (damaged record header" in ctx.rejections[0].reason
