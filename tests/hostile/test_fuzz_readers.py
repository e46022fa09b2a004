"""Hostile evidence, fuzzed: every reader meets random bytes and mutated real records of its format.

For each reader in ``mailhunt.sources.SOURCES`` the seeds are the real files of
its format found under tests/fixtures, tests/hostile/fixtures, examples/ and the
shared public corpus (whatever ``identify`` gives to that reader). Hypothesis
then feeds the reader, through ``read_events``:

- random bytes;
- a seed with byte-level damage (bits flipped, bytes inserted or deleted, the
  file cut short, a line duplicated, two lines spliced into one);
- a seed with one record damaged the way its format allows: a JSON leaf
  replaced by another type, a huge string, a deeply nested value, control
  characters, bytes that are not UTF-8, a huge number; a CSV row given extra
  or missing fields or a stray quote; an XML attribute given the same values;
  any other line given such a payload.

What must hold:

- reading never raises;
- every record is either kept or rejected: ``ctx.records`` equals the records
  kept plus the record rejections (``records_kept`` says what "kept" counts for
  each reader, ``FILE_LEVEL_REASONS`` which rejections are about the file, not
  a record);
- damage to one record loses only that record: every other record of the seed
  comes out as it did from the undamaged seed (``keeps_neighbours``).

The example budget per reader is fixed and the examples derandomized, so a CI
run is deterministic and its time bounded.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources import (
    SNIFF_BYTES,
    SOURCES,
    ReadContext,
    Source,
    identify,
    read_events,
)
from mailhunt.sources.windows_stream import GAP_ACTION
from tests.corpus import EXAMPLES, PUBLIC, REPO

SEED_ROOTS = (REPO / "tests" / "fixtures", Path(__file__).parent / "fixtures", EXAMPLES, PUBLIC)
# Text seeds are cut to their first lines (at a line end): mutations then hit
# records rather than bulk, and each example stays cheap.
MAX_TEXT_SEED_BYTES = 16 * 1024
HINTS = {"year": "2026", "timezone": "UTC"}
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Readers whose records go through DuckDB one batch at a time (tens of
# milliseconds per file) get a smaller budget than those mapped in Python.
STAGED_READERS = frozenset({"purview_csv", "ual_csv", "sentinel_officeactivity", "sentinel_officeactivity_array",
                            "ual_ndjson", "ual_json_array"})

# Rejections that are about the file, not one of its records: they stand for no record.
FILE_LEVEL_REASONS = (
    "header has no AuditData column",  # M365 CSV whose header is damaged
    "header lacks ",  # CSV readers with required columns
    "not a JSON array",  # JSON array readers given something else
    "array not closed",  # JSON array cut after a complete member
    "XML damaged",  # admin audit XML damaged outside any Event
    "document declares a DTD",
    "not a readable EVTX file",
    "too many unreadable records in a row",
)

JSON_LINE_READERS = frozenset({"sentinel_officeactivity", "ual_ndjson", "evtx_dump_jsonl", "winlogbeat_ndjson",
                               "macos_unified_log_ndjson", "eslogger", "sentinel_syslog", "sentinel_entra",
                               "windows_flat_ndjson", "sentinel_windows"})
JSON_ARRAY_READERS = frozenset({"entra_signin_json", "sentinel_officeactivity_array", "ual_json_array",
                                "macos_unified_log_json", "sentinel_syslog_array", "sentinel_entra_array",
                                "entra_audit_json", "sentinel_windows_array"})
CSV_READERS = frozenset({"entra_signin_csv", "purview_csv", "ual_csv", "admin_audit_csv", "m365_message_trace_csv",
                         "m365_message_trace_report", "exchange_message_tracking", "exchange_message_tracking_csv",
                         "exchange_message_tracking_export", "sentinel_entra_csv", "entra_audit_csv",
                         "sentinel_windows_csv"})
# Readers whose record is more than one line, or whose events depend on their
# neighbours beyond what ``keeps_neighbours`` compares: damage to one line may
# change the record that line belongs to, which is not a neighbour's loss.
# auditd: a record's event is its whole msg=audit() group; bash and fish: an
# entry spans lines; evtx: binary, damage is not confined to a record.
NO_NEIGHBOUR_CHECK = frozenset({"auditd", "bash_history", "fish_history", "evtx"})


@dataclass(frozen=True)
class Seed:
    name: str  # path under its root: readers take the user from a home folder, the year from a dated name
    data: bytes


def _cut(data: bytes) -> bytes:
    if len(data) <= MAX_TEXT_SEED_BYTES:
        return data
    return data[:data.rfind(b"\n", 0, MAX_TEXT_SEED_BYTES) + 1]


@functools.cache
def seeds() -> dict[str, tuple[Seed, ...]]:
    found: dict[str, list[Seed]] = {source.name: [] for source in SOURCES}
    for root in SEED_ROOTS:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            source = identify(data[:SNIFF_BYTES])
            if source is None:
                continue
            found[source.name].append(Seed(str(path.relative_to(root)), data if source.name == "evtx" else _cut(data)))
    return {name: tuple(items) for name, items in found.items()}


# ------------------------------------------------------------------ reading and accounting


@dataclass
class Outcome:
    rows: list[dict]
    ctx: ReadContext


COLUMNS = ["log.record", "event.id", "event.action", "event.provider", "event.original", "labels"]


def read(source: Source, data: bytes, name: str) -> Outcome:
    ctx = ReadContext(f"fuzz/{name}", "0" * 64, dict(HINTS), max_kept_rejections=10**6)
    rows = [row for table in read_events(source, io.BufferedReader(io.BytesIO(data)), ctx)
            for row in table.select(COLUMNS).to_pylist()]
    return Outcome(rows, ctx)


def _is_gap(row: dict) -> bool:
    return row["event.action"] == GAP_ACTION and row["event.provider"] == "mailhunt"


def _script_block_parts(row: dict) -> int:
    """How many records a PowerShell script block event was put together from (1 for any other event)."""
    parts = dict(row["labels"] or []).get("script_block_parts")
    return int(parts.split("/")[0]) if parts else 1


def records_kept(source: Source, rows: list[dict]) -> int:
    """How many of the file's records the events stand for.

    Most readers make one event per record, with the record's locator. The
    exceptions, each counted its own way:
    - Windows readers add synthetic EventRecordIDGap events (no record of their
      own) and make one event of the records of a multi-part script block;
    - auditd makes one event of each msg=audit() group of records (lines), its
      ``event.original`` holding those lines;
    - the message trace summary report makes one event per recipient of a row.
    """
    if source.dataset == "windows":
        return sum(_script_block_parts(row) for row in rows if not _is_gap(row))
    if source.name == "auditd":
        return sum(row["event.original"].count("\n") + 1 for row in rows)
    if source.name == "m365_message_trace_report":
        return len({row["log.record"] for row in rows})
    locators = [row["log.record"] for row in rows]
    assert len(set(locators)) == len(locators), "two events claim one record"
    return len(rows)


def record_rejections(ctx: ReadContext) -> int:
    return ctx.rejected - sum(1 for r in ctx.rejections if r.reason.startswith(FILE_LEVEL_REASONS))


def assert_accounted(source: Source, outcome: Outcome) -> None:
    ctx = outcome.ctx
    kept = records_kept(source, outcome.rows)
    assert ctx.records == kept + record_rejections(ctx), (
        f"{source.name}: records {ctx.records}, kept {kept}, rejected {ctx.rejected}: "
        f"{[str(r) for r in ctx.rejections[:5]]}")
    assert all(r.reason and r.locator for r in ctx.rejections)


def neighbour_key(row: dict) -> tuple:
    return row["log.record"], row["event.id"]


def comparable(source: Source, rows: list[dict]) -> set[tuple]:
    """The events that only their own record decides (not gap events, not assembled script blocks)."""
    return {neighbour_key(row) for row in rows if not _is_gap(row) and _script_block_parts(row) == 1
            and not dict(row["labels"] or []).get("script_block_id")}


# ------------------------------------------------------------------ hostile values

CONTROL_TEXT = "\x00\x1b]52;c;ZXZpbA==\x07\x1b[2J\x7f\u202egpj.exe\u200b\x85\u2028"
NOT_UTF8 = b"\xff\xfe\xc3(\xed\xa0\x80\xf8\x88\x80\x80\x80"
HUGE_TEXT = "A" * 100_000
# Python's json module refuses more than 4300 digits and recurses per nesting
# level: both stop a JSON array reader at that member today, which issue 13
# lists apart ("JSON array nesting", another change), so array readers get
# values just inside those limits; one-per-line readers (orjson) get the full ones.
NUMBER_DIGITS = {"line": 5000, "array": 4000}
NESTING_DEPTH = {"line": 100_000, "array": 500}


def hostile_json_texts(kind: str) -> list[bytes]:
    """JSON texts to put where a value was: other types, and values a parser or a mapping may choke on."""
    depth = NESTING_DEPTH[kind]
    return [b"null", b"true", b"false", b"0", b"-1", b"18446744073709551616", b"1e99999", b"-0.0", b'""', b"[]",
            b"{}", b'{"Operation": ["x"], "CreationTime": {}}', b'"0000-00-00T00:00:00"', b'"99999999999999999999"',
            b'"4194304"', b'"-1"', b'"\\u00b2"',
            orjson.dumps(CONTROL_TEXT), orjson.dumps(HUGE_TEXT), b'"' + NOT_UTF8 + b'"',
            b"9" * NUMBER_DIGITS[kind], b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth]


# Payloads put into a line; none holds a line end, so no other line moves. (A
# lone CR ending a CSV row is issue 13's "CSV lone CR", another change.)
LINE_PAYLOADS = [CONTROL_TEXT.encode(), NOT_UTF8, HUGE_TEXT.encode(), b"9" * 5000, b'"', b'""', b",", b",,,,",
                 b"\t", b"\x00", b"=cmd|' /C calc'!A0", b"<Event>", b"&bogus;", b"]]>", b"{", b"}", b"[", b"\\",
                 b"type=", b"msg=audit(", b"#", b"%s%n", b"\xef\xbb\xbf"]


# ------------------------------------------------------------------ record spans


def _lines(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line, line end excluded."""
    spans, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end == -1 else end
        stop = end - 1 if end > start and data[end - 1:end] == b"\r" else end
        spans.append((start, stop))
        start = end + 1
    return spans


