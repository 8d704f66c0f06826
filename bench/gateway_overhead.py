"""What Modelyard adds to a chat call: an instant OpenAI-compatible backend called directly vs
through ``POST /v1/chat/completions`` pinned to it, interleaved, same run.

Only the gateway's own work is timed: the backend (``_instant_backend.py``, its own process)
answers with fixed bodies at once.  The real ``yard api`` process runs on a fresh
MODELYARD_HOME (SQLite, or a fresh PostgreSQL database with ``--postgres``), the backend is a
catalogue entry, the key is a real key, the rate limiter is on (with a limit never reached).

Phases (each alternates direct and gateway so both see the same machine load):
  sequential  one client, non-streaming: added p50/p99 (gateway percentile - direct percentile)
  streaming   one client: time to the first content token, added p50/p99; API CPU per stream
  concurrent  16 clients: requests/s through Modelyard and direct, added p50/p99
After each phase: the CPU time the API processes spent per request (user + system, every
process of ``yard api``): unlike latency on a shared machine, it hardly moves with the load
other programs put on the machine, so it is the figure to compare across runs.

    .venv/bin/python bench/gateway_overhead.py [--postgres] [--workers N] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from _server import free_port

BODY = {"model": "instant", "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    headers: dict[str, str]
    model: str
    pid: int | None = None  # the API process (its workers are its children)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its children that are alive."""
    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f}"


