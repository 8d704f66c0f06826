"""Single sign-on: OpenID Connect authorization code with PKCE (authlib client, joserfc JWTs).

The provider is found by discovery from ``MODELYARD_OIDC_ISSUER``; the ID token is verified
against the provider's JWKS (signature, issuer, audience, expiry, nonce).  People are matched by a
*verified* email only, and join the team ``MODELYARD_OIDC_DOMAIN_TEAMS`` maps their domain to (or
``MODELYARD_OIDC_DEFAULT_TEAM``).  Between the redirect and the callback the browser holds the
state, nonce and PKCE verifier in a signed cookie, so any API replica can finish the flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2 import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from modelyard_registry.settings import Settings
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from ..errors import SsoFailed
from ..models import Role, User
from .users import ensure_user, find_user


class ProviderMetadata(BaseModel):
    """The parts of the discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = ["RS256"]


@dataclass(frozen=True)
class Pending:
    """What the callback needs to check: kept in the browser's signed cookie meanwhile."""

    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    email_verified: bool


def sso_enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


class OidcClient:
    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        if not sso_enabled(settings):
            raise SsoFailed("single sign-on is not configured (MODELYARD_OIDC_ISSUER, "
                            "MODELYARD_OIDC_CLIENT_ID)")
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        secret = settings.oidc_client_secret
        self.client_secret = secret.get_secret_value() if secret else None
        self.scopes = settings.oidc_scopes
        self.timeout_s = timeout_s

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.client_id, client_secret=self.client_secret, scope=self.scopes,
            redirect_uri=redirect_uri, code_challenge_method="S256", timeout=self.timeout_s,
            token_endpoint_auth_method="client_secret_basic" if self.client_secret else "none",
        )

    def metadata(self) -> ProviderMetadata:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=self.timeout_s)
            response.raise_for_status()
            meta = ProviderMetadata.model_validate(response.json())
        except (httpx.HTTPError, ValueError, ValidationError) as exc:
            raise SsoFailed(f"the identity provider could not be reached ({url}): {exc}") from exc
        if meta.issuer.rstrip("/") != self.issuer:
            raise SsoFailed(f"the provider says its issuer is {meta.issuer!r}, "
                            f"not {self.issuer!r}")
        return meta

    def begin(self, redirect_uri: str) -> tuple[str, Pending]:
        """The provider URL to send the browser to, and what to remember until it returns."""
        meta = self.metadata()
        pending = Pending(state=generate_token(32), nonce=generate_token(32),
                          verifier=generate_token(64))
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta.authorization_endpoint, state=pending.state,
                code_verifier=pending.verifier, nonce=pending.nonce)
        return str(url), pending

    def finish(self, *, redirect_uri: str, code: str, state: str, pending: Pending) -> Identity:
        """Trade the code (with the PKCE verifier) for tokens and verify the ID token."""
        if state != pending.state:
            raise SsoFailed("The sign-in answer does not match this browser's request; "
                            "start again.")
        meta = self.metadata()
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(meta.token_endpoint, code=code,
                                           code_verifier=pending.verifier,
                                           grant_type="authorization_code")
                id_token = token.get("id_token")
                if not isinstance(id_token, str):
                    raise SsoFailed("the provider sent no ID token (is 'openid' in the scopes?)")
                keys = KeySet.import_key_set(client.get(meta.jwks_uri).raise_for_status().json())
                decoded = jwt.decode(id_token, keys,
                                     algorithms=meta.id_token_signing_alg_values_supported)
                jwt.JWTClaimsRegistry(
                    iss={"essential": True, "value": meta.issuer},
                    aud={"essential": True, "value": self.client_id},
                    exp={"essential": True}, sub={"essential": True},
                    nonce={"essential": True, "value": pending.nonce},
                ).validate(decoded.claims)
                claims = dict(decoded.claims)
                if "email" not in claims and meta.userinfo_endpoint:
                    info = client.get(meta.userinfo_endpoint).raise_for_status().json()
                    if info.get("sub") == claims["sub"]:
                        claims.update({k: info[k] for k in ("email", "email_verified")
                                       if k in info})
        except (OAuth2Error, JoseError, httpx.HTTPError, ValueError) as exc:
            raise SsoFailed(f"The identity provider's answer did not verify: {exc}") from exc
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise SsoFailed("The identity provider did not share an email address "
                            "(is 'email' in the scopes?).")
        return Identity(subject=str(claims["sub"]), email=email,
                        email_verified=claims.get("email_verified") is True)


def team_for_email(settings: Settings, email: str) -> str | None:
    domain = email.rsplit("@", 1)[-1].lower()
    mapped = {d.lower(): team for d, team in settings.oidc_domain_teams.items()}
    return mapped.get(domain, settings.oidc_default_team)


def sso_user(session: Session, settings: Settings, identity: Identity) -> User:
    """The person a verified identity signs in as, created or added to their mapped team."""
    if not identity.email_verified:
        raise SsoFailed("Your identity provider has not verified this email address, so it "
                        "cannot be matched to a Modelyard account.")
    team = team_for_email(settings, identity.email)
    user = find_user(session, identity.email)
    if user is not None and user.disabled_at is not None:
        raise SsoFailed("This account is disabled. Ask a team admin.")
    if team is None:
        if user is None:
            raise SsoFailed("There is no Modelyard account for this email. Ask a team admin "
                            "for an invitation.")
        return user
    user, _ = ensure_user(session, email=identity.email, team=team, role=Role.member)
    return user