def _is_json_object(text: bytes) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def json_spans(source: Source, data: bytes) -> list[tuple[int, int]]:
    """Byte spans of the JSON objects that are the file's records, where the seed is UTF-8 JSON."""
    if source.name in JSON_LINE_READERS:
        return [(a, b) for a, b in _lines(data) if _is_json_object(data[a:b])]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    decoder = json.JSONDecoder()
    spans = []
    if source.name == "evtx_dump_json":
        starts = [m.end() for m in re.finditer(r"^Record \d+\s*\n", text, re.MULTILINE)]
    else:
        starts = []
        position = text.find("[") + 1
        while 0 < position < len(text):
            position = len(text) - len(text[position:].lstrip(" \t\r\n,"))
            if text[position:position + 1] != "{":
                break
            try:
                _, end = decoder.raw_decode(text, position)
            except ValueError:
                break
            starts.append(position)
            position = end
    for start in starts:
        begin = text.find("{", start)
        try:
            _, end = decoder.raw_decode(text, begin)
        except ValueError:
            continue
        spans.append((len(text[:begin].encode()), len(text[:end].encode())))
    return spans


def csv_row_spans(source: Source, data: bytes) -> list[tuple[int, int]]:
    """Data records that are one line each (header, comment lines and records of several lines left out)."""
    spans, pending = [], []
    for a, b in _lines(data):
        if not pending and data[a:b].startswith(b"#"):
            continue
        pending.append((a, b))
        if sum(data[x:y].count(b'"') for x, y in pending) % 2 == 0:
            if len(pending) == 1 and data[a:b].strip():
                spans.append((a, b))
            pending = []
    return spans[1:]


