"""A real Modelyard stack per test: `yard api` and `yard worker` processes, real Redis (its own
db number, flushed), SQLite under a temp MODELYARD_HOME or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings

from tests.conftest import free_port, fresh_redis, redis_test_url, wait_http

REDIS_URL = redis_test_url(11)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# Short leases and reconcile periods so worker-death tests recover in seconds, not minutes.
FAST_RECOVERY = {
    "MODELYARD_JOB_LEASE_S": "3",
    "MODELYARD_RECONCILE_INTERVAL_S": "1",
    "MODELYARD_REQUEUE_AFTER_S": "4",
    "MODELYARD_WORKER_CONCURRENCY": "1",
    "MODELYARD_N_THREADS": "2",
}


@pytest.fixture
def redis_url() -> str:
    return fresh_redis(REDIS_URL)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"modelyard_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """The stack's database, once each way: None (its home's SQLite file) or a fresh PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


Send = Callable[[httpx.Client, int, int], httpx.Response]


def burst(base_url: str, key: str, clients: int, each: int, send: Send,
          ok: int = 200) -> tuple[list[httpx.Response], list[str]]:
    """``clients`` threads released at once, each sending ``each`` requests through ``send(http,
    client, n)``: the answers with status ``ok``, and every other outcome described (a pool wait
    shows as a 500 after 30 s or a client timeout at 20 s)."""
    answered: list[httpx.Response] = []
    failures: list[str] = []
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=20) as http:
            start.wait()
            for n in range(each):
                try:
                    r = send(http, i, n)
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                    continue
                if r.status_code == ok:
                    answered.append(r)
                else:
                    failures.append(f"{r.request.url.path} {r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answered, failures


def yard(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "modelyard_platform", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"yard {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Stack:
    """A running API + worker; ``client(key)`` talks to it as that key's team."""

    home: Path
    env: dict[str, str]
    base_url: str
    admin_key: str
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    more_apis: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60, **kwargs)

    def key(self, team: str, admin: bool = False) -> str:
        args = ["keys", "create", "--team", team] + (["--admin"] if admin else [])
        return yard(self.env, *args).strip()

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.home / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard_platform", "worker", "--loglevel", "info"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def start_api(self) -> tuple[subprocess.Popen[bytes], str]:
        """One more API process on the same database and Redis; returns it and its base URL."""
        port = free_port()
        log = open(self.home / f"api-{len(self.more_apis) + 1}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard_platform", "api", "--port", str(port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.more_apis.append(proc)
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/healthz", 60, proc)
        return proc, base_url

    def kill_workers(self) -> None:
        """SIGKILL every worker process group: what a machine loss looks like."""
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def wait_job(self, job_id: str, timeout_s: float = 240, key: str | None = None
                 ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self.client(key) as http:
            while time.monotonic() < deadline:
                job = http.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in {"succeeded", "failed", "cancelled"}:
                    return dict(job)
                time.sleep(0.3)
        logs = "\n".join((self.home / f).read_text(errors="replace")[-3000:]
                         for f in os.listdir(self.home) if f.endswith(".log"))
        raise AssertionError(f"job {job_id} did not finish in {timeout_s}s; logs:\n{logs}")

    def stop(self) -> None:
        procs = [p for p in [self.api, *self.more_apis, *self.workers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


StackFactory = Callable[..., Stack]


@pytest.fixture
def stack_factory(
    tmp_path: Path, smollm2_path: Path, redis_url: str
) -> Iterator[StackFactory]:
    """Start a stack: ``stack_factory(database_url=None, workers=1, env={...})``."""
    stacks: list[Stack] = []

    def start(database_url: str | None = None, workers: int = 1,
              env: dict[str, str] | None = None, with_model: bool = True) -> Stack:
        home = tmp_path / f"home{len(stacks)}"
        home.mkdir()
        full_env = {k: v for k, v in os.environ.items()
                    if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
        full_env.update(FAST_RECOVERY)
        full_env.update({"MODELYARD_HOME": str(home), "REDIS_URL": redis_url,
                         "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        if database_url:
            full_env["DATABASE_URL"] = database_url
        full_env.update(env or {})
        if with_model:
            settings = Settings(home=home, database_url=database_url)
            with session_scope(settings.effective_database_url) as session:
                register_gguf(session, settings, name="smollm2-135m", path=smollm2_path,
                              capabilities=["chat", "completion", "json_schema"])
        admin_key = yard(full_env, "keys", "create", "--team", "ops", "--admin").strip()
        port = free_port()
        stack = Stack(home=home, env=full_env, base_url=f"http://127.0.0.1:{port}",
                      admin_key=admin_key)
        stacks.append(stack)
        api_log = open(home / "api.log", "wb")  # noqa: SIM115
        stack.api = subprocess.Popen(
            [sys.executable, "-m", "modelyard_platform", "api", "--port", str(port)],
            env=full_env, stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_http(f"{stack.base_url}/healthz", 60, stack.api)
        for _ in range(workers):
            stack.start_worker()
        return stack

    yield start
    for stack in stacks:
        stack.stop()
