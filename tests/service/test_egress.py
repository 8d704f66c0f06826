"""Secrets and egress (issue 13 section 5), in-process against the real app (SQLite, Redis).

A real HTTP server on loopback stands in for a remote endpoint: it records the Authorization
header it receives and answers every chat call with a 400 carrying text that must never reach
the caller.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from sqlmodel import Session

REMOTE_SECRET_TEXT = "remote-internal-detail-7731"


class Remote(BaseHTTPRequestHandler):
    seen_auth: list[str | None] = []

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        Remote.seen_auth.append(self.headers.get("Authorization"))
        self._send(200, {"data": [{"id": "m"}]})

    def do_POST(self) -> None:
        Remote.seen_auth.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._send(400, {"error": {"message": REMOTE_SECRET_TEXT}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def remote() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Remote)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Remote.seen_auth = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def app_settings(yard_home: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MODELYARD_SECRET_REMOTE_KEY", "sk-allowed")
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


def endpoint(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "endpoint": url, "served_name": "m", "capabilities": ["chat"],
            **extra}


def test_api_key_env_outside_the_allowlist_is_422_and_never_sent(
    client: TestClient, db: Session, remote: str
) -> None:
    admin = key(db, "ops", admin=True)
    for name in ("DATABASE_URL", "REDIS_URL", "HOME", "MODELYARD_SESSION_SECRET"):
        r = client.post("/v1/models", json=endpoint("r1", remote, api_key_env=name),
                        headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "api_key_env"
    assert Remote.seen_auth == []  # refused before any request left
    r = client.post("/v1/models", json=endpoint("r1", remote,
                                                api_key_env="MODELYARD_SECRET_REMOTE_KEY"),
                    headers=admin)
    assert r.status_code == 201, r.text
    assert set(Remote.seen_auth) == {"Bearer sk-allowed"}


def test_link_local_and_metadata_endpoints_are_always_refused(client: TestClient,
                                                              db: Session) -> None:
    admin = key(db, "ops", admin=True)
    for url in ("http://169.254.169.254/latest", "http://[fe80::1]:8000/v1",
                "http://metadata.google.internal/v1", "http://169.254.1.1:80/v1"):
        r = client.post("/v1/models", json=endpoint("meta", url, check=False), headers=admin)
        assert r.status_code == 422, (url, r.text)
        error = r.json()["error"]
        assert error["field"] == "base_url" and "169.254" not in error["message"]


def test_egress_allowlist_at_registration_and_at_call_time(
    app_settings: Settings, client: TestClient, db: Session, remote: str,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = key(db, "ops", admin=True)
    r = client.post("/v1/models", json=endpoint("r1", remote), headers=admin)
    assert r.status_code == 201, r.text
    # the remote's own error text and its URL stay in the server log
    r = client.post("/v1/chat/completions", headers=admin,
                    json={"model": "r1", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 502, r.text
    assert REMOTE_SECRET_TEXT not in r.text and "127.0.0.1" not in r.text
    assert "HTTP 400" in r.text

    monkeypatch.setenv("MODELYARD_EGRESS_ALLOW", "10.0.0.0/8,models.internal.example")
    with TestClient(create_app(Settings())) as narrow:
        r = narrow.post("/v1/models", json=endpoint("r2", remote), headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "base_url"
        calls = len(Remote.seen_auth)
        r = narrow.post("/v1/chat/completions", headers=admin,
                        json={"model": "r1", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 502, r.text
        assert "egress allowlist" in r.text and "127.0.0.1" not in r.text
        assert len(Remote.seen_auth) == calls  # nothing was sent
    monkeypatch.setenv("MODELYARD_EGRESS_ALLOW", "127.0.0.0/8")
    with TestClient(create_app(Settings())) as loopback:
        r = loopback.post("/v1/models", json=endpoint("r3", remote), headers=admin)
        assert r.status_code == 201, r.text


def test_non_admins_see_no_paths_urls_or_variable_names(
    client: TestClient, db: Session, remote: str, smollm2_path: Path
) -> None:
    admin, user = key(db, "ops", admin=True), key(db, "acme")
    assert client.post("/v1/models", json=endpoint(
        "r1", remote, api_key_env="MODELYARD_SECRET_REMOTE_KEY"), headers=admin
    ).status_code == 201
    assert client.post("/v1/models", json={"name": "tiny", "gguf_path": str(smollm2_path)},
                       headers=admin).status_code == 201
    hidden = ("gguf_path", "base_url", "endpoints", "api_key_env")
    listed = client.get("/v1/models", headers=user).json()["data"]
    assert {m["id"] for m in listed} == {"r1", "tiny"}
    one = client.get("/v1/models/r1", headers=user).json()
    for item in [*listed, one]:
        assert not set(hidden) & set(item), item
    text = client.get("/v1/models", headers=user).text
    assert str(smollm2_path) not in text and remote not in text
    assert "MODELYARD_SECRET_REMOTE_KEY" not in text
    full = {m["id"]: m for m in client.get("/v1/models", headers=admin).json()["data"]}
    assert full["tiny"]["gguf_path"] == str(smollm2_path)
    assert full["r1"]["api_key_env"] == "MODELYARD_SECRET_REMOTE_KEY"


def test_metrics_need_an_admin_key(client: TestClient, db: Session) -> None:
    assert client.get("/metrics", headers=key(db, "acme")).status_code == 403
    assert client.get("/metrics", headers=key(db, "ops", admin=True)).status_code == 200


def test_gguf_path_outside_allowed_directories_reveals_nothing(
    client: TestClient, db: Session, tmp_path: Path, smollm2_path: Path
) -> None:
    admin = key(db, "ops", admin=True)
    outside = tmp_path / "elsewhere.gguf"
    outside.write_bytes(smollm2_path.read_bytes())
    answers = []
    for path in ("/etc/passwd", "/no/such/file.gguf", str(outside),
                 str(smollm2_path.parent / ".." / ".." / "etc" / "shadow")):
        r = client.post("/v1/models", json={"name": "x", "gguf_path": path}, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "gguf_path"
        answers.append(r.json())
    assert all(a == answers[0] for a in answers)  # exists or not: the same answer
    r = client.post("/v1/models", json={"name": "x", "gguf_path": str(smollm2_path)},
                    headers=admin)
    assert r.status_code == 201, r.text
