"""The public shapes of a routing explanation: the API body, `yard route explain --json`, pages.

One ``DecisionPublic`` for every reader, built from the library's ``Decision`` (``of``), so the
CLI, the API and the web show the same figures: each candidate's predicted quality, the evidence
behind it and its nearest examples, the measured per-kind score, the expected price, the verdict.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..taskspec import KIND_RE, TaskSpec
from .options import RoutingOptions
from .verdicts import Decision


class ExplainRequest(BaseModel):
    """What to explain: the request's text and its task, with the caller's routing options."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000,
                      description="The request as the user would send it.")
    kind: str = Field(default="chat", pattern=KIND_RE.pattern,
                      description="Task kind (built-in or an operator's own).")
    max_tokens: int = Field(default=256, ge=1, le=8192, description="Most output tokens.")
    json_schema: bool = Field(default=False, description="The output must follow a schema.")
    options: RoutingOptions = Field(default_factory=RoutingOptions)

    def spec(self) -> TaskSpec:
        return self.options.spec(self.kind, max_output_tokens=self.max_tokens,
                                 needs_json_schema=self.json_schema)


class NeighbourPublic(BaseModel):
    item_id: str
    text: str
    similarity: float
    score: float = Field(description="The grade this model got on that item.")


class CandidatePublic(BaseModel):
    name: str
    backend: str
    status: Literal["chosen", "adequate", "rejected"]
    quality: float | None = Field(description="What adequacy was judged on: the predicted "
                                  "quality when basis is prediction, else the per-kind score.")
    score: float | None = Field(description="Measured per-kind score.")
    predicted_quality: float | None = Field(
        description="Predicted probability of an adequate answer to this request.")
    evidence: float | None = Field(description="Effective number of outcomes behind it.")
    neighbours: list[NeighbourPublic] = Field(description="Nearest evaluated items.")
    expected_cost_usd: float
    expected_latency_s: float | None
    reason: str


class DecisionPublic(BaseModel):
    kind: str
    min_quality: float
    basis: Literal["prediction", "score"]
    rule: str
    threshold: float = Field(description="The bar adequacy was judged against.")
    chosen: str | None
    reason: str
    best_effort: bool
    predictor_version: str | None = None
    candidates: list[CandidatePublic]

    @classmethod
    def of(cls, decision: Decision, predictor_version: str | None = None) -> DecisionPublic:
        return cls.model_validate(
            {**decision.to_dict(),
             "predictor_version": predictor_version if decision.basis == "prediction" else None}
        )


__all__ = ["CandidatePublic", "DecisionPublic", "ExplainRequest", "NeighbourPublic"]
