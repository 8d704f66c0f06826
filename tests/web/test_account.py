"""Signing in and out: people with passwords, server-side sessions, the key sign-in setting,
throttling, CSRF, cookie properties, trusted proxies and the session secret."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from modelyard_platform.accounts import BadConfiguration
from modelyard_platform.api import create_app
from modelyard_platform.auth import revoke_key
from modelyard_platform.models import Role
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from modelyard_web import session as cookies

from tests.conftest import fresh_redis, redis_test_url

from .conftest import PASSWORD, People, add_person, csrf_of, sign_in, sign_in_with_key

PAGES = ["/", "/jobs", "/jobs/abc", "/products/ticket-triage", "/models", "/savings",
         "/account", "/team"]


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
    assert '<label for="email">' in page.text and '<label for="password">' in page.text
    assert "HttpOnly" in page.headers["set-cookie"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def _post_login(client: TestClient, **data: str) -> object:
    page = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(page.text), **data})


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient,
                                                              people: People) -> None:
    wrong = _post_login(client, email=people.member, password="not the password")
    unknown = _post_login(client, email="nobody@web.example", password="not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401  # type: ignore[attr-defined]
        assert "Wrong email or password." in response.text  # type: ignore[attr-defined]
        assert cookies.COOKIE not in response.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    assert client.get("/").status_code == 303


def test_login_without_the_forms_token_is_forbidden(client: TestClient, people: People) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": people.member, "password": PASSWORD,
                                           "csrf": "forged"})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert cookies.COOKIE not in response.headers.get("set-cookie", "")


def test_session_cookie_is_httponly_lax_and_holds_only_an_id(client: TestClient,
                                                             people: People) -> None:
    response = _post_login(client, email=people.member, password=PASSWORD, next="/jobs")
    assert response.status_code == 303 and response.headers["location"] == "/jobs"  # type: ignore[attr-defined]
    header = next(v for k, v in response.headers.multi_items()  # type: ignore[attr-defined]
                  if k == "set-cookie" and v.startswith(cookies.COOKIE))
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert "Secure" not in header  # plain http, no trusted proxy
    assert people.member not in header and "web" not in header.split(";")[0]
    home = client.get("/")
    assert home.status_code == 200
    assert people.member in home.text and "web" in home.text  # who and which team


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(client: TestClient, people: People, target: str) -> None:
    response = _post_login(client, email=people.member, password=PASSWORD, next=target)
    assert response.headers["location"] == "/"  # type: ignore[attr-defined]


def test_signed_in_login_page_redirects(user_client: TestClient) -> None:
    response = user_client.get("/login?next=/jobs")
    assert response.status_code == 303 and response.headers["location"] == "/jobs"


def test_sign_out_revokes_the_session_server_side(user_client: TestClient) -> None:
    token = csrf_of(user_client.get("/").text)
    stolen = user_client.cookies[cookies.COOKIE]
    assert user_client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert user_client.post("/logout").status_code == 403
    response = user_client.post("/logout", data={"csrf": token})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert f'{cookies.COOKIE}=""' in response.headers["set-cookie"]
    assert user_client.get("/").status_code == 303
    user_client.cookies.set(cookies.COOKIE, stolen)  # a copy of the cookie is dead too
    assert user_client.get("/").status_code == 303


def test_tampered_cookie_is_ignored(user_client: TestClient) -> None:
    value = user_client.cookies[cookies.COOKIE]
    user_client.cookies.clear()
    user_client.cookies.set(cookies.COOKIE, value[:-3] + "abc")
    assert user_client.get("/").status_code == 303


def test_password_change_ends_other_sessions(app: object, people: People,
                                             settings: Settings) -> None:
    with TestClient(app, follow_redirects=False) as laptop, \
            TestClient(app, follow_redirects=False) as phone:  # type: ignore[arg-type]
        sign_in(laptop, people.member)
        sign_in(phone, people.member)
        token = csrf_of(laptop.get("/account").text)
        new = "a much longer passphrase 42"
        bad = laptop.post("/account/password", data={
            "csrf": token, "current_password": "wrong", "new_password": new,
            "new_password_again": new})
        assert bad.status_code == 422 and "current password is wrong" in bad.text
        assert phone.get("/").status_code == 200
        done = laptop.post("/account/password", data={
            "csrf": token, "current_password": PASSWORD, "new_password": new,
            "new_password_again": new})
        assert done.status_code == 200 and "other sessions were signed out" in done.text
        assert laptop.get("/").status_code == 200  # this browser stays signed in
        assert phone.get("/").status_code == 303  # the other one is out
        phone.cookies.clear()
        assert _post_login(phone, email=people.member, password=PASSWORD).status_code == 401  # type: ignore[attr-defined]
        sign_in(phone, people.member, new)


def test_weak_passwords_are_refused(user_client: TestClient) -> None:
    token = csrf_of(user_client.get("/account").text)
    for new, message in (("short1", "at least 10 characters"),
                         ("password123", "most common"),
                         ("mel@web.example", "not be your email")):
        response = user_client.post("/account/password", data={
            "csrf": token, "current_password": PASSWORD, "new_password": new,
            "new_password_again": new})
        assert response.status_code == 422 and message in response.text, new


def test_sign_in_is_throttled_per_account_and_per_address(settings: Settings,
                                                          people: People) -> None:
    url = fresh_redis(redis_test_url(12))
    throttled = settings.model_copy(update={"redis_url": url, "login_max_failures": 3,
                                            "login_max_failures_per_address": 5})
    with TestClient(create_app(throttled), follow_redirects=False) as client:
        for _ in range(3):
            assert _post_login(client, email=people.member, password="nope").status_code == 401  # type: ignore[attr-defined]
        blocked = _post_login(client, email=people.member, password=PASSWORD)
        assert blocked.status_code == 429  # type: ignore[attr-defined]
        assert "Too many failed sign-in attempts" in blocked.text  # type: ignore[attr-defined]
        # another account from the same address still gets in until the address limit
        sign_in(client, people.admin)
        client.cookies.clear()
        for _ in range(2):
            assert _post_login(client, email="x@y.example", password="nope").status_code == 401  # type: ignore[attr-defined]
        assert _post_login(client, email=people.admin, password=PASSWORD).status_code == 429  # type: ignore[attr-defined]
    fresh_redis(url)


def test_key_sign_in_only_while_nobody_has_an_account(client: TestClient,
                                                      keys: dict[str, str],
                                                      settings: Settings) -> None:
    assert 'name="api_key"' in client.get("/login").text  # a fresh install: the admin key works
    sign_in_with_key(client, keys["user"])
    assert client.get("/").status_code == 200
    add_person(settings, "first@web.example", "web", Role.admin)
    client.cookies.clear()
    assert 'name="api_key"' not in client.get("/login").text
    refused = _post_login(client, api_key=keys["user"])
    assert refused.status_code == 401 and "turned off" in refused.text  # type: ignore[attr-defined]


def test_key_sign_in_setting(settings: Settings, keys: dict[str, str], people: People) -> None:
    allowed = settings.model_copy(update={"web_key_sign_in": True})
    with TestClient(create_app(allowed), follow_redirects=False) as client:
        page = client.get("/login")
        assert 'name="api_key"' in page.text
        for bad in ("my_not-a-real-key", "sk-something", ""):
            response = client.post("/login", data={"api_key": bad, "csrf": csrf_of(page.text)})
            assert response.status_code == 401 and 'role="alert"' in response.text
            page = response  # each answer carries a fresh form token
        sign_in_with_key(client, keys["user"])
        assert client.get("/").status_code == 200
        assert client.get("/account").status_code == 404  # keys have no account page
        with session_scope(settings.effective_database_url) as session:
            revoke_key(session, keys["user"][:10])
        assert client.get("/").status_code == 303  # revoking the key ends its sessions


def test_secure_cookie_only_behind_a_trusted_proxy(settings: Settings, people: People) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}

    def cookie_flags(app_settings: Settings) -> str:
        with TestClient(create_app(app_settings), follow_redirects=False) as client:
            token = csrf_of(client.get("/login", headers=forwarded).text)
            client.cookies.clear()  # a Secure form cookie would not come back over http here
            response = client.post("/login", data={
                "email": people.member, "password": PASSWORD, "csrf": token}, headers={
                **forwarded, "cookie": f"{cookies.LOGIN_CSRF_COOKIE}={token}"})
            assert response.status_code == 303
            return next(v for k, v in response.headers.multi_items()
                        if k == "set-cookie" and v.startswith(cookies.COOKIE))

    assert "Secure" not in cookie_flags(settings)  # untrusted: the header is ignored
    other = settings.model_copy(update={"trusted_proxies": "10.0.0.1"})
    assert "Secure" not in cookie_flags(other)
    trusted = settings.model_copy(update={"trusted_proxies": "testclient"})
    assert "Secure" in cookie_flags(trusted)


@pytest.mark.parametrize("secret", ["short", "CHANGE-ME-to-a-long-random-string",
                                    "x" * 64, "replace-this-with-something-long-enough-ok"])
def test_placeholder_or_short_session_secret_refuses_to_start(settings: Settings,
                                                              secret: str) -> None:
    with pytest.raises(BadConfiguration, match="MODELYARD_SESSION_SECRET"):
        create_app(settings.model_copy(update={"session_secret": secret}))


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


def test_a_person_in_two_teams_switches_between_them(client: TestClient, people: People,
                                                     settings: Settings) -> None:
    add_person(settings, people.member, "ops", Role.member)  # mel joins ops too
    sign_in(client, people.member)
    page = client.get("/account")
    found = re.findall(r'<option value="(\d+)"[^>]*>(\w+) \(member\)', page.text)
    teams = {name: int(i) for i, name in found}
    assert set(teams) == {"ops", "web"}
    token = csrf_of(page.text)
    stranger = client.post("/account/team", data={"csrf": token, "team_id": "99999"})
    assert stranger.status_code == 403
    moved = client.post("/account/team", data={"csrf": token, "team_id": str(teams["ops"])})
    assert moved.status_code == 303
    assert 'title="Signed in as mel@web.example, team ops"' in client.get("/").text
