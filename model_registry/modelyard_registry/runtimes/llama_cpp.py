"""Local GGUF models on llama.cpp, each loaded model in its own runner process.

Loading a model costs seconds and hundreds of MB, so loaded models live in a pool: load once,
reuse, evict the least recently used to stay under the RAM budget.  Each loaded model is a
supervised ``llama_runner`` process (``runner_process``): native code that crashes takes down
that runner and fails that one call with ``BackendCrashed``; the next call starts a new runner.
Evicting a model stops its process, which is what gives its memory back.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import cast

from ..errors import BackendError, CapabilityMissing, InvalidInput, ModelTooLarge
from .base import (
    Completion,
    GenerationRequest,
    Stopwatch,
    StreamEvent,
    ToolCallDelta,
    drain,
    join_tool_calls,
)
from .runner_process import RunnerConfig, RunnerProcess
from .runner_wire import REPEAT_PENALTY, Counted, Done, Failed, Generate, Pieces, Reply, Tokenize

__all__ = ["REPEAT_PENALTY", "LlamaCppRuntime", "LlamaPool"]

log = logging.getLogger(__name__)


class LlamaPool:
    """Runner processes keyed by catalogue name, LRU-evicted under ``ram_budget_bytes``.

    ``memory_headroom_bytes`` is what a runner may address beyond its model's RAM estimate (the
    interpreter, llama.cpp's buffers, the KV cache); the sum is the runner's ``RLIMIT_AS``, so a
    runaway allocation kills that runner, not the machine.  0 turns the limit off (it is never
    applied to a runner that offloads to a GPU: GPU drivers reserve huge address ranges).  A
    runner silent for ``stall_timeout_s`` in the middle of a call (a native hang) is killed.
    """

    def __init__(
        self,
        *,
        ram_budget_bytes: int,
        n_threads: int,
        n_gpu_layers: int,
        n_ctx: int,
        memory_headroom_bytes: int = 1536 * 2**20,
        stall_timeout_s: float = 600.0,
        cpu_slots: int = 0,
        cpu_wait_s: float = 60.0,
    ) -> None:
        self.ram_budget_bytes = ram_budget_bytes
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.n_ctx = n_ctx
        self.memory_headroom_bytes = memory_headroom_bytes
        self.stall_timeout_s = stall_timeout_s
        self.cpu_slots = cpu_slots
        # A runner waiting for a CPU slot sends nothing: it must not look stalled.
        self.cpu_wait_s = min(cpu_wait_s, stall_timeout_s / 2)
        self._runners: OrderedDict[str, RunnerProcess] = OrderedDict()
        self._lock = threading.Lock()
        self._socket_dir: str | None = None
        self._started = 0

    @property
    def loaded(self) -> list[str]:
        """Models with a live runner, least recently used first."""
        with self._lock:
            return [name for name, r in self._runners.items() if r.alive]

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes()

    def _used_bytes(self) -> int:
        return sum(r.ram_bytes for r in self._runners.values())

    def pid(self, name: str) -> int | None:
        """The process id of ``name``'s runner, if one is running (for operators and tests)."""
        with self._lock:
            runner = self._runners.get(name)
            return runner.pid if runner is not None and runner.alive else None

    def get(
        self, name: str, path: str, ram_bytes: int, context_length: int | None
    ) -> RunnerProcess:
        """The live runner for ``name``, started (after evicting others) if there is none."""
        with self._lock:
            runner = self._runners.get(name)
            if runner is not None and runner.alive:
                self._runners.move_to_end(name)
                return runner
            if runner is not None:  # crashed earlier: its call already failed, start anew
                del self._runners[name]
                runner.stop()
            if ram_bytes > self.ram_budget_bytes:
                raise ModelTooLarge(
                    f"model {name!r} needs ~{ram_bytes // 2**20} MB but the RAM budget is "
                    f"{self.ram_budget_bytes // 2**20} MB (MODELYARD_RAM_BUDGET_MB)"
                )
            while self._runners and self._used_bytes() + ram_bytes > self.ram_budget_bytes:
                evicted, old = self._runners.popitem(last=False)
                log.info("evicting %s to stay under the RAM budget", evicted)
                with old.lock:  # a generation in flight finishes first
                    old.stop()
            runner = RunnerProcess(name, ram_bytes, self._config(path, ram_bytes, context_length),
                                   self._socket_path())
            self._runners[name] = runner
            return runner

    def _config(self, path: str, ram_bytes: int, context_length: int | None) -> RunnerConfig:
        limit = 0
        if self.memory_headroom_bytes > 0:
            try:
                size = os.path.getsize(path)
            except OSError:
                size = 0
            limit = max(ram_bytes, size) + self.memory_headroom_bytes
        return RunnerConfig(
            model_path=path,
            n_ctx=min(self.n_ctx, context_length or self.n_ctx),
            n_threads=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
            address_space_bytes=limit,
            stall_timeout_s=self.stall_timeout_s,
            cpu_slots=self.cpu_slots,
            cpu_wait_s=self.cpu_wait_s,
        )

    def _socket_path(self) -> str:
        if self._socket_dir is None:  # private (0700): only this user can reach the runners
            self._socket_dir = tempfile.mkdtemp(prefix="modelyard-runners-")
        self._started += 1
        return os.path.join(self._socket_dir, f"r{self._started}.sock")

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.stop()
            self._runners.clear()
            if self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
                self._socket_dir = None


