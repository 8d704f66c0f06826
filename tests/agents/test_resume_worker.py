"""Lossless resume with a real process killed in the middle of a node, for every product.

A real API and Celery worker; the worker's process group is SIGKILLed while a node runs (seen as
that node's ``node_started`` event, or a first map call for doc-summary), a fresh worker resumes
the job.  The job must end once, with the output of an uninterrupted run of the same input
(SmolLM2, temperature 0), one accepted call per node, and a progress that never went back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from modelyard_platform.jobs import store
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from tests.conftest import fresh_redis, redis_test_url
from tests.service.conftest import Stack, StackFactory

pytestmark = [pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(3600)]  # SmolLM2 jobs

Event = dict[str, Any]
Trigger = Callable[[Event], bool]


def started(node: str) -> Trigger:
    return lambda e: e["type"] == "node_started" and e.get("node") == node


def map_call(e: Event) -> bool:
    return e["type"] == "model_call" and str(e.get("node", "")).startswith("summarize_chunk[")


DOC = " ".join(f"Section {i}: the depot in town {i} shipped {i * 10} parcels and hired {i} "
               "drivers this spring." for i in range(1, 16))
CASES: dict[str, tuple[dict[str, Any], list[Trigger]]] = {
    "generate": ({"prompt": "Name a colour.", "max_tokens": 12}, [started("generate")]),
    "extract": ({"text": "Invoice INV-2291 from Northwind, total 1250.00 EUR.",
                 "schema": {"type": "object", "properties": {"invoice": {"type": "string"}},
                            "required": ["invoice"]}}, [started("extract")]),
    # Not ``check``: it is pure code (no model call) and ends the job within milliseconds of
    # its start, so a kill sent once its ``node_started`` is seen lands after the job succeeded,
    # not inside it (4 attempts, not 5).  Its boundary is test_resume's (in process).
    "ticket-triage": ({"subject": "Refund for order ORD-55123",
                       "body": "My Acme Kettle (order ORD-55123) broke. Please refund $49.99."},
                      [started(n) for n in ("classify", "extract", "draft")]),
    "doc-summary": ({"text": DOC, "target_words": 30}, [map_call, started("finalize")]),
}
VOLATILE = {"latency_s", "cost_usd", "tokens_per_s"}


def stable(result: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in result.items() if k not in VOLATILE}
    if "trace" in out:
        out["trace"] = [{k: v for k, v in e.items() if k not in VOLATILE} for e in out["trace"]]
    if "field_confidence" in out:  # mean token probability: prompt-cache noise in 3rd decimal
        out["field_confidence"] = {k: None if v is None else round(v, 1)
                                   for k, v in out["field_confidence"].items()}
    return out


def events(stack: Stack, job_id: str) -> list[Event]:
    with session_scope(Settings(home=stack.home).effective_database_url) as session:
        return [{"type": e.type, **e.data} for e in store.events_after(session, job_id, 0)]


def accepted(job: dict[str, Any]) -> Counter[str]:
    return Counter(c["node"] for c in job["calls"] if c["outcome"] == "accepted")


@pytest.mark.parametrize("slug", sorted(CASES))
def test_worker_killed_inside_every_node_resumes_to_the_same_output(
    slug: str, stack_factory: StackFactory,
) -> None:
    data, triggers = CASES[slug]
    stack = stack_factory(env={"REDIS_URL": fresh_redis(redis_test_url(14)),
                               "MODELYARD_JOB_MAX_ATTEMPTS": str(len(triggers) + 2),
                               "MODELYARD_SUMMARY_CHUNK_TOKENS": "120",
                               "MODELYARD_SUMMARY_OVERLAP_TOKENS": "8"})
    with stack.client() as http:
        r = http.post(f"/v1/products/{slug}/jobs", json={"input": data})
        reference = stack.wait_job(r.json()["id"], timeout_s=1800)
        assert reference["status"] == "succeeded", reference["error"]

        job_id = http.post(f"/v1/products/{slug}/jobs", json={"input": data}).json()["id"]
        progress: list[float] = []
        seen = 0
        for trigger in triggers:
            deadline = time.monotonic() + 900
            while True:
                log = events(stack, job_id)
                if any(trigger(e) for e in log[seen:]):
                    break
                assert not any(e.get("status") == "succeeded" for e in log), "ended too soon"
                assert time.monotonic() < deadline, f"no trigger in {log[seen:]}"
                progress.append(http.get(f"/v1/jobs/{job_id}").json()["progress"])
                time.sleep(0.1)
            stack.kill_workers()
            seen = len(events(stack, job_id))
            stack.start_worker()
        deadline = time.monotonic() + 1800
        while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] == "running" or \
                job["status"] == "queued":
            progress.append(job["progress"])
            assert time.monotonic() < deadline, "the resumed job never finished"
            time.sleep(0.3)
        job = stack.wait_job(job_id)

    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == len(triggers) + 1
    assert stable(job["result"]) == stable(reference["result"])
    assert accepted(job) == accepted(reference)
    assert set(accepted(job).values()) == {1}  # no node billed twice
    assert progress == sorted(progress), progress  # never backwards across the kills
    log = events(stack, job_id)
    assert sum(1 for e in log if e.get("status") == "succeeded") == 1
    assert job["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in job["calls"]))