def has_multiline_records(data: bytes) -> bool:
    return any(data[a:b].count(b'"') % 2 for a, b in _lines(data))


def line_spans(data: bytes) -> list[tuple[int, int]]:
    return [(a, b) for a, b in _lines(data) if data[a:b].strip()]


# ------------------------------------------------------------------ mutations


def _leaf_paths(value, path=()):
    if isinstance(value, dict) and value:
        for key, member in value.items():
            yield from _leaf_paths(member, (*path, key))
    elif isinstance(value, list) and value:
        for index, member in enumerate(value):
            yield from _leaf_paths(member, (*path, index))
    else:
        yield path


_MARK = "\ue000mailhunt-fuzz-mark\ue000"


def replace_leaf(record: bytes, pick: int, replacement: bytes) -> bytes:
    """The JSON object ``record`` with its ``pick``-th leaf (modulo their number) replaced by the JSON text ``replacement``."""
    value = orjson.loads(record)
    paths = list(_leaf_paths(value))
    path = paths[pick % len(paths)]
    if not path:
        return replacement
    node = value
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = _MARK
    return orjson.dumps(value).replace(orjson.dumps(_MARK), replacement, 1)


def mutate_csv_row(row: bytes, operation: str, pick: int, payload: bytes) -> bytes:
    text = row.decode("utf-8", errors="surrogateescape")
    fields = next(csv.reader([text]))
    index = pick % max(len(fields), 1)
    if operation == "extra":
        fields.insert(index, payload.decode("utf-8", errors="surrogateescape"))
    elif operation == "missing" and fields:
        del fields[index]
    elif operation == "stray quote":
        position = pick % (len(text) + 1)
        return (text[:position] + '"' + text[position:]).encode("utf-8", errors="surrogateescape")
    else:
        fields[index] = payload.decode("utf-8", errors="surrogateescape")
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8", errors="surrogateescape")


