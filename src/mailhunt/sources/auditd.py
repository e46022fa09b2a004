"""Linux audit logs: ``audit.log`` (raw and enriched), ``ausearch --format raw`` and ``ausearch -i`` output.

The kernel writes one event as several records (SYSCALL, EXECVE, CWD, PATH ...,
PROCTITLE, EOE) that share ``msg=audit(EPOCH:SERIAL)``; records of different
events may interleave. The reader gathers the records of a serial and emits
one event when the group's EOE arrives, when the group's first record lies
``LOOKAHEAD_LINES`` lines behind (events without EOE, user-space records),
at an ``ausearch`` ``----`` separator (its ``time->`` lines are skipped), or
at the end of the file.

A group split across rotated files becomes one event in each file. A group
without its SYSCALL record while holding records that belong to one (EXECVE,
PATH, CWD, PROCTITLE), or whose EXECVE lacks arguments it announced in
``argc``, is still an event: ``labels.partial`` says what is missing, and its
id is the hash of its text so the two halves never deduplicate into one.

Raw ``audit.log`` times are seconds since the epoch (UTC). ``ausearch -i``
prints the local time of the machine that ran it, without a zone: the
analyst's ``timezone`` hint converts it, else it is read as UTC, and
``labels.time_zone_source`` says which (or run ``TZ=UTC ausearch -i``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa

from mailhunt.events import (
    TimeOutOfRange,
    event_id_from_record_id,
    parse_time_text,
    utc_from_epoch,
)
from mailhunt.sources.base import ReadContext
from mailhunt.sources.json_values import int64_from_text
from mailhunt.sources.linux_syscalls import (
    DELETE_CALLS,
    EXEC_CALLS,
    OPEN_CALLS,
    RENAME_CALLS,
    TRUNCATE_CALLS,
    arch_name,
    opens_with_truncation,
    syscall_name,
)
from mailhunt.sources.unix_common import (
    NOT_UTF8,
    EventBatches,
    command_line,
    decode_lenient,
    lenient_lines,
    local_time_to_utc,
    program_name,
    unix_event,
)

DATASET = "linux.auditd"
LOOKAHEAD_LINES = 1000
# More arguments than Linux passes to a program (its argument space holds at most 2**21 bytes, one per empty
# argument at least): an argc or argument index beyond it is damage, not an argument list to wait for.
MAX_ARGS = 2**21
UNSET_ID = "4294967295"
CUT_FIELD = "\x00cut"
ENRICHED_SEPARATOR = "\x1d"
SYSCALL_PARTS = frozenset({"EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR", "EXECVE_ARGS"})

_HEADER = re.compile(r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<stamp>[^()]*?):(?P<serial>\d+)\)"
                     r"\s?:?\s?(?P<body>.*)$", re.DOTALL)
_RAW_STAMP = re.compile(r"^\d+\.\d+$")
# A key starts where a run of key characters starts: tried inside a long run without "=", it would make
# reading a line cost the square of its length (a 100 KB word took minutes).
_FIELD = re.compile(r"""(?<![\w\-])([A-Za-z_][\w\-]*(?:\[\d+\])?)=("[^"]*"|'[^']*'|"[^"]*$|'[^']*$|\S*)""")
_ARG = re.compile(r"^a(\d+)(?:\[(\d+)\])?$")
_INTERPRETED_ARG = re.compile(r"(?:^|\s)a(\d+)=")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
# Fields the kernel and audit userspace hex-encode when their text holds blanks, quotes or control bytes.
_ENCODED_FIELDS = frozenset({"proctitle", "name", "cwd", "comm", "exe", "acct", "cmd", "key", "data", "path",
                             "old", "new", "root_dir", "grp", "id"})
_INTERPRETED_TIME = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%y %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


class TruncatedRecord(ValueError):
    pass


@dataclass
class AuditRecord:
    type: str
    node: str | None
    stamp: str
    serial: str
    line: int
    text: str
    fields: dict[str, str]
    enriched: dict[str, str]
    interpreted: bool
    escaped: bool
    arg_texts: dict[str, str] = field(default_factory=dict)


def _decode_hex(value: str) -> tuple[str, bool]:
    return decode_lenient(bytes.fromhex(value))


