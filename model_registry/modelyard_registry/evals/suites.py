"""The built-in eval suites: one JSONL file per task kind, shipped as package data.

A suite's version is a hash of its file and of its metric's revision (``METRIC_REVISIONS``), so
editing an item or the grading gives new Scores instead of silently mixing results from two
different suites.  A run on N items only (``--limit``, the quick
evaluation at pull time) takes a spread sample, not the first N, and is versioned
``<version>:sample<N>``: a partial run never passes for a full one.  Operators' own suites
(``store``) are ``Suite`` values too, named apart from their kind and graded by a ``Grader``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InvalidInput
from ..taskspec import TaskKind
from .custom import Grader

SUITE_KINDS: tuple[str, ...] = (
    TaskKind.classify.value,
    TaskKind.extract.value,
    TaskKind.summarize.value,
    TaskKind.qa.value,
    TaskKind.tools.value,
)
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "classify": ("id", "text", "labels", "gold"),
    "extract": ("id", "text", "schema", "gold"),
    "summarize": ("id", "text", "reference", "key_facts"),
    "qa": ("id", "context", "question", "answers"),
    "tools": ("id", "text", "tools", "gold"),
}


@dataclass(frozen=True)
class Suite:
    kind: str
    version: str
    items: tuple[dict[str, Any], ...]
    name: str = ""
    grader: Grader | None = None

    @property
    def suite_name(self) -> str:
        """A built-in suite is named by its kind; a custom one by its own name."""
        return self.name or self.kind

    def sample(self, limit: int | None) -> Suite:
        """``limit`` items spread over the suite (``sample_items``), versioned apart from it."""
        if limit is None or limit >= len(self.items):
            return self
        return dataclasses.replace(self, version=f"{self.version}:sample{limit}",
                                   items=sample_items(self.items, limit))


def sample_items(items: Sequence[dict[str, Any]], limit: int) -> tuple[dict[str, Any], ...]:
    """``limit`` items chosen by a fixed hash of their ids, kept in file order.

    Not the first ``limit``: the files open with hand-written items whose gold label is often the
    first one listed (2 of the first 3 classify items), which is exactly what a model that always
    answers the first label gets right; and not every k-th either: the generated items repeat
    with a period, so a stride can land on one template (every 15th classify item has the first
    label as gold).  A hash of the id is a uniform sample that is the same on every run and
    machine, and a larger limit keeps the smaller one's items.
    """
    def key(pair: tuple[int, dict[str, Any]]) -> str:
        index, item = pair
        return hashlib.sha256(f"modelyard-sample:{item.get('id', index)}".encode()).hexdigest()

    chosen = sorted(enumerate(items), key=key)[:limit]
    return tuple(item for _, item in sorted(chosen, key=lambda pair: pair[0]))


def check_kind(kind: str) -> str:
    if kind not in SUITE_KINDS:
        raise InvalidInput(
            f"no eval suite for {kind!r}; suites: {', '.join(SUITE_KINDS)}"
            + (" (chat is scored as the mean of the others)" if kind == "chat" else ""),
            field="suite",
        )
    return kind


# A suite's version covers how it is graded too: a changed metric gives new Scores, so the old
# metric's rows stop counting (``scores.current_scores``: the newest suite wins) and models are
# measured again.  summarize 2: coverage x faithfulness x novelty x brevity (was coverage).
METRIC_REVISIONS: dict[str, bytes] = {"summarize": b"\nmetric revision 2"}


@cache
def load_suite(kind: str) -> Suite:
    """Parse and check ``data/<kind>.jsonl`` (cached: the files ship with the package)."""
    check_kind(kind)
    raw = resources.files(__package__).joinpath("data", f"{kind}.jsonl").read_bytes()
    items = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        missing = [f for f in REQUIRED_FIELDS[kind] if f not in item]
        if missing:
            raise ValueError(f"{kind}.jsonl line {number}: missing {', '.join(missing)}")
        items.append(item)
    digest = hashlib.sha256(raw + METRIC_REVISIONS.get(kind, b"")).hexdigest()[:12]
    return Suite(kind, f"{kind}-{digest}", tuple(items))
