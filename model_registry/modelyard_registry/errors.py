"""Every error Modelyard raises on purpose, each mapped once to an HTTP status and exit code.

The CLI prints ``Error: <message>`` and exits with ``exit_code``; the API answers
``{"error": {"type", "message", "field"?}}`` with ``http_status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ModelyardError(Exception):
    """Base class; carries how the edges should report it."""

    http_status = 400
    exit_code = 2
    error_type = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ModelyardError):
    """The caller sent something malformed (bad slug, bad URL, bad schema...)."""

    http_status = 422
    error_type = "invalid_input"


class NotFound(ModelyardError):
    """A named thing does not exist (or is not visible to the caller)."""

    http_status = 404
    error_type = "not_found"


class Conflict(ModelyardError):
    """The name is taken."""

    http_status = 409
    error_type = "conflict"


class InvalidModelFile(InvalidInput):
    """A path that is missing, a directory, unreadable, not GGUF or truncated."""


class CapabilityMissing(InvalidInput):
    """The model cannot do what the request needs (e.g. chat on a completion-only model)."""


class NoAdequateModel(ModelyardError):
    """The router found no model that meets the task's bar."""

    http_status = 422
    error_type = "no_adequate_model"


class ModelTooLarge(ModelyardError):
    """A local model does not fit the configured RAM budget."""

    http_status = 507
    error_type = "model_too_large"


class BackendError(ModelyardError):
    """The model backend failed (remote 5xx after retries, engine error)."""

    http_status = 502
    exit_code = 1
    error_type = "backend_error"


class BackendTimeout(BackendError):
    """The backend did not answer within the configured timeout."""

    http_status = 504
    error_type = "backend_timeout"


class BackendUnreachable(BackendError):
    """The backend refused or dropped the connection after retries."""

    http_status = 503
    error_type = "backend_unreachable"


class BackendCrashed(BackendError):
    """A local model's runner process died mid-call (native crash, abort, OOM kill).

    Only that call fails; the runner is started again for the next one.  The message names the
    model and the signal, never a path.
    """

    error_type = "backend_crashed"


class CascadeExhausted(ModelyardError):
    """Every candidate of a cascade failed or was rejected by the validator.

    Each attempt is already recorded (and paid for) in the ``calls`` table when this is raised.
    """

    http_status = 502
    exit_code = 1
    error_type = "cascade_exhausted"

    def __init__(
        self, message: str, *, attempts: Sequence[Any] = (), field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.attempts = list(attempts)
