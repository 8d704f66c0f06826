"""Run suites on a model and store what was measured: quality, its interval, and speed.

Speed is measured on the same calls: ``tokens_per_s`` is the generation rate after the first
token, ``sum(completion_tokens - 1) / sum(latency - ttft)``, so that together with the mean
latency and token counts the router can derive the prompt-processing rate
(``pricing.prefill_rate``) and price local models by expected wall time.

Each item's outcome (its text, score, tokens, cost and latency) is kept as routing evidence
(``evidence.EvalOutcome``) in the same transaction as the Score, replacing the previous run's.
Custom suites (``store``) run through the same path; their ``Grader`` builds the requests and
scores the answers, asking a judge model when the metric is ``judge``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, delete

from ..catalog import Backend, Capability, ModelEntry, get_model
from ..errors import InvalidInput
from ..evidence import EvalOutcome, replace_eval_outcomes
from ..evidence.tables import bounded
from ..pricing import local_cost, remote_cost
from ..runtimes import Completion, GenerationRequest, Runtime, RuntimeFactory
from ..scores import Score
from .custom import CustomItem, Metric
from .metrics import (
    METRICS,
    SCORERS,
    bootstrap_interval,
    interval,
    rouge_l_f1,
    tool_call_output,
    wilson_interval,
)
from .prompts import build_request
from .store import find_custom_suite
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
    text: str = ""


@dataclass
class SuiteResult:
    model: str
    kind: str
    suite_version: str
    items: list[ItemResult] = field(default_factory=list)
    suite: str = ""
    custom_metric: Metric | None = None
    binary: bool = False

    @property
    def suite_name(self) -> str:
        return self.suite or self.kind

    @property
    def judged(self) -> bool:
        return self.custom_metric == Metric.judge

    @property
    def metric(self) -> str:
        return self.custom_metric.value if self.custom_metric else METRICS[self.kind]

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def value(self) -> float:
        return sum(i.score for i in self.items) / self.n if self.items else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        scores = [i.score for i in self.items]
        if self.custom_metric is None:
            return interval(self.kind, scores)
        return (wilson_interval(sum(scores), len(scores)) if self.binary
                else bootstrap_interval(scores))

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
            "suite": self.suite_name,
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


def builtin_item_text(kind: str, item: dict[str, Any]) -> str:
    """What a built-in item asks, as routing evidence: the question and its context for qa."""
    if kind == "qa":
        return f"{item['question']}\n\n{item['context']}"
    return str(item["text"])


def answer_text(done: Completion) -> str:
    """What a scorer reads: the text, or the (first) tool call as ``tool_call_output`` JSON."""
    if done.tool_calls:
        call = done.tool_calls[0]
        return tool_call_output(call.name, call.arguments)
    return done.text


def score_item(kind: str, item: dict[str, Any], done: Completion) -> ItemResult:
    output = answer_text(done)
    return ItemResult(
        id=str(item["id"]),
        score=SCORERS[kind](output, item),
        output=output,
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        latency_s=done.latency_s,
        ttft_s=done.ttft_s,
        text=builtin_item_text(kind, item),
    )


def run_suite(
    runtime: Runtime,
    model: str,
    suite: Suite,
    *,
    chat: bool,
    on_item: ItemCallback | None = None,
    judge: Runtime | None = None,
) -> SuiteResult:
    """Every item of ``suite`` on ``runtime``; a backend error aborts the suite (nothing stored).

    ``judge`` grades the answers of a suite whose metric is ``judge``.
    """
    grader = suite.grader
    result = SuiteResult(model, suite.kind, suite.version, suite=suite.suite_name,
                         custom_metric=grader.metric if grader else None,
                         binary=grader.binary if grader else False)
    total = len(suite.items)
    for done_count, item in enumerate(suite.items, start=1):
        if grader is None:
            done = runtime.generate(build_request(suite.kind, item, chat))
            result.items.append(score_item(suite.kind, item, done))
        else:
            custom = CustomItem.model_validate(item)
            done = runtime.generate(grader.request(custom, chat))
            grade = None if judge is None else _judge_call(judge)
            result.items.append(ItemResult(
                id=custom.id, score=grader.score(done.text, custom, grade), output=done.text,
                prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
                latency_s=done.latency_s, ttft_s=done.ttft_s, text=custom.input,
            ))
        if on_item is not None:
            on_item(suite.suite_name, done_count, total)
    return result


def _judge_call(judge: Runtime) -> Callable[[GenerationRequest], str]:
    return lambda request: judge.generate(request).text


def rouge_l(result: SuiteResult, suite: Suite) -> float:
    """Mean ROUGE-L F1 of a summarize run against the references (for reports)."""
    refs = {str(item["id"]): item["reference"] for item in suite.items}
    scores = [rouge_l_f1(i.output, refs[i.id]) for i in result.items]
    return sum(scores) / len(scores) if scores else 0.0


def store_score(
    session: Session, result: SuiteResult, outcomes: Sequence[EvalOutcome] | None = None
) -> Score:
    """Insert the Score, replacing an older one for the same (model, kind, suite version).

    ``outcomes`` (the per-item evidence) replace the model's previous ones on this suite in the
    same transaction.
    """
    low, high = result.ci
    if outcomes is not None:
        replace_eval_outcomes(session, model=result.model, suite=result.suite_name, rows=outcomes)
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


def item_outcomes(result: SuiteResult, entry: ModelEntry, machine_cost_per_hour: float
                  ) -> list[EvalOutcome]:
    """The per-item evidence of a run, each priced as the router prices this model's calls."""
    local = entry.backend == Backend.llama_cpp
    return [
        EvalOutcome(
            model_name=result.model, kind=result.kind, suite=result.suite_name,
            suite_version=result.suite_version, item_id=i.id, text=bounded(i.text),
            score=min(1.0, max(0.0, i.score)), judged=result.judged,
            prompt_tokens=i.prompt_tokens, completion_tokens=i.completion_tokens,
            latency_s=i.latency_s,
            cost_usd=(local_cost(i.latency_s, machine_cost_per_hour) if local else
                      remote_cost(i.prompt_tokens, i.completion_tokens, entry.price_in,
                                  entry.price_out)),
        )
        for i in result.items
    ]


