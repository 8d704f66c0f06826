"""Access rules and bad input, in-process against the real app (SQLite + real Redis broker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_platform.models import ApiKey, Job
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from sqlmodel import Session, select


@pytest.fixture
def app_settings(yard_home: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MODELYARD_MAX_BODY_BYTES", "20000")
    return Settings()


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as c:
        yield c


@pytest.fixture
def db(app_settings: Settings) -> Iterator[Session]:
    with session_scope(app_settings.effective_database_url) as s:
        yield s


def key(db: Session, team: str, admin: bool = False) -> dict[str, str]:
    plain, _ = auth.create_key(db, team=team, admin=admin)
    return {"Authorization": f"Bearer {plain}"}


def test_missing_or_wrong_key_is_401_with_json_error(client: TestClient, db: Session) -> None:
    for headers in ({}, {"Authorization": "Bearer my_wrong"}, {"Authorization": "Basic abc"}):
        r = client.get("/v1/jobs", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "unauthorized"
    assert client.get("/metrics").status_code == 401
    assert client.get("/healthz").status_code == 200


def test_keys_are_stored_hashed_and_revocation_takes_effect(
    client: TestClient, db: Session
) -> None:
    plain, row = auth.create_key(db, team="acme")
    stored = db.exec(select(ApiKey)).all()
    assert all(plain not in (k.key_hash, k.prefix) for k in stored)
    assert row.key_hash == auth.hash_key(plain)
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/v1/jobs", headers=headers).status_code == 200
    auth.revoke_key(db, row.prefix)
    assert client.get("/v1/jobs", headers=headers).status_code == 401


def test_another_teams_job_is_404_not_403(client: TestClient, db: Session) -> None:
    acme, other = key(db, "acme"), key(db, "other")
    job = client.post("/v1/products/echo/jobs", json={"input": {"message": "x"}}, headers=acme)
    assert job.status_code == 202
    job_id = job.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=acme).status_code == 200
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/events"):
        r = client.get(path, headers=other)
        assert r.status_code == 404
        assert r.json()["error"]["type"] == "not_found"
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=other).status_code == 404
    assert client.get("/v1/jobs", headers=other).json()["data"] == []


def test_catalogue_changes_need_admin(client: TestClient, db: Session, smollm2_path: Path
                                      ) -> None:
    user, admin = key(db, "acme"), key(db, "ops", admin=True)
    body = {"name": "tiny", "gguf_path": str(smollm2_path)}
    r = client.post("/v1/models", json=body, headers=user)
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "forbidden"
    assert client.get("/v1/models", headers=user).json()["data"] == []
    r = client.post("/v1/models", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "tiny" and r.json()["family"] == "llama"
    assert client.patch("/v1/models/tiny", json={"enabled": False}, headers=user
                        ).status_code == 403
    r = client.patch("/v1/models/tiny", json={"enabled": False}, headers=admin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.delete("/v1/models/tiny", headers=user).status_code == 403
    assert client.delete("/v1/models/tiny", headers=admin).status_code == 204
    assert client.get("/v1/models/tiny", headers=admin).status_code == 404


def test_bad_input_names_the_field_and_stores_nothing(client: TestClient, db: Session) -> None:
    h = key(db, "acme")
    cases = [
        ("/v1/products/echo/jobs", {"input": {}}, 422, "input.message"),
        ("/v1/products/echo/jobs", {"input": {"message": 5}}, 422, "input.message"),
        ("/v1/products/echo/jobs", {"input": {"message": "x"}, "options": {"min_quality": 2}},
         422, "options.min_quality"),
        ("/v1/products/echo/jobs", {"inputs": {}}, 422, "input"),
        ("/v1/products/extract/jobs", {"input": {"text": "a", "schema": {"type": "nope"}}},
         422, "input"),
        ("/v1/products/ticket-triage/jobs", {"input": {"subject": " ", "body": "\n"}},
         422, "input"),
        # a product field named "body" keeps its name in the path
        ("/v1/products/ticket-triage/jobs", {"input": {"subject": "Refund"}}, 422, "input.body"),
        ("/v1/products/nope/jobs", {"input": {}}, 404, "name"),
        ("/v1/products/echo/jobs", {"input": {"message": "x"}, "options": {"model": "ghost"}},
         404, "options.model"),
    ]
    for path, body, status, field in cases:
        r = client.post(path, json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        error = r.json()["error"]
        assert error["field"].startswith(field), (body, error)
        assert error["message"]
    assert db.exec(select(Job)).all() == []


def test_body_over_the_limit_is_413(client: TestClient, db: Session) -> None:
    h = key(db, "acme")
    r = client.post("/v1/products/echo/jobs", json={"input": {"message": "x" * 30000}},
                    headers=h)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "payload_too_large"
    assert db.exec(select(Job)).all() == []


def test_idempotency_key_returns_the_same_job(client: TestClient, db: Session) -> None:
    h = {**key(db, "acme"), "Idempotency-Key": "order-42"}
    body = {"input": {"message": "once"}}
    first = client.post("/v1/products/echo/jobs", json=body, headers=h)
    again = client.post("/v1/products/echo/jobs", json=body, headers=h)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    clash = client.post("/v1/products/echo/jobs", json={"input": {"message": "other"}}, headers=h)
    assert clash.status_code == 409
    assert clash.json()["error"]["field"] == "Idempotency-Key"
    assert len(db.exec(select(Job)).all()) == 1


def test_over_budget_is_429(client: TestClient, db: Session) -> None:
    h = key(db, "acme")
    auth.set_budget(db, "acme", 0.0)
    r = client.post("/v1/products/echo/jobs", json={"input": {"message": "x"}}, headers=h)
    assert r.status_code == 429
    assert "budget" in r.json()["error"]["message"]
    auth.set_budget(db, "acme", None)
    assert client.post("/v1/products/echo/jobs", json={"input": {"message": "x"}},
                       headers=h).status_code == 202


def test_rate_limit_is_429(app_settings: Settings, db: Session,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_RATE_LIMIT_PER_MINUTE", "3")
    with TestClient(create_app(Settings())) as c:
        h = key(db, "acme")
        codes = [c.get("/v1/jobs", headers=h).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_job_pages_and_filters(client: TestClient, db: Session) -> None:
    h = key(db, "acme")
    ids = [client.post("/v1/products/echo/jobs", json={"input": {"message": str(i)}},
                       headers=h).json()["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params, headers=h).json()
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert client.get("/v1/jobs", params={"status": "succeeded"}, headers=h).json()["data"] == []
    assert len(client.get("/v1/jobs", params={"product": "echo"}, headers=h).json()["data"]) == 5
    assert client.get("/v1/jobs", params={"status": "bogus"}, headers=h).status_code == 422
    assert client.get("/v1/jobs", params={"cursor": "!!"}, headers=h).status_code == 422


def test_cancel_a_queued_job(client: TestClient, db: Session) -> None:
    h = key(db, "acme")
    job_id = client.post("/v1/products/echo/jobs", json={"input": {"message": "x"}},
                         headers=h).json()["id"]
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=h)
    assert again.json()["status"] == "cancelled"


def test_readyz_reports_a_dead_broker(yard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with TestClient(create_app(Settings())) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["broker"].startswith("error")
