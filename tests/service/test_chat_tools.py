"""A chat request with tools is never served silently without them: it routes only to models
with the ``tools`` capability, and when none is adequate the answer is a 422 saying so, streamed
or not.  A real catalogue with the bundled SmolLM2 (which lacks the capability)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from modelyard_platform.api import create_app
from modelyard_platform.auth import create_key
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings

GET_ORDER = {"type": "function", "function": {
    "name": "get_order", "description": "Look up an order by id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}


@pytest.fixture
def client(settings: Settings, smollm2_path: Path) -> tuple[TestClient, str]:
    with session_scope(settings.effective_database_url) as session:
        key, _ = create_key(session, team="agents")
        register_gguf(session, settings, name="smol", path=smollm2_path)
    return TestClient(create_app(settings)), key


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["auto", "smol"])
def test_tools_without_a_capable_model_are_a_422(
    client: tuple[TestClient, str], model: str, stream: bool
) -> None:
    http, key = client
    response = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": model, "stream": stream, "tools": [GET_ORDER],
                               "messages": [{"role": "user", "content": "Where is order 5512?"}]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "tools" in error["message"]


def test_tool_choice_none_is_served_without_tools(client: tuple[TestClient, str]) -> None:
    http, key = client
    response = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json={"model": "smol", "tools": [GET_ORDER], "tool_choice": "none",
                               "max_tokens": 4,
                               "messages": [{"role": "user", "content": "Say hi."}]})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "smol"


@pytest.mark.parametrize(("tools", "choice", "field"), [
    ([{"type": "function", "function": {"name": "get order"}}], None, "tools.0.function.name"),
    ([{"type": "retrieval"}], None, "tools.0"),
    ([GET_ORDER, GET_ORDER], None, "tools"),
    ([GET_ORDER], {"type": "function", "function": {"name": "drop_table"}}, "tool_choice"),
    ([GET_ORDER], "sometimes", "tool_choice"),
])
def test_bad_tools_are_a_422_naming_the_field_before_any_model_runs(
    client: tuple[TestClient, str], tools: list[dict[str, object]], choice: object, field: str
) -> None:
    http, key = client
    body: dict[str, object] = {"model": "smol", "tools": tools,
                               "messages": [{"role": "user", "content": "Hi"}]}
    if choice is not None:
        body["tool_choice"] = choice
    response = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                         json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
