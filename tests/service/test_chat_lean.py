"""The chat route's lean path answers exactly what FastAPI's full path answers (#15).

``POST /v1/chat/completions`` answers a well-formed body from a cached key without FastAPI's
dependency solving (``api/lean_route.py``).  Each request below is sent twice to the real app
(SQLite, Redis, the bundled SmolLM2 at temperature 0): once as it comes, once with the lean path
turned away; status, headers and bodies must match (ids and timings aside), and the lean path
must have served every well-formed request from a known key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response  # what Starlette's TestClient answers with
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_platform.api.chat_request import ChatRequest, well_formed
from modelyard_platform.api.routes import chat
from modelyard_registry.db import session_scope
from modelyard_registry.local_models import register_gguf
from modelyard_registry.settings import Settings

pytestmark = pytest.mark.slow

OK = {"model": "auto", "max_tokens": 3, "messages": [{"role": "user", "content": "Say hi."}]}
TOOL = {"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"id": {"type": "string"}}}}}
JSON = {"content-type": "application/json"}
# (name, body bytes, extra headers, whether the lean path answers it)
CASES: list[tuple[str, bytes, dict[str, str], bool]] = [
    ("auto", json.dumps(OK).encode(), JSON, True),
    ("pinned, charset", json.dumps({**OK, "model": "smol"}).encode(),
     {"content-type": "application/json; charset=utf-8"}, True),
    ("stream", json.dumps({**OK, "stream": True}).encode(), JSON, True),
    ("kind and quality hints", json.dumps(OK).encode(),
     {**JSON, "x-modelyard-kind": "chat", "x-modelyard-min-quality": "0",
      "x-modelyard-best-effort": "no"}, True),
    ("bad quality hint", json.dumps(OK).encode(), {**JSON, "x-modelyard-min-quality": "x"}, True),
    ("budget hint", json.dumps(OK).encode(), {**JSON, "x-modelyard-max-cost-ratio": "0.2"}, True),
    ("bad budget hint", json.dumps(OK).encode(), {**JSON, "x-modelyard-max-cost-ratio": "0"},
     True),
    ("unknown model", json.dumps({**OK, "model": "gpt-17"}).encode(), JSON, True),
    ("stop cap", json.dumps({**OK, "stop": ["a"] * 99}).encode(), JSON, True),
    ("tools to an incapable model", json.dumps({**OK, "tools": [TOOL]}).encode(), JSON, True),
    ("schema", json.dumps({**OK, "response_format": {
        "type": "json_schema", "json_schema": {"schema": "no"}}}).encode(), JSON, True),
    ("no messages", json.dumps({**OK, "messages": []}).encode(), JSON, False),
    ("n=2", json.dumps({**OK, "n": 2}).encode(), JSON, False),
    ("not JSON", b'{"model": ', JSON, False),
    ("a list", b"[1]", JSON, False),
    ("NaN temperature", b'{"model": "auto", "temperature": NaN, "messages": []}', JSON, False),
    ("text/plain", json.dumps(OK).encode(), {"content-type": "text/plain"}, False),
    ("no content type", json.dumps(OK).encode(), {}, False),
    ("+json content type", json.dumps(OK).encode(),
     {"content-type": "application/vnd.test+json"}, False),
    ("empty", b"", JSON, False),
    ("not UTF-8", b'{"model": "\xff"}', JSON, False),
]
VOLATILE = re.compile(rb'"(id|created|latency_s|cost_usd)":\s*("[^"]*"|[0-9.e-]+)')


@pytest.fixture
def app(yard_home: Path, redis_url: str, smollm2_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MODELYARD_N_CTX", "512")
    settings = Settings()
    with session_scope(settings.effective_database_url) as s:
        register_gguf(s, settings, name="smol", path=smollm2_path)
        key, _ = auth.create_key(s, team="acme")
    with TestClient(create_app(settings)) as client:
        yield client, key


def _send(client: TestClient, body: bytes, headers: dict[str, str]) -> Response:
    return client.post("/v1/chat/completions", content=body, headers=headers)


def _same(lean: Response, full: Response) -> None:
    assert lean.status_code == full.status_code, (lean.text, full.text)
    drop = {"content-length", "date"}
    assert ({k: v for k, v in lean.headers.items() if k not in drop}
            == {k: v for k, v in full.headers.items() if k not in drop})
    assert VOLATILE.sub(b"", lean.content) == VOLATILE.sub(b"", full.content)


@pytest.mark.parametrize(("name", "body", "headers", "lean_answers"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_lean_path_answers_as_fastapi_does(
        app: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch,
        name: str, body: bytes, headers: dict[str, str], lean_answers: bool) -> None:
    client, key = app
    auth_header = {"Authorization": f"Bearer {key}"}
    warm = _send(client, json.dumps(OK).encode(), {**JSON, **auth_header})
    assert warm.status_code == 200  # the key is in the key cache now
    keyed = {**headers, **auth_header}
    read: list[ChatRequest | None] = []

    def spy(raw: bytes, content_type: str | None) -> ChatRequest | None:
        read.append(well_formed(raw, content_type))
        return read[-1]

    monkeypatch.setattr(chat, "well_formed", spy)
    lean = _send(client, body, keyed)
    assert [r is not None for r in read] == [lean_answers]
    monkeypatch.setattr(chat, "well_formed", lambda raw, content_type: None)
    _same(lean, _send(client, body, keyed))


@pytest.mark.parametrize("key", [None, "my_unknown"])
def test_an_unknown_key_is_answered_by_fastapi(app: tuple[TestClient, str],
                                               key: str | None) -> None:
    client, _ = app
    headers = {**JSON, **({"Authorization": f"Bearer {key}"} if key else {})}
    response = _send(client, json.dumps(OK).encode(), headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"


def test_the_body_is_read_as_fastapi_reads_it() -> None:
    """Python-mode validation of the parsed JSON, as FastAPI validates a body parameter."""
    body = {**OK, "max_tokens": "3", "temperature": 1, "stream": "true", "extra": 1}
    got = well_formed(json.dumps(body).encode(), "application/json")
    assert got == ChatRequest.model_validate(json.loads(json.dumps(body)))
    dup = b'{"model": "a", "model": "auto", "messages": [{"role": "user"}]}'
    assert (got := well_formed(dup, "application/json")) is not None
    assert got.model == json.loads(dup)["model"]
    assert well_formed(b'{"model": "auto", "messages": [], "n": 1}',
                            "Application/JSON") is None  # messages: min_length 1
    assert well_formed(json.dumps(OK).encode(), "application/json-seq") is None
    assert well_formed(b'{"model": "auto", "max_tokens": 1e400}', "application/json") \
        is None
