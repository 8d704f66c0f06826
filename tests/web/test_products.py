"""The gallery and product forms: widgets, inline validation (the API's messages), submission."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from modelyard_platform.jobs import store
from modelyard_platform.models import Job
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from sqlmodel import select

from .conftest import csrf_of

ERROR = re.compile(r'<p class="error" id="([^"]+)-error" role="alert">([^<]+)</p>')


def errors_in(page: str) -> dict[str, str]:
    """Inline field messages by input id, unescaped."""
    return {k: html.unescape(v) for k, v in ERROR.findall(page)}


def jobs_in(settings: Settings) -> list[Job]:
    with session_scope(settings.effective_database_url) as session:
        return list(session.exec(select(Job)))


def test_gallery_lists_the_products(user_client: TestClient) -> None:
    page = user_client.get("/")
    assert page.status_code == 200
    titles = re.findall(r'<h2><a href="/products/([^"]+)">', page.text)
    assert titles[:3] == ["doc-summary", "extract", "ticket-triage"]
    assert {"echo", "generate"} <= set(titles)
    assert "classify" in page.text  # the steps of ticket-triage


def test_ticket_triage_form(user_client: TestClient) -> None:
    page = user_client.get("/products/ticket-triage")
    assert page.status_code == 200
    html = page.text
    assert '<textarea id="f-body" name="body"' in html
    assert '<label for="f-body">' in html
    assert '<select id="f-customer_tier" name="customer_tier"' in html
    assert '<option value="enterprise"' in html
    assert '<input type="text" id="f-subject"' in html
    assert 'name="csrf"' in html


def test_extract_form_has_a_json_editor_and_an_example(user_client: TestClient) -> None:
    page = user_client.get("/products/extract?example=1")
    assert 'data-json-editor' in page.text
    assert "invoice_number" in page.text


def test_missing_field_is_shown_inline(user_client: TestClient, settings: Settings) -> None:
    token = csrf_of(user_client.get("/products/ticket-triage").text)
    response = user_client.post("/products/ticket-triage",
                                data={"csrf": token, "subject": "Hello", "body": "  "})
    assert response.status_code == 422
    assert errors_in(response.text) == {"f-body": "input.body: Field required"}
    assert 'aria-invalid="true"' in response.text
    assert 'value="Hello"' in response.text  # what was typed is kept
    assert jobs_in(settings) == []


def test_bad_enum_number_json_and_option_are_reported(user_client: TestClient) -> None:
    token = csrf_of(user_client.get("/").text)
    triage = user_client.post("/products/ticket-triage", data={
        "csrf": token, "body": "x", "customer_tier": "gold", "min_quality": "3"})
    found = errors_in(triage.text)
    assert found["f-customer_tier"].startswith("input.customer_tier: Input should be")
    assert found["o-min_quality"].startswith("options.min_quality: Input should be less")
    budget = user_client.post("/products/ticket-triage", data={
        "csrf": token, "body": "x", "max_cost_ratio": "0"})
    assert errors_in(budget.text)["o-max_cost_ratio"].startswith(
        "options.max_cost_ratio: Input should be greater than 0")
    summary = user_client.post("/products/doc-summary", data={
        "csrf": token, "text": "x", "target_words": "5"})
    assert errors_in(summary.text)["f-target_words"].startswith(
        "input.target_words: Input should be greater than or equal to 20")
    extract = user_client.post("/products/extract", data={
        "csrf": token, "text": "x", "schema": '{"type": '})
    assert errors_in(extract.text)["f-schema"].startswith("not valid JSON")
    assert extract.status_code == 422


def test_unknown_pinned_model_is_reported(user_client: TestClient) -> None:
    token = csrf_of(user_client.get("/").text)
    response = user_client.post("/products/echo", data={
        "csrf": token, "message": "hi", "model": "no-such-model"})
    assert response.status_code == 404, response.text[response.text.find("<main"):][:1500]
    assert errors_in(response.text)["o-model"] == \
        "no model 'no-such-model' in the catalogue"


def test_submit_stores_the_job_and_opens_its_page(user_client: TestClient,
                                                  settings: Settings) -> None:
    token = csrf_of(user_client.get("/products/doc-summary").text)
    response = user_client.post("/products/doc-summary", data={
        "csrf": token, "text": "A long document.", "target_words": "40", "best_effort": "on"})
    assert response.status_code == 303
    [job] = jobs_in(settings)
    assert response.headers["location"] == f"/jobs/{job.id}"
    assert job.input == {"text": "A long document.", "target_words": 40}
    assert job.options == {"best_effort": True}
    token = csrf_of(user_client.get("/products/echo").text)
    budgeted = user_client.post("/products/echo", data={
        "csrf": token, "message": "hi", "max_cost_ratio": "0.15"})
    assert budgeted.status_code == 303
    assert [j.options for j in jobs_in(settings) if j.product == "echo"] == [
        {"best_effort": False, "max_cost_ratio": 0.15}]
    with session_scope(settings.effective_database_url) as session:
        assert [e.type for e in store.events_after(session, job.id, 0)] == ["status"]


def test_submit_without_the_token_is_forbidden(user_client: TestClient,
                                               settings: Settings) -> None:
    response = user_client.post("/products/echo", data={"message": "hi"})
    assert response.status_code == 403
    assert "security token" in response.text
    assert jobs_in(settings) == []


def test_unknown_product_is_a_404_page(user_client: TestClient) -> None:
    response = user_client.get("/products/nope")
    assert response.status_code == 404 and "no product named" in response.text
