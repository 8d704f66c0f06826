"""Run suites on a model and store what was measured: quality, its interval, and speed.

Speed is measured on the same calls: ``tokens_per_s`` is the generation rate after the first
token, ``sum(completion_tokens - 1) / sum(latency - ttft)``, so that together with the mean
latency and token counts the router can derive the prompt-processing rate
(``pricing.prefill_rate``) and price local models by expected wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, delete

from ..catalog import Backend, Capability, ModelEntry, get_model
from ..errors import InvalidInput
from ..runtimes import Completion, Runtime, RuntimeFactory
from ..scores import Score
from .metrics import METRICS, SCORERS, interval, rouge_l_f1
from .prompts import build_request
from .suites import SUITE_KINDS, Suite, check_kind, load_suite

ItemCallback = Callable[[str, int, int], None]  # (kind, done, total)


@dataclass
class ItemResult:
    id: str
    score: float
    output: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ttft_s: float


@dataclass
class SuiteResult:
    model: str
    kind: str
    suite_version: str
    items: list[ItemResult] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return METRICS[self.kind]

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def value(self) -> float:
        return sum(i.score for i in self.items) / self.n if self.items else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return interval(self.kind, [i.score for i in self.items])

    @property
    def tokens_per_s(self) -> float | None:
        generated = sum(max(i.completion_tokens - 1, 0) for i in self.items)
        seconds = sum(max(i.latency_s - i.ttft_s, 0.0) for i in self.items)
        return generated / seconds if generated and seconds > 0 else None

    @property
    def latency_s(self) -> float | None:
        return sum(i.latency_s for i in self.items) / self.n if self.items else None

    @property
    def prompt_tokens_mean(self) -> float | None:
        return sum(i.prompt_tokens for i in self.items) / self.n if self.items else None

    @property
    def completion_tokens_mean(self) -> float | None:
        return sum(i.completion_tokens for i in self.items) / self.n if self.items else None

    def to_dict(self) -> dict[str, Any]:
        low, high = self.ci
        return {
            "model": self.model,
            "kind": self.kind,
            "metric": self.metric,
            "value": round(self.value, 4),
            "ci_low": round(low, 4),
            "ci_high": round(high, 4),
            "n": self.n,
            "suite_version": self.suite_version,
            "tokens_per_s": _round(self.tokens_per_s, 2),
            "latency_s": _round(self.latency_s, 4),
            "prompt_tokens_mean": _round(self.prompt_tokens_mean, 1),
            "completion_tokens_mean": _round(self.completion_tokens_mean, 1),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def speaks_chat(entry: ModelEntry) -> bool:
    """Remote servers always take chat messages; local models need a chat template."""
    return entry.backend == Backend.openai_compatible or Capability.chat in entry.capabilities


def score_item(kind: str, item: dict[str, Any], done: Completion) -> ItemResult:
    return ItemResult(
        id=str(item["id"]),
        score=SCORERS[kind](done.text, item),
        output=done.text,
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        latency_s=done.latency_s,
        ttft_s=done.ttft_s,
    )


def run_suite(
    runtime: Runtime,
    model: str,
    suite: Suite,
    *,
    chat: bool,
    on_item: ItemCallback | None = None,
) -> SuiteResult:
    """Every item of ``suite`` on ``runtime``; a backend error aborts the suite (nothing stored)."""
    result = SuiteResult(model, suite.kind, suite.version)
    total = len(suite.items)
    for done_count, item in enumerate(suite.items, start=1):
        done = runtime.generate(build_request(suite.kind, item, chat))
        result.items.append(score_item(suite.kind, item, done))
        if on_item is not None:
            on_item(suite.kind, done_count, total)
    return result


def rouge_l(result: SuiteResult, suite: Suite) -> float:
    """Mean ROUGE-L F1 of a summarize run against the references (for reports)."""
    refs = {str(item["id"]): item["reference"] for item in suite.items}
    scores = [rouge_l_f1(i.output, refs[i.id]) for i in result.items]
    return sum(scores) / len(scores) if scores else 0.0


def store_score(session: Session, result: SuiteResult) -> Score:
    """Insert the Score, replacing an older one for the same (model, kind, suite version)."""
    low, high = result.ci
    session.exec(  # type: ignore[call-overload]
        delete(Score).where(
            col(Score.model_name) == result.model,
            col(Score.kind) == result.kind,
            col(Score.suite_version) == result.suite_version,
        )
    )
    score = Score(
        model_name=result.model,
        kind=result.kind,
        metric=result.metric,
        value=min(1.0, max(0.0, result.value)),
        n=result.n,
        ci_low=low,
        ci_high=high,
        suite_version=result.suite_version,
        tokens_per_s=result.tokens_per_s,
        latency_s=result.latency_s,
        prompt_tokens_mean=result.prompt_tokens_mean,
        completion_tokens_mean=result.completion_tokens_mean,
    )
    session.add(score)
    session.commit()
    session.refresh(score)
    return score


def plan_suites(kinds: Sequence[str] | None, limit: int | None) -> list[Suite]:
    """Check the request before any model runs: unknown kinds and bad limits fail first."""
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be >= 1", field="limit")
    chosen = list(dict.fromkeys(check_kind(k) for k in kinds)) if kinds else list(SUITE_KINDS)
    return [load_suite(kind).head(limit) for kind in chosen]


def evaluate_model(
    session: Session,
    runtimes: RuntimeFactory,
    name: str,
    *,
    kinds: Sequence[str] | None = None,
    limit: int | None = None,
    on_item: ItemCallback | None = None,
) -> list[SuiteResult]:
    """Run the suites on one catalogue model and store a Score per kind as each suite ends."""
    suites = plan_suites(kinds, limit)
    entry = get_model(session, name)
    runtime = runtimes.for_entry(entry)
    chat = speaks_chat(entry)
    results = []
    for suite in suites:
        result = run_suite(runtime, name, suite, chat=chat, on_item=on_item)
        store_score(session, result)
        results.append(result)
    return results
