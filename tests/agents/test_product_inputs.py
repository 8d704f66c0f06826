"""Product contracts: schemas, bad input caught before any model runs, deterministic checks."""

from __future__ import annotations

import pytest
from modelyard_agents.language import detect_language
from modelyard_agents.products.extract import ExtractInput, missing_fields
from modelyard_agents.products.ticket_triage import (
    TicketInput,
    check_reply,
    grounded_entities,
)
from modelyard_agents.registry import PRODUCTS
from pydantic import ValidationError

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def test_registry_discovers_the_three_products() -> None:
    assert set(PRODUCTS) == {"ticket-triage", "doc-summary", "extract"}
    for product in PRODUCTS.values():
        assert product.input_model.model_json_schema()["type"] == "object"
        assert "trace" in product.output_model.model_json_schema()["properties"]
        graph = product.build_graph().compile()
        assert set(product.steps) <= set(graph.get_graph().nodes)


def _error(model: type, data: dict) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return str(info.value)


def test_ticket_input_refuses_whitespace() -> None:
    assert "empty or whitespace" in _error(TicketInput, {"subject": "  ", "body": "\n\t "})
    assert TicketInput.model_validate({"subject": "", "body": "help"}).body == "help"


def test_doc_summary_input_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    model = PRODUCTS["doc-summary"].input_model
    assert "text is empty" in _error(model, {"text": "   "})
    monkeypatch.setenv("MODELYARD_DOC_MAX_CHARS", "100")
    assert "the limit is 100" in _error(model, {"text": "x" * 101})


def test_extract_schema_is_checked_before_any_model() -> None:
    assert "not a valid JSON Schema" in _error(
        ExtractInput, {"text": "t", "schema": {"type": "object", "properties": 5}})
    assert "must describe an object" in _error(ExtractInput, {"text": "t",
                                                               "schema": {"type": "string"}})
    deep: dict = {"type": "string"}
    for _ in range(7):
        deep = {"type": "object", "properties": {"x": deep}}
    assert "nested deeper" in _error(ExtractInput, {"text": "t", "schema": deep})
    wide = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(41)}}
    assert "more than 40 properties" in _error(ExtractInput, {"text": "t", "schema": wide})
    assert "text is empty" in _error(ExtractInput, {"text": " ", "schema": SCHEMA})
    assert ExtractInput.model_validate({"text": "t", "schema": SCHEMA}).schema_ == SCHEMA


def test_entities_are_grounded_in_the_ticket() -> None:
    ticket = "Order ORD-1234 for the Acme Kettle, $49.99, contact jo@example.com"
    raw = {"order_ids": ["ORD-9999", "ORD-1234"], "products": ["Acme Kettle", "Toaster"],
           "emails": ["fake@x.com"], "amounts": [49.99, 1000]}
    got = grounded_entities(raw, ticket)
    assert got == {"order_ids": ["ORD-1234"], "products": ["Acme Kettle"],
                   "emails": ["jo@example.com"], "amounts": [49.99]}


def test_reply_check_catches_invented_ids_and_missing_product() -> None:
    ticket = "Where is order ORD-1234? It is the Acme Kettle."
    entities = {"products": ["Acme Kettle"]}
    assert check_reply("Your Acme Kettle (ORD-1234) ships today.", entities, ticket).passed
    bad = check_reply("Order ORD-7777 ships today.", entities, ticket)
    assert not bad.passed
    assert any("ORD-7777" in p for p in bad.problems)
    assert any("Acme Kettle" in p for p in bad.problems)


def test_missing_fields_counts_empty_values() -> None:
    schema = {"required": ["a", "b", "c"]}
    assert missing_fields({"a": "x", "b": "", "c": []}, schema) == ["b", "c"]


def test_language_guess() -> None:
    assert detect_language("Hola, mi pedido no ha llegado y es para mi madre") == "Spanish"
    assert detect_language("Bonjour, je n'ai pas reçu ma commande pour mon fils") == "French"
    assert detect_language("Hello, my order is late and I need it for the weekend") == "English"
