"""The caller's routing knobs, one typed object from the API through the job to the cascade.

A REST job's ``options``, the chat endpoint's ``x-modelyard-*`` headers and the web form all
become a ``RoutingOptions``; the job row stores its JSON, the worker reads it back, and every
model-calling node turns it into its ``TaskSpec`` with ``spec``, so ``min_quality`` is the same
number at the API and in the decision the cascade records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInput
from ..taskspec import TaskSpec


class RoutingOptions(BaseModel):
    """Per-request routing options; every model-calling node honours them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_quality: float | None = Field(
        default=None, ge=0, le=1,
        description="Overrides every node's quality bar (a probability of an adequate answer "
        "where the predictor has evidence, else the measured per-kind score).",
    )
    max_cost_ratio: float | None = Field(
        default=None, gt=0, le=1,
        description="A cost budget: spend at most this fraction of always-the-best-model's "
        "cost (takes precedence over min_quality where the trained predictor serves the kind).",
    )
    model: str | None = Field(default=None, min_length=1,
                              description="Pin every node to this model.")
    best_effort: bool = Field(default=True, description="Use the best model that fits when "
                              "none meets the bar (a fresh install has no scores yet).")

    @classmethod
    def parse(cls, data: dict[str, Any] | None, *, prefix: str = "options") -> RoutingOptions:
        """Validate stored or posted options; the first problem is ``InvalidInput(field=...)``."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"{prefix}.{where}: {first['msg']}",
                               field=f"{prefix}.{where}") from None

    def stored(self) -> dict[str, Any]:
        """The JSON kept on the job row (unset fields left out, so old rows read the same)."""
        return self.model_dump(exclude_none=True)

    def spec(
        self,
        kind: str,
        *,
        min_quality: float = 0.0,
        max_output_tokens: int = 256,
        needs_json_schema: bool = False,
    ) -> TaskSpec:
        """The TaskSpec of one call: the node's own bar unless these options override it."""
        return TaskSpec.build(
            kind=kind,
            min_quality=min_quality if self.min_quality is None else self.min_quality,
            max_cost_ratio=self.max_cost_ratio,
            max_output_tokens=max_output_tokens,
            needs_json_schema=needs_json_schema,
            pinned_model=self.model,
            best_effort=self.best_effort,
        )


__all__ = ["RoutingOptions"]