def plan_suites(kinds: Sequence[str] | None, limit: int | None,
                session: Session | None = None) -> list[Suite]:
    """Check the request before any model runs: unknown suites and bad limits fail first.

    A name is a built-in suite (its kind) or, given a ``session``, an operator's own suite.
    """
    if limit is not None and limit < 1:
        raise InvalidInput("--limit must be >= 1", field="limit")
    if not kinds:
        return [load_suite(kind).sample(limit) for kind in SUITE_KINDS]
    suites = []
    for name in dict.fromkeys(kinds):
        custom = find_custom_suite(session, name) if session is not None else None
        suite = custom if custom else load_suite(check_kind(name))
        suites.append(suite.sample(limit))
    return suites


def tool_suites_for(entry: ModelEntry, suites: list[Suite], *, explicit: bool) -> list[Suite]:
    """The ``tools`` suite runs only on models with the ``tools`` capability.

    Run by default, it is skipped for the others (they are never routed tool calls); asked for
    by name, it is a 422 naming the missing capability.
    """
    if Capability.tools in entry.capabilities:
        return suites
    if explicit and any(s.kind == "tools" and s.grader is None for s in suites):
        raise InvalidInput(f"model {entry.name!r} lacks the tools capability; the tools suite "
                           "needs it", field="suite")
    return [s for s in suites if not (s.kind == "tools" and s.grader is None)]


def evaluate_model(
    session: Session,
    runtimes: RuntimeFactory,
    name: str,
    *,
    kinds: Sequence[str] | None = None,
    limit: int | None = None,
    on_item: ItemCallback | None = None,
) -> list[SuiteResult]:
    """Run the suites on one catalogue model and store a Score per suite as each one ends.

    Each item's outcome is stored with the Score (see ``item_outcomes``).
    """
    suites = plan_suites(kinds, limit, session)
    entry = get_model(session, name)
    suites = tool_suites_for(entry, suites, explicit=bool(kinds))
    runtime = runtimes.for_entry(entry)
    chat = speaks_chat(entry)
    rate = runtimes.settings.machine_cost_per_hour
    results = []
    for suite in suites:
        judge = None
        if suite.grader is not None and suite.grader.config.judge_model:
            judge = runtimes.for_entry(get_model(session, suite.grader.config.judge_model))
        result = run_suite(runtime, name, suite, chat=chat, on_item=on_item, judge=judge)
        store_score(session, result, item_outcomes(result, entry, rate))
        results.append(result)
    return results
