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

    def __init_subclass__(cls, *, status: int | None = None, exit_code: int | None = None,
                          error_type: str | None = None) -> None:
        """``class Gone(ModelyardError, status=410, error_type="gone")``: the mapping, once."""
        super().__init_subclass__()
        if status is not None:
            cls.http_status = status
        if exit_code is not None:
            cls.exit_code = exit_code
        if error_type is not None:
            cls.error_type = error_type

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ModelyardError, status=422, error_type="invalid_input"):
    """The caller sent something malformed (bad slug, bad URL, bad schema...)."""


class NotFound(ModelyardError, status=404, error_type="not_found"):
    """A named thing does not exist (or is not visible to the caller)."""


class Conflict(ModelyardError, status=409, error_type="conflict"):
    """The name is taken."""


class InvalidModelFile(InvalidInput):
    """A path that is missing, a directory, unreadable, not GGUF or truncated."""


class CapabilityMissing(InvalidInput):
    """The model cannot do what the request needs (e.g. chat on a completion-only model)."""


class NoAdequateModel(ModelyardError, status=422, error_type="no_adequate_model"):
    """The router found no model that meets the task's bar."""


class ModelTooLarge(ModelyardError, status=507, error_type="model_too_large"):
    """A local model does not fit the configured RAM budget."""


class BackendError(ModelyardError, status=502, exit_code=1, error_type="backend_error"):
    """The model backend failed (remote 5xx after retries, engine error).

    ``reached``: the whole request reached the server before it failed (the connection dropped
    or a read timed out after the request was sent, a stream broke mid-answer), so the server
    may have generated, and a per-token server bills what it generated; what that was is
    unknown.  The cascade bills such an attempt at its maximum.  False when the server never
    had the request (connection refused) or answered with an error status.
    """

    def __init__(self, message: str, *, field: str | None = None, reached: bool = False) -> None:
        super().__init__(message, field=field)
        self.reached = reached


class BackendTimeout(BackendError, status=504, error_type="backend_timeout"):
    """The backend did not answer within the configured timeout."""


class BackendUnreachable(BackendError, status=503, error_type="backend_unreachable"):
    """The backend refused or dropped the connection after retries."""


class BackendCrashed(BackendError, error_type="backend_crashed"):
    """A local model's runner process died mid-call (native crash, abort, OOM kill).

    Only that call fails; the runner is started again for the next one.  The message names the
    model and the signal, never a path.
    """


class CascadeExhausted(ModelyardError, status=502, exit_code=1, error_type="cascade_exhausted"):
    """Every candidate of a cascade failed or was rejected by the validator.

    Each attempt is already recorded (and paid for) in the ``calls`` table when this is raised.
    """

    def __init__(
        self, message: str, *, attempts: Sequence[Any] = (), field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.attempts = list(attempts)