def _recv(conn: Connection, runner: RunnerProcess) -> Reply:
    try:
        if not conn.poll(runner.config.stall_timeout_s):
            raise runner.stalled()
        return cast(Reply, conn.recv())
    except (EOFError, OSError) as exc:
        raise runner.crashed() from exc


def _count(runner: RunnerProcess, text: str) -> int:
    conn = runner.connect()
    try:
        conn.send(Tokenize(text))
        reply = _recv(conn, runner)
    finally:
        conn.close()
    if not isinstance(reply, Counted):
        raise BackendError(f"model {runner.name!r} could not count tokens")
    return reply.tokens


def _failure(name: str, reply: Failed) -> Exception:
    if reply.kind == "capability_missing":
        return CapabilityMissing(f"model {name!r}: {reply.message}")
    if reply.kind == "invalid_input":
        return InvalidInput(f"model {name!r} cannot take this request: {reply.message}")
    return BackendError(f"model {name!r} failed: {reply.message}")


class LlamaCppRuntime:
    """One catalogue entry served by its runner in the shared pool."""

    def __init__(
        self,
        pool: LlamaPool,
        *,
        name: str,
        path: str,
        ram_bytes: int,
        context_length: int | None,
        chat: bool,
    ) -> None:
        self.pool = pool
        self.name = name
        self.path = path
        self.ram_bytes = ram_bytes
        self.context_length = context_length
        self.chat = chat

    def _runner(self) -> RunnerProcess:
        return self.pool.get(self.name, self.path, self.ram_bytes, self.context_length)

    def generate(self, request: GenerationRequest) -> Completion:
        return drain(self.stream(request), "llama.cpp")

    def count_tokens(self, text: str) -> int:
        return _count(self._runner(), text)

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        """Pieces as the runner samples them, then the measured completion.

        Closing this iterator early (a client that went away) closes the connection, which the
        runner notices at its next token and stops generating.
        """
        if request.messages is not None and not self.chat:
            raise CapabilityMissing(
                f"model {self.name!r} is completion-only; send a prompt, not chat messages"
            )
        message = Generate(
            messages=request.messages, prompt=request.prompt, max_tokens=request.max_tokens,
            temperature=request.temperature, stop=list(request.stop or []),
            json_schema=request.json_schema, logprobs=request.logprobs,
            tools=request.tools, tool_choice=request.tool_choice, tool_name=request.tool_name,
        )
        runner = self._runner()
        parts: list[str] = []
        calls: list[ToolCallDelta] = []
        with runner.lock:
            watch = Stopwatch()
            conn = runner.connect()
            try:
                conn.send(message)
                sent_s = time.perf_counter() - watch.start
                while True:
                    reply = _recv(conn, runner)
                    if isinstance(reply, Pieces):
                        parts.append(reply.text)
                        yield StreamEvent(text=reply.text)
                    elif isinstance(reply, ToolCallDelta):
                        calls.append(reply)
                        yield StreamEvent(tool_call=reply)
                    elif isinstance(reply, Done):
                        break
                    elif isinstance(reply, Failed):
                        raise _failure(self.name, reply)
                    else:
                        raise BackendError(f"model {self.name!r}: unexpected runner reply")
            finally:
                conn.close()
            # The model's own time: a wait for a CPU slot used no machine time of this call,
            # so it is neither priced nor counted against the model's measured speed.
            queued = max(0.0, min(reply.queued_s, reply.ttft_s))
            latency = time.perf_counter() - watch.start - queued
        yield StreamEvent(
            completion=Completion(
                text="".join(parts),
                finish_reason=reply.finish_reason,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_s=latency,
                ttft_s=min(sent_s + reply.ttft_s - queued, latency),
                queued_s=queued,
                model=self.name,
                token_logprobs=reply.token_logprobs,
                token_texts=reply.token_texts,
                tool_calls=join_tool_calls(calls) or None,
            )
        )
