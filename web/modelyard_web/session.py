"""Signed session cookies: the browser holds ``{key id, CSRF token, issue time}`` plus an HMAC.

The API key itself never leaves the login request: it is checked once, then only its row id
travels, signed with a server secret, so a cookie cannot be forged or edited.  Every request
re-reads the key row, so revoking a key signs its browser sessions out at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from modelyard_registry.settings import Settings

COOKIE = "modelyard_session"
LOGIN_CSRF_COOKIE = "modelyard_login_csrf"
MAX_AGE_S = 7 * 24 * 3600
SECRET_FILE = "web_secret"


@dataclass(frozen=True)
class WebSession:
    """What a valid cookie says: which key signed in, and the CSRF token of its forms."""

    key_id: int
    csrf: str
    issued_at: int


def load_secret(settings: Settings) -> bytes:
    """``Settings.session_secret``, else a random one kept in ``home`` (mode 0600).

    Kept so that sessions survive restarts; API processes sharing ``home`` share it too.
    """
    if settings.session_secret:
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


def new_session(key_id: int, now: float | None = None) -> WebSession:
    return WebSession(key_id=key_id, csrf=secrets.token_urlsafe(24),
                      issued_at=int(now if now is not None else time.time()))


def encode(secret: bytes, session: WebSession) -> str:
    body = json.dumps({"k": session.key_id, "c": session.csrf, "t": session.issued_at},
                      separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret, payload)}"


def decode(secret: bytes, value: str | None, now: float | None = None) -> WebSession | None:
    """The session in a cookie, or None when it is missing, tampered with or expired."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = WebSession(key_id=int(data["k"]), csrf=str(data["c"]),
                             issued_at=int(data["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    age = (now if now is not None else time.time()) - session.issued_at
    if age < 0 or age > MAX_AGE_S:
        return None
    return session


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
