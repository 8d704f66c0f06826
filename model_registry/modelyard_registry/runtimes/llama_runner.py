"""One loaded GGUF model in its own process: ``python -m modelyard_registry.runtimes.llama_runner``.

llama.cpp is native code: a grammar it cannot handle, an allocation it cannot make or a bug in a
kernel ends the process it runs in.  Running each loaded model in a runner of its own (as Ollama
and LocalAI do) turns such a crash into one failed request instead of a dead API or worker.

Started by ``runner_process.RunnerProcess``.  Protocol (``runner_wire``): one connection per call
on the Unix socket given by ``--socket``.  Generations run one at a time (a llama.cpp context is
not thread-safe); token counts are served beside a running generation.  The parent holds this
process's stdin open: when it closes (the parent stopped the runner, or died, even by SIGKILL) the
runner exits, so runners never outlive their owner.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection, Listener
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama, StoppingCriteriaList
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from .cpu_slots import cpu_slot
from .grammar_sampling import CheckFirstGreedy
from .json_grammar import schema_grammar
from .runner_wire import REPEAT_PENALTY, Counted, Done, Failed, Generate, Pieces, Tokenize
from .tool_calls import (
    ToolStreamParser,
    bare_calls,
    prepare_messages,
    template_supports_tools,
    tool_grammar,
)

# Pieces sampled within this long of the last send travel together: one message per token costs
# the parent a wake-up per token, which on a small machine competes with llama.cpp's threads.
FLUSH_S = 0.004


def _lifeline() -> None:
    """Exit as soon as the parent closes our stdin (it stopped us, or it died)."""
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def _limit_address_space(limit_bytes: int) -> None:
    """A runaway allocation fails inside this runner instead of pushing the machine into swap."""
    if limit_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


class Model:
    """The loaded ``Llama`` with its chat template; ``generate`` is serialised by ``lock``."""

    def __init__(self, path: str, n_ctx: int, n_threads: int, n_gpu_layers: int, *,
                 cpu_slots: int = 0, cpu_wait_s: float = 60.0) -> None:
        offload = n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
        # A generation computing on the CPU takes one of the machine's slots (cpu_slots.py).
        self.cpu_slots = cpu_slots if offload == 0 else 0
        self.cpu_wait_s = cpu_wait_s
        self.llama = LogprobLlama(model_path=path, n_ctx=n_ctx, n_threads=n_threads,
                                   n_gpu_layers=offload, verbose=False)
        self.lock = threading.Lock()
        self.formatter: Any = None
        template = self.llama.metadata.get("tokenizer.chat_template")
        self.native_tools = template_supports_tools(template)
        if template:  # the GGUF's own Jinja template, as llama-cpp-python's handler uses it
            vocab = self.llama._model
            eos, bos = self.llama.token_eos(), self.llama.token_bos()
            self.formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=vocab.token_get_text(eos) if eos != -1 else "",
                bos_token=vocab.token_get_text(bos) if bos != -1 else "",
            )

    def count(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def generate(self, request: Generate, conn: Connection) -> None:
        arrived = time.perf_counter()
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repeat_penalty": REPEAT_PENALTY,
            "stop": list(request.stop),
            "stream": True,
        }
        tools = request.tools if request.messages is not None else None
        parser: ToolStreamParser | None = None
        if tools:
            grammar = tool_grammar(tools, request.tool_choice, request.tool_name,
                                   request.json_schema)
            kwargs["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
            parser = ToolStreamParser(
                auto=request.tool_choice == "auto" and request.tool_name is None,
                bare=bare_calls(request.tool_choice, request.tool_name, request.json_schema))
        elif request.json_schema is not None:
            kwargs["grammar"] = schema_grammar(request.json_schema)
        with self.lock:
            watch = _Watch(conn, arrived)
            kwargs["stopping_criteria"] = StoppingCriteriaList([watch])
            llama = self.llama
            prompt: Any = request.prompt
            if request.messages is not None:
                if self.formatter is None:
                    conn.send(Failed("capability_missing", "the model has no chat template"))
                    return
                messages = prepare_messages(request.messages, tools, self.native_tools)
                formatted = self.formatter(messages=messages,
                                           tools=tools if self.native_tools else None)
                prompt = llama.tokenize(
                    formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
                )
                extra = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop]
                kwargs["stop"] += [s for s in extra if s]
            llama.logprob_sink = [] if request.logprobs else None
            try:
                with cpu_slot(self.cpu_slots, self.cpu_wait_s) as queued_s:
                    finish = _stream(llama.create_completion(prompt=prompt, **kwargs), conn,
                                     watch, parser)
            finally:
                sink, llama.logprob_sink = llama.logprob_sink, None
            if watch.cancelled:
                return
            n_prompt, n_out = watch.usage(finish)
            if parser is not None and parser.complete:
                finish = "tool_calls"
            logprobs = texts = None
            if sink is not None:  # a sampled end-of-generation token is not part of the answer
                logprobs = [lp for _, lp in sink[:n_out]]
                texts = [llama.detokenize([t]).decode("utf-8", "replace") for t, _ in sink[:n_out]]
            conn.send(Done(finish, n_prompt, n_out, watch.ttft_s, logprobs, queued_s, texts))


def _stream(chunks: Any, conn: Connection, watch: _Watch,
            parser: ToolStreamParser | None) -> str | None:
    """Send the sampled text on, batched; with tools, as the parser's text or call pieces."""
    finish: str | None = None
    pending: list[str] = []
    last_send = 0.0

    def flush() -> None:
        text = "".join(pending)
        pending.clear()
        for message in parser.feed(text) if parser is not None else [Pieces(text)]:
            conn.send(message)

    for chunk in chunks:
        choice = chunk["choices"][0]
        finish = choice.get("finish_reason") or finish
        if choice["text"]:
            pending.append(choice["text"])
            now = time.perf_counter()
            if now - last_send >= FLUSH_S:
                flush()
                last_send = now
        if watch.cancelled:
            chunks.close()
            return finish
    if pending:
        flush()
    for message in parser.finish() if parser is not None else []:
        conn.send(message)
    return finish


