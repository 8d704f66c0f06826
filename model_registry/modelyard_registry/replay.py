"""An already-accepted call, rebuilt from its rows instead of paid for again.

A job's node gives each model call a deterministic request id (job, node, call number).  If the
worker dies after the cascade committed the accepted ``Call`` row but before the graph saved its
checkpoint, the resumed node asks ``replay`` first: the accepted row still holds the answer, so the
node gets the same result and the job keeps exactly one accepted call per node.
"""

from __future__ import annotations

from sqlmodel import col, select

from .routing.cascade import Attempt, Cascade, CascadeResult, Outcome
from .runtimes import Completion, GenerationRequest
from .scores import Call
from .taskspec import TaskSpec


def replay(
    cascade: Cascade, spec: TaskSpec, request: GenerationRequest, *, request_id: str
) -> CascadeResult | None:
    """The recorded result of ``request_id`` if one of its attempts was accepted, else None."""
    with cascade.session_factory() as session:
        rows = list(session.exec(
            select(Call).where(Call.request_id == request_id).order_by(col(Call.id))
        ))
    accepted = next((r for r in rows if r.outcome == "accepted" and r.completion), None)
    if accepted is None or accepted.completion is None:
        return None
    stored = accepted.completion
    logprobs = stored.get("token_logprobs")
    completion = Completion(
        text=str(stored.get("text", "")),
        finish_reason=stored.get("finish_reason"),
        prompt_tokens=accepted.prompt_tokens,
        completion_tokens=accepted.completion_tokens,
        latency_s=accepted.latency_s,
        ttft_s=accepted.ttft_s or 0.0,
        model=str(stored.get("model", accepted.model_name)),
        token_logprobs=[float(x) for x in logprobs] if isinstance(logprobs, list) else None,
    )
    attempts = [
        Attempt(r.model_name, r.prompt_tokens, r.completion_tokens, r.latency_s, r.cost_usd,
                _outcome(r.outcome), r.reason, r.ttft_s)
        for r in rows
    ]
    decision, _, _ = cascade.plan(spec, request)
    return CascadeResult(
        completion=completion, model=accepted.model_name, decision=decision, attempts=attempts,
        cost_usd=sum(a.cost_usd for a in attempts), escalated=len(attempts) > 1,
        request_id=request_id,
    )


def _outcome(value: str) -> Outcome:
    if value in ("accepted", "escalated"):
        return "accepted" if value == "accepted" else "escalated"
    return "error"