def parse_fields(body: str, interpreted: bool) -> tuple[dict[str, str], bool]:
    """``key=value`` pairs of a record body; hex-encoded values decoded (raw logs only).

    A quoted value that never closes (the line was cut) is kept up to the end
    of the line, and ``CUT_FIELD`` names its key. (The hot loop of the reader:
    kept to plain string operations.)
    """
    fields: dict[str, str] = {}
    escaped = False
    for key, value in _FIELD.findall(body):
        first = value[:1]
        quoted = first == '"' or first == "'"
        if quoted:
            if len(value) >= 2 and value[-1] == first:
                text = value[1:-1]
            else:
                text = value[1:]
                fields.setdefault(CUT_FIELD, key)
            if key == "msg" and "=" in text:
                inner, inner_escaped = parse_fields(text, interpreted)
                escaped |= inner_escaped
                for inner_key, inner_value in inner.items():
                    fields.setdefault(inner_key, inner_value)
                continue
        else:
            text = value
            if not interpreted and (key in _ENCODED_FIELDS or (key[0] == "a" and _ARG.match(key))) \
                    and _HEX.match(text):
                text, was_escaped = _decode_hex(text)
                escaped |= was_escaped
        if key not in fields:
            fields[key] = text
    return fields, escaped


def _interpreted_args(body: str) -> dict[str, str]:
    """``ausearch -i`` prints EXECVE arguments unquoted: each runs up to the next `` aN=``."""
    marks = list(_INTERPRETED_ARG.finditer(body))
    args = {}
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(body)
        args[f"a{mark.group(1)}"] = body[mark.end():end].strip(" ")
    return args


def parse_record(number: int, text: str, escaped: bool) -> AuditRecord:
    """One audit record line; raises ValueError (TruncatedRecord for a cut line) with the reason."""
    main, _, enriched_text = text.partition(ENRICHED_SEPARATOR)
    header = _HEADER.match(main)
    if not header:
        if main.startswith(("type=", "node=")) and "msg=audit(" in main:
            raise TruncatedRecord("record cut short: msg=audit(EPOCH:SERIAL) is incomplete")
        raise ValueError("not an audit record (no type=... msg=audit(EPOCH:SERIAL))")
    stamp = header["stamp"].strip()
    interpreted = not _RAW_STAMP.match(stamp)
    body = header["body"]
    rtype = header["type"]
    if interpreted and rtype == "PROCTITLE" and body.startswith("proctitle="):
        fields, more = {"proctitle": body[len("proctitle="):]}, False
    else:
        fields, more = parse_fields(body, interpreted)
    enriched, _ = parse_fields(enriched_text, True) if enriched_text else ({}, False)
    record = AuditRecord(rtype, header["node"], stamp, header["serial"], number, text, fields, enriched,
                         interpreted, escaped or more)
    if interpreted and rtype == "EXECVE":
        record.arg_texts = _interpreted_args(body)
    return record


def parse_time(stamp: str) -> datetime:
    if _RAW_STAMP.match(stamp):
        return utc_from_epoch(float(stamp))
    try:
        return parse_time_text(stamp, _INTERPRETED_TIME, iso=False)
    except TimeOutOfRange:
        raise
    except ValueError:
        raise ValueError(f"time '{stamp}' is neither EPOCH.millis nor an ausearch -i date") from None


@dataclass
class AuditGroup:
    """All records of one ``msg=audit(EPOCH:SERIAL)`` as found in one file, in file order."""

    key: tuple
    records: list[AuditRecord] = field(default_factory=list)

    @property
    def first_line(self) -> int:
        return self.records[0].line

    def types(self) -> list[str]:
        return [r.type for r in self.records]

    def first(self, rtype: str) -> AuditRecord | None:
        return next((r for r in self.records if r.type == rtype), None)


@dataclass
class AuditView:
    """What a group says, independent of the event model: the parser's own result, checked against go-libaudit."""

    record_types: list[str]
    serial: str
    stamp: str
    node: str | None
    syscall: str | None
    arch: str | None
    argv: list[str] | None
    argc: int | None
    proctitle: list[str] | None
    cwd: str | None
    paths: list[tuple[str, str | None]]
    missing: list[str]
    escaped: bool
    interpreted: bool


def _execve_argv(records: list[AuditRecord]) -> tuple[list[str] | None, int | None, list[str]]:
    """argv from one or more EXECVE records: plain ``aN``, and ``aN_len``/``aN[i]`` chunks joined."""
    execs = [r for r in records if r.type == "EXECVE"]
    if not execs:
        return None, None, []
    argc_text = next((r.fields["argc"] for r in execs if "argc" in r.fields), None)
    argc = int64_from_text(argc_text)
    if argc is not None and argc > MAX_ARGS:
        argc = None
    whole: dict[int, str] = {}
    chunks: dict[int, dict[int, str]] = {}
    for record in execs:
        items = record.arg_texts.items() if record.interpreted else record.fields.items()
        for key, value in items:
            match = _ARG.match(key)
            if not match:
                continue
            index, chunk = int64_from_text(match.group(1)), int64_from_text(match.group(2))
            if index is None or index > MAX_ARGS or (match.group(2) is not None and chunk is None):
                continue
            if chunk is None:
                whole[index] = value
            else:
                chunks.setdefault(index, {})[chunk] = value
    for index, parts in chunks.items():
        whole[index] = "".join(parts[i] for i in sorted(parts))
    count = argc if argc is not None else (max(whole) + 1 if whole else 0)
    missing = [f"a{i}" for i in range(count) if i not in whole]
    argv = [whole[i] for i in range(count) if i in whole]
    return argv, argc, missing


