"""The accounts library on real databases (SQLite and PostgreSQL) and a real Redis: hashes,
password rules, one-time links, sessions, disabling, throttling."""

from __future__ import annotations

import pytest
from modelyard_platform.accounts import (
    LinkInvalid,
    SignInFailed,
    SignInThrottle,
    TooManyAttempts,
    WeakPassword,
    disable_user,
    ensure_user,
    find_session,
    issue_link,
    principal_for_session,
    start_session,
    use_link,
    verify_credentials,
)
from modelyard_platform.accounts.passwords import check_strength, common_passwords
from modelyard_platform.auth import authenticate, create_key
from modelyard_platform.models import LinkKind, Role
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from tests.conftest import fresh_redis, redis_test_url

PASSWORD = "violet lantern harbour 8"


def test_common_list_and_rules() -> None:
    assert len(common_passwords()) == 10_000 and "qwerty" in common_passwords()
    for password, why in (("short", "at least 10"), ("iloveyou12", "most common"),
                          ("Sam@example.com", "email")):
        with pytest.raises(WeakPassword, match=why):
            check_strength(password, email="sam@example.com", min_length=10)
    check_strength(PASSWORD, email="sam@example.com", min_length=10)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_invite_sign_in_sessions_and_disable(database: str, settings: Settings,
                                             request: pytest.FixtureRequest) -> None:
    url = (request.getfixturevalue("pg_url") if database == "postgres"
           else settings.effective_database_url)
    with session_scope(url) as session:
        user, needs_password = ensure_user(session, email=" Sam@Example.com ", team="support",
                                           role=Role.admin)
        assert user.email == "sam@example.com" and needs_password
        first = issue_link(session, user=user, kind=LinkKind.invite, ttl_s=60)
        second = issue_link(session, user=user, kind=LinkKind.invite, ttl_s=60)
        with pytest.raises(LinkInvalid, match="replaced by a newer one"):
            use_link(session, first, LinkKind.invite, PASSWORD, min_length=10)
        with pytest.raises(LinkInvalid, match="not valid"):
            use_link(session, second, LinkKind.reset, PASSWORD, min_length=10)  # wrong kind
        with pytest.raises(WeakPassword):
            use_link(session, second, LinkKind.invite, "password", min_length=10)
        use_link(session, second, LinkKind.invite, PASSWORD, min_length=10)
        with pytest.raises(LinkInvalid, match="already used"):
            use_link(session, second, LinkKind.invite, PASSWORD, min_length=10)

        signed = verify_credentials(session, "SAM@example.com", PASSWORD)
        assert signed.password_hash and signed.password_hash.startswith("$argon2id$")
        assert PASSWORD not in signed.password_hash
        for email, password in (("sam@example.com", "wrong"), ("nobody@example.com", PASSWORD)):
            with pytest.raises(SignInFailed, match=r"^Wrong email or password\.$"):
                verify_credentials(session, email, password)

        token, row = start_session(session, ttl_s=60, user=signed, team_id=None)
        live = find_session(session, token)
        assert live is not None and live.id == row.id
        principal = principal_for_session(session, live)
        assert principal is not None and principal.admin and principal.team == "support"
        assert principal.key_id is None and principal.rate_subject == f"user-{signed.id}"
        key, _ = create_key(session, team="support", admin=True, user_id=signed.id)
        assert authenticate(session, key).user_id == signed.id

        disable_user(session, "sam@example.com")
        assert find_session(session, token) is None
        with pytest.raises(SignInFailed):
            verify_credentials(session, "sam@example.com", PASSWORD)
        with pytest.raises(Exception, match="revoked"):
            authenticate(session, key)
        expired, _ = start_session(session, ttl_s=-1, user=signed)
        assert find_session(session, expired) is None


def test_throttle_counts_failures_per_account_and_address_in_redis() -> None:
    url = fresh_redis(redis_test_url(11))
    throttle = SignInThrottle(url, per_account=2, per_address=3, window_s=60)
    other = SignInThrottle(url, per_account=2, per_address=3, window_s=60)  # another process
    try:
        throttle.check(email="a@x.example", address="10.0.0.1")
        throttle.failed(email="a@x.example", address="10.0.0.1")
        other.failed(email="A@x.example ", address="10.0.0.2")
        with pytest.raises(TooManyAttempts, match="about 1 minute"):
            other.check(email="a@x.example", address="10.0.0.3")
        throttle.check(email="b@x.example", address="10.0.0.1")
        throttle.failed(email="b@x.example", address="10.0.0.1")
        throttle.failed(email="c@x.example", address="10.0.0.1")
        with pytest.raises(TooManyAttempts):
            throttle.check(email="d@x.example", address="10.0.0.1")
        throttle.succeeded(email="a@x.example")
        throttle.check(email="a@x.example", address="10.0.0.9")  # the account is clear again
    finally:
        throttle.close()
        other.close()
        fresh_redis(url)


def test_throttle_without_redis_counts_in_process() -> None:
    throttle = SignInThrottle(None, per_account=1, per_address=5, window_s=60)
    throttle.failed(email="a@x.example", address="1.2.3.4")
    with pytest.raises(TooManyAttempts):
        throttle.check(email="a@x.example", address="5.6.7.8")
    gone = SignInThrottle(None, per_account=1, per_address=5, window_s=-1)  # window over
    gone.failed(email="a@x.example", address="1.2.3.4")
    gone.check(email="a@x.example", address="1.2.3.4")
