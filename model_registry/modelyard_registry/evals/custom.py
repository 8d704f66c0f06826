"""Operators' own suites: item shape, the metrics that grade them, and the prompts that ask them.

An item is ``{"id", "input", "expected"}``: ``input`` is sent as the user message (the
operator's real request), ``expected`` is what the metric compares with.  Metrics:

| metric | ``expected`` | an answer scores |
|---|---|---|
| ``exact`` | a string | 1 when equal after normalisation (case, punctuation, articles) |
| ``label`` | one of the suite's ``labels`` | 1 when its label (raw or ``{"label"}``) matches |
| ``json-fields`` | an object | the share of its fields the answer's JSON gets right |
| ``contains`` | a string or a list of strings | 1 when every one appears (normalised) |
| ``regex`` | a Python regular expression | 1 when it matches anywhere in the answer |
| ``rouge-l`` | a reference text | ROUGE-L F1 against it |
| ``numeric`` | a number | 1 when the answer's first number is within ``tolerance`` |
| ``judge`` | optional reference | a registered model's 0-10 grade against ``rubric``, / 10 |

Judged outcomes are stored as weaker evidence (``OutcomeSource.judge``): a small model grading
another is a noisy signal.  Everything here is pure; ``store`` keeps suites in the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from ..runtimes import GenerationRequest
from ..validators import extract_label
from .metrics import normalize_text, rouge_l_f1, score_extract
from .prompts import label_schema


class Metric(StrEnum):
    exact = "exact"
    label = "label"
    json_fields = "json-fields"
    contains = "contains"
    regex = "regex"
    rouge_l = "rouge-l"
    numeric = "numeric"
    judge = "judge"


BINARY_METRICS = frozenset({Metric.exact, Metric.label, Metric.contains, Metric.regex,
                            Metric.numeric})
JUDGE_GRADES = list(range(11))
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


class SuiteConfig(BaseModel):
    """How a suite is asked and graded (stored with it; part of its version)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: list[str] | None = Field(default=None, description="label: the allowed labels.")
    tolerance: float = Field(default=0.0, ge=0, description="numeric: absolute tolerance.")
    judge_model: str | None = Field(default=None, description="judge: catalogue model grading.")
    rubric: str | None = Field(default=None, max_length=4000, description="judge: what to check.")
    instructions: str | None = Field(default=None, max_length=4000,
                                     description="A system message sent before each input.")
    max_tokens: int = Field(default=128, ge=1, le=4096, description="Most tokens per answer.")


class CustomItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=255)
    input: str = Field(min_length=1, max_length=100_000)
    expected: JsonValue = None


