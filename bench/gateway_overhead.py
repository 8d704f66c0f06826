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

``--baseline DIR`` also starts a ``yard api`` from another checkout's source (e.g. a ``git
worktree`` of an older commit; its own fresh database) and interleaves it in every phase
(direct, baseline and modelyard, in an order that rotates), so old and new code are compared
under the same load.
``--floor`` also interleaves ``_floor_gateway.py``: uvicorn and a bare ASGI app forwarding to
the same backend through an ``aiohttp`` pool, no key, routing or database.  What it adds is the
Python HTTP hop alone on this machine; Modelyard's own work is its figure above the floor's.
``--phases`` runs some phases only (``sequential`` for the serving path's profile).

    .venv/bin/python bench/gateway_overhead.py [--postgres] [--workers N] [--requests 400]
        [--phases sequential,streaming,concurrent] [--baseline /tmp/old-checkout] [--floor]
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
from contextlib import ExitStack, contextmanager
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


SOURCE_ROOTS = ("model_registry", "platform", "agents", "web")


@contextmanager
def gateway(redis_url: str, database_url: str | None, workers: int | None,
            source: Path | None = None, name: str = "modelyard"
            ) -> Iterator[tuple[Target, Target, Path]]:
    """The instant backend + a real ``yard api`` with the backend registered; both targets.

    ``source``: run the API (and its ``yard`` commands) from that checkout's packages instead
    of the installed ones (``PYTHONPATH`` comes before the editable install's paths).
    """
    home = Path(tempfile.mkdtemp(prefix="modelyard-gw-"))
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(source / root) for root in SOURCE_ROOTS)
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
        through = Target(name, f"http://127.0.0.1:{port}/v1/chat/completions",
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


@contextmanager
def floor(direct: Target) -> Iterator[Target]:
    """``_floor_gateway.py`` in front of the same backend: the bare Python hop, no Modelyard."""
    port = free_port()
    backend = direct.url.removesuffix("/chat/completions")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_floor_gateway.py"),
                             str(port), backend])
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc, "floor gateway")
        yield Target("floor", f"http://127.0.0.1:{port}/v1/chat/completions", {}, "instant",
                     proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


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


def paired(label: str, direct: list[float], through: list[float], name: str = "modelyard"
           ) -> None:
    d50, d99, g50, g99 = (pct(direct, 0.5), pct(direct, 0.99), pct(through, 0.5),
                          pct(through, 0.99))
    print(f"{label:11s} direct p50 {ms(d50)} p99 {ms(d99)} ms | {name} p50 {ms(g50)} "
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


PHASES = ("sequential", "streaming", "concurrent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="per target and phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per target")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--workers", type=int, default=None, help="yard api --workers N")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated, of {', '.join(PHASES)}")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="also run a checkout's code (its own database), interleaved")
    parser.add_argument("--floor", action="store_true",
                        help="also run _floor_gateway.py (a bare ASGI proxy), interleaved")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    if args.baseline is not None and not (args.baseline / "platform").is_dir():
        parser.error(f"--baseline {args.baseline}: not a Modelyard checkout (no platform/)")
    with ExitStack() as stack:
        gateways: list[Target] = []
        direct: Target | None = None
        plan = [(None, "modelyard")]
        if args.baseline is not None:
            plan.insert(0, (args.baseline.resolve(), "baseline"))
        for source, name in plan:
            database_url = stack.enter_context(postgres_db() if args.postgres else _none())
            d, through, _ = stack.enter_context(
                gateway(args.redis_url, database_url, args.workers, source, name))
            direct = direct or d
            gateways.append(through)
        assert direct is not None
        if args.floor:
            gateways.insert(0, stack.enter_context(floor(direct)))
        run(args, phases, direct, gateways)


def rotated(targets: list[Target], i: int) -> list[Target]:
    """The targets in turn, starting one further each round: none always goes first or last.

    With a fixed order, the target called right after another one was measured slower (0.16
    ms at p50 with the same code on both gateways).
    """
    k = i % len(targets)
    return targets[k:] + targets[:k]


def run(args: argparse.Namespace, phases: list[str], direct: Target, gateways: list[Target]
        ) -> None:
    """Every phase, each round calling every target once (``rotated``)."""
    targets = [direct, *gateways]
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; api workers: "
          f"{args.workers or 'default'}; {args.requests} requests per target and phase; "
          f"gateways: {', '.join(g.name for g in gateways)}", flush=True)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    with httpx.Client(timeout=60) as http:
        for _ in range(20):  # warm-up: connections, caches, imports
            for t in targets:
                one(http, t), first_token(http, t)
        if "sequential" in phases:
            seq: dict[str, list[float]] = {t.name: [] for t in targets}
            cpu = {g.name: cpu_seconds(g.pid) for g in gateways}
            for i in range(args.requests):
                for t in rotated(targets, i):
                    seq[t.name].append(one(http, t))
            for g in gateways:
                paired("sequential", seq["direct"], seq[g.name], g.name)
                used = (cpu_seconds(g.pid) - cpu[g.name]) / args.requests
                print(f"sequential: {g.name} API CPU {used * 1000:.2f} ms per request",
                      flush=True)
        if "streaming" in phases:
            ttft: dict[str, list[float]] = {t.name: [] for t in targets}
            cpu = {g.name: cpu_seconds(g.pid) for g in gateways}
            for i in range(args.requests // 2):
                for t in rotated(targets, i):
                    ttft[t.name].append(first_token(http, t))
            for g in gateways:
                paired("stream TTFT", ttft["direct"], ttft[g.name], g.name)
                used = (cpu_seconds(g.pid) - cpu[g.name]) / (args.requests // 2)
                print(f"streaming: {g.name} API CPU {used * 1000:.2f} ms per stream",
                      flush=True)
    if "concurrent" in phases:
        conc: dict[str, list[float]] = {t.name: [] for t in targets}
        rates: dict[str, list[float]] = {t.name: [] for t in targets}
        conc_cpu = dict.fromkeys(conc, 0.0)
        failed = dict.fromkeys(conc, 0)
        for i in range(args.rounds):
            for t in rotated(targets, i):
                cpu_before = cpu_seconds(t.pid)
                wall, lat, bad = asyncio.run(burst(t, args.requests, args.clients))
                conc_cpu[t.name] += cpu_seconds(t.pid) - cpu_before
                conc[t.name] += lat
                rates[t.name].append(len(lat) / wall)
                failed[t.name] += bad
        label = f"{args.clients} clients"
        for g in gateways:
            paired(label, conc["direct"], conc[g.name], g.name)
            print(f"{label}: {g.name} API CPU "
                  f"{conc_cpu[g.name] * 1000 / len(conc[g.name]):.2f} ms per request; "
                  f"requests/s direct {statistics.median(rates['direct']):.0f}, through "
                  f"{g.name} {statistics.median(rates[g.name]):.0f} (median of {args.rounds} "
                  f"rounds); failed requests: {failed[g.name]}", flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


@contextmanager
def _none() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
