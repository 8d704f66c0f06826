"""Replicas: one catalogue entry, two real llama_cpp.server processes on loopback.

Traffic splits between them; with one stopped, every request goes to the other and none fails;
the stopped one is probed back once it answers again.  `yard models show` and `/metrics` report
health and counts per replica.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_http

from .conftest import Stack, StackFactory, yard

BODY = {"model": "smol", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


class Server:
    """A llama_cpp.server on a fixed port, so a stopped one can come back at the same URL."""

    def __init__(self, model: Path) -> None:
        self.model, self.port = model, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
             "--n_ctx", "512", "--n_threads", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.url}/models", 90, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


@pytest.fixture
def servers(smollm2_path: Path) -> Iterator[tuple[Server, Server]]:
    pair = (Server(smollm2_path), Server(smollm2_path))
    try:
        for server in pair:
            server.start()
        yield pair
    finally:
        for server in pair:
            server.stop()


def replica_metrics(stack: Stack) -> dict[tuple[str, str], float]:
    """(metric, endpoint) -> value for the replica series of /metrics."""
    with stack.client() as http:
        text = http.get("/metrics").text
    found = {}
    for m in re.finditer(r'^(modelyard_replica_\w+)\{endpoint="([^"]+)",model="smol"\} (\S+)$',
                         text, re.M):
        found[(m.group(1), m.group(2))] = float(m.group(3))
    return found


def chat_all(stack: Stack, n: int, clients: int) -> list[int]:
    def one(_: int) -> int:
        with stack.client() as http:
            return http.post("/v1/chat/completions", json=BODY).status_code

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(n)))


def test_requests_spread_over_replicas_and_survive_one_going_down(
    stack_factory: StackFactory, servers: tuple[Server, Server]
) -> None:
    a, b = servers
    stack = stack_factory(workers=0, with_model=False,
                          env={"MODELYARD_RATE_LIMIT_PER_MINUTE": "0"})
    yard(stack.env, "models", "add", "smol", "--endpoint", a.url, "--endpoint", b.url,
         "--served-name", "smollm2", "--response-format", "json_object")
    shown = json.loads(yard(stack.env, "models", "show", "smol", "--json"))
    assert shown["endpoints"] == [a.url, b.url]
    assert [r["healthy"] for r in shown["replicas"]] == [True, True]

    assert chat_all(stack, 16, 4) == [200] * 16
    served = replica_metrics(stack)
    sent_a = served[("modelyard_replica_requests_total", a.url)]
    sent_b = served[("modelyard_replica_requests_total", b.url)]
    assert sent_a > 0 and sent_b > 0 and sent_a + sent_b == 16  # the traffic splits

    a.stop()
    assert chat_all(stack, 12, 2) == [200] * 12  # no failed request
    after = replica_metrics(stack)
    assert after[("modelyard_replica_healthy", a.url)] == 0.0
    assert after[("modelyard_replica_requests_total", a.url)] <= sent_a + 1  # found it down once
    assert after[("modelyard_replica_requests_total", b.url)] >= sent_b + 12
    time.sleep(2)  # one report interval: the API publishes its counts for `yard models show`
    shown = json.loads(yard(stack.env, "models", "show", "smol", "--json"))
    assert [r["healthy"] for r in shown["replicas"]] == [False, True]
    assert [r["in_flight"] for r in shown["replicas"]] == [0, 0]

    a.start()  # back at the same URL: probed back, it takes traffic again
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert chat_all(stack, 2, 2) == [200, 200]
        now = replica_metrics(stack)
        if now[("modelyard_replica_healthy", a.url)] == 1.0 and \
                now[("modelyard_replica_requests_total", a.url)] > after[
                    ("modelyard_replica_requests_total", a.url)]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"replica {a.url} was not probed back: {replica_metrics(stack)}")
    with httpx.Client(timeout=5) as http:
        assert http.get(f"{a.url}/models").status_code == 200
