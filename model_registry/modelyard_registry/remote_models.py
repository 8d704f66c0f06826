"""Registering OpenAI-compatible endpoints (vLLM & co.) and tracking whether they answer."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import Session

from .catalog import (
    Backend,
    Capability,
    ModelCreate,
    ModelEntry,
    add_model,
    find_model,
    get_model,
    list_models,
    record_health,
    validate_base_url,
    validate_response_format,
    validate_slug,
)
from .egress import EgressPolicy, check_secret_name, read_secret
from .errors import Conflict, InvalidInput
from .runtimes.openai_compat import check_health
from .settings import Settings

DEFAULT_REMOTE_CAPABILITIES = [Capability.chat.value, Capability.json_schema.value]


def served_models(base_url: str, api_key: str | None, timeout_s: float) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{base_url}/models", headers=headers, timeout=timeout_s)
    response.raise_for_status()
    data = response.json().get("data", [])
    return [d for d in data if isinstance(d, dict)]


def register_remote(
    session: Session,
    settings: Settings,
    *,
    name: str,
    base_url: str,
    served_name: str,
    api_key_env: str | None = None,
    api_key: str | None = None,
    price_in: float = 0.0,
    price_out: float = 0.0,
    context_length: int | None = None,
    capabilities: list[str] | None = None,
    response_format: str = "json_schema",
    check: bool = True,
    endpoints: list[str] | None = None,
) -> ModelEntry:
    """Refuse an endpoint that does not answer (unless ``check`` is off): fail at add, not later.

    ``endpoints`` lists replicas serving the same model (``base_url`` is then the first); each
    is checked like a single endpoint.
    """
    validate_slug(name)
    urls = list(dict.fromkeys(validate_base_url(u) for u in (endpoints or [base_url])))
    base_url = urls[0]
    validate_response_format(response_format)
    if find_model(session, name) is not None:
        raise Conflict(f"a model named {name!r} already exists", field="name")
    check_secret_name(api_key_env, settings.secret_env_allow)
    policy = EgressPolicy(settings.egress_allow, cache_s=0)
    for url in urls:
        policy.check(url)
    if api_key_env and api_key is None:
        api_key = read_secret(api_key_env, settings.secret_env_allow)
    health = "unknown"
    if check:
        for url in urls:
            context_length = _check_endpoint(url, api_key, served_name, context_length,
                                             settings.health_timeout_s)
        health = "healthy"
    entry = add_model(
        session,
        ModelCreate(
            name=name,
            backend=Backend.openai_compatible,
            base_url=base_url,
            served_name=served_name,
            api_key_env=api_key_env,
            price_in=price_in,
            price_out=price_out,
            context_length=context_length,
            capabilities=capabilities or DEFAULT_REMOTE_CAPABILITIES,
            response_format=response_format,
            endpoints=urls if len(urls) > 1 else [],
        ),
    )
    if health == "healthy":
        record_health(session, name, True)
    return entry


def _check_endpoint(url: str, api_key: str | None, served_name: str,
                    context_length: int | None, timeout_s: float) -> int | None:
    """Raise unless ``url`` answers and serves ``served_name``; returns the context length."""
    ok, error = check_health(url, api_key, timeout_s)
    if not ok:
        raise InvalidInput(
            f"endpoint check failed: {error} (use --no-check to register it anyway)",
            field="base_url",
        )
    served = served_models(url, api_key, timeout_s)
    ids = [str(d.get("id")) for d in served]
    match = next((d for d in served if d.get("id") == served_name), None)
    if match is None:
        raise InvalidInput(
            f"{url} does not serve {served_name!r} (it serves: {', '.join(ids) or 'none'})",
            field="served_name",
        )
    return context_length or _int(match.get("max_model_len"))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def refresh_health(
    session: Session, settings: Settings, name: str | None = None
) -> dict[str, tuple[bool, str | None]]:
    """Probe remote models (one, or all) and store the result the router reads."""
    entries = [get_model(session, name)] if name else list_models(session)
    results: dict[str, tuple[bool, str | None]] = {}
    for entry in entries:
        if entry.backend != Backend.openai_compatible or not entry.base_url:
            continue
        key = read_secret(entry.api_key_env, settings.secret_env_allow)
        ok, error = False, None
        for url in entry.endpoints or [entry.base_url]:  # healthy while any replica answers
            up, why = check_health(url, key, settings.health_timeout_s)
            ok, error = ok or up, error if up else "; ".join(filter(None, [error, why]))
        error = None if ok else error
        record_health(session, entry.name, ok, error)
        results[entry.name] = (ok, error)
    return results
