"""Products on the real SmolLM2 through the real cascade (no worker): output, trace, resume."""

from __future__ import annotations

from typing import Any

import jsonschema
from modelyard_agents.registry import PRODUCTS
from modelyard_agents.runner import run_product
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call
from sqlmodel import select

TICKET = {
    "subject": "Refund for order ORD-55123",
    "body": "Hi, I returned my Acme Kettle (order ORD-55123) two weeks ago and still have no "
            "refund of $49.99. Please help. jane@example.com",
    "customer_tier": "pro",
}


def calls(ctx: Any) -> list[Call]:
    with session_scope(ctx.settings.effective_database_url) as session:
        return list(session.exec(select(Call).where(Call.job_id == ctx.job_id)).all())


def assert_trace_matches_calls(output: dict, ctx: Any) -> None:
    rows = calls(ctx)
    assert rows, "a product that ran models recorded no calls"
    assert abs(sum(e["cost_usd"] for e in output["trace"]) - sum(r.cost_usd for r in rows)) < 1e-12
    assert sum(e["attempts"] for e in output["trace"]) == len(rows)
    assert {e["node"] for e in output["trace"]} == {r.node for r in rows}
    assert all(r.team_id == 7 for r in rows)


def test_ticket_triage(product_ctx: Any) -> None:
    product = PRODUCTS["ticket-triage"]
    output = product.run(TICKET, product_ctx)
    jsonschema.validate(output, product.output_model.model_json_schema())
    assert output["category"] in {"billing", "shipping", "technical", "account", "refund", "other"}
    assert output["urgency"] in {"low", "normal", "high", "urgent"}
    assert output["entities"]["order_ids"] == ["ORD-55123"]
    assert output["entities"]["emails"] == ["jane@example.com"]
    assert output["reply"]
    assert [e["node"] for e in output["trace"]][:3] == ["classify", "extract", "draft"]
    assert all(e["model"] == "smollm2-135m" and e["reason"] for e in output["trace"])
    assert_trace_matches_calls(output, product_ctx)
    kinds = [(e["type"], e.get("node")) for e in product_ctx.events]
    assert ("node_started", "classify") in kinds and ("node_finished", "check") in kinds


def test_extract(product_ctx: Any) -> None:
    schema = {"type": "object", "properties": {"invoice_id": {"type": "string"},
              "total": {"type": "number"}, "paid": {"type": "boolean"}},
              "required": ["invoice_id", "total", "paid"]}
    product = PRODUCTS["extract"]
    output = product.run({"text": "Invoice INV-2291 from Northwind, total 1250.00 EUR, unpaid.",
                          "schema": schema}, product_ctx)
    jsonschema.validate(output, product.output_model.model_json_schema())
    if output["valid"]:
        jsonschema.validate(output["data"], schema)
    assert set(output["field_confidence"]) <= set(schema["properties"])
    # per field, from the local model's token probabilities (not one figure for the answer)
    confidences = output["field_confidence"]
    assert set(confidences) == set(output["data"])
    assert all(c is not None and 0.0 <= c <= 1.0 for c in confidences.values()), output
    assert_trace_matches_calls(output, product_ctx)


def test_doc_summary_maps_chunks_in_parallel_and_reduces(product_ctx: Any,
                                                        monkeypatch: Any) -> None:
    monkeypatch.setenv("MODELYARD_SUMMARY_CHUNK_TOKENS", "160")
    monkeypatch.setenv("MODELYARD_SUMMARY_OVERLAP_TOKENS", "16")
    text = " ".join(
        f"Section {i}: the warehouse in city {i} shipped {i * 10} parcels and hired {i} people."
        for i in range(1, 25)
    )
    product = PRODUCTS["doc-summary"]
    output = product.run({"text": text, "target_words": 40}, product_ctx)
    jsonschema.validate(output, product.output_model.model_json_schema())
    assert output["chunks"] >= 3
    assert output["summary"] and output["key_points"]
    nodes = [e["node"] for e in output["trace"]]
    assert sum(n.startswith("summarize_chunk[") for n in nodes) == output["chunks"]
    assert nodes[-1] == "finalize"
    assert_trace_matches_calls(output, product_ctx)


def test_doc_summary_of_a_one_chunk_document_reads_it_once(product_ctx: Any) -> None:
    text = ("The Lisbon office moved to a new building on Rua Augusta in March. Rent fell by 18 "
            "percent and the lease runs for five years. Forty staff work there.")
    product = PRODUCTS["doc-summary"]
    output = product.run({"text": text, "target_words": 30}, product_ctx)
    jsonschema.validate(output, product.output_model.model_json_schema())
    assert output["chunks"] == 1 and output["reduce_levels"] == 0
    assert output["summary"] and output["key_points"]
    # no chunk summary: the final pass is the only model call and it was given the document
    assert [e["node"] for e in output["trace"]] == ["finalize"]
    assert {r.node for r in calls(product_ctx)} == {"finalize"}
    assert_trace_matches_calls(output, product_ctx)


def test_resume_does_not_rerun_finished_nodes(product_ctx: Any) -> None:
    product = PRODUCTS["ticket-triage"]
    assert run_product(product, TICKET, product_ctx, interrupt_after=["classify"]) == {}
    first = calls(product_ctx)
    assert {r.node for r in first} == {"classify"}

    output = run_product(product, TICKET, product_ctx)  # the redelivered job, same job id
    rows = calls(product_ctx)
    assert [r.id for r in rows if r.node == "classify"] == [r.id for r in first]
    assert {r.node for r in rows} == {"classify", "extract", "draft"}
    assert any(e["type"] == "resumed" for e in product_ctx.events)
    assert_trace_matches_calls(output, product_ctx)

    again = run_product(product, TICKET, product_ctx)  # finished: nothing is re-run or billed
    assert again == output
    assert len(calls(product_ctx)) == len(rows)
