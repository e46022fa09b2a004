"""bench/run_evtx.py --peer-cmd: the peer's command is split without a shell, the file goes where {file} is,
and a peer that is not given or not installed is skipped with the reason."""

import importlib.util
import sys

import pytest

from tests.corpus import REPO


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
