"""Lossless resume, in process: every product stopped at every node boundary, then resumed.

The stop is LangGraph's own ``interrupt_before``/``interrupt_after`` on every node; each resume is a
fresh ``run_product`` (a new graph, a new checkpointer connection), as a redelivered job gets.
The resumed job must end with the output of an uninterrupted run (SmolLM2, temperature 0) and with
exactly one accepted call per node.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from modelyard_agents.checkpoints import checkpointer
from modelyard_agents.products import doc_summary, extract, ticket_triage
from modelyard_agents.registry import PRODUCTS
from modelyard_agents.runner import run_product
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call
from sqlmodel import select

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # SmolLM2 on a busy CPU

TICKET = {"subject": "Refund for order ORD-55123",
          "body": "My Acme Kettle (order ORD-55123) broke. Please refund $49.99. jo@example.com"}
DOC = " ".join(f"Section {i}: the depot in town {i} shipped {i * 10} parcels and hired {i} "
               "drivers this spring." for i in range(1, 16))
SCHEMA = {"type": "object", "properties": {"invoice": {"type": "string"},
                                           "total": {"type": "number"}},
          "required": ["invoice", "total"]}
INPUTS: dict[str, dict[str, Any]] = {
    "ticket-triage": TICKET,
    "doc-summary": {"text": DOC, "target_words": 30},
    "extract": {"text": "Invoice INV-2291 from Northwind, total 1250.00 EUR.", "schema": SCHEMA},
}
VOLATILE = {"latency_s", "cost_usd"}  # wall-clock priced on a local model


def stable(output: dict[str, Any]) -> dict[str, Any]:
    """The output without what depends on timing (latency and the local cost derived from it).

    Extraction confidences are mean token probabilities: llama.cpp's prompt cache makes them
    differ in the third decimal between two runs of the same prompt, so they are rounded.
    """
    out = copy.deepcopy(output)
    out["trace"] = [{k: v for k, v in e.items() if k not in VOLATILE} for e in out["trace"]]
    if "field_confidence" in out:
        out["field_confidence"] = {k: None if v is None else round(v, 1)
                                   for k, v in out["field_confidence"].items()}
    return out


def job_ctx(base: Any, job_id: str) -> Any:
    ctx = copy.copy(base)
    ctx.job_id = job_id
    return ctx


def pending(product: Any, ctx: Any) -> tuple[str, ...]:
    """The nodes a stopped job runs next, read from its checkpoint as a resume would."""
    with checkpointer(ctx.settings) as saver:
        graph = product.build_graph().compile(checkpointer=saver)
        return tuple(graph.get_state({"configurable": {"thread_id": str(ctx.job_id)}}).next)


def billed_attempts(ctx: Any) -> int:
    """Every attempt the job paid for: accepted, rejected (escalated) or failed."""
    with session_scope(ctx.settings.effective_database_url) as session:
        return len(session.exec(select(Call).where(Call.job_id == ctx.job_id)).all())


def accepted_per_node(ctx: Any) -> Counter[str]:
    with session_scope(ctx.settings.effective_database_url) as session:
        rows = session.exec(select(Call).where(Call.job_id == ctx.job_id)).all()
    return Counter(str(r.node) for r in rows if r.outcome == "accepted")


@pytest.mark.parametrize("state", [
    doc_summary.State(text="t", target_words=20, chunks=["a", "b"], levels=1,
                      partials=[doc_summary.Partial(index=1, text="b"),
                                doc_summary.Partial(index=0, text="a")],
                      summaries=["a", "b"], summary="s", key_points=["k"], trace=[{"node": "x"}]),
    ticket_triage.State(subject="s", body="b", customer_tier=None, category="refund",
                        urgency="high", entities=ticket_triage.Entities(
                            order_ids=["A-123"], amounts=[49.99]).model_dump(),
                        language="en", reply="r", check={"passed": True, "problems": []},
                        trace=[]),
    extract.State(text="t", schema=SCHEMA, data={"total": 1.5, "tags": ["a"]}, valid=True,
                  missing=[], field_confidence={"total": None}, trace=[]),
], ids=["doc-summary", "ticket-triage", "extract"])
def test_state_survives_the_checkpoint_serializer_unchanged(state: dict[str, Any]) -> None:
    serde = JsonPlusSerializer()
    back = serde.loads_typed(serde.dumps_typed(state))
    assert back == state
    assert repr(back) == repr(state)  # same types too: no tuple came back as a list


def test_resumed_map_sorts_its_partials() -> None:
    """The reported failure: partials from before the kill came back as lists, new ones were
    tuples, and ``collect`` could not sort them.  Now both sides are the same dicts."""
    serde = JsonPlusSerializer()
    before = serde.loads_typed(serde.dumps_typed([doc_summary.Partial(index=2, text="c")]))
    fresh = [doc_summary.Partial(index=0, text="a"), doc_summary.Partial(index=1, text="b")]
    state = doc_summary.State(partials=[*before, *fresh])
    assert doc_summary.collect(state, None) == {"summaries": ["a", "b", "c"]}  # type: ignore[arg-type]


@pytest.mark.soak
@pytest.mark.parametrize("slug", sorted(INPUTS))
def test_interrupted_at_every_node_boundary_resumes_to_the_same_output(
    slug: str, product_ctx: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_SUMMARY_CHUNK_TOKENS", "120")
    monkeypatch.setenv("MODELYARD_SUMMARY_OVERLAP_TOKENS", "8")
    product = PRODUCTS[slug]
    data = INPUTS[slug]
    nodes = list(product.build_graph().nodes)

    reference_ctx = job_ctx(product_ctx, f"{slug}-whole")
    reference = run_product(product, data, reference_ctx)

    ctx = job_ctx(product_ctx, f"{slug}-cut")
    stops = 0
    stopped_before: set[str] = set()
    while (output := run_product(product, data, ctx, interrupt_before=nodes,
                                 interrupt_after=nodes)) == {}:
        stops += 1
        stopped_before.update(pending(product, ctx))
        assert stops < 100, "the graph never finished"
    # A stop at every boundary, each step resumed from one: LangGraph stops once where "after
    # one step" and "before the next" are the same checkpoint (it interrupts only when a channel
    # changed since the last interrupt), so a chain of n steps stops n times, not 2n - 1.
    assert stopped_before == set(product.steps), stopped_before

    assert stable(output) == stable(reference)
    per_node = accepted_per_node(ctx)
    assert per_node == accepted_per_node(reference_ctx)
    assert set(per_node.values()) == {1}, per_node  # no node billed twice
    # Every attempt in the trace billed once, as many as the uninterrupted run paid for (a call
    # a validator rejected, e.g. doc-summary's finalize on SmolLM2, is an attempt, not accepted).
    assert sum(e["attempts"] for e in output["trace"]) == billed_attempts(ctx)
    assert billed_attempts(ctx) == billed_attempts(reference_ctx)