@contextmanager
def postgres_db() -> Iterator[str]:
    import psycopg

    name = f"bench_gw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _yard(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "modelyard_platform", *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"yard {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _wait(url: str, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer within {timeout_s:.0f} s")


@contextmanager
def gateway(redis_url: str, database_url: str | None, workers: int | None
            ) -> Iterator[tuple[Target, Target, Path]]:
    """The instant backend + a real ``yard api`` with the backend registered; both targets."""
    home = Path(tempfile.mkdtemp(prefix="modelyard-gw-"))
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
    env.update({"MODELYARD_HOME": str(home), "REDIS_URL": redis_url,
                "MODELYARD_RATE_LIMIT_PER_MINUTE": "100000000",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    if database_url:
        env["DATABASE_URL"] = database_url
    procs: list[subprocess.Popen[bytes]] = []
    try:
        backend_port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "_instant_backend.py"),
             str(backend_port)]))
        backend = f"http://127.0.0.1:{backend_port}/v1"
        _wait(f"{backend}/models", procs[-1], "instant backend")
        _yard(env, "models", "add", "instant", "--endpoint", backend, "--served-name", "instant")
        key = _yard(env, "keys", "create", "--team", "bench", "--admin").strip()
        port = free_port()
        argv = [sys.executable, "-m", "modelyard_platform", "api", "--port", str(port)]
        if workers is not None:
            argv += ["--workers", str(workers)]
        log = open(home / "api.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait(f"http://127.0.0.1:{port}/healthz", procs[-1], "yard api")
        direct = Target("direct", f"{backend}/chat/completions", {}, "instant")
        through = Target("modelyard", f"http://127.0.0.1:{port}/v1/chat/completions",
                         {"Authorization": f"Bearer {key}"}, "instant", procs[-1].pid)
        yield direct, through, home
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def one(http: httpx.Client, t: Target) -> float:
    start = time.perf_counter()
    r = http.post(t.url, json=BODY, headers=t.headers)
    elapsed = time.perf_counter() - start
    if r.status_code != 200:
        raise RuntimeError(f"{t.name}: HTTP {r.status_code}: {r.text[:300]}")
    return elapsed


def first_token(http: httpx.Client, t: Target) -> float:
    start = time.perf_counter()
    ttft = None
    with http.stream("POST", t.url, json={**BODY, "stream": True}, headers=t.headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{t.name}: HTTP {r.status_code}")
        for line in r.iter_lines():
            if ttft is None and '"content":"' in line.replace(" ", "") \
                    and '"content":""' not in line.replace(" ", ""):
                ttft = time.perf_counter() - start
    if ttft is None:
        raise RuntimeError(f"{t.name}: stream carried no content")
    return ttft


def paired(label: str, direct: list[float], through: list[float]) -> None:
    d50, d99, g50, g99 = (pct(direct, 0.5), pct(direct, 0.99), pct(through, 0.5),
                          pct(through, 0.99))
    print(f"{label:11s} direct p50 {ms(d50)} p99 {ms(d99)} ms | modelyard p50 {ms(g50)} "
          f"p99 {ms(g99)} ms | added p50 {ms(g50 - d50)} p99 {ms(g99 - d99)} ms", flush=True)


async def burst(t: Target, n: int, clients: int) -> tuple[float, list[float], int]:
    """``n`` requests from ``clients`` concurrent clients: (wall seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    left = n
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        async def client() -> None:
            nonlocal left, failures
            while left > 0:
                left -= 1
                start = time.perf_counter()
                try:
                    r = await http.post(t.url, json=BODY, headers=t.headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                failures += 0 if ok else 1
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - start, latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="per target and phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per target")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--workers", type=int, default=None, help="yard api --workers N")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    with (postgres_db() if args.postgres else _none()) as database_url, \
            gateway(args.redis_url, database_url, args.workers) as (direct, through, _):
        print(f"database: {'PostgreSQL' if database_url else 'SQLite'}; api workers: "
              f"{args.workers or 'default'}; {args.requests} requests per target and phase",
              flush=True)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
              flush=True)
        with httpx.Client(timeout=60) as http:
            for _ in range(20):  # warm-up: connections, caches, imports
                one(http, direct), one(http, through)
                first_token(http, direct), first_token(http, through)
            seq: dict[str, list[float]] = {"direct": [], "modelyard": []}
            ttft: dict[str, list[float]] = {"direct": [], "modelyard": []}
            cpu = cpu_seconds(through.pid)
            for _ in range(args.requests):
                for t in (direct, through):
                    seq[t.name].append(one(http, t))
            seq_cpu = (cpu_seconds(through.pid) - cpu) / args.requests
            cpu = cpu_seconds(through.pid)
            for _ in range(args.requests // 2):
                for t in (direct, through):
                    ttft[t.name].append(first_token(http, t))
            stream_cpu = (cpu_seconds(through.pid) - cpu) / (args.requests // 2)
        paired("sequential", seq["direct"], seq["modelyard"])
        print(f"sequential: API CPU {seq_cpu * 1000:.2f} ms per request", flush=True)
        paired("stream TTFT", ttft["direct"], ttft["modelyard"])
        print(f"streaming: API CPU {stream_cpu * 1000:.2f} ms per stream", flush=True)
        conc: dict[str, list[float]] = {"direct": [], "modelyard": []}
        rates: dict[str, list[float]] = {"direct": [], "modelyard": []}
        failed = 0
        conc_cpu = 0.0
        for _ in range(args.rounds):
            for t in (direct, through):
                cpu = cpu_seconds(t.pid)
                wall, lat, bad = asyncio.run(burst(t, args.requests, args.clients))
                conc_cpu += cpu_seconds(t.pid) - cpu
                conc[t.name] += lat
                rates[t.name].append(len(lat) / wall)
                failed += bad
        paired(f"{args.clients} clients", conc["direct"], conc["modelyard"])
        print(f"{args.clients} clients: API CPU {conc_cpu * 1000 / len(conc['modelyard']):.2f} ms "
              "per request", flush=True)
        print(f"{args.clients} clients: requests/s direct {statistics.median(rates['direct']):.0f}"
              f", through modelyard {statistics.median(rates['modelyard']):.0f} (median of "
              f"{args.rounds} rounds); failed requests: {failed}", flush=True)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
              flush=True)


@contextmanager
def _none() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
