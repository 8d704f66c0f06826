"""The caps on caller JSON Schemas: each refusal names the keyword's path."""

from __future__ import annotations

from typing import Any

import pytest
from modelyard_registry.errors import InvalidInput
from modelyard_registry.schema_limits import DEFAULT_LIMITS, check_schema

FIELD = "response_format.json_schema.schema"


def refused(schema: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_schema(schema, FIELD)
    assert caught.value.http_status == 422
    return caught.value


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def test_the_reported_crash_schema_is_refused_naming_the_keyword() -> None:
    err = refused(obj(a={"type": "string", "maxLength": 5000}))
    assert err.field == f"{FIELD}.properties.a.maxLength"
    assert "5000" in err.message and "500" in err.message


def test_ordinary_schemas_pass() -> None:
    check_schema({
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "maxLength": 40, "pattern": "^[A-Z]{3}-[0-9]{1,8}$"},
            "priority": {"enum": ["low", "normal", "high"]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "maxItems": 20},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "$defs": {"item": obj(sku={"type": "string"}, qty={"type": "integer", "minimum": 1})},
        "required": ["order_id"],
    }, FIELD)
    check_schema(obj(a={"type": "string", "maxLength": DEFAULT_LIMITS.max_length}), FIELD)
    check_schema(True, FIELD)


@pytest.mark.parametrize(("schema", "path"), [
    (obj(a={"type": "string", "minLength": 10_000}), "properties.a.minLength"),
    (obj(a={"type": "array", "maxItems": 5000}), "properties.a.maxItems"),
    (obj(a={"type": "array", "items": {"type": "string", "maxLength": 2000}}),
     "properties.a.items.maxLength"),
    (obj(a={"type": "array", "minItems": 1000}), "properties.a.minItems"),
    (obj(a={"enum": list(range(1000))}), "properties.a.enum"),
    (obj(a={"type": "string", "pattern": "^a{1,5000}$"}), "properties.a.pattern"),
    (obj(a={"type": "string", "pattern": "x" * 300}), "properties.a.pattern"),
    (obj(a={"anyOf": [{"type": "string", "maxLength": 900}]}), "properties.a.anyOf[0].maxLength"),
    (obj(a={"$ref": "https://example.com/s.json"}), "properties.a.$ref"),
    (obj(a={"$ref": "#/$defs/missing"}), "properties.a.$ref"),  # the runner asserted on it
    (obj(a={"type": "array", "items": {"$ref": "#/properties/b/items"}}, b={"type": "string"}),
     "properties.a.items.$ref"),
    (obj(a={"$ref": "#"}), "properties.a.$ref"),
    (obj(a={"enum": []}), "properties.a.enum"),
    ({**obj(a={"type": "string"}), "required": ["a", "x"]}, "required"),  # never written
    (obj(**{'say "hi"': {"type": "string"}}), 'properties.say "hi"'),
    ({"anyOf": [obj(**{f"p{j}": {"type": "integer"} for j in range(90)}) for _ in range(3)]},
     "anyOf[2].properties"),  # 270 optional properties: 106 ms of converter time at 20 x 90
    (obj(**{f"p{i}": {"type": "string"} for i in range(150)}), "properties"),
    (obj(a={"type": "string", "maxLength": "long"}), "properties.a.maxLength"),
])
def test_each_cap_names_its_field(schema: dict[str, Any], path: str) -> None:
    assert refused(schema).field == f"{FIELD}.{path}"


def test_depth_and_size_caps() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(DEFAULT_LIMITS.max_depth + 1):
        deep = obj(a=deep)
    err = refused(deep)
    assert err.field is not None and err.field.startswith(f"{FIELD}.properties.a")
    assert "deeper" in err.message

    big = obj(**{f"p{i}": {"type": "string", "description": "x" * 1000} for i in range(90)})
    err = refused(big)
    assert err.field == FIELD and "bytes" in err.message


@pytest.mark.parametrize("schema", [
    {"not": {"type": "string"}},
    {"type": "array", "items": False, "minItems": 1},
    obj(a={"type": "string", "pattern": "^[\\D]+$"}),
    {**obj(a={"type": "string"}), "required": [{"not": "a name"}]},  # unhashable: no crash
    obj(a={"type": 5}),
])
def test_what_the_grammar_converter_cannot_build_is_refused_up_front(schema: Any) -> None:
    # Each one used to fail inside the model's runner ("model failed: AssertionError ..."),
    # on every model a cascade tried.
    err = refused(schema)
    assert err.field == FIELD and "constrained decoding" in err.message
