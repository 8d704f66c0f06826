"""Read public per-request outcome logs (the RouterBench jsonl format) into ``Outcome`` rows.

Two files: the outcomes (one row per model and query: ``query_id``, ``category``, ``model``,
``score`` in [0, 1], ``cost_usd``) and the prompts (one row per query: ``query_id``,
``category``, ``prompt``). The category becomes the task kind. Replay and ``yard route import``
share this parser so a file that one accepts the other accepts too; a malformed line is an
``InvalidInput`` naming the file, line and field, raised before anything is returned.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .outcomes import Outcome, OutcomeSource


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})", field=str(path)) from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path}:{number}: not JSON ({exc.msg})",
                                   field=f"line {number}") from exc
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}:{number}: expected a JSON object",
                                   field=f"line {number}")
            yield number, row


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: field '{key}' must be a non-empty string", field=key)
    return value


def _number(row: dict[str, Any], key: str, where: str, *, required: bool) -> float | None:
    value = row.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where}: field '{key}' must be a number", field=key)
    return float(value)


def read_prompts(path: Path) -> dict[str, tuple[str, str]]:
    """``query_id -> (category, prompt)`` from a prompts file."""
    prompts: dict[str, tuple[str, str]] = {}
    for number, row in _rows(path):
        where = f"{path}:{number}"
        prompts[_text(row, "query_id", where)] = (_text(row, "category", where),
                                                  _text(row, "prompt", where))
    if not prompts:
        raise InvalidInput(f"{path}: no prompts", field=str(path))
    return prompts


def read_outcomes(path: Path, prompts_path: Path,
                  source: OutcomeSource = OutcomeSource.imported) -> list[Outcome]:
    """Every outcome row of ``path`` joined with its prompt; a prompt missing is an error."""
    prompts = read_prompts(prompts_path)
    outcomes: list[Outcome] = []
    for number, row in _rows(path):
        where = f"{path}:{number}"
        query_id = _text(row, "query_id", where)
        model = _text(row, "model", where)
        score = _number(row, "score", where, required=True)
        assert score is not None
        if not 0.0 <= score <= 1.0:
            raise InvalidInput(f"{where}: field 'score' must be in [0, 1], got {score:g}",
                               field="score")
        cost = _number(row, "cost_usd", where, required=False)
        if cost is not None and cost < 0:
            raise InvalidInput(f"{where}: field 'cost_usd' must be >= 0", field="cost_usd")
        if query_id not in prompts:
            raise InvalidInput(f"{where}: query_id '{query_id}' has no prompt in {prompts_path}",
                               field="query_id")
        category, prompt = prompts[query_id]
        kind = row.get("category", category)
        if not isinstance(kind, str) or not kind:
            raise InvalidInput(f"{where}: field 'category' must be a non-empty string",
                               field="category")
        outcomes.append(Outcome(model=model, kind=kind, item_id=query_id, text=prompt,
                                score=score, source=source, cost_usd=cost))
    if not outcomes:
        raise InvalidInput(f"{path}: no outcomes", field=str(path))
    return outcomes
