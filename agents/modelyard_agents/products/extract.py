"""extract: a caller-supplied JSON Schema, schema-constrained generation, validated, escalated.

The schema is checked before any model runs (valid JSON Schema, an object, bounded depth and size,
and ``schema_limits``' caps), because a pathological schema makes a pathological grammar: the
check runs at submission, so a bad schema is a 422 and no job is queued.
"""

from __future__ import annotations

import json
import operator
from typing import Annotated, Any, TypedDict

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from modelyard_registry.errors import CascadeExhausted, InvalidInput
from modelyard_registry.runtimes import Completion, GenerationRequest
from modelyard_registry.schema_limits import check_schema as check_schema_limits
from modelyard_registry.validators import field_probabilities
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..contract import NodeContext, Product, TraceEntry
from ..nodes import chat, exhausted_entry, node_spec, observed, routed_call

MAX_TEXT_CHARS = 50_000
MAX_SCHEMA_DEPTH = 5
MAX_SCHEMA_PROPERTIES = 40
MAX_SCHEMA_BYTES = 20_000


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return max((_depth(v) for v in node), default=0)
    return 0


def _count_properties(node: Any) -> int:
    if isinstance(node, dict):
        own = len(node["properties"]) if isinstance(node.get("properties"), dict) else 0
        return own + sum(_count_properties(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_properties(v) for v in node)
    return 0


def check_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise ValueError("schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValueError('schema must describe an object: {"type": "object", "properties": ...}')
    # Each nesting level of a JSON Schema is two dicts deep ("properties" -> field schema).
    if _depth(schema) > MAX_SCHEMA_DEPTH * 2 + 1:
        raise ValueError(f"schema is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    if _count_properties(schema) > MAX_SCHEMA_PROPERTIES:
        raise ValueError(f"schema has more than {MAX_SCHEMA_PROPERTIES} properties")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise ValueError(f"schema is larger than {MAX_SCHEMA_BYTES:,} bytes")
    try:  # the caps every constrained-decoding path shares (maxLength, maxItems, enum, ...)
        check_schema_limits(schema, "schema")
    except InvalidInput as exc:
        raise ValueError(f"{exc.field}: {exc.message}") from None
    return schema


class ExtractInput(BaseModel):
    text: str = Field(description="The text to extract from.")
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the result.")

    # unknown keys are a 422, never stored
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
        return text

    @field_validator("schema_")
    @classmethod
    def _schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        return check_schema(schema)


class ExtractOutput(BaseModel):
    data: dict[str, Any]
    valid: bool
    missing: list[str]
    field_confidence: dict[str, float | None]
    trace: list[TraceEntry]


class State(TypedDict, total=False):
    text: str
    schema: dict[str, Any]
    data: dict[str, Any]
    valid: bool
    missing: list[str]
    field_confidence: dict[str, float | None]
    trace: Annotated[list[dict[str, Any]], operator.add]


def missing_fields(data: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Required fields that are absent or empty: valid JSON can still be incomplete."""
    return [k for k in schema.get("required", []) if data.get(k) in (None, "", [], {})]


def validate_output(schema: dict[str, Any]) -> Any:
    validator = Draft202012Validator(schema)

    def check(completion: Any) -> tuple[bool, str]:
        try:
            data = json.loads(completion.text)
        except json.JSONDecodeError as exc:
            return False, f"not JSON: {exc.msg}"
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            return False, f"schema violation at /{'/'.join(map(str, errors[0].path))}: " + (
                errors[0].message)
        missing = missing_fields(data, schema)
        if missing:
            return False, f"incomplete: {', '.join(missing)} empty"
        return True, "valid and complete"

    return check


def confidence(completion: Completion, data: dict[str, Any]) -> dict[str, float | None]:
    """Per field, the probability of its value's least sure token (``field_probabilities``).

    None where the backend gave no token probabilities.  Copied values score near 1; a value
    the model hesitated over (an extra word, a digit) scores low.  On the 60 gold items' 201
    fields (Qwen2.5-Coder-0.5B) the 8 wrong ones scored 0.15-0.82 and a quarter of the right
    ones below 0.65: a hint for a reviewer, not a verdict (doubting below 0.3 would send 14 of
    60 answers to a stronger model to catch 4 of the 6 wrong ones, so this product does not
    escalate on it).
    """
    probs = field_probabilities(completion)
    return {k: (round(p, 4) if (p := probs.get(k)) is not None else None) for k in data}


def extract(state: State, runtime: Runtime[NodeContext]) -> dict[str, Any]:
    schema = state["schema"]
    spec = node_spec(runtime, "extract", min_quality=0.4, max_output_tokens=400,
                     needs_json_schema=True)
    request = GenerationRequest(
        messages=chat("Extract the requested fields from the text as JSON. Copy values "
                      "exactly as written.", state["text"]),
        max_tokens=400,
        json_schema=schema,
        logprobs=True,
    )
    try:
        result, entry = routed_call(runtime, "extract", spec, request, validate_output(schema))
    except CascadeExhausted as exc:
        return {"data": {}, "valid": False, "missing": list(schema.get("required", [])),
                "field_confidence": {}, "trace": [exhausted_entry("extract", exc)]}
    ok, _ = validate_output(schema)(result.completion)
    try:
        data = json.loads(result.completion.text)
    except json.JSONDecodeError:
        data = {}
    data = data if isinstance(data, dict) else {}
    return {"data": data, "valid": ok, "missing": missing_fields(data, schema),
            "field_confidence": confidence(result.completion, data), "trace": [entry]}


STEPS = ("extract",)


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(State, context_schema=NodeContext)
    graph.add_node("extract", observed("extract", extract))
    graph.add_edge(START, "extract")
    graph.add_edge("extract", END)
    return graph


def initial_state(data: BaseModel) -> dict[str, Any]:
    assert isinstance(data, ExtractInput)
    return {"text": data.text, "schema": data.schema_, "trace": []}


def output(state: dict[str, Any]) -> dict[str, Any]:
    return ExtractOutput(
        data=state["data"], valid=state["valid"], missing=state["missing"],
        field_confidence=state["field_confidence"], trace=state["trace"],
    ).model_dump()


PRODUCT = Product(
    slug="extract",
    title="Structured extraction",
    description="Pull the fields of your JSON Schema out of any text, validated; escalates to a "
    "stronger model when the output is invalid or incomplete.",
    input_model=ExtractInput,
    output_model=ExtractOutput,
    build_graph=build_graph,
    initial_state=initial_state,
    output=output,
    steps=STEPS,
)
