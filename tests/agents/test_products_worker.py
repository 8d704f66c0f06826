"""Each product end to end through the real API and Celery worker with the bundled SmolLM2."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.service.conftest import StackFactory

pytestmark = pytest.mark.slow

DOC = "\n\n".join(
    f"Section {i}. The Harbor Street library reopened on March {i + 2} after a renovation "
    f"that cost 1.{i} million euros. Visitors can now borrow laptops, book study rooms and "
    "attend free coding workshops on Saturdays. The city council plans to extend opening "
    "hours to 10 pm if at least 500 people sign up for a membership card this spring."
    for i in range(1, 7)
)
JOBS: list[tuple[str, dict[str, Any]]] = [
    ("ticket-triage", {
        "subject": "Charged twice for order 55120",
        "body": "Hello, I was charged twice for my Nimbus blender (order 55120). "
                "Please refund the duplicate payment of 89.90 EUR. Thanks, Ana Ruiz",
    }),
    ("doc-summary", {"text": DOC, "target_words": 60}),
    ("extract", {
        "text": "Invoice INV-2207 from Lumen Supplies, total due 412.50 USD by 30 June.",
        "schema": {"type": "object", "properties": {
            "invoice_number": {"type": "string"}, "total": {"type": "number"},
            "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]}},
            "required": ["invoice_number", "total", "currency"]},
    }),
]


def test_every_product_through_the_worker(stack_factory: StackFactory) -> None:
    stack = stack_factory(env={"MODELYARD_SUMMARY_CHUNK_TOKENS": "160",
                               "MODELYARD_SUMMARY_OVERLAP_TOKENS": "16"})
    with stack.client() as http:
        schemas = {p["name"]: p for p in http.get("/v1/products").json()["data"]}
        ids = {}
        for product, data in JOBS:
            r = http.post(f"/v1/products/{product}/jobs", json={"input": data})
            assert r.status_code == 202, r.text
            ids[product] = r.json()["id"]
    for product, job_id in ids.items():
        job = stack.wait_job(job_id, timeout_s=400)
        assert job["status"] == "succeeded", (product, job["error"])
        result = job["result"]
        jsonschema.validate(result, schemas[product]["output_schema"])
        trace = result["trace"]
        assert trace, product
        model_nodes = {c["node"] for c in job["calls"]}
        assert {t["node"] for t in trace} == model_nodes, product
        assert all(t["model"] == "smollm2-135m" and t["reason"] for t in trace)
        assert sum(t["cost_usd"] for t in trace) == pytest.approx(job["cost_usd"]), product
        assert sum(c["cost_usd"] for c in job["calls"]) == pytest.approx(job["cost_usd"])
        assert sum(t["attempts"] for t in trace) == len(job["calls"]), product
        steps = set(schemas[product]["steps"])
        assert {n.split("[")[0] for n in model_nodes} <= steps, product  # drawn as steps
        if product == "ticket-triage":
            assert result["category"] in {"billing", "shipping", "technical", "account",
                                          "refund", "other"}
            assert result["urgency"] in {"low", "normal", "high", "urgent"}
            assert result["reply"].strip()
        elif product == "doc-summary":
            assert result["chunks"] >= 2 and result["summary"].strip()
            chunk_calls = [t for t in trace if t["node"].startswith("summarize_chunk[")]
            assert len(chunk_calls) == result["chunks"]
        else:
            assert set(result["data"]) <= {"invoice_number", "total", "currency"}
            assert result["valid"] is (not result["missing"])
