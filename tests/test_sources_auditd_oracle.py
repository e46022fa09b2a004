"""The auditd reader against go-libaudit's published parser output (an independent oracle).

For every raw audit log in the shared go-libaudit samples, the ``*.golden``
file beside it holds what go-libaudit parsed from each record (auparse) or
each assembled event (aucoalesce). The record types, times, argv, process
titles, paths and syscall names mailhunt extracts must agree with it.
"""

import io
import json
from datetime import UTC, datetime

import pytest
import yaml

from mailhunt.sources.auditd import parse_time, read_groups, view_of
from mailhunt.sources.base import ReadContext
from tests.corpus import PUBLIC

LIBAUDIT = PUBLIC / "go-libaudit"
RAW_LOGS = sorted(p for p in LIBAUDIT.glob("*.log") if p.with_name(p.name + ".golden").exists())
COALESCE = sorted(LIBAUDIT.glob("aucoalesce_*.yaml"))


def _groups(text: str):
    ctx = ReadContext("oracle", "x")
    groups = list(read_groups(io.BytesIO(text.encode()), ctx))
    return groups, ctx


def _golden_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def _args(data: dict) -> list[str]:
    count = int(data.get("argc", 0)) or len([k for k in data if k[:1] == "a" and k[1:].isdigit()])
    return [data[f"a{i}"] for i in range(count) if f"a{i}" in data]


def test_the_oracle_files_are_there():
    assert len(RAW_LOGS) >= 7 and len(COALESCE) >= 7


@pytest.mark.parametrize("log", RAW_LOGS, ids=lambda p: p.name)
def test_records_agree_with_auparse_golden(log):
    golden = [item for item in json.loads(log.with_name(log.name + ".golden").read_text()) if item]
    groups, ctx = _groups(log.read_text())
    by_serial = {}
    for group in groups:
        by_serial.setdefault(group.records[0].serial, []).append(group)
    assert ctx.records - ctx.rejected == len(golden), [str(r) for r in ctx.rejections]
    compared = {"execve": 0, "proctitle": 0, "path": 0}
    for item in golden:
        found = by_serial[str(item["sequence"])]
        types = [t.lower() for g in found for t in g.types()]
        assert item["record_type"] in types
        assert any(_golden_time(item["@timestamp"]) == parse_time(g.records[0].stamp) for g in found)
        views = [view_of(g) for g in found]
        data = item["data"]
        if item["record_type"] == "execve":
            assert _args(data) in [v.argv for v in views]
            compared["execve"] += 1
        elif item["record_type"] == "proctitle":
            assert data["proctitle"] in [" ".join(v.proctitle) for v in views if v.proctitle]
            compared["proctitle"] += 1
        elif item["record_type"] == "path" and "name" in data:
            assert data["name"] in [name for v in views for name, _ in v.paths]
            compared["path"] += 1
        elif item["record_type"] == "syscall" and not views[0].syscall.startswith("syscall_"):
            assert views[0].syscall == data["syscall"]
    if "EXECVE" in log.read_text():
        assert compared["execve"] > 0


def _coalesce_cases():
    for path in COALESCE:
        golden = path.with_name(path.name.removesuffix(".yaml") + ".json.golden")
        expected = {case["test_name"]: case for case in json.loads(golden.read_text())}
        for name, raw in yaml.safe_load(path.read_text())["tests"].items():
            yield pytest.param(raw, expected.get(name), id=f"{path.stem}::{name}")


@pytest.mark.parametrize("raw, expected", list(_coalesce_cases()))
def test_events_agree_with_aucoalesce_golden(raw, expected):
    assert expected is not None, "go-libaudit publishes an expectation for every test"
    groups, ctx = _groups(raw)
    event = expected["event"]
    assert len(groups) == 1 and ctx.rejected == 0
    view = view_of(groups[0])
    assert view.serial == str(event["sequence"])
    process = event.get("process", {})
    if "args" in process:
        assert view.argv == process["args"]
    if "title" in process:
        assert " ".join(view.proctitle) == process["title"]
    assert [name for name, _ in view.paths] == [p["name"] for p in event.get("paths", []) if "name" in p]
    syscall = event.get("data", {}).get("syscall")
    if syscall and view.syscall and not view.syscall.startswith("syscall_"):
        assert view.syscall == syscall
    assert event["record_type"].upper() in view.record_types
