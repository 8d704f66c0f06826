"""Public request and response bodies of the API (its documented, stable shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from modelyard_registry.routing.options import RoutingOptions
from modelyard_registry.scores import Call
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..models import Job, JobStatus, as_utc

JobOptions = RoutingOptions  # a job's options are its routing options


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text.

    Pydantic alone also reads ``0.5`` as a Unix time, which the document's ``date-time`` does
    not promise and a client did not mean.
    """
    if isinstance(value, str):
        datetime.fromisoformat(value)  # a ValueError is the caller's 422
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text)]

# What ``tool_request`` accepts in a chat request's ``tools`` and ``tool_choice``, for the
# document (the checks themselves stay there, so their 422s name the field).
FUNCTION_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["function"],
    "properties": {
        "type": {"const": "function"},
        "function": {"type": "object", "required": ["name"], "properties": {
            "name": FUNCTION_NAME, "description": {"type": "string"},
            "parameters": {"type": "object"}}},
    },
}
TOOL_CHOICE_SCHEMA: dict[str, Any] = {"anyOf": [
    {"enum": ["none", "auto", "required"]},
    {"type": "object", "required": ["function"], "description": "Names one of the tools.",
     "properties": {"type": {"const": "function"},
                    "function": {"type": "object", "required": ["name"],
                                 "properties": {"name": FUNCTION_NAME}}}},
    {"type": "null"},
]}


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any]
    options: JobOptions = Field(default_factory=JobOptions)


class CallPublic(BaseModel):
    node: str | None
    kind: str | None
    attempt: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    outcome: str
    reason: str = Field(description="Why this model was chosen, or why it was escalated.")
    created_at: datetime | None

    @classmethod
    def of(cls, call: Call) -> CallPublic:
        return cls(
            node=call.node, kind=call.kind, attempt=call.attempt, model=call.model_name,
            prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens,
            latency_s=round(call.latency_s, 4), cost_usd=call.cost_usd, outcome=call.outcome,
            reason=call.reason, created_at=as_utc(call.created_at),
        )


class JobPublic(BaseModel):
    id: str
    product: str
    status: JobStatus
    progress: float
    input: dict[str, Any] | None = None
    options: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    cost_usd: float
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    calls: list[CallPublic] | None = None

    @classmethod
    def of(cls, job: Job, *, calls: list[Call] | None = None, with_input: bool = True
           ) -> JobPublic:
        cost = job.cost_usd
        if calls is not None:
            cost = sum(c.cost_usd for c in calls)
        return cls(
            id=job.id, product=job.product, status=job.status, progress=job.progress,
            input=job.input if with_input else None, options=job.options, result=job.result,
            error=job.error, cost_usd=cost, attempts=job.attempts,
            created_at=as_utc(job.created_at), started_at=as_utc(job.started_at),
            finished_at=as_utc(job.finished_at),
            calls=[CallPublic.of(c) for c in calls] if calls is not None else None,
        )


class JobPage(BaseModel):
    data: list[JobPublic]
    next_cursor: str | None


class ProductPublic(BaseModel):
    name: str
    title: str
    description: str
    steps: list[str]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