class _Watch:
    """Stopping criteria that count tokens exactly and notice a cancelled call.

    llama.cpp calls stopping criteria once per sampled token with the ids evaluated so far, so
    the shortest slice is the prompt and the longest gives the number of sampled tokens.  A
    sampled end-of-generation token is not part of the completion (OpenAI semantics).  The
    parent cancels by closing the connection, which makes it readable: checking costs one
    ``poll`` per token.
    """

    def __init__(self, conn: Connection, arrived: float) -> None:
        self.conn = conn
        self.arrived = arrived
        self.first_len: int | None = None
        self.last_len = 0
        self.ttft_s = 0.0
        self.cancelled = False

    def __call__(self, input_ids: Any, _logits: Any) -> bool:
        n = len(input_ids)
        if self.first_len is None:
            self.first_len = n
            self.ttft_s = time.perf_counter() - self.arrived
        self.last_len = max(self.last_len, n)
        if not self.cancelled and self.conn.poll():
            self.cancelled = True
        return self.cancelled

    def usage(self, finish: str | None) -> tuple[int, int]:
        if self.first_len is None:
            return 0, 0
        sampled = self.last_len - self.first_len + 1
        return self.first_len, sampled - 1 if finish == "stop" else sampled


class LogprobLlama(Llama):  # type: ignore[misc]
    """Records each sampled token and its log-probability when ``logprob_sink`` is a list.

    llama-cpp-python only offers logprobs with ``logits_all=True``, which keeps a context-sized
    logits matrix (hundreds of MB); the logits of the position just sampled are all it takes.
    """

    logprob_sink: list[tuple[int, float]] | None = None
    check_first = True  # False: llama-cpp-python's own chain (the bench's baseline)

    def _init_sampler(self, *args: Any, **kwargs: Any) -> Any:
        """At temperature 0 a grammar checks the best token first (grammar_sampling.py).

        llama-cpp-python calls this with keyword arguments only.
        """
        grammar = kwargs.get("grammar")
        if (self.check_first and grammar is not None and kwargs.get("temp") == 0.0
                and kwargs.get("logits_processor") is None):
            return CheckFirstGreedy(
                self._model.vocab, grammar, self._n_vocab,
                penalty_last_n=self.last_n_tokens_size,
                penalty_repeat=kwargs.get("repeat_penalty", 1.0),
                penalty_freq=kwargs.get("frequency_penalty", 0.0),
                penalty_present=kwargs.get("presence_penalty", 0.0))
        return super()._init_sampler(*args, **kwargs)

    def sample(self, *args: Any, **kwargs: Any) -> int:
        token = int(super().sample(*args, **kwargs))
        idx: int | None = kwargs.get("idx")  # ``generate`` passes every argument by keyword
        if self.logprob_sink is not None:
            ridx = idx - self.n_tokens if idx is not None else -1
            logits = np.ctypeslib.as_array(self._ctx.get_logits_ith(ridx), shape=(self._n_vocab,))
            top = float(logits.max())
            lse = top + math.log(float(np.exp(logits - top).sum()))
            self.logprob_sink.append((token, float(logits[token]) - lse))
        return token


def _serve(model: Model, conn: Connection) -> None:
    try:
        request = conn.recv()
        if isinstance(request, Tokenize):
            conn.send(Counted(model.count(request.text)))
        elif isinstance(request, Generate):
            try:
                model.generate(request, conn)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except ValueError as exc:  # llama-cpp-python's word for a request it cannot take
                conn.send(Failed("invalid_input", str(exc)))
            except Exception as exc:
                conn.send(Failed("backend_error", f"{type(exc).__name__}: {exc}"))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away (cancelled): nothing to answer
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--n-ctx", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--address-space-bytes", type=int, default=0)
    parser.add_argument("--cpu-slots", type=int, default=0)
    parser.add_argument("--cpu-wait-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    threading.Thread(target=_lifeline, daemon=True).start()
    if not (args.gpu_layers != 0 and llama_cpp.llama_supports_gpu_offload()):
        _limit_address_space(args.address_space_bytes)  # GPU drivers reserve huge ranges
    try:
        model = Model(args.model, args.n_ctx, args.threads, args.gpu_layers,
                      cpu_slots=args.cpu_slots, cpu_wait_s=args.cpu_wait_s)
        listener = Listener(args.socket, family="AF_UNIX")
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        sys.exit(1)
    print(json.dumps({"ready": True}), flush=True)
    os.dup2(2, 1)  # nobody reads our stdout after the handshake: stray prints must not block
    while True:
        conn = listener.accept()
        threading.Thread(target=_serve, args=(model, conn), daemon=True).start()


if __name__ == "__main__":
    main()
