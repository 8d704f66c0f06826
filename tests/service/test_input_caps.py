"""Caps on every input (issue 13 section 2), in-process against the real app (SQLite, Redis).

Each cap is a 4xx JSON error naming the field, answered before any model is touched or any job
is stored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_platform.api.limits import json_depth
from modelyard_platform.models import Job
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings
from sqlmodel import Session, select


@pytest.fixture
def app_settings(yard_home: Path, redis_url: str, smollm2_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MODELYARD_N_CTX", "512")
    monkeypatch.setenv("MODELYARD_MAX_MESSAGE_CHARS", "5000")
    settings = Settings()
    with session_scope(settings.effective_database_url) as s:
        register_gguf(s, settings, name="smollm2-135m", path=smollm2_path,
                      capabilities=["chat", "completion", "json_schema", "tools"])
    return settings


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as c:
        yield c


@pytest.fixture
def db(app_settings: Settings) -> Iterator[Session]:
    with session_scope(app_settings.effective_database_url) as s:
        yield s


@pytest.fixture
def headers(db: Session) -> dict[str, str]:
    plain, _ = auth.create_key(db, team="acme")
    return {"Authorization": f"Bearer {plain}"}


def chat(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "auto", "max_tokens": 4,
                            "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return body


def assert_422(r: Any, field: str, type_: str = "invalid_input") -> dict[str, Any]:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["type"] == type_ and error["field"] == field, error
    return error


def test_stop_lists_are_capped(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/v1/chat/completions", json=chat(stop=[f"s{i}" for i in range(90_000)]),
                    headers=headers)
    assert_422(r, "stop")
    r = client.post("/v1/chat/completions", json=chat(stop=[f"s{i}" for i in range(17)]),
                    headers=headers)
    assert_422(r, "stop")
    r = client.post("/v1/chat/completions", json=chat(stop=["ok", "x" * 257]), headers=headers)
    assert_422(r, "stop.1")
    r = client.post("/v1/chat/completions", json=chat(stop="x" * 257), headers=headers)
    assert_422(r, "stop")


def test_messages_are_capped_in_count_and_size(client: TestClient,
                                               headers: dict[str, str]) -> None:
    many = [{"role": "user", "content": "a"}] * 257
    assert_422(client.post("/v1/chat/completions", json=chat(messages=many), headers=headers),
               "messages")
    big = [{"role": "user", "content": "a" * 3000}, {"role": "user", "content": "b" * 3000}]
    error = assert_422(client.post("/v1/chat/completions", json=chat(messages=big),
                                   headers=headers), "messages")
    assert "5,000" in error["message"]


def test_n_above_one_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    assert_422(client.post("/v1/chat/completions", json=chat(n=5), headers=headers), "n")


def test_max_tokens_must_fit_the_context_window(client: TestClient,
                                                headers: dict[str, str]) -> None:
    for model in ("auto", "smollm2-135m"):
        r = client.post("/v1/chat/completions", json=chat(model=model, max_tokens=2000),
                        headers=headers)
        error = assert_422(r, "max_tokens", "no_adequate_model")
        assert "context window 512" in error["message"]


def test_tools_are_capped_and_their_schemas_checked(client: TestClient,
                                                    headers: dict[str, str]) -> None:
    def tool(i: int, params: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {"name": f"f{i}", "parameters": params}}

    plain = {"type": "object", "properties": {"a": {"type": "string"}}}
    r = client.post("/v1/chat/completions",
                    json=chat(tools=[tool(i, plain) for i in range(65)]), headers=headers)
    assert_422(r, "tools")
    hostile = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5000}}}
    r = client.post("/v1/chat/completions", json=chat(tools=[tool(0, plain), tool(1, hostile)]),
                    headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"].startswith("tools.1.function.parameters")
    r = client.post("/v1/chat/completions", json=chat(tools=[tool(0, "nope")]),  # type: ignore[arg-type]
                    headers=headers)
    assert_422(r, "tools.0.function.parameters")
    # The caps hold over all the tools of a request: each tool's grammar is built at the check.
    wide = {"type": "object", "properties": {f"p{j}": {"type": "integer"} for j in range(90)}}
    r = client.post("/v1/chat/completions", json=chat(tools=[tool(i, wide) for i in range(3)]),
                    headers=headers)
    error = assert_422(r, "tools.2.function.parameters.properties")
    assert "optional properties" in error["message"]


def test_a_schema_no_grammar_can_follow_is_422_before_any_model_runs(
        client: TestClient, headers: dict[str, str]) -> None:
    # Each failed inside the model's runner before, as a model failure on every model tried.
    for schema, field in [
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/gone"}}},
         "response_format.json_schema.schema.properties.a.$ref"),
        ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
         "response_format.json_schema.schema"),
    ]:
        r = client.post("/v1/chat/completions", headers=headers, json=chat(response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
        assert_422(r, field)


def test_unknown_keys_in_product_input_are_422_and_nothing_is_stored(
    client: TestClient, headers: dict[str, str], db: Session
) -> None:
    junk = "j" * 100_000
    inputs = {
        "echo": {"message": "x", "junk": junk},
        "generate": {"prompt": "x", "junk": junk},
        "doc-summary": {"text": "A short document.", "junk": junk},
        "extract": {"text": "Ann is 3.", "schema": {"type": "object", "properties": {
            "age": {"type": "integer"}}}, "junk": junk},
        "ticket-triage": {"subject": "Refund", "body": "Please refund me.", "junk": junk},
    }
    for product, data in inputs.items():
        r = client.post(f"/v1/products/{product}/jobs", json={"input": data}, headers=headers)
        assert_422(r, "input.junk")
    assert db.exec(select(Job)).all() == []


def test_chunked_body_over_the_limit_is_413(client: TestClient, headers: dict[str, str],
                                            app_settings: Settings) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"input": {"message": "'
        for _ in range(app_settings.max_body_bytes // 10_000 + 1):
            yield b"x" * 10_000
        yield b'"}}'

    r = client.post("/v1/products/echo/jobs", content=chunks(),
                    headers={**headers, "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "payload_too_large"

    def small() -> Iterator[bytes]:
        yield b'{"input": {"message": '
        yield b'"chunked"}}'

    r = client.post("/v1/products/echo/jobs", content=small(),
                    headers={**headers, "content-type": "application/json"})
    assert r.status_code == 202, r.text


def test_deeply_nested_json_is_422(client: TestClient, headers: dict[str, str],
                                   db: Session) -> None:
    nest = "[" * 500 + "]" * 500
    bodies = {
        "/v1/products/doc-summary/jobs": '{"input": {"text": "a", "x": NEST}}',
        "/v1/chat/completions": '{"model": "auto", "messages": [{"role": "user", '
                                '"content": "hi"}], "tool_choice": {"x": NEST}}',
    }
    for path, body in bodies.items():
        r = client.post(path, content=body.replace("NEST", nest),
                        headers={**headers, "content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["type"] == "invalid_input"
        assert "nested deeper than 64" in r.json()["error"]["message"]
    # brackets inside strings do not count; many shallow brackets are fine
    text = "[[[[" * 100 + "}" * 50
    r = client.post("/v1/products/echo/jobs", json={"input": {"message": text}}, headers=headers)
    assert r.status_code == 202, r.text
    many = [{"role": "user", "content": "[{"}] * 200
    assert json_depth(f'{{"messages": {many}}}'.replace("'", '"').encode()) == 3
    assert len(db.exec(select(Job)).all()) == 1


def test_a_cursor_not_issued_by_us_is_422_and_any_well_formed_one_reads(
        client: TestClient, headers: dict[str, str]) -> None:
    old_format = base64.urlsafe_b64encode(b"2024-01-01T00:00:00+00:00|abc").decode()
    for broken in (old_format, "", "12-", "-abc", "1" * 17 + "-abc", "12-a.b"):
        assert_422(client.get("/v1/jobs", params={"cursor": broken}, headers=headers), "cursor")
    r = client.get("/v1/jobs", params={"cursor": "1704067200000000-abc"}, headers=headers)
    assert r.status_code == 200 and r.json()["data"] == []
