"""/metrics: the metrics-only token or an admin key; never a team key, and the token opens nothing
else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

TOKEN = "metrics-only-7c1f0e9a2b4d"


@pytest.fixture
def client(yard_home: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[TestClient, Settings]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MODELYARD_METRICS_TOKEN", TOKEN)
    settings = Settings()
    with TestClient(create_app(settings)) as c:
        yield c, settings


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_metrics_token_admin_and_team_keys(client: tuple[TestClient, Settings]) -> None:
    http, settings = client
    with session_scope(settings.effective_database_url) as db:
        team, _ = auth.create_key(db, team="acme")
        admin, _ = auth.create_key(db, team="ops", admin=True)
    r = http.get("/metrics", headers=bearer(TOKEN))
    assert r.status_code == 200 and "modelyard_http_requests_total" in r.text
    assert http.get("/metrics", headers=bearer(admin)).status_code == 200
    r = http.get("/metrics", headers=bearer(team))
    assert r.status_code == 403
    assert r.json()["error"]["field"] == "authorization"
    assert http.get("/metrics", headers=bearer(TOKEN + "x")).status_code == 401
    assert http.get("/metrics").status_code == 401
    # The metrics token is not an API key anywhere else.
    r = http.get("/v1/jobs", headers=bearer(TOKEN))
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"


def test_without_a_metrics_token_only_admin_keys_read_metrics(
    yard_home: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("MODELYARD_METRICS_TOKEN", raising=False)
    settings = Settings()
    with session_scope(settings.effective_database_url) as db:
        team, _ = auth.create_key(db, team="acme")
    with TestClient(create_app(settings)) as http:
        assert http.get("/metrics", headers=bearer(team)).status_code == 403
        assert http.get("/metrics", headers=bearer("")).status_code == 401
