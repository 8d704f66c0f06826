"""What a product is, and what its nodes may use while they run.

A product declares its slug, pydantic input/output models (their JSON schemas drive the API and
the web form) and a LangGraph ``StateGraph`` builder.  Nodes never see the cascade, the database or
the job directly: they get a ``NodeContext`` (LangGraph runtime context) whose ``call`` runs one
model call through the cascade and whose ``emit`` reports progress.

A product run gets a ``RunContext`` from its caller (the platform's ``JobContext`` extends it): the
job's id and team, its typed ``RoutingOptions``, the cascade and a progress sink, the way
react-agent passes a ``Context`` dataclass.  Nothing is read with ``getattr`` or string keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.graph import StateGraph
from modelyard_registry.routing.cascade import Cascade, CascadeResult
from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.settings import Settings
from modelyard_registry.taskspec import TaskSpec
from modelyard_registry.validators import Validator
from pydantic import BaseModel

Event = dict[str, Any]


def _ignore(_event: Event) -> None:
    return None


@dataclass
class RunContext:
    """What a product run may use: who it runs for, how to route, where to report progress."""

    job_id: str
    cascade: Cascade
    settings: Settings
    team_id: int | None = None
    options: RoutingOptions = field(default_factory=RoutingOptions)
    progress: Callable[[Event], None] = _ignore


class ModelCall(Protocol):
    """One routed model call: returns the cascade's result (completion, model, attempts, cost)."""

    def __call__(
        self,
        spec: TaskSpec,
        request: GenerationRequest,
        validator: Validator | None = None,
        *,
        node: str,
    ) -> CascadeResult: ...


@dataclass
class NodeContext:
    call: ModelCall
    emit: Callable[[Event], None]
    options: RoutingOptions = field(default_factory=RoutingOptions)
    """The job's routing options: ``min_quality`` overrides every node's bar, ``model`` pins
    every node, ``best_effort`` (default true: a fresh install with no eval scores answers)."""


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

    def run(self, input_data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        from .runner import run_product

        return run_product(self, input_data, ctx)
