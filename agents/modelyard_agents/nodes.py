"""Helpers every product node uses: a routed call that leaves a trace, and progress events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime
from modelyard_registry.errors import CascadeExhausted
from modelyard_registry.routing.cascade import CascadeResult
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.taskspec import TaskSpec
from modelyard_registry.validators import Validator

from .contract import NodeContext, TraceEntry


def trace_entry(node: str, result: CascadeResult) -> dict[str, Any]:
    attempts = list(result.attempts)
    chosen = result.decision.chosen
    reason = (chosen.reason if chosen is not None else "") or result.decision.reason
    return TraceEntry(
        node=node,
        model=result.model,
        reason=reason,
        escalations=[f"{a.model}: {a.reason}" for a in attempts if a.outcome != "accepted"],
        attempts=len(attempts),
        prompt_tokens=sum(a.prompt_tokens for a in attempts),
        completion_tokens=sum(a.completion_tokens for a in attempts),
        latency_s=round(sum(a.latency_s for a in attempts), 4),
        cost_usd=float(result.cost_usd),
    ).model_dump()


def exhausted_entry(node: str, error: CascadeExhausted) -> dict[str, Any]:
    """Trace of a cascade where no model's answer was accepted (its calls are still billed)."""
    attempts = list(error.attempts)
    return TraceEntry(
        node=node,
        model=attempts[-1].model if attempts else "-",
        reason=f"no answer accepted: {error.message}",
        escalations=[f"{a.model}: {a.reason}" for a in attempts],
        attempts=len(attempts),
        prompt_tokens=sum(a.prompt_tokens for a in attempts),
        completion_tokens=sum(a.completion_tokens for a in attempts),
        latency_s=round(sum(a.latency_s for a in attempts), 4),
        cost_usd=sum(a.cost_usd for a in attempts),
    ).model_dump()


def routed_call(
    runtime: Runtime[NodeContext],
    node: str,
    spec: TaskSpec,
    request: GenerationRequest,
    validator: Validator | None = None,
) -> tuple[CascadeResult, dict[str, Any]]:
    """Run one model call for ``node``; returns the cascade result and its trace entry."""
    ctx = runtime.context
    result = ctx.call(spec, request, validator, node=node)
    entry = trace_entry(node, result)
    ctx.emit({"type": "model_call", **entry})
    return result, entry


def node_spec(
    runtime: Runtime[NodeContext],
    kind: str,
    *,
    min_quality: float,
    max_output_tokens: int,
    needs_json_schema: bool = False,
) -> TaskSpec:
    """The node's own bar, unless the job's options override it for every node."""
    return runtime.context.options.spec(
        kind, min_quality=min_quality, max_output_tokens=max_output_tokens,
        needs_json_schema=needs_json_schema,
    )


def chat(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def observed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a node so the job's event stream sees it start and finish."""

    def node(state: Any, runtime: Runtime[NodeContext]) -> Any:
        runtime.context.emit({"type": "node_started", "node": name})
        update = fn(state, runtime)
        cost = sum(e["cost_usd"] for e in (update or {}).get("trace", []))
        runtime.context.emit({"type": "node_finished", "node": name, "cost_usd": cost})
        return update

    node.__name__ = name
    return node
