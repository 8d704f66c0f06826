"""How pages fail: a redirect to sign in, or an HTML error page (never the API's JSON body)."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from modelyard_registry.errors import ModelyardError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .render import render

_TITLES = {400: "Bad request", 401: "Sign in needed", 403: "Forbidden", 404: "Not found",
           409: "Conflict", 410: "Link no longer valid", 422: "Invalid input",
           429: "Slow down"}


class LoginRequired(Exception):
    """No valid session cookie: send the browser to the sign-in page, then back here."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An error shown as a page, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_page(request: Request) -> bool:
    """Everything but the API (``/v1``), the docs and the health probes is a page."""
    path = request.url.path
    return not (path.startswith(("/v1/", "/docs", "/redoc", "/openapi.json", "/metrics"))
                or path in {"/v1", "/healthz", "/readyz"})


def error_page(request: Request, status: int, message: str) -> Response:
    title = _TITLES.get(status, "Something went wrong")
    return render(request, "error.html", {"title": title, "status": status,
                                          "message": message}, status=status)


def login_redirect(next_path: str) -> RedirectResponse:
    target = "/login"
    if next_path and next_path != "/":
        target += "?next=" + quote(next_path, safe="/")
    return RedirectResponse(target, status_code=303)


def install(app: FastAPI) -> None:
    """Own exceptions, plus HTML versions of the API's handlers for page paths only."""

    async def login_required(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return login_redirect(exc.next_path)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc.status, exc.message)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)

    def for_pages(exc_class: type[Exception], status_message: Any) -> None:
        api_handler = app.exception_handlers.get(exc_class)

        async def handler(request: Request, exc: Exception) -> Response:
            if is_page(request) or api_handler is None:
                status, message = status_message(exc)
                return error_page(request, status, message)
            response = api_handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            assert isinstance(response, Response)
            return response

        app.add_exception_handler(exc_class, handler)

    def modelyard(exc: Exception) -> tuple[int, str]:
        assert isinstance(exc, ModelyardError)
        return exc.http_status, exc.message

    def http(exc: Exception) -> tuple[int, str]:
        assert isinstance(exc, StarletteHTTPException)
        return exc.status_code, str(exc.detail)

    def invalid(exc: Exception) -> tuple[int, str]:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return 422, f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"

    for_pages(ModelyardError, modelyard)
    for_pages(StarletteHTTPException, http)
    for_pages(RequestValidationError, invalid)
