"""Production shape: a fresh PostgreSQL database, processes starting together, infra hiccups.

The checkpoint tables are created once, by the migration step under a lock, never per job (two
workers racing on the saver's ``setup()`` failed a job with ``checkpoint_migrations_pkey``); a job
whose database connection drops mid-run is retried from its checkpoint, not failed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from modelyard_platform.jobs import store
from modelyard_registry.db import alembic_config, checkpoint_file, session_scope
from modelyard_registry.settings import Settings

from tests.conftest import fresh_redis, redis_test_url

from .conftest import Stack, StackFactory

MIGRATE = "import sys; from modelyard_registry.db import migrate_url; migrate_url(sys.argv[1])"


def migrate_together(url: str, processes: int) -> None:
    """Start ``processes`` interpreters that all migrate ``url`` at the same moment."""
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE)
             for _ in range(processes)]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, "\n".join(errors)


@pytest.mark.postgres
def test_processes_starting_together_migrate_a_fresh_postgres_once(pg_url: str) -> None:
    migrate_together(pg_url, 4)
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v")]
        assert versions == list(range(len(versions))) and versions  # each step once
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)
        heads = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        assert heads == {ScriptDirectory.from_config(alembic_config(pg_url)).get_current_head()}


def test_processes_starting_together_migrate_a_fresh_sqlite_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    migrate_together(url, 4)
    checkpoints = checkpoint_file(url)
    assert checkpoints is not None and checkpoints.exists()
    import sqlite3

    with sqlite3.connect(checkpoints) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"checkpoints", "writes"} <= tables


def pg_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    settings = Settings(home=stack.home, database_url=stack.env["DATABASE_URL"])
    with session_scope(settings.effective_database_url) as session:
        return [{"type": e.type, **e.data} for e in store.events_after(session, job_id, 0)]


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.postgres
@pytest.mark.timeout(3600)  # four triage jobs of SmolLM2 on a busy CPU
def test_two_workers_run_a_burst_of_triage_jobs_on_a_fresh_postgres(
    stack_factory: StackFactory, pg_url: str,
) -> None:
    stack = stack_factory(database_url=pg_url, workers=2)
    tickets = [{"subject": f"Order {n} late", "body": f"Order ORD-{n}00 has not arrived."}
               for n in range(1, 5)]
    ids: list[str] = []
    lock = threading.Lock()

    def submit(ticket: dict[str, str]) -> None:
        with stack.client() as http:
            r = http.post("/v1/products/ticket-triage/jobs", json={"input": ticket})
            assert r.status_code == 202, r.text
            with lock:
                ids.append(r.json()["id"])

    threads = [threading.Thread(target=submit, args=(t,)) for t in tickets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4
    jobs = [stack.wait_job(job_id, timeout_s=3000) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4, [j["error"] for j in jobs]
    for job in jobs:
        accepted = [c["node"] for c in job["calls"] if c["outcome"] == "accepted"]
        assert sorted(accepted) == ["classify", "draft", "extract"]


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.postgres
@pytest.mark.timeout(1800)
def test_a_dropped_database_connection_is_retried_not_failed(
    stack_factory: StackFactory, pg_url: str,
) -> None:
    """Every connection of the job's database is terminated while the job's node runs: the
    checkpointer's write fails, the job goes back to the queue and finishes on a retry."""
    stack = stack_factory(database_url=pg_url,
                          env={"REDIS_URL": fresh_redis(redis_test_url(15))})
    schema = {"type": "object", "properties": {"invoice": {"type": "string"}},
              "required": ["invoice"]}
    with stack.client() as http:
        r = http.post("/v1/products/extract/jobs", json={"input": {
            "text": "Invoice INV-77 from Lumen.", "schema": schema}})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
    deadline = time.monotonic() + 900
    while not any(e["type"] == "node_started" for e in pg_events(stack, job_id)):
        assert time.monotonic() < deadline, "the node never started"
        time.sleep(0.1)
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()
    assert dropped is not None and dropped[0] >= 1
    job = stack.wait_job(job_id, timeout_s=900)
    assert job["status"] == "succeeded", job["error"]
    events = pg_events(stack, job_id)
    assert any(e.get("status") == "queued" and e.get("retry") == 1 for e in events), events
    assert sum(1 for e in events if e.get("status") == "succeeded") == 1
    accepted = [c for c in job["calls"] if c["outcome"] == "accepted"]
    assert [c["node"] for c in accepted] == ["extract"]  # the retry reused the accepted call
