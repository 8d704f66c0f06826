"""A llama.cpp crash fails one request, not the API: the live API against its runner processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import httpx
import psutil
import pytest
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call
from modelyard_registry.settings import Settings
from sqlmodel import select

from .conftest import Stack, StackFactory

pytestmark = pytest.mark.slow

REPRO_SCHEMA = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5000}}}
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def runner_pid(stack: Stack) -> int:
    """The API's llama.cpp runner: a child process running ``llama_runner``."""
    assert stack.api is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(stack.api.pid).children(recursive=True):
            try:
                if any("llama_runner" in part for part in child.cmdline()):
                    return int(child.pid)
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("the API started no llama.cpp runner")


def wait_busy(pid: int) -> None:
    """Until the runner has burnt CPU since now: it is generating."""
    proc = psutil.Process(pid)
    start = sum(proc.cpu_times()[:2])
    deadline = time.monotonic() + 120
    while sum(proc.cpu_times()[:2]) - start < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_runner_crash_fails_one_request_and_the_api_lives_on(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0)
    assert stack.api is not None
    api_pid = stack.api.pid
    with stack.client() as http:
        http.timeout = httpx.Timeout(300)
        refused = http.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": REPRO_SCHEMA}},
        })
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["type"] == "invalid_input"
        assert error["field"] == "response_format.json_schema.schema.properties.a.maxLength"
        job = http.post("/v1/products/extract/jobs",
                        json={"input": {"text": "Order 7 for $4.", "schema": REPRO_SCHEMA}})
        assert job.status_code == 422  # refused at submission: no job, no worker at risk
        assert job.json()["error"]["field"] == "input.schema"
        assert "schema.properties.a.maxLength" in job.json()["error"]["message"]
        assert http.get("/v1/jobs").json()["data"] == []

        # SIGSEGV in the middle of a streamed answer: the stream ends with the error.
        events: list[dict[str, Any]] = []
        with http.stream("POST", "/v1/chat/completions", json={
            "model": "smollm2-135m", "messages": STORY, "max_tokens": 400, "stream": True,
        }) as response:
            assert response.status_code == 200
            killed = None
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                events.append(json.loads(line[len("data: "):]))
                content = events[-1].get("choices", [{}])[0].get("delta", {}).get("content")
                if content and killed is None:
                    killed = runner_pid(stack)
                    os.kill(killed, signal.SIGSEGV)
        assert killed is not None
        streamed = events[-2]["id"]
        delivered = sum(1 for e in events if e.get("choices", [{}])[0].get("delta", {})
                        .get("content"))
        crash = events[-1]["error"]
        assert crash["type"] == "backend_crashed"
        assert "smollm2-135m" in crash["message"] and "SIGSEGV" in crash["message"]
        assert "/" not in crash["message"]

        # The next request restarts the runner and succeeds, in the same API process.
        answer = http.post("/v1/chat/completions", json={
            "model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
        })
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["completion_tokens"] == 4
        second = runner_pid(stack)
        assert second != killed

        # Without streaming, the crash is a 502 with the same error type.
        result: dict[str, httpx.Response] = {}
        call = threading.Thread(target=lambda: result.update(r=http.post(
            "/v1/chat/completions",
            json={"model": "smollm2-135m", "messages": STORY, "max_tokens": 400})))
        call.start()
        wait_busy(second)
        os.kill(second, signal.SIGSEGV)
        call.join(300)
        assert result["r"].status_code == 502
        assert result["r"].json()["error"]["type"] == "backend_crashed"

    # Both crashed calls are billed for what they used (the machine time a local model held),
    # as error rows: the stream with the tokens it delivered.
    with session_scope(Settings(home=stack.home).effective_database_url) as session:
        crashed = session.exec(select(Call).where(Call.outcome == "error")).all()
    assert len(crashed) == 2, [(c.request_id, c.reason) for c in crashed]
    assert all("BackendCrashed" in c.reason and c.cost_usd > 0 for c in crashed), crashed
    stream_row = next(c for c in crashed if c.request_id == streamed)
    assert stream_row.completion_tokens >= delivered > 0

    assert stack.api.poll() is None and stack.api.pid == api_pid
    with stack.client() as http:
        assert http.get("/healthz").status_code == 200


def test_a_client_that_goes_away_stops_the_generation(stack_factory: StackFactory) -> None:
    stack = stack_factory(workers=0)
    with stack.client() as http:
        http.timeout = httpx.Timeout(300)
        with http.stream("POST", "/v1/chat/completions", json={
            "model": "smollm2-135m", "messages": STORY, "max_tokens": 1500, "stream": True,
        }) as response:
            for line in response.iter_lines():
                if '"content": "' in line and '"content": ""' not in line:
                    break  # one piece of text, then hang up mid-answer
        pid = runner_pid(stack)
        runner = psutil.Process(pid)
        # 1,500 tokens would keep the runner busy for minutes; a cancelled call goes idle.
        deadline = time.monotonic() + 120
        idle = False
        while not idle and time.monotonic() < deadline:
            before = sum(runner.cpu_times()[:2])
            time.sleep(1.0)
            idle = sum(runner.cpu_times()[:2]) - before < 0.05
        assert idle
        answer = http.post("/v1/chat/completions", json={
            "model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 3,
        })
        assert answer.status_code == 200
        assert runner_pid(stack) == pid
