"""Scale-out: completed jobs/s with 1, 2 and 4 `yard worker` processes sharing PostgreSQL + Redis.

Two products: `echo` (no model: the job system's own cost) and `generate` (one SmolLM2-135M call,
``max_tokens`` 32).  Each worker is a separate `yard worker --concurrency 1` process with its own
MODELYARD_HOME and ``MODELYARD_N_THREADS`` llama.cpp threads; they share only a fresh PostgreSQL
database and a Redis database, as workers on different machines would.

For each row: the workers are started and warmed up (each loads the model once for `generate`),
then a batch of job rows is created with the same store function the API uses and their messages
are pushed onto the queue in one burst; the clock runs from the first push until every job of the
batch is terminal.  So the figure is the workers' drain rate, not the API's submission rate.

    .venv/bin/python bench/scale_out.py [--workers 1 2 4] [--echo-jobs 300] [--generate-jobs 24]

Needs PostgreSQL on 127.0.0.1:5432 (`--pg-admin`) and Redis (`--redis-url`, database 14 by
default, flushed).  Throughput is bound by the cores of the machine it runs on: on a 2-core
machine, more than 2 CPU-bound worker processes cannot go faster, they only share the cores.
"""

from __future__ import annotations

import argparse
import os
import signal
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
from typing import Any

import psutil
import psycopg
import redis
from modelyard_platform import auth
from modelyard_platform.jobs import store
from modelyard_platform.jobs.celery_app import enqueue, make_celery
from modelyard_platform.models import TERMINAL, Job, JobStatus
from modelyard_registry.bundled import BUNDLED
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings
from sqlmodel import col, func, select

PRODUCTS: dict[str, dict[str, Any]] = {
    "echo": {"message": "hello"},
    "generate": {"prompt": "Write one sentence about the sea.", "max_tokens": 32},
}


@dataclass
class Row:
    product: str
    workers: int
    jobs: int
    seconds: float
    failed: int
    peak_rss_mb: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"modelyard_bench_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Workers:
    """N `yard worker` processes, each in its own process group, home and log file."""

    def __init__(self, n: int, env: dict[str, str], root: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(n):
            home = root / f"worker{i}"
            home.mkdir(parents=True, exist_ok=True)
            log = home / "worker.log"
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "modelyard_platform", "worker", "--concurrency", "1",
                     "--loglevel", "info"],
                    env={**env, "MODELYARD_HOME": str(home)}, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                ))
            self.logs.append(log)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text(errors='replace')[-2000:]}")
            if all(" ready." in log.read_text(errors="replace") for log in self.logs):
                return
            time.sleep(0.2)
        raise TimeoutError("workers did not report ready")

    def rss_mb(self) -> float:
        """Resident memory of every worker process tree, summed (main + prefork child)."""
        total = 0
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                total += sum(p.memory_info().rss for p in [parent, *parent.children(True)])
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def run_batch(db_url: str, settings: Settings, team_id: int, product: str, n: int,
              workers: Workers | None = None) -> tuple[float, int, float]:
    """Create ``n`` jobs, push them in one burst, wait; returns (seconds, failed, peak RSS MB)."""
    with session_scope(db_url) as session:
        ids = [store.create_job(session, team_id=team_id, product=product,
                                input_data=PRODUCTS[product], options={})[0].id
               for _ in range(n)]
    app = make_celery(settings)
    peak = 0.0
    try:
        start = time.perf_counter()
        for job_id in ids:
            enqueue(app, job_id)
        last_sample = 0.0
        while True:
            with session_scope(db_url) as session:
                rows = session.exec(
                    select(Job.status, func.count()).where(col(Job.id).in_(ids))
                    .group_by(Job.status)
                ).all()
            counts = {status: int(count) for status, count in rows}
            if sum(counts.get(s, 0) for s in TERMINAL) == n:
                seconds = time.perf_counter() - start
                break
            now = time.perf_counter()
            if workers is not None and now - last_sample > 0.5:
                peak, last_sample = max(peak, workers.rss_mb()), now
            time.sleep(0.02)
    finally:
        app.close()
    if workers is not None:
        peak = max(peak, workers.rss_mb())
    return seconds, counts.get(JobStatus.failed, 0), peak


def measure(product: str, n_workers: int, n_jobs: int, db_url: str, redis_url: str,
            threads: int, team_id: int, root: Path) -> Row:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
    env.update({"DATABASE_URL": db_url, "REDIS_URL": redis_url,
                "MODELYARD_N_THREADS": str(threads), "MODELYARD_WORKER_CONCURRENCY": "1",
                "MODELYARD_RATE_LIMIT_PER_MINUTE": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    settings = Settings(database_url=db_url, redis_url=redis_url, home=root)
    workers = Workers(n_workers, env, root / f"{product}-{n_workers}")
    try:
        workers.wait_ready()
        # Warm-up: imports, connections and (for generate) the model load in every worker.
        run_batch(db_url, settings, team_id, product, 3 * n_workers)
        seconds, failed, peak = run_batch(db_url, settings, team_id, product, n_jobs, workers)
    finally:
        workers.stop()
    return Row(product, n_workers, n_jobs, seconds, failed, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--echo-jobs", type=int, default=300)
    parser.add_argument("--generate-jobs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads per worker process (MODELYARD_N_THREADS)")
    parser.add_argument("--products", nargs="+", default=list(PRODUCTS), choices=list(PRODUCTS))
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    rows: list[Row] = []
    with fresh_database(args.pg_admin) as db_url, \
            tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        root = Path(tmp)
        settings = Settings(database_url=db_url, home=root)
        with session_scope(db_url) as session:  # migrates the fresh database
            team_id = auth.create_key(session, team="bench")[1].team_id
            register_gguf(session, settings, name="smollm2-135m",
                          path=BUNDLED["smollm2-135m"].parts()[0],
                          capabilities=["chat", "completion", "json_schema"])
        for product in args.products:
            n_jobs = args.echo_jobs if product == "echo" else args.generate_jobs
            for n in args.workers:
                row = measure(product, n, n_jobs, db_url, args.redis_url, args.threads,
                              team_id, root)
                rows.append(row)
                print(f"  {product} x{n}: {row.jobs_per_s:.2f} jobs/s", file=sys.stderr)

    cores = psutil.cpu_count(logical=False) or 0
    print(f"\nscale_out: {cores} physical / {psutil.cpu_count()} logical cores, "
          f"{args.threads} llama.cpp thread(s) per worker, 1 job at a time per worker\n")
    print(f"{'product':<10}{'workers':>8}{'jobs':>6}{'seconds':>9}{'jobs/s':>9}{'speed-up':>10}"
          f"{'failed':>8}{'RSS MB':>9}")
    for product in args.products:
        base = next(r for r in rows if r.product == product)
        for r in (r for r in rows if r.product == product):
            print(f"{r.product:<10}{r.workers:>8}{r.jobs:>6}{r.seconds:>9.2f}"
                  f"{r.jobs_per_s:>9.2f}{r.jobs_per_s / base.jobs_per_s:>9.2f}x"
                  f"{r.failed:>8}{r.peak_rss_mb:>9.0f}")
    per_worker = [r.peak_rss_mb / r.workers for r in rows if r.product == "generate"]
    if per_worker:
        print(f"\nRSS per worker process tree with SmolLM2 loaded: "
              f"~{statistics.median(per_worker):.0f} MB")


if __name__ == "__main__":
    main()
