"""A synthetic outcome set where only per-request routing can win.

One kind, two request types inside it (arithmetic and poems), three models: ``calc`` answers
arithmetic well and poems badly, ``bard`` the opposite, ``oracle-xl`` both, at 20x the price. Per
kind the two cheap models score about 0.5, so the per-kind rule must pay for ``oracle-xl`` to
reach a high bar; a router that reads the request can send each type to its cheap specialist.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from modelyard_registry.routing.outcomes import Outcome, OutcomeSource

MATH = ["sum", "add", "multiply", "divide", "subtract", "integer", "product", "number", "equals",
        "digits", "remainder", "square"]
POEM = ["haiku", "sonnet", "moon", "river", "autumn", "verse", "rhyme", "love", "ocean", "stanza",
        "whisper", "petals"]
PRICE = {"calc": 0.001, "bard": 0.001, "oracle-xl": 0.02}


def request(rng: random.Random, kind: str) -> str:
    words = rng.sample(MATH if kind == "math" else POEM, 6)
    lead = "Please answer the following request carefully and briefly."
    return f"{lead} " + " ".join(words) + f" {rng.randint(1, 99)}"


def outcomes(n: int = 160, seed: int = 3) -> list[Outcome]:
    rng = random.Random(seed)
    rows: list[Outcome] = []
    for i in range(n):
        kind = "math" if i % 2 == 0 else "poem"
        text = request(rng, kind)
        good = {"calc": kind == "math", "bard": kind == "poem", "oracle-xl": rng.random() < 0.95}
        for model, ok in good.items():
            noisy = ok if rng.random() < 0.92 else not ok
            rows.append(Outcome(model=model, kind="qa", item_id=f"q{i}", text=text,
                                score=1.0 if noisy else 0.0, source=OutcomeSource.imported,
                                cost_usd=PRICE[model]))
    return rows


def write_routerbench(rows: list[Outcome], directory: Path) -> tuple[Path, Path]:
    """The rows as RouterBench-format files (outcomes, prompts)."""
    directory.mkdir(parents=True, exist_ok=True)
    out, prompts = directory / "outcomes.jsonl", directory / "prompts.jsonl"
    seen: dict[str, str] = {}
    with out.open("w") as f:
        for o in rows:
            f.write(json.dumps({"query_id": o.item_id, "category": o.kind, "model": o.model,
                                "score": o.score, "cost_usd": o.cost_usd}) + "\n")
            seen[o.item_id] = o.text
    with prompts.open("w") as f:
        for item_id, text in seen.items():
            f.write(json.dumps({"query_id": item_id, "category": "qa", "prompt": text}) + "\n")
    return out, prompts
