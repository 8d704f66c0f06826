"""Local generations take turns on the CPU: a machine-wide slot, bounded wait, across processes.

Each test uses its own temp directory for the slot files (``TMPDIR``), so the suite's other
generations never hold the slots these tests look at.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.runtimes import Completion, GenerationRequest, LlamaCppRuntime, LlamaPool

PROBE = (
    "import sys\n"
    "from modelyard_registry.runtimes.cpu_slots import cpu_slot\n"
    "with cpu_slot(int(sys.argv[1]), float(sys.argv[2])) as waited:\n"
    "    print(waited)\n"
)


def waited_in_another_process(tmp: Path, slots: int, wait_s: float) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, str(slots), str(wait_s)],
                         env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True,
                         check=True, timeout=60)
    return float(out.stdout)


def hold_slot(tmp: Path, number: int = 0) -> int:
    directory = tmp / "modelyard-cpu-slots"
    directory.mkdir(exist_ok=True)
    fd = os.open(directory / f"slot{number}.lock", os.O_CREAT | os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_busy_slot_is_waited_for_then_the_generation_runs_anyway(tmp_path: Path) -> None:
    fd = hold_slot(tmp_path)
    try:
        assert waited_in_another_process(tmp_path, 1, 0.5) >= 0.5  # waited the bound, then ran
        assert waited_in_another_process(tmp_path, 2, 30) < 5  # slot 1 is free: no wait
    finally:
        os.close(fd)
    assert waited_in_another_process(tmp_path, 1, 30) < 5  # released: taken at once


def test_no_limit_never_waits(tmp_path: Path) -> None:
    fd = hold_slot(tmp_path)
    try:
        assert waited_in_another_process(tmp_path, 0, 30) == 0.0
    finally:
        os.close(fd)


def test_a_runner_computes_only_while_it_holds_a_slot(
    tmp_path: Path, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's setting reaches its runner: with the one slot taken, a generation waits, and
    its latency is the model's own time, the wait reported beside it."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the runner process inherits it
    pool = LlamaPool(ram_budget_bytes=2**31, n_threads=2, n_gpu_layers=0, n_ctx=512,
                     cpu_slots=1, cpu_wait_s=60)
    info = read_gguf(smollm2_path)
    runtime = LlamaCppRuntime(pool, name="smollm2", path=str(smollm2_path),
                              ram_bytes=info.ram_estimate(512), context_length=512, chat=True)
    request = GenerationRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    try:
        runtime.generate(request)  # runner started and warm before the slot is taken
        fd = hold_slot(tmp_path)
        finished = threading.Event()
        answers: list[tuple[Completion, float]] = []

        def answer() -> None:
            started = time.perf_counter()
            done = runtime.generate(request)
            answers.append((done, time.perf_counter() - started))
            finished.set()

        worker = threading.Thread(target=answer)
        worker.start()
        try:
            assert not finished.wait(3)  # a 4-token answer waits for the slot
        finally:
            os.close(fd)
        assert finished.wait(60)  # and runs once the slot is free
        worker.join()
        # The wait is reported apart: it is neither priced nor counted against the model's speed.
        ((done, wall),) = answers
        assert done.queued_s > 0.5  # the slot was held for 3 s after the call went out
        assert done.latency_s <= wall - done.queued_s
        assert done.ttft_s <= done.latency_s
    finally:
        pool.close()
