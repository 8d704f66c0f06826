"""Sign in with an API key (exchanged for a signed session cookie) and sign out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform.api.deps import SessionDep
from modelyard_platform.auth import Principal, Unauthorized, authenticate

from .. import session as cookies
from ..deps import FormDep, optional_user, web_state
from ..errors import PageError
from ..render import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an absolute or scheme-relative URL (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _login_page(request: Request, next_path: str, error: str = "", status: int = 200
                ) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"title": "Sign in", "login_csrf": token,
                                              "next": next_path, "error": error},
                      status=status)
    response.set_cookie(cookies.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/login")
    return response


@router.get("/login")
def login_form(request: Request,
               user: Annotated[Principal | None, Depends(optional_user)],
               next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    key, token, target = (form.get("api_key"), form.get("csrf"), form.get("next"))
    next_path = safe_next(target if isinstance(target, str) else None)
    if not cookies.same_token(request.cookies.get(cookies.LOGIN_CSRF_COOKIE),
                              token if isinstance(token, str) else None):
        raise PageError(403, "The sign-in form expired; reload the page and try again.")
    try:
        principal = authenticate(session, key.strip() if isinstance(key, str) else None)
    except Unauthorized as exc:
        return _login_page(request, next_path, exc.message, status=401)
    value = cookies.encode(web_state(request).secret, cookies.new_session(principal.key_id))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(cookies.COOKIE, value, max_age=cookies.MAX_AGE_S, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    response.delete_cookie(cookies.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(_: FormDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(cookies.COOKIE, path="/")
    return response
