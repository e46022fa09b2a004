"""bench/run_evtx.py --peer-cmd: the peer's command is split without a shell, the file goes where {file} is,
and a peer that is not given or not installed is skipped with the reason."""

import importlib.util
import sys

import pytest
import yaml

from tests.corpus import REPO, SIGMAHQ


@pytest.fixture(scope="module")
def run_evtx():
    spec = importlib.util.spec_from_file_location("bench_run_evtx", REPO / "bench" / "run_evtx.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_evtx_path_is_one_argument_where_the_placeholder_is(run_evtx, tmp_path):
    data = tmp_path / "a b; rm -rf x $(id).evtx"
    command, skipped = run_evtx.peer_command(f"{sys.executable} zircolite.py --evtx {{file}} --ruleset r.json", data)
    assert skipped == ""
    assert command == [sys.executable, "zircolite.py", "--evtx", str(data), "--ruleset", "r.json"]


@pytest.mark.parametrize("template, reason", [
    (None, "no --peer-cmd given"),
    ("zircolite --evtx logs.evtx", "has no {file}"),
    ("no-such-peer-program-here --evtx {file}", "no-such-peer-program-here is not found"),
])
def test_a_peer_not_given_or_not_installed_is_skipped_with_the_reason(run_evtx, tmp_path, template, reason):
    command, skipped = run_evtx.peer_command(template, tmp_path / "x.evtx")
    assert command is None and reason in skipped


def test_the_rules_folder_and_the_detections_file_go_where_their_placeholders_are(run_evtx, tmp_path):
    data, rules, out = tmp_path / "x.evtx", tmp_path / "the rules", tmp_path / "det.json"
    command, skipped = run_evtx.peer_command(f"{sys.executable} z.py -e {{file}} -r {{rules}} -o={{out}}",
                                             data, rules, out)
    assert skipped == ""
    assert command == [sys.executable, "z.py", "-e", str(data), "-r", str(rules), f"-o={out}"]
    command, skipped = run_evtx.peer_command(f"{sys.executable} z.py -e {{file}} -r {{rules}}", data)
    assert command is None and "no --rules" in skipped


def test_the_peer_detections_are_read_per_rule_and_anything_else_is_not_read(run_evtx, tmp_path):
    out = tmp_path / "det.json"
    out.write_text('[{"title": "Security Eventlog Cleared", "id": "d99b79d2", "count": 300, "matches": []}]')
    assert run_evtx.peer_matches(out) == {"d99b79d2": 300}
    out.write_text('{"not": "zircolite"}')
    assert run_evtx.peer_matches(out) is None
    assert run_evtx.peer_matches(tmp_path / "absent.json") is None


def test_the_rules_given_to_both_are_gathered_into_one_folder_with_their_titles(run_evtx, tmp_path):
    one = SIGMAHQ / "posh_ps_mailbox_access.yml"
    titles = run_evtx.gather_rules([one, SIGMAHQ], tmp_path / "rules")
    assert titles[str(yaml.safe_load(one.read_text())["id"])] == "Windows Mail App Mailbox Access Via PowerShell Script"
    copied = sorted(p.name for p in (tmp_path / "rules").iterdir())
    assert len(copied) == 1 + len(list(SIGMAHQ.glob("*.yml")))


def test_the_records_of_an_evtx_file_are_counted_from_its_chunk_headers(tmp_path):
    from evtx import PyEvtxParser

    spec = importlib.util.spec_from_file_location("bench_evtx_data", REPO / "bench" / "evtx_data.py")
    assert spec is not None and spec.loader is not None
    evtx_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evtx_data)
    built = tmp_path / "three.evtx"
    records = evtx_data.build(3, built)
    assert evtx_data.count_records(built) == records == sum(1 for _ in PyEvtxParser(str(built)).records())
