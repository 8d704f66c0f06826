"""Checks that decide whether a cascade accepts a completion or escalates to the next model.

A validator is any callable ``(completion) -> (ok, reason)``; products pass their own checks the
same way.  The ones here cover what a router can check without knowing the product: JSON that
obeys a schema, a label from a fixed set, and confidence from token log-probabilities.

A check may also *doubt* an answer (raise ``Doubtful``): well formed, but the model was unsure
of it.  The cascade then asks the next candidate when there is one and keeps the answer from
the last: doubt is a reason to ask a stronger model, not proof the answer is wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any, Protocol

from jsonschema import Draft202012Validator

from .runtimes.base import Completion


class Validator(Protocol):
    def __call__(self, completion: Completion, /) -> tuple[bool, str]: ...


class Doubtful(Exception):  # a verdict, not an error
    """An answer a check accepts as well formed but doubts (the cascade's reading: module doc)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def json_schema_validator(schema: dict[str, Any]) -> Validator:
    """Accept text that parses as JSON and validates against ``schema``."""
    checker = Draft202012Validator(schema)

    def check(completion: Completion) -> tuple[bool, str]:
        try:
            data = json.loads(completion.text)
        except json.JSONDecodeError as exc:
            return False, f"not JSON: {exc.msg} at char {exc.pos}"
        error = next(iter(checker.iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return False, f"schema violation at {where}: {error.message}"
        return True, "valid against the JSON schema"

    return check


def tool_calls_validator(tools: list[dict[str, Any]], *, required: bool,
                         text_schema: dict[str, Any] | None = None) -> Validator:
    """Accept a call of one of ``tools`` whose arguments validate against its parameters.

    Local models cannot produce anything else (a grammar); a remote server may, and a call
    that would break the caller's code is a reason to escalate.  A text answer is accepted
    unless a call was ``required`` (then it is checked against ``text_schema`` if any).
    """
    checkers = {
        t["function"]["name"]: Draft202012Validator(t["function"].get("parameters") or {})
        for t in tools if isinstance(t.get("function"), dict)
    }
    text_check = json_schema_validator(text_schema) if text_schema is not None else None

    def check(completion: Completion) -> tuple[bool, str]:
        if not completion.tool_calls:
            if required:
                return False, "a tool call was required; the model answered in text"
            return text_check(completion) if text_check else (True, "text answer")
        for call in completion.tool_calls:
            checker = checkers.get(call.name)
            if checker is None:
                return False, f"called {call.name!r}, which is not among the tools"
            try:
                args = json.loads(call.arguments)
            except json.JSONDecodeError as exc:
                return False, f"{call.name} arguments are not JSON: {exc.msg}"
            error = next(iter(checker.iter_errors(args)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                return False, f"{call.name} arguments violate the schema at {where}: " \
                              f"{error.message}"
        return True, "tool call valid against its schema"

    return check


def extract_label(text: str) -> str:
    """The label in a completion: raw text, a JSON string, or ``{"label": ...}`` JSON."""
    stripped = text.strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return stripped
    if isinstance(data, str):
        return data.strip()
    if isinstance(data, dict):
        value = data.get("label")
        if value is None and len(data) == 1:
            value = next(iter(data.values()))
        if isinstance(value, str):
            return value.strip()
    return stripped


def label_validator(allowed: Iterable[str]) -> Validator:
    """Accept a completion whose label (see ``extract_label``) is exactly one of ``allowed``."""
    labels = frozenset(allowed)

    def check(completion: Completion) -> tuple[bool, str]:
        label = extract_label(completion.text)
        if label in labels:
            return True, f"label {label!r} is allowed"
        return False, f"label {label[:40]!r} is not one of {sorted(labels)}"

    return check


def logprob_confidence_validator(min_mean_prob: float) -> Validator:
    """Accept when the mean per-token probability (exp of each log-prob) is >= ``min_mean_prob``.

    Backends that return no log-probs (llama.cpp in-process, servers without the option) pass
    with reason "no logprobs from backend": no signal is not evidence of low confidence, and
    escalating every call from such backends would make them unusable in a cascade.  Pair this
    with a stricter check in ``all_of`` when that matters.
    """

    def check(completion: Completion) -> tuple[bool, str]:
        logprobs = completion.token_logprobs
        if not logprobs:
            return True, "no logprobs from backend"
        mean_prob = sum(math.exp(lp) for lp in logprobs) / len(logprobs)
        if mean_prob >= min_mean_prob:
            return True, f"mean token probability {mean_prob:.2f} >= {min_mean_prob:.2f}"
        return False, f"mean token probability {mean_prob:.2f} < {min_mean_prob:.2f}"

    return check


def value_probability(completion: Completion, key: str) -> float | None:
    """The probability the model gave the first token of ``key``'s value in its JSON answer.

    That token is where the model chose among the values a schema allows (``"billing"`` or
    ``"shipping"``); the structure around it is forced by the grammar.  None without token
    log-probabilities and texts (a backend that sends none), when the key is not in the text,
    or when the tokens do not spell the text (a stop sequence or a multi-byte character cut).
    """
    spans = _token_spans(completion)
    at = _value_at(completion.text, key)
    if spans is None or at is None:
        return None
    at += completion.text.startswith('"', at)  # a string's first token after its quote
    return next((p for start, end, p in spans if start <= at < end), None)


def field_probabilities(completion: Completion) -> dict[str, float | None]:
    """Per top-level field of a JSON-object answer, the probability of its least sure token.

    That token is the least sure choice the model made writing the value; None where there is
    no signal (no token probabilities, the tokens do not spell the text).

    A field whose value the model copied from the text scores near 1; one where it hesitated
    (an extra word, a digit, which of two names) scores what that hesitation was.
    """
    try:
        data = json.loads(completion.text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    spans = _token_spans(completion)
    out: dict[str, float | None] = {}
    for key in data:
        at = _value_at(completion.text, key)
        if spans is None or at is None:
            out[key] = None
            continue
        try:  # the first '"key":' can sit inside an earlier string value
            _, end = _DECODER.raw_decode(completion.text, at)
        except json.JSONDecodeError:
            out[key] = None
            continue
        probs = [p for start, stop, p in spans if start < end and stop > at]
        out[key] = min(probs) if probs else None
    return out


_DECODER = json.JSONDecoder()


def _value_at(text: str, key: str) -> int | None:
    """Where ``key``'s value starts in a JSON answer (its first occurrence as a key)."""
    found = re.search(r'"' + re.escape(key) + r'"\s*:\s*', text)
    return found.end() if found is not None else None


def _token_spans(completion: Completion) -> list[tuple[int, int, float]] | None:
    """(start, end, probability) of each token in ``completion.text``; None when unknown."""
    logprobs, texts = completion.token_logprobs, completion.token_texts
    if not logprobs or not texts or len(logprobs) != len(texts):
        return None
    spans: list[tuple[int, int, float]] = []
    start = 0
    for logprob, piece in zip(logprobs, texts, strict=True):
        end = start + len(piece)
        if completion.text[start:end] != piece:
            return None if start < len(completion.text) else spans
        spans.append((start, end, math.exp(logprob)))
        start = end
    return spans


def value_confidence_validator(key: str, min_prob: float) -> Validator:
    """Doubt (``Doubtful``) an answer whose ``key`` value had probability below ``min_prob``.

    Backends that give no token probabilities pass ("no signal" is not low confidence, as in
    ``logprob_confidence_validator``).  Put it last in ``all_of``: a doubt ends the checks.
    """

    def check(completion: Completion) -> tuple[bool, str]:
        prob = value_probability(completion, key)
        if prob is None:
            return True, f"no token probability for {key}"
        if prob < min_prob:
            raise Doubtful(f"{key} probability {prob:.2f} < {min_prob:.2f}")
        return True, f"{key} probability {prob:.2f} >= {min_prob:.2f}"

    return check


def all_of(*validators: Validator) -> Validator:
    """Accept only when every validator accepts; the first rejection's reason is reported."""

    def check(completion: Completion) -> tuple[bool, str]:
        reasons = []
        for validator in validators:
            ok, reason = validator(completion)
            if not ok:
                return False, reason
            reasons.append(reason)
        return True, "; ".join(reasons) or "no checks"

    return check


__all__ = [
    "Doubtful",
    "Validator",
    "all_of",
    "extract_label",
    "field_probabilities",
    "json_schema_validator",
    "label_validator",
    "logprob_confidence_validator",
    "tool_calls_validator",
    "value_confidence_validator",
    "value_probability",
]
