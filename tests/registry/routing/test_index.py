"""``CatalogueIndex.decide`` (the vectorised decision over a snapshot) says what ``decide`` says.

Random catalogues exercise every rejection path (disabled, unhealthy, capabilities, windows,
RAM, latency budgets, unscored, quality bars, pinned models, nothing adequate); for each request
both decisions must pick the same model for the same reason, order the cascade alike and explain
every candidate word for word.
"""

from __future__ import annotations

import random

import pytest
from modelyard_registry.errors import CapabilityMissing, NotFound
from modelyard_registry.routing.candidates import Candidate, MachineLimits
from modelyard_registry.routing.decide import decide
from modelyard_registry.routing.index import CatalogueIndex
from modelyard_registry.routing.outcomes import Prediction
from modelyard_registry.taskspec import TaskSpec

KINDS = ("classify", "extract", "qa")
LIMITS = MachineLimits(ram_budget_bytes=4096 * 2**20, n_ctx=4096, machine_cost_per_hour=0.1)


def catalogue(size: int, rng: random.Random) -> list[Candidate]:
    out = []
    for i in range(size):
        local = rng.random() < 0.4
        caps = {"chat", "completion"}
        if rng.random() < 0.6:
            caps.add("json_schema")
        if rng.random() < 0.3:
            caps.add("tools")
        if rng.random() < 0.05:
            caps = {"embeddings"}
        price = rng.choice([0.0, 0.5, 1.0, 2.0])  # ties in cost: the order falls to quality, name
        out.append(Candidate(
            name=f"m{rng.randrange(1000):03d}-{i}",
            backend="llama_cpp" if local else "openai_compatible",
            capabilities=frozenset(caps),
            context_length=rng.choice([0, 2048, 4096, 8192, None]),
            price_in=0.0 if local else price,
            price_out=0.0 if local else price * 2,
            tokens_per_s=rng.choice([None, 0.0, 7.5, 40.0, 250.0]),
            health=rng.choice(["healthy", "unknown", "unhealthy"]),
            enabled=rng.random() < 0.9,
            ram_bytes=rng.choice([None, 512 * 2**20, 8192 * 2**20]) if local else None,
            scores={k: rng.choice([0.3, 0.5, 0.5, 0.8]) for k in KINDS if rng.random() < 0.7},
            prefill_tokens_per_s=rng.choice([None, 0.0, 900.0]),
            output_tokens={k: rng.choice([2.5, 3.5, 40.0, 900.0]) for k in KINDS
                           if rng.random() < 0.5},
        ))
    return out


def specs(rng: random.Random, names: list[str]) -> list[TaskSpec]:
    out = []
    for _ in range(40):
        pinned = rng.choice([None, None, None, rng.choice(names)])
        out.append(TaskSpec.build(
            kind=rng.choice([*KINDS, "chat", "summarize"]),
            min_quality=rng.choice([0.0, 0.4, 0.5, 0.7, 0.9]),
            max_output_tokens=rng.choice([16, 256, 4000]),
            needs_json_schema=rng.random() < 0.3,
            needs_tools=rng.random() < 0.1,
            latency_budget_s=rng.choice([None, None, 2.0, 60.0]),
            allow_unscored=rng.random() < 0.3,
            best_effort=rng.random() < 0.5,
            pinned_model=pinned,
        ))
    return out


def explained(d: object) -> tuple[object, ...]:
    from modelyard_registry.routing.verdicts import Decision

    assert isinstance(d, Decision)
    return (d.chosen.name if d.chosen else None, d.reason, d.basis, d.rule, d.threshold,
            d.best_effort, [v.to_dict() for v in d.ranked()],
            [v.to_dict() for v in d.candidates])


