"""Jinja2 templates (autoescaped) and the filters they format numbers and dates with."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def money(value: float | None) -> str:
    """USD with enough digits to tell tiny local-model costs apart."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) >= 0.01:
        return f"${value:.4f}"
    if abs(value) < 0.000001:
        return "<$0.000001" if value > 0 else "$0"
    return f"${value:.6f}".rstrip("0")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def size(value: int | None) -> str:
    if not value:
        return "—"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"


def count(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def params(value: int | None) -> str:
    """Parameter counts the way model cards write them: 135M, 7.6B."""
    if not value:
        return "—"
    if value >= 1e9:
        return f"{value / 1e9:.1f}B"
    return f"{value / 1e6:.0f}M" if value >= 1e6 else f"{value:,}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@cache
def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(TEMPLATES_DIR))
    t.env.filters.update(money=money, when=when, seconds=seconds, size=size, count=count,
                         params=params, pretty_json=pretty_json)
    return t


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status: int = 200) -> HTMLResponse:
    """A page, with the signed-in principal and the CSRF token its forms need."""
    ctx = {
        "user": getattr(request.state, "principal", None),
        "csrf": getattr(getattr(request.state, "web_session", None), "csrf", None),
        "path": request.url.path,
        **(context or {}),
    }
    response = templates().TemplateResponse(request, name, ctx, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response
