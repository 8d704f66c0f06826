"""A machine-wide cap on local generations running at once on the CPU.

llama.cpp's threads meet at a barrier after every operation of every token, and wait there by
spinning.  When two runners with ``n_threads`` = the core count each run a generation (two
worker processes, a doc-summary map beside a triage job, the API beside a worker), every thread
that is descheduled stalls its partners for a whole time slice at each barrier: measured here, a
Qwen2.5-0.5B decode fell from ~45 to ~2 tokens/s with three other generations on 2 cores, far
below a fair share.  Taking turns is faster for everyone: a generation holds one of
``cores // n_threads`` slots (``Settings.local_cpu_slots``) while it computes.

A slot is an ``flock`` on a file in the temp directory, so it spans every process on the machine
(all homes, API and workers alike) and the kernel frees it when its holder dies.  The wait is
bounded: after ``wait_s`` a generation runs anyway, so a holder that is stopped (SIGSTOP, a
debugger) can slow others down but never stall them.  GPU-offloaded runners take no slot.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_handles: dict[int, IO[str]] = {}  # slot number -> this process's open lock file


def auto_slots(n_threads: int) -> int:
    """Generations the cores can run at once without oversubscription: at least one."""
    return max(1, (os.cpu_count() or 1) // max(1, n_threads))


def _handle(number: int) -> IO[str]:
    handle = _handles.get(number)
    if handle is None:
        directory = Path(tempfile.gettempdir()) / "modelyard-cpu-slots"
        directory.mkdir(exist_ok=True)
        handle = _handles[number] = (directory / f"slot{number}.lock").open("a")
    return handle


@contextmanager
def cpu_slot(slots: int, wait_s: float) -> Iterator[float]:
    """Hold one of ``slots`` machine-wide slots (none when ``slots`` <= 0); yields seconds waited.

    One generation per process at a time (the runner's lock), so one open file per slot number
    is enough: ``flock`` conflicts between open files, also within a process.
    """
    started = time.monotonic()
    if slots <= 0:
        yield 0.0
        return
    held: IO[str] | None = None
    delay = 0.001
    while held is None:
        for number in range(slots):
            handle = _handle(number)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            held = handle
            break
        else:
            if time.monotonic() - started >= wait_s:
                break  # run anyway: a stopped holder must not stall the machine
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
    try:
        yield time.monotonic() - started
    finally:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)


__all__ = ["auto_slots", "cpu_slot"]
