"""Local processes a benchmark talks to: a free port, and a real OpenAI-compatible server.

llama_cpp.server speaks the same API as vLLM, so the "remote" path is measured over real HTTP
on 127.0.0.1 (as tests/conftest.py's ``openai_server`` fixture does).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, alias: str, threads: int = 2,
                 timeout_s: float = 90) -> tuple[subprocess.Popen[bytes], str]:
    """Start llama_cpp.server serving ``model`` as ``alias``; returns (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--n_threads", str(threads)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    proc.wait(10)
    raise TimeoutError(f"llama_cpp.server did not answer within {timeout_s:.0f} s")
