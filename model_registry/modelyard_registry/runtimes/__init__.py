"""Backends behind one interface; ``RuntimeFactory`` turns a catalogue entry into a runtime."""

from __future__ import annotations

import os

from ..catalog import Backend, Capability, ModelEntry
from ..errors import InvalidInput
from ..settings import Settings
from .base import Completion, GenerationRequest, Runtime, StreamEvent, drain
from .llama_cpp import LlamaCppRuntime, LlamaPool
from .openai_compat import OpenAICompatRuntime, shared_client

__all__ = [
    "Completion",
    "GenerationRequest",
    "LlamaCppRuntime",
    "LlamaPool",
    "OpenAICompatRuntime",
    "Runtime",
    "RuntimeFactory",
    "StreamEvent",
    "drain",
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
        )
        self.http = shared_client()  # one keep-alive pool for every remote model

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
        return OpenAICompatRuntime(
            name=entry.name,
            base_url=entry.base_url,
            served_name=entry.served_name,
            api_key=os.environ.get(entry.api_key_env) if entry.api_key_env else None,
            connect_timeout_s=self.settings.connect_timeout_s,
            read_timeout_s=self.settings.read_timeout_s,
            max_retries=self.settings.max_retries,
            response_format=entry.response_format,
            client=self.http,
        )

    def loaded(self) -> frozenset[str]:
        """Names of the local models in memory now: asking their tokenizer costs no load."""
        return frozenset(self.pool.loaded)

    def close(self) -> None:
        """Stop every runner process this factory started."""
        self.pool.close()
        self.http.close()
