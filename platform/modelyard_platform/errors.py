"""Every error the platform raises on purpose, and the one function that builds an error body.

The registry's hierarchy (``modelyard_registry.errors``) is the base: each class carries its HTTP
status, CLI exit code and ``error_type``. The platform adds its own failures here (keys, people,
limits, budgets) and nowhere else; layers point down, so the registry never sees these.

An error travels as ``{"type", "message", "field"?}``: wrapped as ``{"error": {...}}`` in an API
response or an SSE event (``error_body``), bare in a failed job's ``error`` (``error_detail``).
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from modelyard_registry.errors import InvalidInput, ModelyardError
from pydantic import BaseModel, ValidationError


class Unauthorized(ModelyardError, status=401, error_type="unauthorized"):
    """No key, a malformed key, an unknown key or a revoked key."""


class Forbidden(ModelyardError, status=403, error_type="forbidden"):
    """A valid key without the scope the action needs (admin)."""


class RateLimited(ModelyardError, status=429, error_type="rate_limited"):
    """The key went over its requests per minute."""


class TooManyJobs(ModelyardError, status=429, error_type="too_many_jobs"):
    """The team already has its maximum of queued + running jobs."""


class TooManyStreams(ModelyardError, status=429, error_type="too_many_streams"):
    """The key already holds its maximum of open job event streams (across API processes)."""


class OverBudget(ModelyardError, status=429, error_type="over_budget"):
    """The team spent its monthly budget."""


class BrokerNotConfigured(ModelyardError, exit_code=2):
    """No REDIS_URL: separate API/worker processes need a shared broker."""


class SignInFailed(Unauthorized):
    """Wrong email or password: one message for both, so it never tells whether an email exists."""

    def __init__(self) -> None:
        super().__init__("Wrong email or password.", field="email")


class TooManyAttempts(ModelyardError, status=429, exit_code=1, error_type="rate_limited"):
    """Sign-in throttled for this account or this address."""


class WeakPassword(InvalidInput):
    """Too short, too common, or the email itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="password")


class LinkInvalid(ModelyardError, status=410, error_type="link_invalid"):
    """An invitation or reset link that is unknown, used already or expired."""


class SsoFailed(ModelyardError, status=401, error_type="sso_failed"):
    """The provider refused, the answer did not verify, or no account matches."""


class BadConfiguration(ModelyardError, status=500, exit_code=2, error_type="bad_configuration"):
    """A setting that must not be used as it is (a placeholder secret): refuse to start."""


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``type`` to branch on, a message for people, the field at fault."""

    type: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every API error response (and an error event inside a stream) has this shape."""

    error: ErrorDetail


def error_detail(type_: str, message: str, field: str | None = None) -> dict[str, Any]:
    """``{"type", "message", "field"?}``: the one place the shape is built.

    ``field`` is there only when there is one, so clients can test for its presence.
    """
    detail: dict[str, Any] = {"type": type_, "message": message}
    if field:
        detail["field"] = field
    return detail


def error_body(type_: str, message: str, field: str | None = None) -> dict[str, Any]:
    """``{"error": {"type", "message", "field"?}}``: in a response, or inside a stream."""
    return {"error": error_detail(type_, message, field)}


def field_path(loc: tuple[Any, ...] | list[Any], prefix: str | None = None) -> str:
    """``("body", "input", "body")`` -> ``"input.body"``: only FastAPI's leading location goes.

    A request error's location starts with where it came from (body/query/path/header); a
    field that happens to be named ``body`` (a ticket's body, say) must keep its name.
    """
    parts = [str(p) for p in loc]
    if prefix:
        parts.insert(0, prefix)
    elif parts and parts[0] == "body":
        parts.pop(0)
    return ".".join(parts)


def describe(exc: BaseException, *, prefix: str | None = None,
             invalid_type: str = "invalid_input") -> dict[str, Any]:
    """The error detail for any exception.

    Ours carry their type; a pydantic error names its first field (``invalid_type``: bad input
    at the API, ``invalid_output`` for a product's result); anything else is an internal error
    named by its class.
    """
    if isinstance(exc, ModelyardError):
        return error_detail(exc.error_type, exc.message, exc.field)
    if isinstance(exc, ValidationError | RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = field_path(first.get("loc", ()), prefix)
        msg = str(first.get("msg", "invalid"))
        return error_detail(invalid_type, f"{field}: {msg}" if field else msg, field or None)
    return error_detail("internal_error", f"{type(exc).__name__}: {exc}")