def view_of(group: AuditGroup) -> AuditView:
    syscall_record = group.first("SYSCALL")
    arch = syscall = None
    if syscall_record:
        arch = arch_name(syscall_record.fields.get("arch"))
        syscall = syscall_name(arch, syscall_record.fields.get("syscall"))
    argv, argc, missing_args = _execve_argv(group.records)
    missing = []
    if missing_args:
        missing.append(f"EXECVE argc={argc} but {', '.join(missing_args)} not logged")
    for record in group.records:
        if CUT_FIELD in record.fields:
            missing.append(f"{record.type} record on line {record.line} cut short "
                           f"(quoted value of {record.fields[CUT_FIELD]} never closes)")
    if syscall_record is None and any(t in SYSCALL_PARTS for t in group.types()):
        missing.append("no SYSCALL record (cut off by rotation or a lost record)")
    proctitle_record = group.first("PROCTITLE")
    proctitle = None
    if proctitle_record and "proctitle" in proctitle_record.fields:
        text = proctitle_record.fields["proctitle"]
        proctitle = [part for part in text.split("\x00")] if "\x00" in text else [text]
        while proctitle and proctitle[-1] == "":
            proctitle.pop()
    cwd_record = group.first("CWD")
    paths = [(r.fields["name"], r.fields.get("nametype") or r.fields.get("objtype"))
             for r in group.records if r.type == "PATH" and r.fields.get("name", "(null)") != "(null)"]
    first = group.records[0]
    return AuditView(group.types(), first.serial, first.stamp, first.node, syscall, arch, argv, argc, proctitle,
                     cwd_record.fields.get("cwd") if cwd_record else None, paths, missing,
                     any(r.escaped for r in group.records), first.interpreted)


def _absolute(path: str, cwd: str | None) -> str:
    if path.startswith("/") or not cwd or path in ("(null)",):
        return path
    return cwd.rstrip("/") + "/" + path


def _first(paths: list[str] | None) -> str | None:
    return paths[0] if paths else None


