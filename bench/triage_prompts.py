"""Ticket-triage category accuracy per ladder rung: the product's prompt vs the earlier one.

The earlier prompt named the labels in one line of the system message ("Pick the category
(billing, shipping, ...)"); the small Qwen rungs then answer the first label, ``billing``, for
most tickets.  The product's prompt (``ticket_triage.classify_messages``) defines every label.
Both run the classify node's exact request (JSON-schema grammar over the label enums, 40 tokens,
temperature 0) on the first ``--items`` ticket-triage items of ``bench/data/products_gold.jsonl``,
on every model named, interleaved item by item so machine-load swings hit both prompts alike.

Prints, per model and prompt: category accuracy with its 95% Wilson interval, urgency accuracy,
the share of answers that were the first listed category, and seconds per item.  The category is
decided by this node alone, so with ``--prompts product`` the figures are the product's category
accuracy when every classify call goes to that model (``bench/products.py`` routed or pinned).

    MODELYARD_HOME=... .venv/bin/python bench/triage_prompts.py --items 20 \\
        --models smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b [--prompts product]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from modelyard_agents.nodes import chat
from modelyard_agents.products.ticket_triage import (
    CATEGORIES,
    LABEL_SCHEMA,
    URGENCIES,
    classify_messages,
)
from modelyard_registry.catalog import get_model
from modelyard_registry.db import session_scope
from modelyard_registry.evals.metrics import wilson_interval
from modelyard_registry.runtimes import GenerationRequest, RuntimeFactory
from modelyard_registry.settings import Settings

GOLD = Path(__file__).with_name("data") / "products_gold.jsonl"


def earlier_messages(subject: str, body: str) -> list[dict[str, str]]:
    return chat(
        "You triage customer support tickets. Pick the category "
        f"({', '.join(CATEGORIES)}) and the urgency ({', '.join(URGENCIES)}).",
        f"Subject: {subject}\n\n{body}",
    )


PROMPTS = {"earlier": earlier_messages, "product": classify_messages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--prompts", default=",".join(PROMPTS),
                        help="which prompts to run (default: both)")
    args = parser.parse_args()
    prompts = {name: PROMPTS[name] for name in args.prompts.split(",")}
    items = [i for i in map(json.loads, GOLD.read_text().splitlines())
             if i["product"] == "ticket-triage"][: args.items]
    settings = Settings()
    factory = RuntimeFactory(settings)
    stats: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with session_scope(settings.effective_database_url) as session:
        runtimes = {m: factory.for_entry(get_model(session, m)) for m in args.models.split(",")}
    try:
        for item in items:
            subject, body = item["input"]["subject"], item["input"]["body"]
            for model, runtime in runtimes.items():
                for prompt, build in prompts.items():
                    request = GenerationRequest(messages=build(subject, body), max_tokens=40,
                                                json_schema=LABEL_SCHEMA, temperature=0.0)
                    started = time.perf_counter()
                    done = runtime.generate(request)
                    answer: dict[str, Any] = json.loads(done.text)
                    s = stats[(model, prompt)]
                    s["n"] += 1
                    s["seconds"] += time.perf_counter() - started
                    s["category"] += answer.get("category") == item["gold"]["category"]
                    s["urgency"] += answer.get("urgency") == item["gold"]["urgency"]
                    s["first_label"] += answer.get("category") == CATEGORIES[0]
            report(stats, settings.n_threads)  # after every item: a cut-short run still reports
    finally:
        factory.close()


def report(stats: dict[tuple[str, str], dict[str, float]], threads: int) -> None:
    n_items = int(max((s["n"] for s in stats.values()), default=0))
    print(f"ticket-triage classify node, first {n_items} gold items, {threads} llama.cpp threads")
    print(f"{'model':<22}{'prompt':<10}{'category':>10}{'95% interval':>15}{'urgency':>10}"
          f"{'1st label':>11}{'s/item':>8}")
    for (model, prompt), s in stats.items():
        n = s["n"]
        low, high = wilson_interval(int(s["category"]), int(n))
        print(f"{model:<22}{prompt:<10}{s['category'] / n:>10.2f}{f'[{low:.2f}, {high:.2f}]':>15}"
              f"{s['urgency'] / n:>10.2f}"
              f"{s['first_label'] / n:>11.2f}{s['seconds'] / n:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
