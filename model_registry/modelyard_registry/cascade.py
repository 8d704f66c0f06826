"""Old home of the cascade, now ``modelyard_registry.routing.cascade``: re-exports for now."""

from .routing.cascade import (
    Attempt,
    Cascade,
    CascadeResult,
    Outcome,
    SessionFactory,
    adapt_request,
    call_cost,
    effective_spec,
    render_plain,
    request_text,
    stored_completion,
)

__all__ = [
    "Attempt",
    "Cascade",
    "CascadeResult",
    "Outcome",
    "SessionFactory",
    "adapt_request",
    "call_cost",
    "effective_spec",
    "render_plain",
    "request_text",
    "stored_completion",
]
