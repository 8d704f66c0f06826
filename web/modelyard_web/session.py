"""Session cookies: the browser holds a random session id plus an HMAC; the server holds the rest.

The id names a row (``modelyard_platform.accounts.sessions``) saying who signed in, acting for
which team, with which CSRF token; signing out or a password change revokes the row, so a copied
cookie dies at once.  The HMAC makes a cookie that was never issued cheap to reject, without a
database read.  The secret must be long and not a placeholder: a guessable one would let anyone
mint cookies, so the app refuses to start with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from modelyard_platform.accounts import BadConfiguration
from modelyard_registry.settings import Settings

COOKIE = "modelyard_session"
LOGIN_CSRF_COOKIE = "modelyard_login_csrf"
SSO_COOKIE = "modelyard_sso"
SECRET_FILE = "web_secret"
MIN_SECRET_CHARS = 32
_PLACEHOLDERS = ("change", "replace", "example", "placeholder", "secret", "xxxx", "todo")


def check_secret(value: str) -> None:
    """Refuse a secret that is short, a placeholder, or one repeated character."""
    lowered = value.lower()
    if len(value) < MIN_SECRET_CHARS:
        raise BadConfiguration(
            f"MODELYARD_SESSION_SECRET is too short ({len(value)} characters; at least "
            f"{MIN_SECRET_CHARS} needed): set a long random value, e.g. `openssl rand -hex 32`, "
            "or unset it to have one generated under MODELYARD_HOME.",
            field="session_secret")
    if any(word in lowered for word in _PLACEHOLDERS) or len(set(value)) < 8:
        raise BadConfiguration(
            "MODELYARD_SESSION_SECRET looks like a placeholder: set a long random value, e.g. "
            "`openssl rand -hex 32`, or unset it to have one generated under MODELYARD_HOME.",
            field="session_secret")


def load_secret(settings: Settings) -> bytes:
    """``Settings.session_secret`` (checked), else a random one kept in ``home`` (mode 0600).

    Kept so that sessions survive restarts; API processes sharing ``home`` share it too.
    """
    if settings.session_secret is not None:
        check_secret(settings.session_secret)
        return settings.session_secret.encode()
    path: Path = settings.home_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value.encode()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # an earlier writer died half-way
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value)
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def sign(secret: bytes, token: str) -> str:
    """The cookie value for a session token."""
    return f"{token}.{_mac(secret, token)}"


def unsign(secret: bytes, value: str | None) -> str | None:
    """The session token in a cookie, or None when it is missing or was not signed by us."""
    if not value or value.count(".") != 1:
        return None
    token, mac = value.split(".")
    if not token or not hmac.compare_digest(mac, _mac(secret, token)):
        return None
    return token


def sign_json(secret: bytes, data: dict[str, str]) -> str:
    """A small signed value (the SSO flow's state) for a short-lived cookie."""
    return sign(secret, _b64(json.dumps(data, separators=(",", ":")).encode()))


def unsign_json(secret: bytes, value: str | None) -> dict[str, str] | None:
    payload = unsign(secret, value)
    if payload is None:
        return None
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {str(k): v for k, v in data.items()}


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
