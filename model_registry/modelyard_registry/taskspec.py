"""What a task needs from a model: the router's only input besides the catalogue.

Every caller (a REST job, an OpenAI-style chat call with ``model="auto"``, one node of an agent
graph) describes its task with a ``TaskSpec``.  Build it with ``TaskSpec.build(**fields)`` at a
boundary: bad input becomes ``InvalidInput`` with ``field`` set, which the API maps to 422 and the
CLI to exit code 2, instead of a raw pydantic error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidInput


class TaskKind(StrEnum):
    """Kinds of task; each but ``chat`` has a built-in eval suite of its own.

    ``chat`` is generic chat with no suite: a model's quality for it is the mean of its measured
    scores across the other kinds (unscored when it has none).
    """

    classify = "classify"
    extract = "extract"
    summarize = "summarize"
    qa = "qa"
    chat = "chat"


class TaskSpec(BaseModel):
    """The bar a model must clear and the limits it must fit, for one call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TaskKind
    min_quality: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Measured score the model must reach."
    )
    max_output_tokens: int = Field(default=256, ge=1, description="Most tokens to generate.")
    needs_json_schema: bool = Field(default=False, description="Output constrained by a schema.")
    needs_tools: bool = Field(default=False, description="The call passes tools.")
    latency_budget_s: float | None = Field(
        default=None, gt=0, description="Reject models expected to take longer than this."
    )
    pinned_model: str | None = Field(
        default=None, description="Use this model only; skips the quality bar, not the limits."
    )
    best_effort: bool = Field(
        default=False,
        description="When nothing is adequate, take the best-scoring model that fits.",
    )
    allow_unscored: bool = Field(
        default=False, description="Treat a model with no score for this kind as adequate."
    )

    @classmethod
    def build(cls, **fields: Any) -> TaskSpec:
        """Validate at a boundary; the first problem becomes ``InvalidInput(field=...)``."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            raise InvalidInput(_message(field, first), field=field) from None


def _message(field: str | None, error: Any) -> str:
    value = error.get("input")
    if field == "kind" and error["type"] == "enum":
        kinds = ", ".join(k.value for k in TaskKind)
        return f"unknown task kind {value!r}; use one of: {kinds}"
    if error["type"] == "extra_forbidden":
        return f"unknown task field {field!r}"
    return f"{field}: {error['msg']} (got {value!r})"
