"""The llama.cpp runtime on the real SmolLM2 and Gemma GGUF files, each in its runner process."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import psutil
import pytest
from llama_cpp import Llama
from modelyard_registry.errors import (
    BackendCrashed,
    BackendError,
    BackendTimeout,
    CapabilityMissing,
    ModelTooLarge,
)
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.runtimes import GenerationRequest, LlamaCppRuntime, LlamaPool
from modelyard_registry.runtimes.llama_cpp import REPEAT_PENALTY

MB = 2**20
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number"},
        "priority": {"enum": ["low", "normal", "high"]},
        "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["order_id", "amount", "priority", "items"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def pool() -> Iterator[LlamaPool]:
    p = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=2048)
    yield p
    p.close()


def smol(pool: LlamaPool, path: Path) -> LlamaCppRuntime:
    info = read_gguf(path)
    return LlamaCppRuntime(
        pool, name="smollm2", path=str(path), ram_bytes=info.ram_estimate(2048),
        context_length=info.context_length, chat=True,
    )


def test_chat_generation_reports_exact_usage(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    done = runtime.generate(GenerationRequest(messages=messages, max_tokens=40))
    assert done.text.strip()
    assert done.model == "smollm2"
    assert 0 < done.completion_tokens <= 40
    assert done.finish_reason in ("stop", "length")
    assert 0 < done.ttft_s <= done.latency_s
    assert done.tokens_per_s > 0

    # llama-cpp-python's own non-streaming usage for the same call, in this process, is the
    # reference.
    llama = Llama(model_path=str(smollm2_path), n_ctx=2048, n_threads=2, verbose=False)
    raw = llama.create_chat_completion(messages=messages, max_tokens=40, temperature=0.0,
                                       repeat_penalty=REPEAT_PENALTY)
    assert raw["choices"][0]["message"]["content"] == done.text
    assert raw["usage"]["prompt_tokens"] == done.prompt_tokens
    assert raw["usage"]["completion_tokens"] == done.completion_tokens
    assert runtime.count_tokens("Name three colours.") == len(
        llama.tokenize(b"Name three colours.", add_bos=False, special=True))
    llama.close()


def test_logprobs_cover_every_completion_token(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    request = GenerationRequest(prompt="The capital of France is", max_tokens=6, logprobs=True)
    done = runtime.generate(request)
    assert done.token_logprobs is not None
    assert len(done.token_logprobs) == done.completion_tokens
    assert all(lp <= 0 for lp in done.token_logprobs)
    assert done.token_texts is not None and "".join(done.token_texts) == done.text
    assert runtime.generate(GenerationRequest(prompt="Hi", max_tokens=2)).token_logprobs is None


def test_length_limit_counts_every_token(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    done = runtime.generate(GenerationRequest(prompt="Once upon a time", max_tokens=12))
    assert done.finish_reason == "length"
    assert done.completion_tokens == 12


def test_json_schema_output_parses_and_validates(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    text = "Order ORD-7781 for $42.50: two mugs and a teapot. The customer says it is urgent."
    done = runtime.generate(GenerationRequest(
        messages=[{"role": "user", "content": f"Extract the order as JSON.\n\n{text}"}],
        max_tokens=120, json_schema=ORDER_SCHEMA,
    ))
    data = json.loads(done.text)
    jsonschema.validate(data, ORDER_SCHEMA)


def test_stream_pieces_add_up_to_the_completion(pool: LlamaPool, smollm2_path: Path) -> None:
    runtime = smol(pool, smollm2_path)
    request = GenerationRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=20)
    pieces, final = [], None
    for event in runtime.stream(request):
        if event.completion is None:
            pieces.append(event.text)
        else:
            final = event.completion
    assert final is not None and pieces
    assert "".join(pieces) == final.text


def test_completion_only_model_refuses_chat(pool: LlamaPool, gemma_path: Path) -> None:
    runtime = LlamaCppRuntime(
        pool, name="gemma", path=str(gemma_path), ram_bytes=0, context_length=2048, chat=False
    )
    with pytest.raises(CapabilityMissing, match="completion-only"):
        runtime.generate(GenerationRequest(messages=[{"role": "user", "content": "hi"}]))
    done = runtime.generate(GenerationRequest(prompt="The capital of France is", max_tokens=8))
    assert done.completion_tokens > 0


def test_pool_evicts_least_recently_used_under_budget(
    smollm2_path: Path, gemma_path: Path
) -> None:
    smol_ram = read_gguf(smollm2_path).ram_estimate(512)
    gemma_ram = read_gguf(gemma_path).ram_estimate(512)
    budget = max(smol_ram, gemma_ram) + 10 * MB  # room for one model, not both
    assert budget < smol_ram + gemma_ram
    pool = LlamaPool(ram_budget_bytes=budget, n_threads=2, n_gpu_layers=0, n_ctx=512)
    try:
        a = LlamaCppRuntime(pool, name="smol", path=str(smollm2_path), ram_bytes=smol_ram,
                            context_length=8192, chat=True)
        b = LlamaCppRuntime(pool, name="gemma", path=str(gemma_path), ram_bytes=gemma_ram,
                            context_length=32768, chat=False)
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["smol"]
        first = pool.pid("smol")
        assert first is not None
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.pid("smol") == first  # loaded once, reused
        b.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["gemma"]
        assert pool.used_bytes <= budget
        assert not psutil.pid_exists(first)  # evicting stopped the runner: its memory is back
        a.generate(GenerationRequest(prompt="Hello", max_tokens=4))
        assert pool.loaded == ["smol"]
        assert pool.pid("smol") not in (None, first)
    finally:
        pool.close()


def test_model_larger_than_budget_is_refused(smollm2_path: Path) -> None:
    pool = LlamaPool(ram_budget_bytes=10 * MB, n_threads=2, n_gpu_layers=0, n_ctx=512)
    runtime = LlamaCppRuntime(pool, name="smol", path=str(smollm2_path), ram_bytes=200 * MB,
                              context_length=8192, chat=True)
    with pytest.raises(ModelTooLarge, match="RAM budget"):
        runtime.generate(GenerationRequest(prompt="Hello", max_tokens=4))
    assert pool.loaded == []


def test_runner_crash_fails_only_that_call_and_restarts(
    pool: LlamaPool, smollm2_path: Path
) -> None:
    runtime = smol(pool, smollm2_path)
    events = runtime.stream(GenerationRequest(prompt="Once upon a time", max_tokens=400))
    assert next(events).text  # mid-stream: the runner is sampling
    pid = pool.pid("smollm2")
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGSEGV)
    with pytest.raises(BackendCrashed) as caught:
        for _ in events:
            pass
    err = caught.value
    assert (err.error_type, err.http_status) == ("backend_crashed", 502)
    assert "'smollm2'" in err.message and "SIGSEGV" in err.message
    assert str(smollm2_path.parent) not in err.message
    assert "smollm2" not in pool.loaded

    done = runtime.generate(GenerationRequest(prompt="Hello", max_tokens=4))
    assert done.completion_tokens == 4
    assert pool.pid("smollm2") not in (None, pid)


def test_closing_a_stream_cancels_it_and_frees_the_model(
    pool: LlamaPool, smollm2_path: Path
) -> None:
    runtime = smol(pool, smollm2_path)
    events = runtime.stream(GenerationRequest(prompt="Once upon a time", max_tokens=1500))
    assert next(events).text
    runner = pool.get("smollm2", str(smollm2_path), 0, None)
    assert not runner.lock.acquire(blocking=False)  # held while the stream is open
    events.close()  # what a disconnected client's response does to it
    assert runner.lock.acquire(blocking=False)
    runner.lock.release()
    # The runner stopped sampling: the next call is answered by the same, idle runner.
    done = runtime.generate(GenerationRequest(prompt="Hello", max_tokens=3))
    assert done.completion_tokens == 3
    assert pool.pid("smollm2") == runner.pid


def test_a_hung_runner_is_killed_and_replaced(smollm2_path: Path) -> None:
    pool = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=512,
                     stall_timeout_s=10)
    try:
        runtime = smol(pool, smollm2_path)
        events = runtime.stream(GenerationRequest(prompt="Once upon a time", max_tokens=300))
        assert next(events).text
        pid = pool.pid("smollm2")
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # what a native deadlock looks like from outside
        with pytest.raises(BackendTimeout, match="'smollm2'"):
            for _ in events:
                pass
        assert not psutil.pid_exists(pid)
        assert runtime.generate(GenerationRequest(prompt="Hi", max_tokens=2)).completion_tokens
    finally:
        pool.close()


def test_runner_address_space_is_limited(smollm2_path: Path) -> None:
    headroom = 1024 * MB
    pool = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=512,
                     memory_headroom_bytes=headroom)
    try:
        runtime = smol(pool, smollm2_path)
        runtime.generate(GenerationRequest(prompt="Hello", max_tokens=2))
        pid = pool.pid("smollm2")
        assert pid is not None
        soft, hard = psutil.Process(pid).rlimit(psutil.RLIMIT_AS)
        assert soft == hard == runtime.ram_bytes + headroom
    finally:
        pool.close()
    starved = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=512,
                        memory_headroom_bytes=16 * MB)
    try:  # too little address space to load: that runner fails, this process goes on
        with pytest.raises(BackendError, match="smollm2"):
            smol(starved, smollm2_path).generate(GenerationRequest(prompt="Hi", max_tokens=2))
        assert starved.loaded == []
    finally:
        starved.close()


def test_runner_exits_when_its_owner_is_killed(smollm2_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from modelyard_registry.runtimes import LlamaPool, LlamaCppRuntime, GenerationRequest\n"
        "pool = LlamaPool(ram_budget_bytes=2**31, n_threads=1, n_gpu_layers=0, n_ctx=512)\n"
        "rt = LlamaCppRuntime(pool, name='s', path=sys.argv[1], ram_bytes=0,\n"
        "                     context_length=None, chat=True)\n"
        "rt.generate(GenerationRequest(prompt='Hi', max_tokens=1))\n"
        "print(pool.pid('s'), flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, str(script), str(smollm2_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        runner_pid = int(owner.stdout.readline())
        assert psutil.pid_exists(runner_pid)
    finally:
        owner.kill()  # SIGKILL: no cleanup code runs in the owner
        owner.wait()
    deadline = time.monotonic() + 30
    while _running(runner_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(runner_pid)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_runner_starts_when_the_owner_holds_over_1024_descriptors(smollm2_path: Path) -> None:
    """A busy API or worker holds many sockets; the runner's pipes then get numbers past 1024,
    which select() refuses ("filedescriptor out of range").  The runner must start anyway."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.fail(f"this machine allows only {hard} open files; the test needs 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    pool = LlamaPool(ram_budget_bytes=2048 * MB, n_threads=2, n_gpu_layers=0, n_ctx=2048)
    try:
        assert max(held) >= 1024
        out = smol(pool, smollm2_path).generate(
            GenerationRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        )
        assert out.completion_tokens >= 1
    finally:
        pool.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
