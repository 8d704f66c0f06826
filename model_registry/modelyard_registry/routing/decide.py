"""TaskSpec (+ predictions) -> Decision: the adequate model the rule prefers, with every reason.

``decide`` is a pure function of the spec, prompt token counts, a snapshot of the catalogue
(``Candidate``: capabilities, limits, prices, health, measured scores and speed), this machine's
limits and, optionally, the predictor's per-request ``Prediction``s; it does no I/O, so it is
unit-tested with hand-built catalogues and runs in microseconds.

A candidate is adequate when it is enabled, not unhealthy (unknown health is allowed: a fresh
remote entry has not been probed yet), has the capabilities the task needs, its context window
fits prompt + max output (for local models the effective window is ``min(context_length,
n_ctx)``), it fits the RAM budget if local, its expected latency fits the budget if one is given,
and its quality reaches the bar.  The quality is the *predicted* probability of an adequate answer
to this request when predictions are given (the predictor has evidence for the kind), and the bar
is the threshold the ``DecisionRule`` maps ``min_quality`` to; otherwise it is the measured
per-kind score against ``min_quality`` itself.  That score (``Candidate.scores``) is the low end
of the 95% interval over the items measured (``confidence.routed_score``, applied by
``snapshot``), not the bare mean: 3 lucky items (3/3 -> 0.44) must not clear a bar that a model
measured on 13 (0.85 -> 0.58) clears on evidence.  A model with neither is not adequate unless
``allow_unscored``.

Expected cost and latency are for the tokens a call is expected to generate: the model's measured
mean answer length for the kind (``Candidate.output_tokens``, from the evals), capped by the
request's max tokens; the context-window check still reserves the full max tokens.

Among adequate candidates the rule picks: the cheapest (ties to the higher quality, then the name),
or, for a rule with a ``lam``, the highest predicted quality minus ``lam`` x expected cost as a
fraction of the priciest adequate candidate's.  The cascade tries them in that same order.

A pinned model skips the quality bar (the caller has decided) but not the hard limits.  With
``best_effort`` and nothing adequate, the best-quality model that fits the hard limits is chosen
and the decision is flagged ``best_effort``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog import Capability
from ..errors import CapabilityMissing, InvalidInput, NotFound
from ..pricing import PER_MILLION, SECONDS_PER_HOUR
from ..taskspec import TaskKind, TaskSpec
from .candidates import Candidate, MachineLimits
from .outcomes import Prediction
from .policy import rule_for
from .verdicts import (
    PINNED_OUT,
    Basis,
    CandidateVerdict,
    Decision,
    Failure,
    Row,
    closeness,
    rank_key,
)

_DISABLED: Failure = ("disabled", ())
_UNHEALTHY: Failure = ("unhealthy", ())
_EMBEDDINGS_ONLY: Failure = ("serves embeddings only", ())


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """How ``min_quality`` becomes a bar on predicted probabilities, and how to rank.

    ``threshold`` is the calibrated probability an adequate candidate's prediction must reach;
    ``lam`` is None for the threshold rule (cheapest adequate) or the weight of relative cost in
    the utility rule.  ``routing.policy`` chooses one per ``min_quality``; without it the bar is
    ``min_quality`` itself and the cheapest adequate wins.
    """

    name: str = "cheapest adequate"
    threshold: float = 0.0
    lam: float | None = None


def identity_rule(min_quality: float) -> DecisionRule:
    """The literal rule: predicted p >= min_quality, cheapest first."""
    return DecisionRule(threshold=min_quality)


def policy_rule(min_quality: float) -> DecisionRule:
    """The rule ``routing.policy`` serves ``min_quality`` with (measured in replay).

    The utility rule (lambda = (1 - q) / q) for most of the range, where every candidate with a
    prediction competes on predicted quality minus relative cost; the threshold rule (literal
    p >= q, cheapest first) at 0 and at the very top.
    """
    rule, value = rule_for(min_quality)
    if rule == "threshold":
        return DecisionRule(name="threshold", threshold=value)
    return DecisionRule(name="utility", threshold=0.0, lam=value)


def decide(
    spec: TaskSpec,
    prompt_tokens: dict[str, int] | int,
    candidates: list[Candidate],
    limits: MachineLimits,
    predictions: Mapping[str, Prediction] | None = None,
    rule: DecisionRule | None = None,
) -> Decision:
    """Pick the adequate candidate the rule prefers; pure, raises only for bad input.

    ``prompt_tokens`` is one count for every candidate, or a count per candidate name (each
    counted by that model's own tokenizer); a name missing from the dict gets the largest count.
    ``predictions`` (by model name) switch adequacy from the per-kind score to the predicted
    probability; ``rule`` maps ``min_quality`` to that bar (``identity_rule`` when omitted).
    Raises ``InvalidInput`` for negative counts, ``NotFound`` for a pinned model that is not in
    the catalogue, ``CapabilityMissing`` for a pinned model that lacks a needed capability.
    """
    if isinstance(prompt_tokens, int):
        default_tokens, per_model = prompt_tokens, None
    else:
        per_model = prompt_tokens
        default_tokens = max(prompt_tokens.values(), default=0)
        if min(prompt_tokens.values(), default=0) < 0:
            raise InvalidInput("prompt token counts must be >= 0", field="prompt_tokens")
    if default_tokens < 0:
        raise InvalidInput("prompt token count must be >= 0", field="prompt_tokens")
    required = _required(spec)
    kind = str(spec.kind)
    pinned = spec.pinned_model
    if pinned is not None:
        _check_pinned(pinned, required, candidates)

    predicted = bool(predictions)
    predicted_for = predictions.get if predictions else None
    if rule is None:
        rule = identity_rule(spec.min_quality)
    out_tokens = spec.max_output_tokens
    bar = rule.threshold if predicted else spec.min_quality
    budget_s = spec.latency_budget_s
    allow_unscored = spec.allow_unscored
    is_chat = kind == TaskKind.chat
    # The arithmetic of expected_cost (and the latency it implies), inlined: this loop
    # runs once per catalogue entry per request (target: p99 < 1 ms for 1,000 entries).
    rate = limits.machine_cost_per_hour / SECONDS_PER_HOUR
    unmeasured = limits.unmeasured_tokens_per_s
    factor = limits.prefill_factor
    n_ctx = limits.n_ctx
    ram_budget = limits.ram_budget_bytes
    entries: list[CandidateVerdict | Row] = []
    adequate: list[CandidateVerdict] = []
    append = entries.append
    for c in candidates:
        name = c.name
        tokens = default_tokens if per_model is None else per_model.get(name, default_tokens)
        quality = score = c.mean_score if is_chat else c.scores.get(kind)
        prediction = None
        if predicted_for is not None:
            prediction = predicted_for(name)
            if prediction is not None:
                quality = prediction.p
        tps = c.tokens_per_s
        local = c.is_local
        latency: float | None
        # expected_output_tokens, inlined: the measured answer length, capped by max tokens
        lengths = c.output_tokens
        mean_out = ((sum(lengths.values()) / len(lengths) if lengths else None) if is_chat
                    else lengths.get(kind))
        out = out_tokens if mean_out is None else min(out_tokens, max(1, round(mean_out)))
        if local:
            tps = tps or unmeasured
            latency = tokens / (c.prefill_tokens_per_s or tps * factor) + out / tps
            cost = latency * rate
        else:
            cost = (tokens * c.price_in + out * c.price_out) / PER_MILLION
            latency = (tokens / (c.prefill_tokens_per_s or tps * factor) + out / tps
                       if tps else None)
        if pinned is not None and name != pinned:
            append((name, c.backend, quality, cost, latency, False, PINNED_OUT, score))
            continue

        failures: list[Failure] = []
        if not c.enabled:
            failures.append(_DISABLED)
        if c.health == "unhealthy":
            failures.append(_UNHEALTHY)
        for cap in required:
            if cap not in c.capabilities:
                failures.append(("lacks {}", (cap,)))
        if c.embeddings_only:
            failures.append(_EMBEDDINGS_ONLY)
        window = c.context_length
        if local and (not window or window > n_ctx):
            window = n_ctx
        needed = tokens + out_tokens
        if window is not None and needed > window:
            failures.append(("context window {} < {} tokens needed", (window, needed)))
        if local and c.ram_bytes is not None and c.ram_bytes > ram_budget:
            failures.append(("needs {} MB RAM, budget {} MB",
                             (c.ram_bytes // 2**20, ram_budget // 2**20)))
        if budget_s is not None and latency is not None and latency > budget_s:
            failures.append(("expected {:.2g} s > latency budget {:g} s", (latency, budget_s)))
        fits = not failures
        if pinned is None:
            if quality is None:
                if not allow_unscored:
                    failures.append(("no {} score (run: yard models eval {})", (kind, name)))
            elif quality < bar:
                if prediction is None:
                    failures.append(("quality {:.2f} < {:.2f} required", (quality, bar)))
                else:
                    failures.append(("predicted quality {:.2f} < {:.2f} required "
                                     "(evidence {:.1f})", (quality, bar, prediction.evidence)))
        if failures:
            append((name, c.backend, quality, cost, latency, fits, failures, score))
        else:
            v = CandidateVerdict(name, c.backend, quality, cost, latency, "adequate", None, True,
                                 None, score, prediction)
            append(v)
            adequate.append(v)
    basis: Basis = "prediction" if predicted else "score"
    return _conclude(spec, entries, adequate, rule, bar, basis, predictions)


def _required(spec: TaskSpec) -> tuple[str, ...]:
    caps = []
    if spec.needs_json_schema:
        caps.append(Capability.json_schema.value)
    if spec.needs_tools:
        caps.append(Capability.tools.value)
    return tuple(caps)


def _check_pinned(pinned: str, required: tuple[str, ...], candidates: list[Candidate]) -> None:
    match = next((c for c in candidates if c.name == pinned), None)
    if match is None:
        raise NotFound(f"pinned model {pinned!r} is not in the catalogue", field="pinned_model")
    missing = [cap for cap in required if cap not in match.capabilities]
    if missing:
        raise CapabilityMissing(
            f"pinned model {pinned!r} lacks {', '.join(missing)}", field="pinned_model"
        )


def order(adequate: list[CandidateVerdict], rule: DecisionRule | None) -> list[CandidateVerdict]:
    """Adequate candidates in the rule's preference order (sorted in place and returned)."""
    if rule is None or rule.lam is None:
        adequate.sort(key=rank_key)
        return adequate
    lam = rule.lam
    top = max((v.expected_cost_usd for v in adequate), default=0.0) or 1.0

    def utility(v: CandidateVerdict) -> tuple[float, float, str]:
        q = v.quality if v.quality is not None else 0.0
        return (-(q - lam * v.expected_cost_usd / top), v.expected_cost_usd, v.name)

    adequate.sort(key=utility)
    return adequate


def _conclude(
    spec: TaskSpec,
    entries: list[CandidateVerdict | Row],
    adequate: list[CandidateVerdict],
    rule: DecisionRule,
    bar: float,
    basis: Basis,
    predictions: Mapping[str, Prediction] | None,
) -> Decision:
    kind, min_q = str(spec.kind), spec.min_quality
    by_prediction = basis == "prediction"
    label = "predicted quality" if by_prediction else "quality"
    utility = by_prediction and rule.lam is not None
    rule_name = rule.name if by_prediction else "cheapest adequate"
    kept = dict(predictions) if predictions else None
    if adequate:
        order(adequate, rule if utility else None)
        chosen = adequate[0]
        chosen.status = "chosen"
        head = (f"best utility (quality - {rule.lam:g} x relative cost)" if utility
                else "cheapest adequate")
        if spec.pinned_model is not None:
            chosen.reason = "pinned by the caller (quality bar skipped)"
        elif chosen.quality is None:
            chosen.reason = f"{head}: ${chosen.expected_cost_usd:.3g} expected, unscored, allowed"
        else:
            chosen.reason = (f"{head}: ${chosen.expected_cost_usd:.3g} expected, "
                             f"{label} {chosen.quality:.2f} >= {bar:.2f}")
            if chosen.prediction is not None:
                chosen.reason += f" (evidence {chosen.prediction.evidence:.1f})"
        cheapest = chosen.expected_cost_usd
        for v in adequate[1:]:  # rendered lazily, like rejection reasons (no setter: hot)
            if v.quality is None:
                v._failures = [("adequate (unscored, allowed) but ${:.3g} expected > ${:.3g}",
                               (v.expected_cost_usd, cheapest))]
            elif utility:
                v._failures = [("adequate ({} {:.2f} >= {:.2f}) but ranked below {} by utility",
                               (label, v.quality, bar, chosen.name))]
            else:
                v._failures = [("adequate ({} {:.2f} >= {:.2f}) but ${:.3g} expected > ${:.3g}",
                               (label, v.quality, bar, v.expected_cost_usd, cheapest))]
        return Decision(kind, min_q, chosen, f"{chosen.name}: {chosen.reason}", entries,
                        basis=basis, rule=rule_name, threshold=bar, predictions=kept,
                        order=list(adequate))

    # Nothing adequate (the rare path): materialise every verdict to explain it.
    decision = Decision(kind, min_q, None, "", entries, basis=basis, rule=rule_name,
                        threshold=bar, predictions=kept)
    verdicts = decision.candidates
    considered = [v for v in verdicts if v.failures is not PINNED_OUT]
    closest = min(considered, key=closeness, default=None)
    decision.closest = closest
    fitting = [v for v in considered if v.fits]
    if spec.best_effort and spec.pinned_model is None and fitting:
        best = min(fitting, key=lambda v: (-(v.quality if v.quality is not None else -1.0),
                                           v.expected_cost_usd, v.name))
        best.status = "chosen"
        best.reason = f"best effort, not adequate: {best.reason}"
        decision.chosen, decision.best_effort = best, True
        decision.reason = (f"{best.name}: no model is adequate for {kind} at quality "
                           f"{min_q:.2f}; {best.reason}")
    elif closest is None:
        decision.reason = f"no model in the catalogue for {kind}"
    else:
        decision.reason = (f"no adequate model for {kind} (min quality {min_q:.2f}): closest is "
                           f"{closest.name!r}, which has: {closest.reason}")
    return decision


__all__ = ["DecisionRule", "decide", "identity_rule", "order", "policy_rule"]