@pytest.mark.parametrize("seed", range(6))
def test_the_index_decides_as_the_loop_does(seed: int) -> None:
    rng = random.Random(seed)
    cands = catalogue(rng.choice([8, 60, 200]), rng)
    index = CatalogueIndex(cands, loop_below=0)
    chosen = 0
    for spec in specs(rng, [c.name for c in cands]):
        tokens: int | dict[str, int] = rng.choice([
            rng.randint(0, 5000),
            {c.name: rng.randint(0, 5000) for c in cands if rng.random() < 0.3},
        ])
        if isinstance(tokens, dict) and not tokens:
            tokens = 100
        try:
            expected = decide(spec, tokens, cands, LIMITS)
        except (NotFound, CapabilityMissing) as exc:
            with pytest.raises(type(exc)):
                index.decide(spec, tokens, LIMITS)
            continue
        got = index.decide(spec, tokens, LIMITS)
        # the pick and the cascade order first, before anything forces the full explanation
        assert (got.chosen.name if got.chosen else None) == (
            expected.chosen.name if expected.chosen else None)
        assert [v.name for v in got.ranked()] == [v.name for v in expected.ranked()]
        assert explained(got) == explained(expected)
        chosen += got.chosen is not None
    assert chosen > 0  # the fast path ran, not only the fallback


def test_the_pick_is_one_of_the_explained_candidates() -> None:
    cands = catalogue(30, random.Random(11))
    spec = TaskSpec.build(kind="chat", min_quality=0.0, allow_unscored=True)
    d = CatalogueIndex(cands, loop_below=0).decide(spec, 50, LIMITS)
    assert d.chosen is not None
    assert any(v is d.chosen for v in d.candidates)
    assert d.ranked()[0] is d.chosen


def test_predictions_take_the_loop() -> None:
    cands = catalogue(20, random.Random(5))
    names = [c.name for c in cands]
    predictions = {n: Prediction(model=n, p=0.9 if n == names[-1] else 0.1, evidence=5.0,
                                 prior=None, neighbours=()) for n in names}
    spec = TaskSpec.build(kind="qa", min_quality=0.5, allow_unscored=True)
    got = CatalogueIndex(cands, loop_below=0).decide(spec, 10, LIMITS, predictions)
    assert explained(got) == explained(decide(spec, 10, cands, LIMITS, predictions))
    assert got.basis == "prediction"


def test_the_front_prices_few_entries_and_picks_as_decide_at_every_length() -> None:
    """Entries that can never win are dropped once per kind of request, whatever the prompt.

    A catalogue of continuous prices and speeds (few exact ties) and one without a price: the
    dominance argument must hold at every prompt length and max, or a pick would differ.
    """
    import dataclasses
    import math

    rng = random.Random(23)
    cands = catalogue(300, rng)
    for i, c in enumerate(cands):
        if not c.is_local:
            cands[i] = dataclasses.replace(c, price_in=rng.uniform(0.05, 5.0),
                                           price_out=rng.uniform(0.1, 15.0))
    cands[7] = dataclasses.replace(cands[7], backend="openai_compatible", price_in=math.nan)
    index = CatalogueIndex(cands, loop_below=0)
    picked = 0
    for kind in ("classify", "chat"):
        for budget in (None, 3.0):
            for max_tokens in (16, 512):
                spec = TaskSpec.build(kind=kind, min_quality=0.45, max_output_tokens=max_tokens,
                                      latency_budget_s=budget, allow_unscored=budget is None)
                for tokens in range(0, 4200, 97):
                    got = index.decide(spec, tokens, LIMITS)
                    expected = decide(spec, tokens, cands, LIMITS)
                    assert (got.chosen.to_dict() if got.chosen else None) == (
                        expected.chosen.to_dict() if expected.chosen else None)
                    picked += got.chosen is not None
                front = index._front(spec, LIMITS)
                assert 0 < len(front) < len(cands) // 3  # most entries can never win
    assert picked > 100


def test_reading_the_whole_cascade_order_prices_the_catalogue_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cascade reads every adequate verdict (its reservation covers each one it may try):
    the catalogue's columns are computed once for all of them, not once per verdict."""
    cands = catalogue(200, random.Random(3))
    index = CatalogueIndex(cands, loop_below=0)
    spec = TaskSpec.build(kind="chat", min_quality=0.0, allow_unscored=True)
    calls: list[int] = []
    priced = index._columns

    def counted(*args: object) -> object:
        calls.append(1)
        return priced(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(index, "_columns", counted)
    ranked = index.decide(spec, 100, LIMITS).ranked()
    assert not calls  # the pick alone prices the front only
    assert len([v.name for v in ranked]) > 20
    assert len(calls) == 1