class ItemError(ValueError):
    """One item is malformed: ``field`` names which of its fields."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_config(metric: Metric, config: SuiteConfig) -> None:
    """What each metric needs from the suite (the judge model's existence is checked by store)."""
    if metric == Metric.label and (not config.labels or len(set(config.labels)) < 2):
        raise ConfigError("labels", "the label metric needs at least two distinct labels")
    if metric == Metric.judge:
        if not config.judge_model:
            raise ConfigError("judge_model", "the judge metric needs a judge model")
        if not config.rubric or not config.rubric.strip():
            raise ConfigError("rubric", "the judge metric needs a rubric")


def parse_item(raw: object, metric: Metric, config: SuiteConfig) -> CustomItem:
    """One item, checked against its metric; ``ItemError`` names the field at fault."""
    if not isinstance(raw, dict):
        raise ItemError("item", "expected a JSON object")
    try:
        item = CustomItem.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "item"
        raise ItemError(field, first["msg"]) from None
    _check_expected(item.expected, metric, config)
    return item


def _check_expected(expected: Any, metric: Metric, config: SuiteConfig) -> None:
    def bad(message: str) -> ItemError:
        return ItemError("expected", message)

    if metric == Metric.judge:
        if expected is not None and not isinstance(expected, str):
            raise bad("a judged item's expected is an optional reference string")
        return
    if expected is None:
        raise bad(f"the {metric.value} metric needs an expected value")
    textual = (Metric.exact, Metric.rouge_l, Metric.regex, Metric.label)
    if metric in textual and (not isinstance(expected, str) or not expected.strip()):
        raise bad("must be a non-empty string")
    if metric == Metric.label and expected not in (config.labels or []):
        raise bad(f"{expected!r} is not one of the labels {config.labels}")
    if metric == Metric.regex:
        try:
            re.compile(expected)
        except re.error as exc:
            raise bad(f"not a valid regular expression: {exc}") from None
    if metric == Metric.json_fields and (not isinstance(expected, dict) or not expected):
        raise bad("must be a non-empty JSON object")
    if metric == Metric.contains:
        parts = [expected] if isinstance(expected, str) else expected
        if not isinstance(parts, list) or not parts or not all(
            isinstance(p, str) and p.strip() for p in parts
        ):
            raise bad("must be a non-empty string or a list of non-empty strings")
    if metric == Metric.numeric and (isinstance(expected, bool)
                                     or not isinstance(expected, int | float)):
        raise bad("must be a number")


@dataclass(frozen=True)
class Grader:
    """A custom suite's metric and its configuration: builds each request, scores each answer."""

    metric: Metric
    config: SuiteConfig

    @property
    def binary(self) -> bool:
        return self.metric in BINARY_METRICS

    def request(self, item: CustomItem, chat: bool) -> GenerationRequest:
        cfg = self.config
        text, schema = item.input, None
        if self.metric == Metric.label:
            labels = list(cfg.labels or [])
            text = f"{item.input}\n\nAnswer with exactly one of: {', '.join(labels)}"
            schema = label_schema(labels)
        elif self.metric == Metric.json_fields and isinstance(item.expected, dict):
            schema = _fields_schema(item.expected)
        if chat:
            messages = [{"role": "user", "content": text}]
            if cfg.instructions:
                messages.insert(0, {"role": "system", "content": cfg.instructions})
            return GenerationRequest(messages=messages, json_schema=schema, temperature=0.0,
                                     max_tokens=cfg.max_tokens)
        prompt = f"{cfg.instructions}\n\n" if cfg.instructions else ""
        return GenerationRequest(prompt=f"{prompt}{text}\nAnswer: ", json_schema=schema,
                                 temperature=0.0, max_tokens=cfg.max_tokens)

    def score(self, output: str, item: CustomItem,
              judge: Callable[[GenerationRequest], str] | None = None) -> float:
        expected = item.expected
        answer = output.strip()
        if self.metric == Metric.exact:
            return float(normalize_text(answer) == normalize_text(str(expected)))
        if self.metric == Metric.label:
            return float(extract_label(answer).casefold() == str(expected).strip().casefold())
        if self.metric == Metric.json_fields:
            return score_extract(answer, {"gold": expected})
        if self.metric == Metric.contains:
            parts = [expected] if isinstance(expected, str) else expected
            assert isinstance(parts, list)
            haystack = f" {normalize_text(answer)} "
            return float(all(f" {normalize_text(str(p))} " in haystack for p in parts))
        if self.metric == Metric.regex:
            return float(re.search(str(expected), answer) is not None)
        if self.metric == Metric.rouge_l:
            return rouge_l_f1(answer, str(expected))
        if self.metric == Metric.numeric:
            return float(_numeric_match(answer, expected, self.config.tolerance))
        if judge is None:
            raise ValueError("the judge metric needs a judge runtime")
        return parse_grade(judge(self.judge_request(item, answer)))

    def judge_request(self, item: CustomItem, answer: str) -> GenerationRequest:
        reference = f"\nReference answer: {item.expected}" if item.expected else ""
        user = (
            f"Rubric: {self.config.rubric}\n\nRequest: {item.input}{reference}\n\n"
            f"Answer to grade: {answer}\n\nGrade the answer from 0 (fails the rubric) to 10 "
            "(fully meets it)."
        )
        schema = {"type": "object", "properties": {"grade": {"type": "integer",
                                                             "enum": JUDGE_GRADES}},
                  "required": ["grade"], "additionalProperties": False}
        return GenerationRequest(
            messages=[{"role": "system", "content": "You grade answers strictly against a "
                       "rubric. Reply with JSON {\"grade\": 0-10}."},
                      {"role": "user", "content": user}],
            json_schema=schema, temperature=0.0, max_tokens=16,
        )


def parse_grade(text: str) -> float:
    """A judge's reply as a score in [0, 1]: ``{"grade": g}`` or the first number, over 10."""
    value: Any = None
    try:
        data = json.loads(text)
        value = data.get("grade") if isinstance(data, dict) else data
    except json.JSONDecodeError:
        pass
    if not isinstance(value, int | float) or isinstance(value, bool):
        match = _NUMBER.search(text)
        value = float(match.group().replace(",", "")) if match else 0.0
    return min(1.0, max(0.0, float(value) / 10.0))


def _numeric_match(answer: str, expected: Any, tolerance: float) -> bool:
    match = _NUMBER.search(answer)
    if match is None:
        return False
    try:
        value = float(match.group().replace(",", ""))
    except ValueError:
        return False
    return abs(value - float(expected)) <= tolerance + 1e-9


def _fields_schema(expected: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema asking for the expected fields (llama.cpp turns it into a grammar)."""
    def kind(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "integer"}
        if isinstance(value, float):
            return {"type": "number"}
        if isinstance(value, list):
            return {"type": "array"}
        if isinstance(value, dict):
            return {"type": "object"}
        if value is None:
            return {}
        return {"type": "string"}

    return {"type": "object", "properties": {k: kind(v) for k, v in expected.items()},
            "required": list(expected)}