def _file_paths(view: AuditView, syscall_fields: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(file.path, file.target_path, what was done) for the calls that change files."""
    name = view.syscall or ""
    by_type: dict[str, list[str]] = {}
    for path, nametype in view.paths:
        by_type.setdefault((nametype or "").upper(), []).append(_absolute(path, view.cwd))
    normal = by_type.get("NORMAL", []) + by_type.get("CREATE", [])
    if name in DELETE_CALLS:
        return _first(by_type.get("DELETE") or normal), None, "deletion"
    if name in RENAME_CALLS:
        return _first(by_type.get("DELETE")), _first(by_type.get("CREATE")), "rename"
    if name in TRUNCATE_CALLS:
        return _first(normal), None, "truncation"
    if name in OPEN_CALLS or name == "openat2":
        truncated = opens_with_truncation(name, syscall_fields)
        return _first(normal), None, "truncation" if truncated else None
    if name in EXEC_CALLS:
        return _first(normal), None, None
    return _first(normal), None, None


def _actor(group: AuditGroup) -> tuple[str | None, str | None, str | None]:
    """(user.name, user.id, how the name was found): the login uid (auid) before the uid."""
    for rtype in ("SYSCALL", None):
        record = group.first(rtype) if rtype else next((r for r in group.records if "auid" in r.fields
                                                         or "uid" in r.fields), None)
        if record is None:
            continue
        for key in ("auid", "uid"):
            value = record.fields.get(key)
            if value is None or value in (UNSET_ID, "unset", "-1"):
                continue
            named = record.enriched.get(key.upper())
            if named:
                return named, value, f"{key} name from the enriched log"
            if not value.lstrip("-").isdigit():
                return value, None, f"{key} name from ausearch -i"
            return value, value, f"{key} number (the log gives no name)"
    return None, None, None


def event_from_group(group: AuditGroup, ctx: ReadContext) -> dict | None:
    view = view_of(group)
    raw = "\n".join(r.text for r in group.records)
    first = group.records[0]
    try:
        timestamp = parse_time(first.stamp)
        if first.interpreted:
            timestamp, zone_source = local_time_to_utc(timestamp, ctx)
    except ValueError as exc:
        count = len(group.records)
        ctx.reject(f"line {first.line}", f"audit({first.stamp}:{first.serial}): {exc}"
                                         + (f"; the group's {count} records rejected" if count > 1 else ""))
        ctx.rejected += count - 1
        return None
    labels: dict[str, str] = {"audit_id": f"{first.stamp}:{first.serial}", "record_types": ",".join(view.record_types)}
    event = unix_event(ctx, DATASET, "auditd", first.line, raw, timestamp, labels)
    labels = event["labels"]
    if not view.missing:
        event["event.id"] = event_id_from_record_id(DATASET, f"{first.node or ''}\x1f{first.stamp}:{first.serial}")
    else:
        labels["partial"] = "; ".join(view.missing)
    if view.escaped:
        labels["encoding"] = NOT_UTF8
    if view.interpreted:
        labels["time_zone_source"] = zone_source
    syscall_record = group.first("SYSCALL")
    main = syscall_record or first
    fields = main.fields
    event["event.code"] = main.type
    event["event.action"] = view.syscall or main.type
    event["host.name"] = first.node
    user_name, user_id, user_source = _actor(group)
    event["user.name"], event["user.id"] = user_name, user_id
    if user_source:
        labels["user_source"] = user_source
    success = fields.get("success") or fields.get("res")
    if success:
        event["event.outcome"] = "success" if success in ("yes", "success", "1") else "failure"
    pid = fields.get("pid")
    event["process.pid"] = int64_from_text(pid)
    exe = fields.get("exe")
    event["process.executable"] = exe if exe and exe != "(null)" else None
    event["process.name"] = program_name(event["process.executable"]) or fields.get("comm")
    argv = view.argv if view.argv else view.proctitle
    event["process.command_line"] = command_line(argv) if argv else None
    if fields.get("ppid"):
        labels["ppid"] = fields["ppid"]
    for key in ("key", "arch"):
        if fields.get(key) and fields[key] != "(null)":
            labels[key] = arch_name(fields[key]) if key == "arch" else fields[key]
    if view.cwd:
        labels["cwd"] = view.cwd
    path, target, change = _file_paths(view, fields)
    event["file.path"], event["file.target_path"] = path, target
    if change:
        labels["file_change"] = change
    address = fields.get("addr")
    if address and address not in ("?", "(none)") and re.match(r"^[0-9A-Fa-f:.]+$", address):
        event["source.ip"] = address
    return event


def _group_key(record: AuditRecord) -> tuple:
    return record.node, record.stamp, record.serial


def read_groups(stream: BinaryIO, ctx: ReadContext, lookahead: int = LOOKAHEAD_LINES) -> Iterator[AuditGroup]:
    """Record groups in the order they complete; bad lines are rejected with their number."""
    pending: OrderedDict[tuple, AuditGroup] = OrderedDict()
    for number, text, escaped in lenient_lines(stream, ctx):
        if not text.strip():
            continue
        if text.startswith("----"):
            while pending:
                yield pending.popitem(last=False)[1]
            continue
        if text.startswith("time->"):
            continue
        ctx.records += 1
        try:
            record = parse_record(number, text, escaped)
        except ValueError as exc:
            ctx.reject(f"line {number}", str(exc))
            continue
        key = _group_key(record)
        group = pending.get(key)
        if group is None:
            group = pending[key] = AuditGroup(key)
        group.records.append(record)
        if record.type == "EOE":
            yield pending.pop(key)
        while pending:
            oldest = next(iter(pending.values()))
            if oldest.first_line >= number - lookahead:
                break
            yield pending.popitem(last=False)[1]
    while pending:
        yield pending.popitem(last=False)[1]


def sniff_audit(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines()[:20]
             if line.strip() and not line.startswith(("----", "time->"))][:10]
    if not lines:
        return False
    return sum(1 for line in lines if _HEADER.match(line.split(ENRICHED_SEPARATOR)[0])) * 2 >= len(lines)


class AuditdLog:
    name = "auditd"
    dataset = DATASET
    locator_unit = "line"

    def sniff(self, head: bytes) -> bool:
        return sniff_audit(head)

    def read(self, stream: BinaryIO, ctx: ReadContext) -> Iterator[pa.Table]:
        batches = EventBatches()
        for group in read_groups(stream, ctx):
            event = event_from_group(group, ctx)
            if event is not None:
                yield from batches.add(event)
        yield from batches.flush()
