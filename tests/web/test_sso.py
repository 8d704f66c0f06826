"""Single sign-on against a real OpenID provider process on loopback (oidc-provider-mock).

The provider issues real signed ID tokens from its own JWKS; our side runs discovery, sends a
PKCE challenge and nonce, trades the code with the verifier and verifies the token.  (This
provider does not itself enforce PKCE, so that the verifier matches is not checked by it.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from modelyard_platform.api import create_app
from modelyard_registry.settings import Settings
from pydantic import SecretStr

from tests.conftest import free_port, wait_http

from .conftest import People


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(port),
                             "--require-nonce", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{issuer}/.well-known/openid-configuration", 30, proc)  # type: ignore[arg-type]
        yield issuer
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def sso_client(settings: Settings, provider: str, people: People) -> Iterator[TestClient]:
    configured = settings.model_copy(update={
        "oidc_issuer": provider, "oidc_client_id": "modelyard-test",
        "oidc_client_secret": SecretStr("not-checked-by-this-provider"),
        "oidc_domain_teams": {"web.example": "web", "support.example": "support"}})
    with TestClient(create_app(configured), follow_redirects=False) as client:
        yield client


def sign_in_at_provider(client: TestClient, provider: str, sub: str, claims: dict[str, object],
                        next_path: str = "/jobs") -> httpx.Response:
    """Start at our sign-in, consent at the provider as ``sub``, come back to the callback."""
    assert httpx.put(f"{provider}/users/{sub}", json=claims).status_code == 204
    start = client.get(f"/login/sso?next={next_path}")
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["nonce"] and query["state"] and query["scope"] == ["openid email profile"]
    flow = json.loads(base64.urlsafe_b64decode(
        client.cookies["modelyard_sso"].split(".")[0] + "=="))
    digest = hashlib.sha256(flow["verifier"].encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).decode().rstrip("=")]
    assert query["state"] == [flow["state"]] and query["nonce"] == [flow["nonce"]]
    consent = httpx.post(authorize, data={"sub": sub})
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert back.path == "/login/sso/callback"
    return client.get(f"{back.path}?{back.query}")


def test_sso_button_on_the_sign_in_page(sso_client: TestClient, client: TestClient) -> None:
    assert "Sign in with single sign-on" in sso_client.get("/login").text
    assert "single sign-on" not in client.get("/login").text
    assert client.get("/login/sso").status_code == 401  # not configured here


def test_verified_email_of_a_mapped_domain_joins_its_team(sso_client: TestClient,
                                                          provider: str) -> None:
    done = sign_in_at_provider(sso_client, provider, "u-1",
                               {"email": "Sam@Support.example", "email_verified": True})
    assert done.status_code == 303 and done.headers["location"] == "/jobs"
    home = sso_client.get("/")
    assert home.status_code == 200
    assert "sam@support.example" in home.text and "support" in home.text
    assert sso_client.get("/models").status_code == 403  # a member, not an admin


def test_existing_account_is_matched_by_verified_email(sso_client: TestClient, provider: str,
                                                       people: People) -> None:
    done = sign_in_at_provider(sso_client, provider, "u-2",
                               {"email": people.member, "email_verified": True})
    assert done.status_code == 303
    assert people.member in sso_client.get("/").text


def test_unverified_email_is_refused(sso_client: TestClient, provider: str,
                                     people: People) -> None:
    done = sign_in_at_provider(sso_client, provider, "u-3",
                               {"email": people.member, "email_verified": False})
    assert done.status_code == 401 and "has not verified" in done.text
    assert sso_client.get("/").status_code == 303


def test_unmapped_domain_without_an_account_is_refused(sso_client: TestClient,
                                                       provider: str) -> None:
    done = sign_in_at_provider(sso_client, provider, "u-4",
                               {"email": "eve@elsewhere.example", "email_verified": True})
    assert done.status_code == 401 and "no Modelyard account" in done.text


def test_callback_without_this_browsers_state_is_refused(sso_client: TestClient,
                                                         provider: str) -> None:
    assert httpx.put(f"{provider}/users/u-5", json={
        "email": "x@web.example", "email_verified": True}).status_code == 204
    authorize = sso_client.get("/login/sso").headers["location"]
    consent = httpx.post(authorize, data={"sub": "u-5"})
    back = urlsplit(consent.headers["location"])
    forged = back.query.replace("state=", "state=x")
    response = sso_client.get(f"{back.path}?{forged}")
    assert response.status_code == 401 and "does not match" in response.text
    sso_client.cookies.clear()
    response = sso_client.get(f"{back.path}?{back.query}")
    assert response.status_code == 400 and "expired" in response.text
