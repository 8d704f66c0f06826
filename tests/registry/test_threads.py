"""llama.cpp's thread count follows the CPUs a process may really use."""

from __future__ import annotations

import os

import pytest
from modelyard_registry.settings import Settings, cgroup_cpus, default_threads


@pytest.mark.parametrize(("line", "cpus"), [
    ("max 100000\n", None),          # no quota
    ("200000 100000\n", 2),          # 2 CPUs
    ("150000 100000", 2),            # 1.5 CPUs: round up, a half CPU still runs a thread
    ("50000 100000", 1),             # never fewer than one
    ("garbage", None),
    ("", None),
])
def test_cgroup_quota_is_read_as_whole_cpus(line: str, cpus: int | None) -> None:
    assert cgroup_cpus(line) == cpus


def test_default_threads_never_exceed_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODELYARD_N_THREADS", raising=False)
    threads = default_threads()
    assert 1 <= threads <= len(os.sched_getaffinity(0))
    assert Settings().n_threads == threads


def test_the_setting_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_N_THREADS", "1")
    assert Settings().n_threads == 1
