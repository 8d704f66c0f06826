"""Local GGUF models on llama.cpp (llama-cpp-python).

Loading a model costs seconds and hundreds of MB, so loaded models live in a pool: load once, reuse,
evict the least recently used to stay under the RAM budget.  A llama.cpp context is not
thread-safe, so each loaded model has its own lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendError, CapabilityMissing, ModelTooLarge
from .base import Completion, GenerationRequest, Stopwatch, StreamEvent, drain

log = logging.getLogger(__name__)

# llama.cpp's server (and llama_cpp.server, our stand-in for vLLM) penalise repeats by 1.1;
# llama-cpp-python's in-process default is 1.0, with which small models loop inside JSON strings
# until max_tokens.  The same weights should behave the same local or served.
REPEAT_PENALTY = 1.1

def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())

@dataclass
class LoadedModel:
    name: str
    llama: Any
    ram_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    formatter: Any = None

    def __post_init__(self) -> None:
        """Chat prompts use the GGUF's own Jinja template, as llama-cpp-python's handler does."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llama.metadata.get("tokenizer.chat_template")
        if template:
            vocab = self.llama._model
            eos, bos = self.llama.token_eos(), self.llama.token_bos()
            self.formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=vocab.token_get_text(eos) if eos != -1 else "",
                bos_token=vocab.token_get_text(bos) if bos != -1 else "",
            )

class LlamaPool:
    """Loaded models keyed by catalogue name, LRU-evicted under ``ram_budget_bytes``."""

    def __init__(
        self, *, ram_budget_bytes: int, n_threads: int, n_gpu_layers: int, n_ctx: int
    ) -> None:
        self.ram_budget_bytes = ram_budget_bytes
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.n_ctx = n_ctx
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(m.ram_bytes for m in self._models.values())

    def get(self, name: str, path: str, ram_bytes: int, context_length: int | None) -> LoadedModel:
        with self._lock:
            model = self._models.get(name)
            if model is not None:
                self._models.move_to_end(name)
                return model
            if ram_bytes > self.ram_budget_bytes:
                raise ModelTooLarge(
                    f"model {name!r} needs ~{ram_bytes // 2**20} MB but the RAM budget is "
                    f"{self.ram_budget_bytes // 2**20} MB (MODELYARD_RAM_BUDGET_MB)"
                )
            while self._models and self.used_bytes_unlocked + ram_bytes > self.ram_budget_bytes:
                evicted, old = self._models.popitem(last=False)
                log.info("evicting %s to stay under the RAM budget", evicted)
                with old.lock:  # wait for an in-flight call before freeing its context
                    old.llama.close()
            model = LoadedModel(name, self._load(path, context_length), ram_bytes)
            self._models[name] = model
            return model

    @property
    def used_bytes_unlocked(self) -> int:
        return sum(m.ram_bytes for m in self._models.values())

    def _load(self, path: str, context_length: int | None) -> Any:
        from llama_cpp import Llama

        n_ctx = min(self.n_ctx, context_length or self.n_ctx)
        try:
            return Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers if gpu_offload_supported() else 0,
                verbose=False,
            )
        except Exception as exc:
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for model in self._models.values():
                with model.lock:
                    model.llama.close()
            self._models.clear()

def _grammar(schema: dict[str, Any]) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)

class _TokenCounter:
    """Exact usage for streams, which llama-cpp-python does not report.

    llama.cpp calls stopping criteria once per sampled token with the ids evaluated so far, so
    the shortest slice is the prompt and the longest gives the number of sampled tokens.  A
    sampled end-of-generation token is not part of the completion (OpenAI semantics).
    """

    def __init__(self) -> None:
        self.first_len: int | None = None
        self.last_len = 0
        self.watch: Stopwatch | None = None

    def __call__(self, input_ids: Any, _logits: Any) -> bool:
        n = len(input_ids)
        if self.first_len is None:
            self.first_len = n
            if self.watch is not None:
                self.watch.mark_token()
        self.last_len = max(self.last_len, n)
        return False

    def usage(self, finish: str | None) -> tuple[int, int]:
        if self.first_len is None:
            return 0, 0
        sampled = self.last_len - self.first_len + 1
        return self.first_len, sampled - 1 if finish == "stop" else sampled

class LlamaCppRuntime:
    """One catalogue entry served from the shared pool."""

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

    def generate(self, request: GenerationRequest) -> Completion:
        return drain(self.stream(request), "llama.cpp")

    def count_tokens(self, text: str) -> int:
        model = self.pool.get(self.name, self.path, self.ram_bytes, self.context_length)
        with model.lock:
            return len(model.llama.tokenize(text.encode(), add_bos=False, special=True))

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        if request.messages is not None and not self.chat:
            raise CapabilityMissing(
                f"model {self.name!r} is completion-only; send a prompt, not chat messages"
            )
        from llama_cpp import StoppingCriteriaList

        model = self.pool.get(self.name, self.path, self.ram_bytes, self.context_length)
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repeat_penalty": REPEAT_PENALTY,
            "stop": request.stop or [],
            "stream": True,
        }
        if request.json_schema is not None:
            kwargs["grammar"] = _grammar(request.json_schema)
        counter = _TokenCounter()
        kwargs["stopping_criteria"] = StoppingCriteriaList([counter])
        with model.lock:
            watch = Stopwatch()
            counter.watch = watch
            llama = model.llama
            prompt: Any = request.prompt
            if request.messages is not None:
                if model.formatter is None:
                    raise CapabilityMissing(f"model {self.name!r} has no chat template")
                formatted = model.formatter(messages=request.messages)
                prompt = llama.tokenize(
                    formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
                )
                extra = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
                kwargs["stop"] = kwargs["stop"] + [s for s in extra if s]
            chunks = llama.create_completion(prompt=prompt, **kwargs)
            parts: list[str] = []
            finish: str | None = None
            for chunk in chunks:
                choice = chunk["choices"][0]
                piece = choice["text"]
                finish = choice.get("finish_reason") or finish
                if piece:
                    parts.append(piece)
                    yield StreamEvent(text=piece)
            latency, ttft = watch.finish()
        text = "".join(parts)
        n_prompt, n_out = counter.usage(finish)
        yield StreamEvent(
            completion=Completion(
                text=text,
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=n_out,
                latency_s=latency,
                ttft_s=ttft,
                model=self.name,
            )
        )
