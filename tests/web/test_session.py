"""Session cookies: signed ids, tamper-evident; the secret kept in home with mode 0600 and
checked when configured."""

from __future__ import annotations

import stat

import pytest
from modelyard_platform.accounts import BadConfiguration
from modelyard_registry.settings import Settings
from modelyard_web import session as cookies

SECRET = b"s" * 32


def test_round_trip() -> None:
    assert cookies.unsign(SECRET, cookies.sign(SECRET, "abc123")) == "abc123"
    data = {"state": "x", "next": "/jobs"}
    assert cookies.unsign_json(SECRET, cookies.sign_json(SECRET, data)) == data


def test_tampered_or_foreign_cookie_is_refused() -> None:
    value = cookies.sign(SECRET, "abc123")
    token, mac = value.split(".")
    assert cookies.unsign(SECRET, "other." + mac) is None
    assert cookies.unsign(SECRET, token + "." + mac[:-2] + "AA") is None
    assert cookies.unsign(b"other secret", value) is None
    for junk in (None, "", "nodot", "a.b.c", ".x"):
        assert cookies.unsign(SECRET, junk) is None
    assert cookies.unsign_json(SECRET, cookies.sign(SECRET, "bm90IGpzb24")) is None


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
    value = "9f2c41d0e7b35a86c1f04d2e9b7a6c3158e0d4f2a9b1c7e3"
    configured = settings.model_copy(update={"session_secret": value})
    assert cookies.load_secret(configured) == value.encode()
    assert not (settings.home_dir / cookies.SECRET_FILE).exists()


@pytest.mark.parametrize(("value", "why"), [("from-the-environment", "too short"),
                                            ("CHANGE-ME-to-a-long-random-string", "placeholder"),
                                            ("a" * 40, "placeholder")])
def test_weak_configured_secret_is_refused(settings: Settings, value: str, why: str) -> None:
    with pytest.raises(BadConfiguration, match=why):
        cookies.load_secret(settings.model_copy(update={"session_secret": value}))
