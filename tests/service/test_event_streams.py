"""Job event streams on PostgreSQL through a real API process: open streams hold no pooled
connection, a key's open streams are capped (429), and Last-Event-ID resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import ExitStack

import httpx
import pytest

from .conftest import StackFactory
from .test_jobs_live import submit

pytestmark = pytest.mark.slow

POOL = 15  # SQLAlchemy's default QueuePool: 5 connections + 10 overflow
CAP = 20


def test_open_streams_hold_no_connection_and_are_capped_per_key(
    stack_factory: StackFactory, pg_url: str
) -> None:
    """No worker: jobs stay queued, so their streams stay open. More streams than the pool
    holds connections, and the API still lists jobs; one stream over the key's cap is a 429,
    another key still streams, and a closed stream gives its slot back."""
    stack = stack_factory(database_url=pg_url, workers=0, with_model=False,
                          env={"MODELYARD_MAX_STREAMS_PER_KEY": str(CAP)})
    key_a, key_b = stack.key("team-a"), stack.key("team-b")
    with stack.client(key_a) as http, ExitStack() as streams:
        job_ids = [submit(http, "echo", {"message": str(n)}) for n in range(4)]
        done = submit(http, "echo", {"message": "cancelled: its stream ends by itself"})
        assert http.post(f"/v1/jobs/{done}/cancel").status_code == 200
        for n in range(CAP):
            response = streams.enter_context(
                http.stream("GET", f"/v1/jobs/{job_ids[n % 4]}/events", timeout=60))
            assert response.status_code == 200
        assert CAP > POOL

        listed = http.get("/v1/jobs", params={"limit": 10})
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["data"]) == 5

        over = http.get(f"/v1/jobs/{done}/events")
        assert over.status_code == 429, over.text
        assert over.json()["error"]["type"] == "too_many_streams"
        assert over.headers["Retry-After"] == "60"

        with stack.client(key_b) as other:
            own = submit(other, "echo", {"message": "b"})
            with other.stream("GET", f"/v1/jobs/{own}/events", timeout=60) as response:
                assert response.status_code == 200

        # cancelling job 0 ends its five open streams, and they give their slots back
        assert http.post(f"/v1/jobs/{job_ids[0]}/cancel").status_code == 200
        for _ in range(100):
            again = http.get(f"/v1/jobs/{done}/events")
            if again.status_code == 200:
                break
            time.sleep(0.2)
        assert again.status_code == 200, again.text
        assert '"status": "cancelled"' in again.text


def test_last_event_id_resumes_without_loss_or_duplicates(
    stack_factory: StackFactory, pg_url: str
) -> None:
    stack = stack_factory(database_url=pg_url, workers=0, with_model=False)
    with stack.client() as http:
        job_id = submit(http, "echo", {"message": "resume"})
        assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 200

        def read(last: int | None) -> list[int]:
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            seqs = []
            with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        seqs.append(int(json.loads(line[6:])["seq"]))
            return seqs

        everything = read(None)
        assert everything == list(range(1, len(everything) + 1)) and len(everything) >= 2
        for last in range(len(everything)):
            assert read(last) == everything[last:]


def test_the_stream_cap_holds_across_api_processes(stack_factory: StackFactory) -> None:
    """Two API processes share one key's cap (counted in Redis); a SIGKILLed API process
    cannot say goodbye, and its slot comes back when its lease lapses."""
    stack = stack_factory(workers=0, with_model=False, env={
        "MODELYARD_MAX_STREAMS_PER_KEY": "3", "MODELYARD_STREAM_LEASE_S": "2"})
    second, second_url = stack.start_api()
    key = stack.key("team-a")
    auth = {"Authorization": f"Bearer {key}"}
    with stack.client(key) as one, httpx.Client(base_url=second_url, headers=auth) as two, \
            ExitStack() as streams:
        job_id = submit(one, "echo", {"message": "no worker: it stays queued"})
        url = f"/v1/jobs/{job_id}/events"
        for http in (one, one, two):
            response = streams.enter_context(http.stream("GET", url, timeout=60))
            assert response.status_code == 200
        for http in (one, two):
            over = http.get(url)
            assert over.status_code == 429, over.text
            assert "3 event streams open" in over.json()["error"]["message"]

        os.killpg(second.pid, signal.SIGKILL)
        second.wait(10)
        status = 429
        for _ in range(150):  # its slot is held until its lease (2 s) lapses, then freed
            with one.stream("GET", url, timeout=60) as again:
                status = again.status_code
            if status != 429:
                break
            time.sleep(0.2)
        assert status == 200
