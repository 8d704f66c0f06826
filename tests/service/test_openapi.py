"""The OpenAPI document tells clients the truth: each operation lists the error statuses it can
answer with the one error body, the key it needs, and its fields' real constraints."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from modelyard_platform.api import create_app
from modelyard_platform.auth import create_key
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# Operations any caller may use without a key.
OPEN = {("get", "/healthz"), ("get", "/readyz")}
ADMIN_ONLY = {("post", "/v1/models"), ("patch", "/v1/models/{name}"),
              ("delete", "/v1/models/{name}"), ("post", "/v1/evals")}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in doc["paths"].items()
            for method, op in item.items()]


def error_schema(doc: dict[str, Any], op: dict[str, Any], status: str) -> Any:
    return op["responses"][status]["content"]["application/json"]["schema"]


def test_every_keyed_operation_declares_the_bearer_key_401_429_and_503(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    keyed = [(m, p, op) for m, p, op in operations(doc) if (m, p) not in OPEN]
    assert len(keyed) >= 20
    for method, path, op in keyed:
        assert op.get("security") == [{"bearer": []}], (method, path)
        for status in ("401", "429", "503"):
            assert error_schema(doc, op, status) == ERROR_REF, (method, path, status)
    for method, path in OPEN:
        assert "security" not in doc["paths"][path][method]


def test_operations_with_input_declare_422_with_our_body_not_fastapis(doc: dict[str, Any]
                                                                      ) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in operations(doc):
        if op.get("parameters") or op.get("requestBody"):
            assert error_schema(doc, op, "422") == ERROR_REF, (method, path)
        if method in {"post", "patch", "put", "delete"}:
            assert error_schema(doc, op, "413") == ERROR_REF, (method, path)


def test_admin_operations_declare_403_and_lookups_404(doc: dict[str, Any]) -> None:
    for method, path in ADMIN_ONLY:
        assert "403" in doc["paths"][path][method]["responses"], (method, path)
    for method, path, op in operations(doc):
        if "{" in path:  # a name or id in the path: unknown (or another team's) is a 404
            assert error_schema(doc, op, "404") == ERROR_REF, (method, path)
    chat = doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"404", "422", "429", "502", "503", "504"} <= set(chat)
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    submit = doc["paths"]["/v1/products/{name}/jobs"]["post"]["responses"]
    assert {"202", "404", "409", "413", "422", "429"} <= set(submit)
    ready = doc["paths"]["/readyz"]["get"]["responses"]
    assert "Readiness" in ready["503"]["content"]["application/json"]["schema"]["$ref"]


def test_fields_carry_their_real_constraints(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    chat = schemas["ChatRequest"]["properties"]
    assert chat["max_tokens"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 8192}
    assert chat["temperature"]["minimum"] == 0 and chat["temperature"]["maximum"] == 2
    assert schemas["Message"]["properties"]["role"]["enum"][:3] == ["system", "user", "assistant"]
    feedback = schemas["FeedbackIn"]["properties"]["score"]
    assert (feedback["minimum"], feedback["maximum"]) == (0.0, 1.0)
    jobs = {p["name"]: p["schema"] for p in doc["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert (jobs["limit"]["minimum"], jobs["limit"]["maximum"]) == (1, 100)
    assert "$ref" in jobs["status"]["anyOf"][0]
    assert set(schemas["JobStatus"]["enum"]) == {"queued", "running", "succeeded", "failed",
                                                 "cancelled"}
    error = schemas["ErrorBody"]
    assert error["required"] == ["error"]
    assert schemas["ErrorDetail"]["required"] == ["type", "message"]


def test_real_error_answers_match_the_documented_body(client: TestClient, doc: dict[str, Any],
                                                      settings: Settings) -> None:
    with session_scope(settings.effective_database_url) as session:
        key, _ = create_key(session, team="docs")
    auth = {"Authorization": f"Bearer {key}"}
    answers = {
        401: client.get("/v1/jobs"),
        403: client.post("/v1/evals", json={}, headers=auth),
        404: client.get("/v1/jobs/nope", headers=auth),
        413: client.post("/v1/feedback", content=b"{" + b" " * 3_000_000 + b"}",
                         headers={**auth, "content-type": "application/json"}),
        422: client.get("/v1/jobs?limit=0", headers=auth),
    }
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        jsonschema.validate(response.json(), _resolved(doc, "ErrorBody"))


def _resolved(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """``name``'s schema with the document's components reachable for its ``$ref``s."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
