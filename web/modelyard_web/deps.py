"""Page dependencies: the signed-in principal (server-side session), admins, CSRF-checked forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from modelyard_platform.accounts import SignInThrottle, find_session, principal_for_session
from modelyard_platform.api.deps import ServicesDep
from modelyard_platform.auth import Principal
from modelyard_platform.models import WebSession
from starlette.datastructures import FormData

from . import session as cookies
from .errors import LoginRequired, PageError


@dataclass(frozen=True)
class WebState:
    """What ``install`` keeps on ``app.state.web``."""

    secret: bytes
    throttle: SignInThrottle


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def client_address(request: Request) -> str:
    """The caller's address (the proxy's client when it is a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def optional_user(request: Request, services: ServicesDep) -> Principal | None:
    """The signed-in principal, also set on ``request.state`` for the templates."""
    token = cookies.unsign(web_state(request).secret, request.cookies.get(cookies.COOKIE))
    if token is None:
        return None
    with services.session() as session:
        row = find_session(session, token)
        principal = principal_for_session(session, row) if row is not None else None
    if principal is None or row is None:
        return None
    request.state.principal = principal
    request.state.web_session = row
    return principal


def get_user(request: Request, services: ServicesDep,
             principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if principal is None:
        raise LoginRequired(here(request))
    services.limiter.hit(principal.rate_subject)  # pages count like API calls
    return principal


UserDep = Annotated[Principal, Depends(get_user)]


def current_session(request: Request, _: UserDep) -> WebSession:
    row: WebSession = request.state.web_session
    return row


WebSessionDep = Annotated[WebSession, Depends(current_session)]


def get_admin(user: UserDep) -> Principal:
    if not user.admin:
        raise PageError(403, "This page is for team admins and operators.")
    return user


AdminDep = Annotated[Principal, Depends(get_admin)]


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, so that the page taking it can be a sync route.

    A sync route does its database work (and password hashing) on a worker thread and closes
    its request session there (``SessionRoute``, #15); an async one would do it on the loop.
    """
    return await request.form()


PostedFormDep = Annotated[FormData, Depends(posted_form)]


async def checked_form(request: Request, _: UserDep) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form()
    token = form.get("csrf")
    expected = request.state.web_session.csrf
    if not cookies.same_token(expected, token if isinstance(token, str) else None):
        raise PageError(403, "The form's security token is missing or stale; reload the page "
                             "and try again.")
    return form


FormDep = Annotated[FormData, Depends(checked_form)]
