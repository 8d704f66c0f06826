"""Job submission's lean path answers exactly what FastAPI's full path answers (#15).

``POST /v1/products/{name}/jobs`` accepts a well-formed body for an installed product from a
cached key without FastAPI's dependency solving (``api/lean_route.py``).  Each request below is
sent twice to the real app (SQLite, Redis): once as it comes, once with the lean path turned
away; status, headers and bodies must match (job ids and times aside), and the lean path must
have read every request it should answer.
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
from modelyard_platform.api.routes import products
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from pydantic import BaseModel

OK = {"input": {"message": "hi"}}
JSON = {"content-type": "application/json"}
# (name, product, body bytes, extra headers, whether the lean path reads the body)
CASES: list[tuple[str, str, bytes, dict[str, str], bool]] = [
    ("echo", "echo", json.dumps(OK).encode(), JSON, True),
    ("with options", "echo", json.dumps({**OK, "options": {"min_quality": 0.5}}).encode(),
     {"content-type": "application/json; charset=utf-8"}, True),
    ("input the product refuses", "echo", json.dumps({"input": {}}).encode(), JSON, True),
    ("input of the wrong type", "echo", json.dumps({"input": {"message": 5}}).encode(), JSON,
     True),
    ("unknown pinned model", "echo", json.dumps({**OK, "options": {"model": "nope"}}).encode(),
     JSON, True),
    ("bad option", "echo", json.dumps({**OK, "options": {"min_quality": 2}}).encode(), JSON,
     False),
    ("extra field", "echo", json.dumps({**OK, "x": 1}).encode(), JSON, False),
    ("unknown product", "nope", json.dumps(OK).encode(), JSON, False),  # body not even read
    ("not JSON", "echo", b'{"input": ', JSON, False),
    ("a list", "echo", b"[1]", JSON, False),
    ("text/plain", "echo", json.dumps(OK).encode(), {"content-type": "text/plain"}, False),
    ("no content type", "echo", json.dumps(OK).encode(), {}, False),
    ("empty", "echo", b"", JSON, False),
]
VOLATILE = re.compile(rb'"(id|created_at)":\s*("[^"]*"|null)')


@pytest.fixture
def app(yard_home: Path, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    settings = Settings()
    with session_scope(settings.effective_database_url) as s:
        key, _ = auth.create_key(s, team="acme")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/products", headers={"Authorization": f"Bearer {key}"}
                          ).status_code == 200  # the key is in the key cache now
        yield client, key


def _send(client: TestClient, product: str, body: bytes, headers: dict[str, str]) -> Response:
    return client.post(f"/v1/products/{product}/jobs", content=body, headers=headers)


def _same(lean: Response, full: Response) -> None:
    assert lean.status_code == full.status_code, (lean.text, full.text)
    drop = {"content-length", "date", "location"}
    assert ({k: v for k, v in lean.headers.items() if k not in drop}
            == {k: v for k, v in full.headers.items() if k not in drop})
    assert ("location" in lean.headers) == ("location" in full.headers)
    assert VOLATILE.sub(b"", lean.content) == VOLATILE.sub(b"", full.content)


def _spy(monkeypatch: pytest.MonkeyPatch, read: list[bool] | None) -> None:
    """Count what the lean path reads, or (``read`` None) turn it away."""
    real = products.json_body

    def spy(raw: bytes, content_type: str | None, model: type[BaseModel]) -> BaseModel | None:
        got = real(raw, content_type, model)
        if read is None:
            return None
        read.append(got is not None)
        return got

    monkeypatch.setattr(products, "json_body", spy)


@pytest.mark.parametrize(("name", "product", "body", "headers", "lean_reads"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_lean_path_answers_as_fastapi_does(
        app: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch, name: str,
        product: str, body: bytes, headers: dict[str, str], lean_reads: bool) -> None:
    client, key = app
    keyed = {**headers, "Authorization": f"Bearer {key}"}
    read: list[bool] = []
    _spy(monkeypatch, read)
    lean = _send(client, product, body, keyed)
    assert read == ([lean_reads] if product == "echo" else [])
    _spy(monkeypatch, None)
    _same(lean, _send(client, product, body, keyed))


def test_a_replay_is_answered_alike(app: tuple[TestClient, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    client, key = app
    keyed = {**JSON, "Authorization": f"Bearer {key}", "Idempotency-Key": "order-7"}
    first = _send(client, "echo", json.dumps(OK).encode(), keyed)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    lean = _send(client, "echo", json.dumps(OK).encode(), keyed)
    _spy(monkeypatch, None)
    full = _send(client, "echo", json.dumps(OK).encode(), keyed)
    assert lean.headers["idempotent-replayed"] == "true"
    assert lean.json()["id"] == full.json()["id"] == first.json()["id"]
    assert lean.headers["location"] == full.headers["location"] == f"/v1/jobs/{first.json()['id']}"
    _same(lean, full)


@pytest.mark.parametrize("key", [None, "my_unknown"])
def test_an_unknown_key_is_answered_by_fastapi(app: tuple[TestClient, str],
                                               key: str | None) -> None:
    client, _ = app
    headers = {**JSON, **({"Authorization": f"Bearer {key}"} if key else {})}
    response = _send(client, "echo", json.dumps(OK).encode(), headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
