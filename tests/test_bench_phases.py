"""bench/phases.py times the hunt's stages by name: every name it wraps must still be a stage of mailhunt.hunt."""

import importlib.util

import mailhunt.hunt
from tests.corpus import REPO


def test_every_stage_bench_phases_times_exists_in_the_hunt():
    spec = importlib.util.spec_from_file_location("bench_phases", REPO / "bench" / "phases.py")
    assert spec is not None and spec.loader is not None
    phases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(phases)
    missing = [name for name in phases.STAGES if not callable(getattr(mailhunt.hunt, name, None))]
    assert not missing, f"bench/phases.py wraps stages mailhunt.hunt no longer has: {missing}"
