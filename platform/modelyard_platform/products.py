"""Every product the API serves: the agents' LangGraph products plus two built-ins.

``echo`` calls no model (it measures the job system itself: API, broker, worker, database);
``generate`` is one routed model call (it measures what the job path adds to a generation).
Its checkpoint is its accepted ``Call`` row: the call's request id is fixed per job, so a
redelivered job reuses the recorded answer (``replay``) instead of paying for a second one.
"""

from __future__ import annotations

from typing import Any, Protocol

from modelyard_agents.contract import RunContext
from modelyard_registry.replay import replay
from modelyard_registry.runtimes import GenerationRequest
from modelyard_registry.taskspec import KIND_RE, TaskKind
from pydantic import BaseModel, ConfigDict, Field


class ProductLike(Protocol):
    """What the platform needs of a product (``modelyard_agents.contract.Product`` fits)."""

    @property
    def slug(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def input_model(self) -> type[BaseModel]: ...
    @property
    def output_model(self) -> type[BaseModel]: ...
    @property
    def steps(self) -> tuple[str, ...]: ...

    def run(self, input_data: dict[str, Any], ctx: RunContext) -> dict[str, Any]: ...


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(max_length=10_000, description="Returned as is.")


class EchoOutput(BaseModel):
    message: str


class GenerateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=100_000, description="The user message.")
    max_tokens: int = Field(default=256, ge=1, le=4096)
    kind: str = Field(default=TaskKind.chat.value, pattern=KIND_RE.pattern,
                      description="A built-in task kind or an operator's own.")


class GenerateOutput(BaseModel):
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    tokens_per_s: float
    cost_usd: float


class Echo:
    slug = "echo"
    title = "Echo"
    description = "Returns its input without calling a model (a probe of the job system)."
    input_model = EchoInput
    output_model = EchoOutput
    steps: tuple[str, ...] = ("echo",)

    def run(self, input_data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        ctx.progress({"type": "node_started", "node": "echo"})
        message = EchoInput.model_validate(input_data).message
        ctx.progress({"type": "node_finished", "node": "echo", "cost_usd": 0.0})
        return {"message": message}


class Generate:
    slug = "generate"
    title = "Generate"
    description = "One routed model call: the cheapest adequate model answers a prompt."
    input_model = GenerateInput
    output_model = GenerateOutput
    steps: tuple[str, ...] = ("generate",)

    def run(self, input_data: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        data = GenerateInput.model_validate(input_data)
        spec = ctx.options.spec(data.kind, max_output_tokens=data.max_tokens)
        request = GenerationRequest(
            messages=[{"role": "user", "content": data.prompt}], max_tokens=data.max_tokens
        )
        ctx.progress({"type": "node_started", "node": "generate"})
        request_id = f"{ctx.job_id}:generate:1"
        result = replay(ctx.cascade, spec, request, request_id=request_id) or ctx.cascade.run(
            spec, request, request_id=request_id, job_id=ctx.job_id, team_id=ctx.team_id,
            node="generate",
        )
        done = result.completion
        ctx.progress({"type": "node_finished", "node": "generate", "cost_usd": result.cost_usd})
        return GenerateOutput(
            text=done.text, model=result.model, prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens, tokens_per_s=round(done.tokens_per_s, 2),
            cost_usd=result.cost_usd,
        ).model_dump()


def all_products() -> dict[str, ProductLike]:
    """Built-ins first, then every product module of ``modelyard_agents``."""
    from modelyard_agents.registry import PRODUCTS

    found: dict[str, ProductLike] = {"echo": Echo(), "generate": Generate()}
    found.update(PRODUCTS)
    return found
