"""Start a real Modelyard stack (API + worker processes, real Redis) for a benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from _server import free_port

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass
class BenchStack:
    home: Path
    base_url: str
    key: str
    env: dict[str, str]


def _yard(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "modelyard_platform", *args], env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout


@contextmanager
def stack(redis_url: str, *, workers: int = 1, concurrency: int = 2, model: bool = True,
          database_url: str | None = None) -> Iterator[BenchStack]:
    """API + ``workers`` worker processes on a fresh MODELYARD_HOME; Redis db flushed first."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    home = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
    env.update({"MODELYARD_HOME": str(home), "REDIS_URL": redis_url,
                "MODELYARD_WORKER_CONCURRENCY": str(concurrency),
                "MODELYARD_RATE_LIMIT_PER_MINUTE": "0",
                # throughput, not admission: the per-team queue cap would turn a burst into 429s
                "MODELYARD_TEAM_MAX_JOBS": "0"})
    if database_url:
        env["DATABASE_URL"] = database_url
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if model:
            _yard(env, "models", "pull", "smollm2-135m")
        key = _yard(env, "keys", "create", "--team", "bench", "--admin").strip()
        port = free_port()
        log = open(home / "api.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "modelyard_platform", "api", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT))
        for i in range(workers):
            wlog = open(home / f"worker{i}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "modelyard_platform", "worker", "--loglevel", "warning"],
                env=env, stdout=wlog, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a loaded machine takes minutes to import and migrate
        while True:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError(f"yard api did not come up; see {home / 'api.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield BenchStack(home=home, base_url=base, key=key, env=env)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def wait_done(base_url: str, key: str, job_ids: list[str], timeout_s: float = 600) -> float:
    """Poll until every job is terminal; returns the monotonic time it happened.

    While jobs run it asks only whether the team has any job queued or running (two one-row
    pages): listing every succeeded job each round, as it once did, made the API serialise a
    growing page of full rows every 50 ms, and that CPU came out of the system being measured.
    The bench's team runs nothing else, so "none unfinished" means "these are done"; one full
    listing then checks that every job succeeded.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        def unfinished() -> bool:
            return any(http.get("/v1/jobs", params={"status": s, "limit": 1}).json()["data"]
                       for s in ("queued", "running"))

        while unfinished():
            if time.monotonic() > deadline:
                raise TimeoutError("jobs did not finish")
            time.sleep(0.02)
        end = time.monotonic()
        pending = set(job_ids)
        cursor: str | None = None
        while pending:
            params: dict[str, str | int] = {"status": "succeeded", "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/jobs", params=params).json()
            pending -= {j["id"] for j in page["data"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
    if pending:
        raise RuntimeError(f"{len(pending)} jobs ended without succeeding")
    return end