_XML_ATTRIBUTE = re.compile(rb'(\w+)="([^"]*)"')


def mutate_xml_attribute(line: bytes, pick: int, payload: bytes) -> bytes:
    attributes = list(_XML_ATTRIBUTE.finditer(line))
    if not attributes:
        return line[:pick % (len(line) + 1)] + payload + line[pick % (len(line) + 1):]
    found = attributes[pick % len(attributes)]
    return line[:found.start(2)] + payload + line[found.end(2):]


@dataclass(frozen=True)
class RecordDamage:
    """One record of a seed damaged; ``start``/``end`` is where it was, ``replacement`` what it became."""

    start: int
    end: int
    replacement: bytes

    def apply(self, data: bytes) -> bytes:
        return data[:self.start] + self.replacement + data[self.end:]


@st.composite
def record_damage(draw, source: Source, data: bytes) -> RecordDamage | None:
    """Structure-aware damage to one record of the seed, or None when the seed has no record to damage."""
    if data.startswith(UTF16_BOMS):
        return None  # bytes put into UTF-16 text would shift every later character; byte damage covers these seeds
    pick = draw(st.integers(0, 10**6))
    payload = draw(st.sampled_from(LINE_PAYLOADS))
    if source.name in JSON_LINE_READERS | JSON_ARRAY_READERS or source.name == "evtx_dump_json":
        spans = json_spans(source, data)
        kind = "array" if source.name in JSON_ARRAY_READERS else "line"
        if spans:
            start, end = draw(st.sampled_from(spans))
            replacement = draw(st.sampled_from(hostile_json_texts(kind)))
            return RecordDamage(start, end, replace_leaf(data[start:end], pick, replacement))
    if source.name in CSV_READERS:
        spans = csv_row_spans(source, data)
        if spans:
            start, end = draw(st.sampled_from(spans))
            operations = ["extra", "missing", "replace"]
            if not has_multiline_records(data):
                # A stray quote pairs with the opening quote of the next record whose field spans lines,
                # and the records between read as one; quote counting cannot tell that from a real
                # multi-line field. Known limit (see the report of issue 13), so only seeds whose
                # records are one line each get stray quotes.
                operations.append("stray quote")
            operation = draw(st.sampled_from(operations))
            return RecordDamage(start, end, mutate_csv_row(data[start:end], operation, pick, payload))
    spans = line_spans(data)
    if not spans:
        return None
    start, end = draw(st.sampled_from(spans))
    line = data[start:end]
    if source.name == "admin_audit_xml":
        return RecordDamage(start, end, mutate_xml_attribute(line, pick, payload))
    where = pick % (len(line) + 1)
    return RecordDamage(start, end, line[:where] + payload + line[where:])


@st.composite
def byte_damage(draw, data: bytes) -> bytes:
    """The seed after one to three byte-level changes."""
    for _ in range(draw(st.integers(1, 3))):
        lines = _lines(data)
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate line", "splice lines"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data = data[:position] + bytes([data[position] ^ (1 << draw(st.integers(0, 7)))]) + data[position + 1:]
        elif operation == "insert":
            data = data[:position] + draw(st.binary(min_size=1, max_size=64)) + data[position:]
        elif operation == "delete":
            data = data[:position] + data[position + draw(st.integers(1, 256)):]
        elif operation == "truncate":
            data = data[:position]
        elif operation == "duplicate line" and lines:
            start, end = draw(st.sampled_from(lines))
            data = data[:end] + b"\n" + data[start:end] + data[end:]
        elif operation == "splice lines" and len(lines) > 1:
            (a, b), (c, d) = draw(st.sampled_from(lines)), draw(st.sampled_from(lines))
            cut_first, cut_second = draw(st.integers(a, b)), draw(st.integers(c, d))
            data = data[:cut_first] + data[cut_second:d] + data[b:]
    return data


