"""A job shaped for its page: step states from its events, model calls per step, totals."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard_platform.api.schemas import CallPublic
from modelyard_platform.models import TERMINAL, Job, JobEvent, JobStatus

StepState = Literal["pending", "running", "done", "skipped"]
RESULT_VIEWS = {"ticket-triage": "triage", "doc-summary": "summary", "extract": "extract"}


@dataclass
class Step:
    name: str
    state: StepState = "pending"
    runs: int = 0
    cost_usd: float = 0.0
    calls: list[CallPublic] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The models that answered for this step (the last attempt of each call)."""
        accepted = [c.model for c in self.calls if c.outcome == "accepted"]
        return list(dict.fromkeys(accepted or [c.model for c in self.calls]))


def steps_of(product_steps: Iterable[str], events: Iterable[JobEvent],
             calls: Iterable[CallPublic], status: JobStatus) -> list[Step]:
    """One box per product step; a step that never ran in a finished job is 'skipped'."""
    steps = {name: Step(name) for name in product_steps}
    for event in events:
        node = event.data.get("node")
        step = steps.get(str(node)) if node is not None else None
        if step is None:
            continue
        if event.type == "node_started":
            step.state = "running"
            step.runs += 1
        elif event.type == "node_finished":
            step.state = "done"
            step.cost_usd += float(event.data.get("cost_usd") or 0.0)
    for call in calls:
        step = steps.get(call.node or "")
        if step is not None:
            step.calls.append(call)
    if status in TERMINAL:
        for step in steps.values():
            if step.state == "pending":
                step.state = "skipped"
            elif step.state == "running" and status != JobStatus.succeeded:
                step.state = "pending"  # interrupted: it never finished
    return list(steps.values())


@dataclass(frozen=True)
class Totals:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float


def totals(calls: list[CallPublic]) -> Totals:
    return Totals(
        calls=len(calls),
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
        latency_s=sum(c.latency_s for c in calls),
        cost_usd=sum(c.cost_usd for c in calls),
    )


def result_view(product: str) -> str:
    """Which result template shows this product's output to people."""
    return RESULT_VIEWS.get(product, "generic")


def is_terminal(job: Job) -> bool:
    return job.status in TERMINAL


def cell(value: Any) -> str:
    """A value for a table cell: scalars as they are, lists joined, objects as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
