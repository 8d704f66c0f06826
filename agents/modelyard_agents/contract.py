"""What a product is, and what its nodes may use while they run.

A product declares its slug, pydantic input/output models (their JSON schemas drive the API and
the web form) and a LangGraph ``StateGraph`` builder.  Nodes never see the cascade, the database or
the job directly: they get a ``NodeContext`` (LangGraph runtime context) whose ``call`` runs one
model call through the cascade and whose ``emit`` reports progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.graph import StateGraph
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.taskspec import TaskSpec
from pydantic import BaseModel


class ModelCall(Protocol):
    """One routed model call: returns the cascade's result (completion, model, attempts, cost)."""

    def __call__(
        self,
        spec: TaskSpec,
        request: GenerationRequest,
        validator: Callable[[Any], tuple[bool, str]] | None = None,
        *,
        node: str,
    ) -> Any: ...


@dataclass
class NodeContext:
    call: ModelCall
    emit: Callable[[dict[str, Any]], None]
    options: dict[str, Any] = field(default_factory=dict)
    """Job options: ``min_quality`` (overrides every node's bar), ``model`` (pin every node),
    ``best_effort`` (default true: a fresh install with no eval scores still answers)."""


class TraceEntry(BaseModel):
    """One model call made by one node: what ran, why, what it cost."""

    node: str
    model: str
    reason: str
    escalations: list[str]
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float


@dataclass(frozen=True)
class Product:
    slug: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    build_graph: Callable[[], StateGraph[Any, Any, Any, Any]]
    initial_state: Callable[[BaseModel], dict[str, Any]]
    output: Callable[[dict[str, Any]], dict[str, Any]]
    steps: tuple[str, ...]
    """Node names in display order (the web UI draws them as steps)."""

    def run(self, input_data: dict[str, Any], ctx: Any) -> dict[str, Any]:
        from .runner import run_product

        return run_product(self, input_data, ctx)
