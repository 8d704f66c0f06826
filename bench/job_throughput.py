"""Job system throughput: N `echo` jobs (no model) submitted by C concurrent clients through the
real API, Redis and a Celery worker.  Prints submit latency p50/p99 and completed jobs/s, on a
fresh SQLite home or (``--postgres``) a fresh PostgreSQL database, and the load average (the
figures move with what else runs on the machine: compare runs made back to back).  Also the CPU
time per job of the API process and of the worker processes (user + system, the bench's polling
included): it moves much less with the machine's load than latency does; with ``--postgres``,
also PostgreSQL's own CPU per job (every ``postgres`` process of the machine).

    .venv/bin/python bench/job_throughput.py [--jobs 200] [--clients 1 16 64] [--postgres]
        [--concurrency 2]

``--concurrency`` is the worker's process count (``MODELYARD_WORKER_CONCURRENCY``): a child
running a short job mostly waits on the database (on PostgreSQL, for each commit's WAL flush), so
more children than cores can share those waits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
from _stack import stack, wait_done
from gateway_overhead import _none, postgres_db


def cpu_by_role() -> dict[str, float]:
    """CPU seconds so far of this bench's ``yard api`` and ``yard worker`` process trees.

    A process counts for the command this bench started above it: the uvicorn children of
    ``yard api --workers 2`` are the API's, whatever their own command line says.
    """
    totals = {"api": 0.0, "worker": 0.0}
    for top in psutil.Process().children():
        try:
            role = "api" if "api" in top.cmdline() else "worker"
            tree = [top, *top.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            totals[role] += times.user + times.system
    return totals


class PostgresCpu:
    """CPU seconds of the machine's PostgreSQL processes: the server's own share of the work.

    Backends come and go with connections, so a thread samples every process of the
    ``postgres`` user every 0.1 s and keeps each one's latest figure; a phase's share is the
    difference of ``total()`` before and after it.  (Every database on the server counts: run
    it on a machine where nothing else uses PostgreSQL.)
    """

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._sample()
        threading.Thread(target=self._run, daemon=True).start()

    def _sample(self) -> None:
        for proc in psutil.process_iter(["username"]):
            if proc.info["username"] != "postgres":
                continue
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.seen[proc.pid] = times.user + times.system

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def total(self) -> float:
        self._sample()
        return sum(self.seen.values())

    def stop(self) -> None:
        self._stop.set()


def run(base_url: str, key: str, jobs: int, clients: int) -> tuple[list[float], float]:
    latencies: list[float] = []

    def submit_some(n: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as http:
            for i in range(n):
                start = time.perf_counter()
                r = http.post("/v1/products/echo/jobs", json={"input": {"message": str(i)}})
                latencies.append(time.perf_counter() - start)
                r.raise_for_status()
                ids.append(r.json()["id"])
        return ids

    shares = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        ids = [i for part in pool.map(submit_some, shares) for i in part]
    end = wait_done(base_url, key, ids)
    return latencies, len(ids) / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; worker processes "
          f"{args.concurrency}")
    print(f"{'clients':>8} {'jobs':>6} {'submit p50 ms':>14} {'submit p99 ms':>14} "
          f"{'jobs/s':>8} {'api cpu ms/job':>15} {'worker cpu ms/job':>18}"
          + (f" {'postgres cpu ms/job':>20}" if args.postgres else ""))
    server = PostgresCpu() if args.postgres else None
    with (postgres_db() if args.postgres else _none()) as database_url, \
            stack(args.redis_url, model=False, database_url=database_url,
                  concurrency=args.concurrency) as s:
        run(s.base_url, s.key, 10, 2)  # warm-up: worker children, connections
        for clients in args.clients:
            before = cpu_by_role()
            server_before = server.total() if server is not None else 0.0
            lat, rate = run(s.base_url, s.key, args.jobs, clients)
            after = cpu_by_role()
            cpu = {role: (after[role] - before[role]) * 1000 / args.jobs for role in after}
            db = ((server.total() - server_before) * 1000 / args.jobs if server is not None
                  else None)
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(f"{clients:>8} {args.jobs:>6} {statistics.median(lat) * 1000:>14.1f} "
                  f"{p99 * 1000:>14.1f} {rate:>8.1f} {cpu['api']:>15.2f} "
                  f"{cpu['worker']:>18.2f}" + (f" {db:>20.2f}" if db is not None else ""),
                  flush=True)
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
