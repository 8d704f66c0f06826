"""The built-in eval suites: one JSONL file per task kind, shipped as package data.

A suite's version is a hash of its file, so editing an item gives new Scores instead of silently
mixing results from two different suites.  A run on the first N items only is versioned
``<version>:first<N>``: a partial run never passes for a full one.  Operators' own suites
(``store``) are ``Suite`` values too, named apart from their kind and graded by a ``Grader``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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

    def head(self, limit: int | None) -> Suite:
        """The first ``limit`` items, versioned apart from the full suite."""
        if limit is None or limit >= len(self.items):
            return self
        return dataclasses.replace(self, version=f"{self.version}:first{limit}",
                                   items=self.items[:limit])


def check_kind(kind: str) -> str:
    if kind not in SUITE_KINDS:
        raise InvalidInput(
            f"no eval suite for {kind!r}; suites: {', '.join(SUITE_KINDS)}"
            + (" (chat is scored as the mean of the others)" if kind == "chat" else ""),
            field="suite",
        )
    return kind


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
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return Suite(kind, f"{kind}-{digest}", tuple(items))
