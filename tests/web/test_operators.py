"""Operator pages: admins only; the models table, enable/disable, add an endpoint, savings."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from modelyard_registry import catalog
from modelyard_registry.catalog import Backend, ModelCreate
from modelyard_registry.db import session_scope
from modelyard_registry.scores import Call, Score
from modelyard_registry.settings import Settings

from .conftest import csrf_of


@pytest.fixture
def models(settings: Settings) -> None:
    """A measured local model and a priced remote one (no network needed for either row)."""
    with session_scope(settings.effective_database_url) as session:
        catalog.add_model(session, ModelCreate(
            name="tiny-local", backend=Backend.llama_cpp, gguf_path="/models/tiny.gguf",
            size_bytes=105_000_000, quantization="Q8_0", context_length=8192,
            capabilities=["chat", "completion", "json_schema"], family="llama"))
        catalog.add_model(session, ModelCreate(
            name="big-remote", backend=Backend.openai_compatible,
            base_url="http://127.0.0.1:9/v1", served_name="big", price_in=2.0, price_out=8.0,
            capabilities=["chat", "json_schema"]))
        session.add(Score(model_name="tiny-local", kind="classify", suite_version="1",
                          metric="accuracy", value=0.61, ci_low=0.5, ci_high=0.7, n=40,
                          tokens_per_s=55.0))
        now = catalog.utcnow()
        for days_ago, model, cost in ((0, "tiny-local", 0.0001), (0, "tiny-local", 0.0001),
                                      (2, "big-remote", 0.004)):
            session.add(Call(request_id="r", model_name=model, prompt_tokens=1000,
                             completion_tokens=250, cost_usd=cost, outcome="accepted",
                             team_id=1, created_at=now - timedelta(days=days_ago)))
        session.commit()


@pytest.mark.parametrize("path", ["/models", "/savings"])
def test_non_admins_get_a_403_page(user_client: TestClient, path: str) -> None:
    response = user_client.get(path)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "team admins" in response.text
    assert 'href="/models"' not in user_client.get("/").text  # no operator links either


def test_non_admins_cannot_change_models(user_client: TestClient, models: None,
                                         settings: Settings) -> None:
    token = csrf_of(user_client.get("/").text)
    response = user_client.post("/models/tiny-local/enabled",
                                data={"csrf": token, "enabled": "false"})
    assert response.status_code == 403
    with session_scope(settings.effective_database_url) as session:
        assert catalog.get_model(session, "tiny-local").enabled


def test_models_table(admin_client: TestClient, models: None) -> None:
    page = admin_client.get("/models")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'id="models-table"' in text
    row = re.search(r'data-model="tiny-local">(.*?)</tr>', text, re.S)
    assert row
    cells = row.group(1)
    for expected in ("llama.cpp", "100.1 MB", "Q8_0", "8,192", "json_schema",
                     "health-unknown", "55.0", "0.61", "/ M out"):
        assert expected in cells, expected
    assert "full suites" in cells  # its Score is a whole-suite run
    remote = re.search(r'data-model="big-remote">(.*?)</tr>', text, re.S)
    assert remote and "$2.00 / $8.00" in remote.group(1) and "remote" in remote.group(1)
    assert "unmeasured" in remote.group(1) and "yard models eval big-remote" in remote.group(1)


def test_enable_and_disable(admin_client: TestClient, models: None,
                            settings: Settings) -> None:
    token = csrf_of(admin_client.get("/models").text)
    assert admin_client.post("/models/tiny-local/enabled",
                             data={"enabled": "false"}).status_code == 403
    response = admin_client.post("/models/tiny-local/enabled",
                                 data={"csrf": token, "enabled": "false"})
    assert response.status_code == 303
    page = admin_client.get(response.headers["location"])
    assert "Model tiny-local disabled." in page.text
    assert 'aria-label="Enable tiny-local"' in page.text
    with session_scope(settings.effective_database_url) as session:
        assert not catalog.get_model(session, "tiny-local").enabled
    assert admin_client.post("/models/nope/enabled",
                             data={"csrf": token, "enabled": "true"}).status_code == 404


def test_notice_is_not_free_text(admin_client: TestClient, models: None) -> None:
    page = admin_client.get("/models?changed=Send+money+to+x&action=added")
    assert "Send money" not in page.text


def test_add_remote_endpoint(admin_client: TestClient, settings: Settings) -> None:
    token = csrf_of(admin_client.get("/models").text)
    missing = admin_client.post("/models", data={
        "csrf": token, "name": "vllm-qwen", "endpoint": "http://127.0.0.1:9/v1"})
    assert missing.status_code == 422
    assert "served_name is required with endpoint" in html.unescape(missing.text)
    down = admin_client.post("/models", data={
        "csrf": token, "name": "vllm-qwen", "endpoint": "http://127.0.0.1:9/v1",
        "served_name": "qwen", "check": "on"})
    assert down.status_code == 422
    assert "endpoint check failed" in down.text and 'value="vllm-qwen"' in down.text
    added = admin_client.post("/models", data={
        "csrf": token, "name": "vllm-qwen", "endpoint": "http://127.0.0.1:9/v1",
        "served_name": "qwen", "price_in": "0.5", "price_out": "1.5", "cap_chat": "on"})
    assert added.status_code == 303
    with session_scope(settings.effective_database_url) as session:
        entry = catalog.get_model(session, "vllm-qwen")
        assert (entry.price_in, entry.price_out, entry.capabilities) == (0.5, 1.5, ["chat"])
    taken = admin_client.post("/models", data={
        "csrf": token, "name": "vllm-qwen", "endpoint": "http://127.0.0.1:9/v1",
        "served_name": "qwen"})
    assert taken.status_code == 409 and "already exists" in taken.text


def test_savings_page(admin_client: TestClient, models: None) -> None:
    page = admin_client.get("/savings?days=7")
    assert page.status_code == 200
    text = page.text
    assert '<svg class="chart"' in text and text.count('class="bar bar-actual"') == 7
    # tiny-local priced at its measured 55 tok/s (prefill 8x that): 6.8 s a call at $0.10/h
    assert 'id="spent">$0.004379<' in text and "billed (wall time): $0.0042" in text
    assert "<code>tiny-local</code>" in text and "67%" in text  # 2 of 3 calls
    assert "Usage by team and product" in text
    assert admin_client.get("/savings?days=5").status_code == 422
    assert admin_client.get("/savings").status_code == 200
