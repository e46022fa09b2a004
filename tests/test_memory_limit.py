"""``hunt --memory-limit``: one budget shared by the case database, the mapping databases and the staged batches."""

import io

import duckdb
import pytest
from typer.testing import CliRunner

from mailhunt import memory
from mailhunt.cli import app
from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources import m365_audit
from mailhunt.sources.base import ReadContext
from mailhunt.sources.m365_normalize import normalizer
from mailhunt.store import CaseStore
from tests.test_staged_load import BAD_JSON, BAD_UTF8, _audit_lines

MIB = 1024 * 1024


@pytest.mark.parametrize(("text", "size"), [("1GB", 10 ** 9), ("768MB", 768 * 10 ** 6), ("1.5GiB", 1536 * MIB),
                                            ("512 mib", 512 * MIB), ("300000000", 300_000_000)])
def test_sizes_in_decimal_and_binary_units(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1PB", "-1GB", "1e9", "255MiB", "2TiB", "1GB; SET threads=1"])
def test_a_size_that_is_no_size_or_out_of_bounds_is_refused(text):
    with pytest.raises(memory.MemoryLimitError):
        memory.parse_size(text)


def test_the_cli_refuses_a_bad_limit_before_reading_anything(tmp_path):
    evidence = tmp_path / "audit.ndjson"
    evidence.write_bytes(_audit_lines(10))
    result = CliRunner().invoke(app, ["hunt", str(evidence), "--out", str(tmp_path / "case"),
                                      "--memory-limit", "100MB"])
    assert result.exit_code == 2
    assert "--memory-limit" in result.output and "256 MiB" in result.output
    assert not (tmp_path / "case" / "case.duckdb").exists()


def test_the_budget_reaches_the_case_database_and_the_mapping_databases(tmp_path):
    def limits() -> tuple[str, str]:
        with CaseStore(tmp_path / "case.duckdb") as store:
            case = store.db.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        found: list[str] = []

        def mapping() -> None:  # a fresh thread gets a fresh mapping database
            found.append(normalizer().execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

        import threading
        worker = threading.Thread(target=mapping)
        worker.start()
        worker.join()
        return case, found[0]

    default_case, default_mapping = limits()
    with memory.limited_to(512 * MIB):
        small_case, small_mapping = limits()
    assert small_case == "256.0 MiB" and small_mapping == "64.0 MiB"
    assert default_case != small_case and default_mapping != small_mapping
    assert memory.budget() == memory.DEFAULT


def test_a_small_budget_stages_smaller_batches_and_keeps_every_record(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "ROW_GROUP_ROWS", 64)
    monkeypatch.setattr(m365_audit, "CHUNK_BYTES", 3000)
    ctx = ReadContext(str(tmp_path / "audit.ndjson"), "0" * 64)
    with memory.limited_to(512 * MIB):
        batches = list(m365_audit.UnifiedAuditNdjson().read(io.BytesIO(_audit_lines(1000)), ctx))
    kept = 1000 - 1000 // BAD_UTF8
    assert [b.num_rows for b in batches] == [16] * (kept // 16) + [kept % 16]

    evidence = tmp_path / "audit.ndjson"
    evidence.write_bytes(_audit_lines(1000))
    bad = {n for n in range(1, 1001) if n % BAD_JSON == 0 or n % BAD_UTF8 == 0}
    for name, limit in (("default", None), ("small", 300 * MIB)):
        result = hunt([evidence], tmp_path / name, Config(), memory_limit=limit)
        assert result.inputs[0].records == 1000 and result.inputs[0].rejected == len(bad)
        with duckdb.connect(str(tmp_path / name / "case.duckdb"), read_only=True) as db:
            assert [r[0] for r in db.execute('SELECT "log.record" FROM events ORDER BY 1').fetchall()] == [
                n for n in range(1, 1001) if n not in bad]
    assert memory.budget() == memory.DEFAULT