# ------------------------------------------------------------------ the properties

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STAGED = settings(FAST, max_examples=20)


# MAILHUNT_FUZZ_SCALE=10 runs ten times the examples (a deeper search, by hand; CI keeps 1).
SCALE = float(os.environ.get("MAILHUNT_FUZZ_SCALE", "1"))


def _budget(source: Source, scale: float = 1.0) -> settings:
    chosen = STAGED if source.name in STAGED_READERS else FAST
    return settings(chosen, max_examples=max(5, int(chosen.max_examples * scale * SCALE)))


SOURCE_PARAMS = [pytest.param(source, id=source.name) for source in SOURCES]


def test_every_reader_has_a_real_seed():
    missing = [name for name, found in seeds().items() if not found]
    assert not missing, f"readers without a seed file of their format (add one under tests/hostile/fixtures): {missing}"


def _run(test, source: Source, budget: settings) -> None:
    """Run a hypothesis property with the budget chosen for ``source``."""
    budget(given(st.data())(test))()


@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_random_bytes_never_raise_and_are_accounted(source):
    def prop(data):
        blob = data.draw(st.binary(max_size=4096))
        assert_accounted(source, read(source, blob, "random.bin"))

    _run(prop, source, _budget(source, 0.5))


@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_byte_damage_to_real_records_never_raises_and_is_accounted(source):
    def prop(data):
        seed = data.draw(st.sampled_from(seeds()[source.name]))
        assert_accounted(source, read(source, data.draw(byte_damage(seed.data)), seed.name))

    _run(prop, source, _budget(source))


@functools.cache
def baseline(source: Source, seed: Seed) -> Outcome:
    return read(source, seed.data, seed.name)


@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_damage_to_one_record_loses_only_that_record(source):
    def prop(data):
        seed = data.draw(st.sampled_from(seeds()[source.name]))
        damage = data.draw(record_damage(source, seed.data))
        if damage is None:
            return
        outcome = read(source, damage.apply(seed.data), seed.name)
        assert_accounted(source, outcome)
        if source.name in NO_NEIGHBOUR_CHECK:
            return
        damaged = damaged_locators(source, seed.data, damage)
        before = {key for key in comparable(source, baseline(source, seed).rows) if key[0] not in damaged}
        lost = before - comparable(source, outcome.rows)
        assert not lost, f"{source.name}: damage to {sorted(damaged)} lost the records {sorted(lost)[:5]}"

    _run(prop, source, _budget(source))


def damaged_locators(source: Source, data: bytes, damage: RecordDamage) -> set[int]:
    """The locators of the damaged record: its member number in a JSON array, else its lines."""
    if source.name in JSON_ARRAY_READERS:
        return {1 + [start for start, _ in json_spans(source, data)].index(damage.start)}
    if source.name == "admin_audit_xml":
        # an Event spans lines and is located by the line of its start tag
        return {data.count(b"\n", 0, data.rfind(b"<Event", 0, damage.end)) + 1}
    first = data.count(b"\n", 0, damage.start) + 1
    # evtx_dump_json's locator is the line after "Record <n>", where the record's JSON starts
    return set(range(first, first + data.count(b"\n", damage.start, damage.end) + 1))


HUNT_SEEDS = ("m365/records.ndjson", "exchange/admin_audit_report.xml", "windows/ws042_powershell_parts.evtx_dump.json",
              "unix/audit.log", "unix/syslog/mail.log", "m365/purview_bom_crlf.csv")


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_hunt_over_damaged_evidence_finishes_with_findings(tmp_path_factory, data):
    relative = data.draw(st.sampled_from(HUNT_SEEDS))
    seed = (REPO / "tests" / "fixtures" / relative).read_bytes()
    source = identify(seed[:SNIFF_BYTES])
    damaged = data.draw(st.one_of(byte_damage(seed), record_damage(source, seed).map(
        lambda damage: damage.apply(seed) if damage else seed)))
    folder = tmp_path_factory.mktemp("hunt")
    evidence = folder / "evidence" / relative
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(damaged)
    hunt([evidence], folder / "case", Config(), read_hints=dict(HINTS))
    document = orjson.loads((folder / "case" / "findings.json").read_bytes())
    [entry] = document["inputs"]
    assert entry["path"].endswith(Path(relative).name) and isinstance(document["findings"], list)
    assert entry["skipped_reason"] or (entry["format"] and entry["records"] >= 0 and entry["rejected"] >= 0)
