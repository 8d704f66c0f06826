"""Start, reach, diagnose and stop one llama.cpp runner process (``llama_runner``).

The child is a fresh interpreter (``subprocess``, never ``fork``: the API and the workers are
threaded, and a forked copy of a threaded process may hold locks nobody will release).  It gets
our pipe as its stdin and exits when that closes, so a runner dies with its owner even when the
owner is SIGKILLed.  When a call's connection drops, the exit status says what happened: a signal
(SIGSEGV in native code, SIGABRT from an assert, SIGKILL from the OOM killer) becomes
``BackendCrashed`` naming the model and the signal, and nothing of our file system.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection

from ..errors import BackendCrashed, BackendError, BackendTimeout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerConfig:
    """How to start a runner; ``address_space_bytes`` 0 means no RLIMIT_AS."""

    model_path: str
    n_ctx: int
    n_threads: int
    n_gpu_layers: int
    address_space_bytes: int
    start_timeout_s: float = 120.0
    stall_timeout_s: float = 600.0
    cpu_slots: int = 0  # machine-wide CPU slots (cpu_slots.py); 0: no limit
    cpu_wait_s: float = 60.0


class RunnerProcess:
    """One live runner: its process, its socket, and a lock held for the length of a generation.

    ``lock`` is the parent's view of "this model is busy": eviction takes it so a generation in
    flight finishes before its runner is stopped.
    """

    def __init__(self, name: str, ram_bytes: int, config: RunnerConfig, socket_path: str) -> None:
        self.name = name
        self.ram_bytes = ram_bytes
        self.config = config
        self.socket_path = socket_path
        self.lock = threading.Lock()
        self._proc = self._start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _start(self) -> subprocess.Popen[bytes]:
        c = self.config
        cmd = [
            sys.executable, "-m", "modelyard_registry.runtimes.llama_runner",
            "--model", c.model_path, "--socket", self.socket_path, "--n-ctx", str(c.n_ctx),
            "--threads", str(c.n_threads), "--gpu-layers", str(c.n_gpu_layers),
            "--address-space-bytes", str(c.address_space_bytes),
            "--cpu-slots", str(c.cpu_slots), "--cpu-wait-s", str(c.cpu_wait_s),
        ]
        # Bounded malloc arenas keep the address space (RLIMIT_AS counts reservations) near the
        # memory actually used; a new session keeps a terminal's Ctrl-C for the parent to handle.
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                start_new_session=True)
        try:
            line = _read_line(proc, c.start_timeout_s)
        except BaseException:
            _stop(proc)
            raise
        try:
            status = json.loads(line) if line else {}
        except ValueError:
            status = {}
        if status.get("ready"):
            return proc
        _stop(proc)
        if "error" in status:
            raise BackendError(f"llama.cpp could not load model {self.name!r}: {status['error']}")
        raise BackendCrashed(f"the llama.cpp runner for model {self.name!r} died while loading "
                             f"({_describe(proc.returncode)})")

    def connect(self) -> Connection:
        try:
            return Client(self.socket_path, family="AF_UNIX")
        except OSError as exc:
            raise self.crashed() from exc

    def crashed(self) -> BackendError:
        """The error for a dropped connection, after making sure the process is gone."""
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(self._proc)
            return BackendError(f"the llama.cpp runner for model {self.name!r} dropped a call "
                                "and was restarted")
        log.error("llama.cpp runner for %s (pid %d) ended: %s", self.name, self._proc.pid,
                  _describe(code))
        return BackendCrashed(f"the llama.cpp runner for model {self.name!r} crashed "
                              f"({_describe(code)}); it restarts on the next request")

    def stalled(self) -> BackendTimeout:
        """A runner silent mid-call is hung in native code: kill it, it restarts on next use."""
        log.error("llama.cpp runner for %s (pid %d) silent for %gs: killed", self.name,
                  self._proc.pid, self.config.stall_timeout_s)
        self._proc.kill()
        self._proc.wait()
        return BackendTimeout(f"the llama.cpp runner for model {self.name!r} produced nothing "
                              f"for {self.config.stall_timeout_s:g}s and was restarted")

    def stop(self) -> None:
        _stop(self._proc)
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)


def _describe(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"killed by {name}, most likely out of memory"
        return f"killed by {name}"
    return f"exit status {code}"


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The runner's one-line handshake, or "" if it exits or stays silent past the timeout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    fd = proc.stdout.fileno()
    # A selector (epoll/poll), not select.select: select() refuses descriptors numbered 1024 or
    # more, and a busy API or worker holding many sockets hands the runner's pipe such a number.
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return ""
            chunk = os.read(fd, 4096)
            if not chunk:
                return ""
            buf += chunk
    return buf.decode(errors="replace").strip()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Close the lifeline (the runner exits by itself), then insist."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
