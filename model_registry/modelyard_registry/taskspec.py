"""What a task needs from a model: the router's only input besides the catalogue.

Every caller (a REST job, an OpenAI-style chat call with ``model="auto"``, one node of an agent
graph) describes its task with a ``TaskSpec``.  Build it with ``TaskSpec.build(**fields)`` at a
boundary: bad input becomes ``InvalidInput`` with ``field`` set, which the API maps to 422 and the
CLI to exit code 2, instead of a raw pydantic error.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidInput

KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


class TaskKind(StrEnum):
    """The built-in kinds of task; each but ``chat`` has a built-in eval suite of its own.

    Kinds are open names (``validate_kind``): an operator's own kind (``refund-triage``) is
    measured by their own suites (``yard evals add``) and routed like a built-in one.

    ``chat`` is generic chat with no suite: a model's quality for it is the mean of its measured
    scores across the other kinds (unscored when it has none).
    """

    classify = "classify"
    extract = "extract"
    summarize = "summarize"
    qa = "qa"
    tools = "tools"
    chat = "chat"


class TaskSpec(BaseModel):
    """The bar a model must clear and the limits it must fit, for one call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="A built-in kind (classify, extract, summarize, qa, chat) or "
                      "an operator's own, measured by a custom suite.")
    min_quality: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Measured score the model must reach."
    )
    max_cost_ratio: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="A cost budget instead of a quality bar: spend at most this fraction of "
        "always-the-best-model's cost (served where the predictor has a measured curve).",
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

    @field_validator("kind")
    @classmethod
    def _open_kind(cls, value: str) -> str:
        return validate_kind(value)

    @classmethod
    def build(cls, **fields: Any) -> TaskSpec:
        """Validate at a boundary; the first problem becomes ``InvalidInput(field=...)``."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            raise InvalidInput(_message(field, first), field=field) from None


def validate_kind(kind: str) -> str:
    """An open kind name; a built-in one comes back as its ``TaskKind`` member (a ``str``)."""
    if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
        raise ValueError(
            f"invalid task kind {kind!r}: use 2-40 lowercase letters, digits, '_' or '-', starting "
            f"with a letter (built-in: {', '.join(k.value for k in TaskKind)})"
        )
    return TaskKind(kind) if kind in TaskKind.__members__ else kind


def check_kind_name(kind: str, *, field: str = "kind") -> str:
    """``validate_kind`` for the edges: a bad name is ``InvalidInput`` naming ``field``."""
    try:
        return validate_kind(kind)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None


def _message(field: str | None, error: Any) -> str:
    value = error.get("input")
    if field == "kind" and error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if field == "kind" and error["type"] == "string_type":
        return f"task kind must be a string, got {value!r}"
    if error["type"] == "extra_forbidden":
        return f"unknown task field {field!r}"
    return f"{field}: {error['msg']} (got {value!r})"
