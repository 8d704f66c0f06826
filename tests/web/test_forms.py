"""Forms generated from the products' real input schemas, and posted forms parsed back."""

from __future__ import annotations

from enum import StrEnum

from modelyard_platform.api.schemas import JobOptions
from modelyard_platform.products import all_products
from modelyard_web import forms
from pydantic import BaseModel

PRODUCTS = all_products()


def schema(name: str) -> dict:  # type: ignore[type-arg]
    return PRODUCTS[name].input_model.model_json_schema()


def by_name(fields: list[forms.FormField]) -> dict[str, forms.FormField]:
    return {f.name: f for f in fields}


def test_ticket_triage_widgets() -> None:
    fields = by_name(forms.fields_for(schema("ticket-triage")))
    assert fields["subject"].widget == "input"
    assert fields["body"].widget == "textarea" and fields["body"].required
    tier = fields["customer_tier"]
    assert tier.widget == "select" and tier.choices == ("free", "pro", "enterprise")
    assert not tier.required


def test_extract_schema_is_a_json_editor_and_summary_has_a_number() -> None:
    extract = by_name(forms.fields_for(schema("extract")))
    assert extract["text"].widget == "textarea"
    assert extract["schema"].widget == "json" and extract["schema"].required
    summary = by_name(forms.fields_for(schema("doc-summary")))
    words = summary["target_words"]
    assert words.widget == "number" and words.integer
    assert (words.minimum, words.maximum, words.value) == (20, 600, "120")


class Tier(StrEnum):
    free = "free"
    pro = "pro"


class Plan(BaseModel):
    tier: Tier = Tier.pro


def test_enum_behind_a_ref_becomes_a_select() -> None:
    """pydantic puts an enum under ``$defs`` and points at it with ``$ref``."""
    tier = by_name(forms.fields_for(Plan.model_json_schema()))["tier"]
    assert tier.widget == "select" and tier.choices == ("free", "pro") and tier.value == "pro"


def test_generate_kind_is_an_open_name_with_a_default() -> None:
    kind = by_name(forms.fields_for(schema("generate")))["kind"]
    assert kind.widget == "input" and kind.value == "chat"


def test_parse_converts_and_leaves_out_empty_fields() -> None:
    fields = forms.fields_for(schema("doc-summary"))
    data, filled = forms.parse(fields, {"text": "hello", "target_words": "40"})
    assert data == {"text": "hello", "target_words": 40}
    assert by_name(filled)["target_words"].value == "40"
    data, _ = forms.parse(fields, {"text": "", "target_words": ""})
    assert data == {}


def test_bad_json_is_reported_on_its_field() -> None:
    data, filled = forms.parse(forms.fields_for(schema("extract")),
                               {"text": "x", "schema": "{nope"})
    assert "schema" not in data
    assert by_name(filled)["schema"].error.startswith("not valid JSON")


def test_validation_messages_use_the_api_field_paths() -> None:
    model = PRODUCTS["ticket-triage"].input_model
    errors = forms.validate(model, {"customer_tier": "gold"}, prefix="input")
    assert errors["body"] == "input.body: Field required"
    assert errors["customer_tier"].startswith("input.customer_tier")
    words = forms.validate(PRODUCTS["doc-summary"].input_model,
                           {"text": "x", "target_words": "many"}, prefix="input")
    assert words["target_words"].startswith("input.target_words: Input should be a valid integer")
    assert forms.validate(JobOptions, {"min_quality": 2}, prefix="options")["min_quality"] \
        .startswith("options.min_quality: Input should be less than or equal to 1")
    assert forms.validate(model, {"body": "fine"}) == {}
