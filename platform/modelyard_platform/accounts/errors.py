"""How account actions fail, each mapped once to an HTTP status and a CLI exit code."""

from __future__ import annotations

from modelyard_registry.errors import InvalidInput, ModelyardError

from ..auth import Unauthorized


class SignInFailed(Unauthorized):
    """Wrong email or password: one message for both, so it never tells whether an email exists."""

    def __init__(self) -> None:
        super().__init__("Wrong email or password.", field="email")


class TooManyAttempts(ModelyardError):
    """Sign-in throttled for this account or this address."""

    http_status = 429
    exit_code = 1
    error_type = "rate_limited"


class WeakPassword(InvalidInput):
    """Too short, too common, or the email itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="password")


class LinkInvalid(ModelyardError):
    """An invitation or reset link that is unknown, used already or expired."""

    http_status = 410
    error_type = "link_invalid"


class SsoFailed(ModelyardError):
    """The provider refused, the answer did not verify, or no account matches."""

    http_status = 401
    error_type = "sso_failed"


class BadConfiguration(ModelyardError):
    """A setting that must not be used as it is (a placeholder secret): refuse to start."""

    http_status = 500
    exit_code = 2
    error_type = "bad_configuration"
