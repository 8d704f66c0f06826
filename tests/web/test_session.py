"""Session cookies: signed, tamper-evident, expiring; the secret kept in home with mode 0600."""

from __future__ import annotations

import stat

from modelyard_registry.settings import Settings
from modelyard_web import session as cookies

SECRET = b"s" * 32


def test_round_trip() -> None:
    made = cookies.new_session(7, now=1000)
    assert cookies.decode(SECRET, cookies.encode(SECRET, made), now=1001) == made


def test_tampered_or_foreign_cookie_is_refused() -> None:
    value = cookies.encode(SECRET, cookies.new_session(7, now=1000))
    payload, mac = value.split(".")
    forged = cookies.encode(b"other secret", cookies.new_session(1, now=1000))
    assert cookies.decode(SECRET, forged.split(".")[0] + "." + mac, now=1001) is None
    assert cookies.decode(SECRET, payload + "." + mac[:-2] + "AA", now=1001) is None
    assert cookies.decode(b"other secret", value, now=1001) is None
    for junk in (None, "", "nodot", "a.b.c", "bm90IGpzb24.x"):
        assert cookies.decode(SECRET, junk) is None


def test_expired_cookie_is_refused() -> None:
    value = cookies.encode(SECRET, cookies.new_session(7, now=1000))
    assert cookies.decode(SECRET, value, now=1000 + cookies.MAX_AGE_S + 1) is None
    assert cookies.decode(SECRET, value, now=999) is None


def test_csrf_tokens_compare_safely() -> None:
    assert cookies.same_token("abc", "abc")
    assert not cookies.same_token("abc", "abd")
    assert not cookies.same_token("abc", None)
    assert not cookies.same_token(None, None)
    assert not cookies.same_token("", "")


def test_generated_secret_is_private_and_kept(settings: Settings) -> None:
    first = cookies.load_secret(settings)
    path = settings.home_dir / cookies.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert cookies.load_secret(settings) == first  # a restart keeps sessions valid


def test_configured_secret_wins(settings: Settings) -> None:
    configured = settings.model_copy(update={"session_secret": "from-the-environment"})
    assert cookies.load_secret(configured) == b"from-the-environment"
    assert not (settings.home_dir / cookies.SECRET_FILE).exists()
