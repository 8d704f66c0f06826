"""Backends behind one interface; ``RuntimeFactory`` turns a catalogue entry into a runtime."""

from __future__ import annotations

import threading

from ..catalog import Backend, Capability, ModelEntry
from ..egress import EgressPolicy, read_secret
from ..errors import InvalidInput
from ..settings import Settings
from .base import (
    Completion,
    GenerationRequest,
    Runtime,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    drain,
    join_tool_calls,
)
from .cpu_slots import auto_slots
from .llama_cpp import LlamaCppRuntime, LlamaPool
from .openai_compat import OpenAICompatRuntime, call_pool, check_health, shared_client
from .replicas import ReplicaSet, ReplicaState

__all__ = [
    "Completion",
    "GenerationRequest",
    "LlamaCppRuntime",
    "LlamaPool",
    "OpenAICompatRuntime",
    "ReplicaSet",
    "ReplicaState",
    "Runtime",
    "RuntimeFactory",
    "StreamEvent",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "drain",
    "join_tool_calls",
]


class RuntimeFactory:
    """Owns the llama.cpp pool of a process and builds runtimes for catalogue entries."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = LlamaPool(
            ram_budget_bytes=settings.ram_budget_mb * 2**20,
            n_threads=settings.n_threads,
            n_gpu_layers=settings.n_gpu_layers,
            n_ctx=settings.n_ctx,
            memory_headroom_bytes=settings.runner_memory_headroom_mb * 2**20,
            cpu_slots=(auto_slots(settings.n_threads) if settings.local_cpu_slots is None
                       else settings.local_cpu_slots),
            cpu_wait_s=settings.local_cpu_wait_s,
        )
        self.calls = call_pool()  # one keep-alive pool for every remote model's calls
        self.http = shared_client()  # health probes and other calls off the request path
        self.egress = EgressPolicy(settings.egress_allow)
        self.replica_sets: dict[str, ReplicaSet] = {}  # per remote model: in flight, health
        self._replicas_lock = threading.Lock()
        # The remote runtime built for an entry object, reused while the cached catalogue
        # snapshot hands out that same object (building one per call showed in the chat
        # path's profile, #15); a changed entry is a new object, a changed key a new runtime.
        self._remote: dict[str, tuple[ModelEntry, str | None, OpenAICompatRuntime]] = {}

    def for_entry(self, entry: ModelEntry) -> Runtime:
        if entry.backend == Backend.llama_cpp:
            if not entry.gguf_path:
                raise InvalidInput(f"model {entry.name!r} has no GGUF path")
            return LlamaCppRuntime(
                self.pool,
                name=entry.name,
                path=entry.gguf_path,
                ram_bytes=entry.ram_bytes or entry.size_bytes or 0,
                context_length=entry.context_length,
                chat=Capability.chat in entry.capabilities,
            )
        if not entry.base_url or not entry.served_name:
            raise InvalidInput(f"model {entry.name!r} has no endpoint")
        api_key = read_secret(entry.api_key_env, self.settings.secret_env_allow)
        cached = self._remote.get(entry.name)
        if cached is not None and cached[0] is entry and cached[1] == api_key:
            return cached[2]
        runtime = OpenAICompatRuntime(
            name=entry.name,
            base_url=entry.base_url,
            served_name=entry.served_name,
            api_key=api_key,
            replicas=self._replicas(entry.name, list(entry.endpoints) or [entry.base_url],
                                    api_key),
            connect_timeout_s=self.settings.connect_timeout_s,
            read_timeout_s=self.settings.read_timeout_s,
            max_retries=self.settings.max_retries,
            response_format=entry.response_format,
            pool=self.calls,
            egress=self.egress,
        )
        self._remote[entry.name] = (entry, api_key, runtime)
        return runtime

    def _replicas(self, name: str, urls: list[str], api_key: str | None) -> ReplicaSet:
        """The process's replica set of a remote model, kept across requests.

        Its in-flight counts and health must outlive a request; it is rebuilt when the
        catalogue changes the model's endpoints.
        """
        with self._replicas_lock:
            current = self.replica_sets.get(name)
            if current is None or current.urls != urls:
                timeout = self.settings.health_timeout_s
                current = self.replica_sets[name] = ReplicaSet(
                    name, urls, lambda url: check_health(url, api_key, timeout))
            return current

    def replica_states(self) -> list[ReplicaState]:
        """Every remote endpoint this process has used: in flight, healthy, served."""
        with self._replicas_lock:
            sets = list(self.replica_sets.values())
        return [state for replicas in sets for state in replicas.states()]

    def loaded(self) -> frozenset[str]:
        """Names of the local models in memory now: asking their tokenizer costs no load."""
        return frozenset(self.pool.loaded)

    def close(self) -> None:
        """Stop every runner process this factory started."""
        self.pool.close()
        self.http.close()
