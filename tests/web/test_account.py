"""Signing in and out: redirects for anonymous visitors, bad keys, CSRF, cookie properties."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from modelyard_platform.auth import revoke_key
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from modelyard_web import session as cookies

from .conftest import csrf_of, sign_in

PAGES = ["/", "/jobs", "/jobs/abc", "/products/ticket-triage", "/models", "/savings"]


def test_public_surface() -> None:
    import modelyard_web

    assert modelyard_web.__all__ == ["install"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    expected = "/login" if path == "/" else f"/login?next={path}"
    assert response.headers["location"] == expected


def test_login_page_and_assets(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="api_key"' in page.text and '<label for="api_key">' in page.text
    assert "HttpOnly" in page.headers["set-cookie"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_bad_key_is_rejected(client: TestClient, keys: dict[str, str]) -> None:
    page = client.get("/login")
    for bad in ("my_not-a-real-key", "sk-something", ""):
        response = client.post("/login", data={"api_key": bad, "csrf": csrf_of(page.text)})
        assert response.status_code == 401
        assert 'role="alert"' in response.text
        assert cookies.COOKIE not in response.headers.get("set-cookie", "")
        page = response
    assert client.get("/").status_code == 303


def test_login_without_the_forms_token_is_forbidden(client: TestClient,
                                                    keys: dict[str, str]) -> None:
    client.get("/login")
    response = client.post("/login", data={"api_key": keys["user"], "csrf": "forged"})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert cookies.COOKIE not in response.headers.get("set-cookie", "")


def test_session_cookie_is_httponly_lax_and_holds_no_key(client: TestClient,
                                                         keys: dict[str, str]) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"api_key": keys["user"],
                                           "csrf": csrf_of(page.text), "next": "/jobs"})
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    header = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(cookies.COOKIE))
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert keys["user"] not in header and keys["user"][3:20] not in header
    home = client.get("/")
    assert home.status_code == 200
    assert keys["user"] not in home.text
    assert "web" in home.text  # the team name in the top bar


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(client: TestClient, keys: dict[str, str],
                                    target: str) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"api_key": keys["user"],
                                           "csrf": csrf_of(page.text), "next": target})
    assert response.headers["location"] == "/"


def test_signed_in_login_page_redirects(user_client: TestClient) -> None:
    response = user_client.get("/login?next=/jobs")
    assert response.status_code == 303 and response.headers["location"] == "/jobs"


def test_sign_out_needs_the_token_and_clears_the_cookie(user_client: TestClient) -> None:
    token = csrf_of(user_client.get("/").text)
    assert user_client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert user_client.post("/logout").status_code == 403
    response = user_client.post("/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert f'{cookies.COOKIE}=""' in response.headers["set-cookie"]
    assert user_client.get("/").status_code == 303


def test_tampered_cookie_is_ignored(client: TestClient, keys: dict[str, str]) -> None:
    sign_in(client, keys["user"])
    value = client.cookies[cookies.COOKIE]
    client.cookies.clear()
    client.cookies.set(cookies.COOKIE, value[:-3] + "abc")
    assert client.get("/").status_code == 303


def test_revoking_the_key_ends_its_sessions(user_client: TestClient, keys: dict[str, str],
                                            settings: Settings) -> None:
    assert user_client.get("/").status_code == 200
    with session_scope(settings.effective_database_url) as session:
        revoke_key(session, keys["user"][:10])
    assert user_client.get("/").status_code == 303


def test_api_stays_json_and_ignores_the_session(user_client: TestClient) -> None:
    response = user_client.get("/v1/jobs")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
    missing = user_client.get("/v1/no-such-thing")
    assert missing.status_code == 404 and "error" in missing.json()


def test_api_errors_keep_their_json_shape(client: TestClient, keys: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {keys['user']}"}
    bad = client.post("/v1/products/echo/jobs", json={"input": {}, "extra": 1}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_input"
    gone = client.get("/v1/jobs/nope", headers=auth)
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "job_id"


def test_unknown_page_is_an_html_404(user_client: TestClient) -> None:
    response = user_client.get("/no-such-page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Not found" in response.text
