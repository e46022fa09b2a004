"""What the Windows readers share once a record is parsed: reassembly, gaps, provenance, batches.

- PowerShell 4104 script blocks logged in several parts (same ``ScriptBlockId``,
  ``MessageNumber`` of ``MessageTotal``) become one event carrying the whole
  text; parts may arrive in any order. A block still incomplete at the end of
  the file (or when too many blocks are pending) is emitted with the parts it
  has, and its labels say which parts are missing.
- An ``EventRecordID`` that jumps forward within one channel of one computer in
  one file is an evidence gap: a synthetic ``EventRecordIDGap`` event records
  the missing range, so the audit-tampering rules can report it. A jump back
  (a wrapped circular log, or a log cleared and restarted) is not a gap.
- A log file as Windows writes it numbers each record in the file as its
  ``EventRecordID``. A saved or exported log (Event Viewer's "Save As",
  ``wevtutil epl``, a filtered save) numbers its records from 1 again and keeps
  the original ``EventRecordID``: there a gap may be only the export's filter,
  so the gap event says so (``labels.exported_log``). The record's number in the
  file is known for ``.evtx`` and for ``evtx_dump -o json`` (its ``Record <n>``
  lines), not for JSONL.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, islice

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt.events import event_id_from_record_id, new_event, to_arrow
from mailhunt.sources.base import ReadContext, duplicate_keys
from mailhunt.sources.windows_events import BadWindowsRecord, map_record
from mailhunt.sources.windows_normalize import borrowed_normalizer, gap_candidates

BATCH_EVENTS = 20_000
SQL_MIN_RECORDS = 2_000
MAX_PENDING_BLOCKS = 2_000
MAX_PENDING_CHARS = 64 * 1024 * 1024
MAX_LISTED_MISSING = 1000
GAP_ACTION = "EventRecordIDGap"


@dataclass
class _PendingBlock:
    first: dict
    total: int
    parts: dict[int, str] = field(default_factory=dict)
    records: list[int] = field(default_factory=list)

    def chars(self) -> int:
        return sum(len(p) for p in self.parts.values())


def text_array(texts: list[str]) -> pa.Array:
    """A large_string array of texts, built from one encoded buffer (far faster than string by string).

    The bytes come from encoding Python strings, so they are valid UTF-8 and
    need no second check.
    """
    data = "".join(texts).encode("utf-8", "surrogatepass")
    if len(data) == sum(map(len, texts)):
        offsets = array("q", [0])
        offsets.extend(accumulate(map(len, texts)))
    else:
        offsets = array("q", [0])
        offsets.extend(accumulate(len(t.encode("utf-8", "surrogatepass")) for t in texts))
    return pa.Array.from_buffers(pa.large_string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _int(text) -> int | None:
    try:
        return int(str(text))
    except (TypeError, ValueError):
        return None


# What the EventRecordID check reads of a record mapped in SQL.
GAP_COLUMNS = ("host.name", "winlog.channel", "winlog.record_id", "@timestamp", "event.dataset", "event.action",
               "event.code", "user.name", "user.domain", "user.id", "user.type", "labels")


def _gap_key(event: dict) -> tuple[str, str]:
    return ((event["host.name"] or "").lower(), (event["winlog.channel"] or "").lower())


def _account_text(name: str | None, domain: str | None) -> str | None:
    if not name:
        return None
    return f"{domain}\\{name}" if domain else name


def _clears_own_channel(event: dict) -> bool:
    """The record is the log-cleared event of the channel it is in (Security 1102, System 104 for System)."""
    channel = (event["winlog.channel"] or "").lower()
    if event["event.action"] == "audit-log-cleared":
        return channel == "security"
    if event["event.action"] == "log-cleared":
        cleared = dict(event["labels"] or []).get("cleared_channel")
        return bool(cleared and cleared.lower() == channel)
    return False


class WindowsEventStream:
    """Feed parsed records with ``add``; take finished event tables from ``add`` and ``finish``."""

    def __init__(self, ctx: ReadContext, locator_unit: str):
        self.ctx = ctx
        self.unit = locator_unit
        self.ready: list[dict] = []
        self.blocks: dict[str, _PendingBlock] = {}
        self.pending_chars = 0
        # (host, channel) lower-cased -> (EventRecordID, locator, account) of its last record so far
        self.last_record_id: dict[tuple[str, str], tuple[int, int, str | None]] = {}
        self.export_noted = False

    def add(self, locator: int, original: str, record: object,
            account: tuple[str | None, str | None] = (None, None),
            file_record: int | None = None, labels: tuple[tuple[str, str], ...] = (),
            keys_checked: bool = False) -> Iterator[pa.Table]:
        """One parsed record: ``locator`` is where it is in the file, ``original`` its text as stored.

        ``account`` is (name, domain) of the record's user where the container
        resolved the SID (Winlogbeat does); it fills ``user.name`` when the
        record itself names no account. ``file_record`` is the record's number
        in the EVTX file it came from, where the text form gives it. ``labels``
        are what the container's reader says of the record (how its time was
        read). ``keys_checked``: the reader already looked for keys named twice
        in ``original`` (``record`` is then built from it, not parsed from it).
        """
        event = self._map(locator, original, record, account, labels, keys_checked)
        if event is not None:
            self._check_gap(event, locator, self._file_record(locator, file_record))
            self._route(event)
        if len(self.ready) >= BATCH_EVENTS:
            yield self._flush()

    def add_batch(self, originals: list[str], locators: list[int]) -> Iterator[pa.Table]:
        """Many records as JSON text, mapped in SQL; the few that need Python go through ``add``'s mapping."""
        if originals:
            yield from self.add_normalized(originals, locators, *self.normalize(originals, locators))

    def normalize(self, originals: list[str], locators: list[int]
                  ) -> tuple[pa.Table | None, list[int], list[tuple], pa.Table | None]:
        """The SQL half of ``add_batch``: keeps no state, so it may run in another thread, batches in parallel.

        Returns the events of the records mapped in SQL, the rows that need the
        Python mapping instead, the rows the EventRecordID check must look at
        (``gap_candidates``) and the ``GAP_COLUMNS`` of every row for that
        check. A batch smaller than ``SQL_MIN_RECORDS`` is left to Python
        (``None``): planning the SQL costs more than mapping a few records one
        by one.
        """
        if len(originals) < SQL_MIN_RECORDS:
            return None, [], [], None
        with borrowed_normalizer() as normalizer:
            locator_array = pa.array(locators, pa.int64())
            table, needs_python = normalizer.normalize(
                text_array(originals), locator_array, self.ctx.path, self.ctx.sha256)
        python_rows = [index for index, special in enumerate(needs_python) if special]
        candidates = gap_candidates(table, locator_array)
        gap_columns = table.select(GAP_COLUMNS)
        if python_rows:
            table = table.filter(pc.invert(pc.fill_null(pa.array(needs_python, pa.bool_()), False)))
        return table, python_rows, candidates, gap_columns

    def add_normalized(self, originals: list[str], locators: list[int], table: pa.Table | None,
                       python_rows: list[int], gap_candidates: list[tuple],
                       gap_columns: pa.Table | None) -> Iterator[pa.Table]:
        """The stateful half of ``add_batch`` (gaps, script blocks), for batches in file order."""
        if table is None:
            for locator, original in zip(locators, originals):
                try:
                    record = orjson.loads(original)
                except orjson.JSONDecodeError as exc:
                    self.ctx.reject(f"{self.unit} {locator}", f"not valid JSON ({str(exc)[:80]})")
                    continue
                yield from self.add(locator, original, record)
            return
        mapped: dict[int, dict] = {}
        for index in python_rows:
            try:
                record = orjson.loads(originals[index])
            except orjson.JSONDecodeError as exc:
                self.ctx.reject(f"{self.unit} {locators[index]}", f"not valid JSON ({str(exc)[:80]})")
                continue
            event = self._map(locators[index], originals[index], record, (None, None))
            if event is not None:
                mapped[index] = event
        if gap_candidates and gap_columns is not None:  # ``normalize`` gives both or neither
            columns = {name: gap_columns.column(name) for name in GAP_COLUMNS}

            def row(index: int) -> dict:
                if index in mapped:
                    return mapped[index]
                return {name: column[index].as_py() for name, column in columns.items()}

            for index, previous_index, previous_id, previous_locator in gap_candidates:
                current = row(index)
                if previous_index is not None:
                    before = row(previous_index)
                    self.last_record_id[_gap_key(current)] = (
                        previous_id, previous_locator, _account_text(before["user.name"], before["user.domain"]))
                self._check_gap(current, locators[index], self._file_record(locators[index]))
        for index in sorted(mapped):
            self._route(mapped[index])
        if table.num_rows:
            yield table
        if len(self.ready) >= BATCH_EVENTS:
            yield self._flush()

    def _map(self, locator: int, original: str, record: object,
             account: tuple[str | None, str | None], labels: tuple[tuple[str, str], ...] = (),
             keys_checked: bool = False) -> dict | None:
        try:
            event, data = map_record(record)
        except BadWindowsRecord as exc:
            self.ctx.reject(f"{self.unit} {locator}", f"not a Windows event record: {exc}")
            return None
        repeated = None if keys_checked else duplicate_keys(original, record)
        if repeated:
            self.ctx.flag_duplicate_keys(locator, repeated)
        event["labels"].extend(labels)
        name, domain = account
        if name and not event["user.name"]:
            event["user.name"] = name
            event["user.domain"] = domain or None
        event["log.file.path"] = self.ctx.path
        event["log.file.sha256"] = self.ctx.sha256
        event["log.record"] = locator
        event["event.original"] = original
        if event["event.id"] is None:
            event["event.id"] = event_id_from_record_id(f"windows.{self.ctx.sha256}", f"{self.unit} {locator}")
        event["_data"] = data
        return event

    def _route(self, event: dict) -> None:
        data = event.pop("_data")
        if event["event.code"] == "4104" and event["event.dataset"] == "windows.powershell" \
                and isinstance(data, dict) and (_int(data.get("MessageTotal")) or 1) > 1 and data.get("ScriptBlockId"):
            self._add_part(event, data)
        else:
            self._emit(event)

    def finish(self) -> Iterator[pa.Table]:
        for block_id in list(self.blocks):
            self._release(block_id)
        if self.ready:
            yield self._flush()

    def _emit(self, event: dict) -> None:
        event["labels"] = event["labels"] or None
        self.ready.append(event)

    def _flush(self) -> pa.Table:
        table = to_arrow(self.ready)
        self.ready = []
        return table

    def _file_record(self, locator: int, given: int | None = None) -> int | None:
        """The record's number in its EVTX file: the locator of a binary file's record, else what the text gave."""
        return locator if self.unit == "record" else given

    def _check_gap(self, event: dict, locator: int, file_record: int | None) -> None:
        """Compare a record's EventRecordID with the last one of its channel; a forward jump makes a gap event.

        ``event`` holds the record's columns (``labels`` as pairs). A gap whose
        first record after it is the log-cleared event of this very channel
        (Security 1102 in Security, a System 104 that cleared System) is
        attributed to the account that cleared the log; any other gap names no
        actor, only the account of the record before it
        (``labels.account_before_gap``), as context. When the record's number
        in the file (``file_record``) is not its EventRecordID, the file is a
        saved or exported log, and ``labels.exported_log`` says the gap may be
        its filter's.
        """
        record_id, timestamp = event["winlog.record_id"], event["@timestamp"]
        if record_id is None or timestamp is None:
            return
        key = _gap_key(event)
        previous = self.last_record_id.get(key)
        self.last_record_id[key] = (record_id, locator, _account_text(event["user.name"], event["user.domain"]))
        if previous is None or record_id <= previous[0] + 1:
            return
        host, channel = event["host.name"], event["winlog.channel"]
        first_missing, last_missing = previous[0] + 1, record_id - 1
        missing = last_missing - first_missing + 1
        labels = [("first_missing_record_id", str(first_missing)),
                  ("last_missing_record_id", str(last_missing)),
                  ("missing_records", str(missing)),
                  ("record_before_gap", f"{self.unit} {previous[1]}")]
        gap = new_event()
        if _clears_own_channel(event) and event["user.name"]:
            gap.update({column: event[column] for column in ("user.name", "user.domain", "user.id", "user.type")})
            labels.append(("actor_source", f"log-cleared event {event['event.code']} at {self.unit} {locator}"))
        elif previous[2]:
            labels.append(("account_before_gap", previous[2]))
        if file_record is not None and file_record != record_id:
            labels.append(("exported_log", "true"))
            labels.append(("file_record_number", str(file_record)))
            if not self.export_noted:
                self.export_noted = True
                where = "" if self.unit == "record" else f"{self.unit} {locator}: "
                self.ctx.note(f"a saved or exported log: its records are numbered apart from their EventRecordID "
                              f"({where}record {file_record} of the EVTX file has EventRecordID {record_id}), so "
                              f"its EventRecordID gaps may be an export filter's; they are reported as informational")
        gap.update({
            "@timestamp": timestamp,
            "event.action": GAP_ACTION,
            "event.outcome": "unknown",
            "event.dataset": event["event.dataset"],
            "event.provider": "mailhunt",
            "host.name": host,
            "winlog.channel": channel,
            "log.file.path": self.ctx.path,
            "log.file.sha256": self.ctx.sha256,
            "log.record": locator,
            "labels": labels,
            "event.original": f"EventRecordID {previous[0]} is followed by {record_id} in channel {channel} "
                              f"of {host}: {missing} record(s) missing",
        })
        gap["event.id"] = event_id_from_record_id(f"windows.gap.{key[0]}.{key[1]}", f"{first_missing}-{last_missing}")
        self._emit(gap)

    def _add_part(self, event: dict, data: dict) -> None:
        block_id = str(data["ScriptBlockId"]).lower()
        number = _int(data.get("MessageNumber")) or 1
        total = _int(data.get("MessageTotal")) or 1
        block = self.blocks.get(block_id)
        if block is None:
            block = self.blocks[block_id] = _PendingBlock(event, total)
        text = event["powershell.file.script_block_text"] or ""
        if number in block.parts:
            self.ctx.reject(f"{self.unit} {event['log.record']}",
                            f"part {number} of script block {block_id} again (a copy or a forgery of a part "
                            f"already read); skipped")
            return
        block.parts[number] = text
        block.records.append(event["winlog.record_id"] or event["log.record"])
        if number == 1:
            block.first = event
        self.pending_chars += len(text)
        if len(block.parts) >= block.total:
            self._release(block_id)
        while self.blocks and (len(self.blocks) > MAX_PENDING_BLOCKS or self.pending_chars > MAX_PENDING_CHARS):
            self._release(next(iter(self.blocks)))

    def _release(self, block_id: str) -> None:
        block = self.blocks.pop(block_id)
        self.pending_chars -= block.chars()
        event = block.first
        # MessageTotal is the record's word: a forged one may be huge, so at most MAX_LISTED_MISSING are named
        absent = (number for number in range(1, block.total + 1) if number not in block.parts)
        missing: list[int | str] = list(islice(absent, MAX_LISTED_MISSING))
        if block.total - len(block.parts) > MAX_LISTED_MISSING:
            missing.append(f"... {block.total - len(block.parts)} in all")
        event["powershell.file.script_block_text"] = "".join(
            block.parts[n] for n in sorted(block.parts))
        labels = event["labels"] or []
        labels.append(("script_block_id", block_id))
        labels.append(("script_block_parts", f"{len(block.parts)}/{block.total}"))
        labels.append(("script_block_records", ",".join(str(r) for r in sorted(block.records))))
        if missing:
            labels.append(("script_block_missing_parts", ",".join(str(n) for n in missing)))
        event["labels"] = labels
        self._emit(event)
