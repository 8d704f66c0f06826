"""Prompts for small models, one builder per task kind.

Instruction-tuned (chat) models get a short system message and a user message.  Completion-only
models (base models such as Gemma-3-270M) get a plain few-shot prompt: one hand-written worked
example, then the item, ending where the answer starts.  Where the kind allows, the output is
constrained by a JSON schema, which llama.cpp enforces with a grammar: ``classify`` asks for
``{"label": <enum of the item's labels>}``, ``extract`` for the item's own schema.  The worked
examples are written for this file and are not items of any suite.
"""

from __future__ import annotations

import json
from typing import Any

from ..runtimes import GenerationRequest

MAX_TOKENS = {"classify": 32, "extract": 192, "summarize": 96, "qa": 24, "tools": 96}


def label_schema(labels: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def _chat(system: str, user: str, **kwargs: Any) -> GenerationRequest:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return GenerationRequest(messages=messages, temperature=0.0, **kwargs)


def classify(item: dict[str, Any], chat: bool) -> GenerationRequest:
    labels = list(item["labels"])
    schema = label_schema(labels)
    if chat:
        # The labels go in the system message: small Qwen models otherwise pick the first
        # label listed in the user message for most texts.
        return _chat(
            "You classify short texts. Answer with JSON {\"label\": ...} using exactly one of "
            f"the allowed labels: {', '.join(labels)}. Pick the label that fits the text's "
            "meaning best, whichever position it has in the list.",
            f"Text: {item['text']}",
            json_schema=schema, max_tokens=MAX_TOKENS["classify"],
        )
    prompt = (
        "Classify each text with one of its allowed labels.\n\n"
        "Allowed labels: positive, negative, neutral\n"
        "Text: The parcel arrived two days early and everything was intact.\n"
        'Answer: {"label": "positive"}\n\n'
        f"Allowed labels: {', '.join(labels)}\n"
        f"Text: {item['text']}\n"
        "Answer: "
    )
    return GenerationRequest(prompt=prompt, json_schema=schema, temperature=0.0,
                             max_tokens=MAX_TOKENS["classify"])


EXAMPLE_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "guests": {"type": "integer"}},
    "required": ["city", "guests"],
}


def extract(item: dict[str, Any], chat: bool) -> GenerationRequest:
    schema = item["schema"]
    if chat:
        return _chat(
            "You extract facts from text into JSON that follows the given JSON schema. Copy "
            "values exactly as written in the text.",
            f"JSON schema: {_compact(schema)}\n\nText: {item['text']}",
            json_schema=schema, max_tokens=MAX_TOKENS["extract"],
        )
    prompt = (
        "Extract the fields described by the JSON schema from the text.\n\n"
        f"Schema: {_compact(EXAMPLE_SCHEMA)}\n"
        "Text: Booking confirmed for 3 guests in Lisbon from May 2 to May 6.\n"
        'JSON: {"city": "Lisbon", "guests": 3}\n\n'
        f"Schema: {_compact(schema)}\n"
        f"Text: {item['text']}\n"
        "JSON: "
    )
    return GenerationRequest(prompt=prompt, json_schema=schema, temperature=0.0,
                             max_tokens=MAX_TOKENS["extract"])


def summarize(item: dict[str, Any], chat: bool) -> GenerationRequest:
    if chat:
        return _chat(
            "You write short, factual summaries. Keep names, numbers and dates.",
            f"Summarize this text in one or two sentences.\n\nText: {item['text']}",
            max_tokens=MAX_TOKENS["summarize"],
        )
    prompt = (
        "Text: The library will close for renovation from 1 March to 30 April. During that "
        "time, books can be returned at the town hall, and the online catalogue stays open.\n"
        "Summary: The library closes for renovation from 1 March to 30 April; returns go to "
        "the town hall and the online catalogue stays open.\n\n"
        f"Text: {item['text']}\n"
        "Summary:"
    )
    return GenerationRequest(prompt=prompt, temperature=0.0, stop=["\n\n", "\nText:"],
                             max_tokens=MAX_TOKENS["summarize"])


def qa(item: dict[str, Any], chat: bool) -> GenerationRequest:
    if chat:  # one worked turn: small chat models copy the short form far more reliably
        messages = [
            {"role": "system", "content": "Answer the question from the context. Reply with "
             "the short answer only: a name, number, date or phrase copied from the context."},
            {"role": "user", "content": "Context: The museum opens at 9:30 on weekdays and at "
             "10:00 on weekends.\n\nQuestion: When does the museum open on Saturdays?"},
            {"role": "assistant", "content": "10:00"},
            {"role": "user", "content": f"Context: {item['context']}\n\n"
             f"Question: {item['question']}"},
        ]
        return GenerationRequest(messages=messages, temperature=0.0, stop=["\n"],
                                 max_tokens=MAX_TOKENS["qa"])
    prompt = (
        "Context: The museum opens at 9:30 on weekdays and at 10:00 on weekends.\n"
        "Question: When does the museum open on Saturdays?\n"
        "Answer: 10:00\n\n"
        f"Context: {item['context']}\n"
        f"Question: {item['question']}\n"
        "Answer:"
    )
    return GenerationRequest(prompt=prompt, temperature=0.0, stop=["\n"],
                             max_tokens=MAX_TOKENS["qa"])


def tools(item: dict[str, Any], chat: bool) -> GenerationRequest:
    """The request with the item's tools, ``tool_choice`` auto: choosing not to call is scored.

    Only chat models with the ``tools`` capability run this suite (``evaluate_model``).
    """
    return _chat(
        "You are the assistant of an online shop's staff. When one of the tools does what the "
        "user asks, call it with values copied from the request; otherwise answer briefly.",
        item["text"], tools=list(item["tools"]), max_tokens=MAX_TOKENS["tools"],
    )


BUILDERS = {"classify": classify, "extract": extract, "summarize": summarize, "qa": qa,
            "tools": tools}


def build_request(kind: str, item: dict[str, Any], chat: bool) -> GenerationRequest:
    """The request for one suite item, as a chat or a plain few-shot prompt."""
    return BUILDERS[kind](item, chat)
