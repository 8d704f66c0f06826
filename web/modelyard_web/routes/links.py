"""One-time links: set a first password (invitation) or a new one (reset); ask for a reset by mail.

These pages are for people who are not signed in, so their forms carry the sign-in form's
double-submit CSRF token rather than a session's.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform import accounts
from modelyard_platform.accounts.mail import MailFailed, link_mail, mail_configured, send_mail
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.models import LinkKind
from modelyard_registry.errors import ModelyardError
from modelyard_registry.settings import Settings
from sqlmodel import Session
from starlette.datastructures import FormData

from .. import session as cookies
from ..deps import PostedFormDep, client_address, web_state
from ..errors import PageError
from ..render import render
from .account import check_login_csrf, text

router = APIRouter(route_class=SessionRoute, include_in_schema=False)
log = logging.getLogger(__name__)

TITLES = {LinkKind.invite: "Set your password", LinkKind.reset: "Choose a new password"}


def base_url(request: Request, settings: Settings) -> str:
    return settings.public_url or str(request.base_url)


def _form(request: Request, kind: LinkKind, email: str, error: str = "", status: int = 200
          ) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "set_password.html", {
        "title": TITLES[kind], "kind": kind.value, "email": email, "login_csrf": token,
        "error": error}, status=status)
    response.set_cookie(cookies.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


def _show(request: Request, session: SessionDep, token: str, kind: LinkKind) -> Response:
    try:
        _, user = accounts.open_link(session, token, kind)
    except accounts.LinkInvalid as exc:
        raise PageError(exc.http_status, exc.message) from exc
    return _form(request, kind, user.email)


def _use(request: Request, services: ServicesDep, session: Session, form: FormData, token: str,
         kind: LinkKind) -> Response:
    check_login_csrf(request, text(form.get("csrf")))
    password = text(form.get("password"))
    try:
        _, user = accounts.open_link(session, token, kind)
    except accounts.LinkInvalid as exc:
        raise PageError(exc.http_status, exc.message) from exc
    try:
        if password != text(form.get("password_again")):
            raise accounts.WeakPassword("The two passwords differ.")
        accounts.use_link(session, token, kind, password,
                          min_length=services.settings.password_min_length)
    except ModelyardError as exc:
        return _form(request, kind, user.email, exc.message, status=exc.http_status)
    return RedirectResponse("/login?notice=password-set", status_code=303)


@router.get("/invite/{token}")
def invitation(request: Request, session: SessionDep, token: str) -> Response:
    return _show(request, session, token, LinkKind.invite)


@router.post("/invite/{token}")
def accept_invitation(request: Request, services: ServicesDep, session: SessionDep,
                      form: PostedFormDep, token: str) -> Response:
    return _use(request, services, session, form, token, LinkKind.invite)


@router.get("/reset/{token}")
def reset(request: Request, session: SessionDep, token: str) -> Response:
    return _show(request, session, token, LinkKind.reset)


@router.post("/reset/{token}")
def use_reset(request: Request, services: ServicesDep, session: SessionDep,
              form: PostedFormDep, token: str) -> Response:
    return _use(request, services, session, form, token, LinkKind.reset)


def _forgot_page(request: Request, message: str = "", error: str = "", status: int = 200
                 ) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "forgot.html", {"title": "Reset your password",
                                               "login_csrf": token, "message": message,
                                               "error": error}, status=status)
    response.set_cookie(cookies.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.get("/password/forgot")
def forgot(request: Request, services: ServicesDep) -> Response:
    if not mail_configured(services.settings):
        raise PageError(404, "Password resets by mail need an SMTP server; ask a team admin "
                             "for a reset link.")
    return _forgot_page(request)


@router.post("/password/forgot")
def send_reset(request: Request, services: ServicesDep, session: SessionDep,
               form: PostedFormDep) -> Response:
    """Mail a reset link; the answer is the same whether or not the email has an account."""
    settings = services.settings
    if not mail_configured(settings):
        raise PageError(404, "Password resets by mail need an SMTP server.")
    check_login_csrf(request, text(form.get("csrf")))
    email = text(form.get("email")).strip()
    throttle = web_state(request).throttle
    try:
        throttle.check(email=email, address=client_address(request))
    except accounts.TooManyAttempts as exc:
        return _forgot_page(request, error=exc.message, status=429)
    throttle.failed(email=email, address=client_address(request))  # each request counts
    user = accounts.find_user(session, email)
    if user is not None and user.disabled_at is None and user.password_hash is not None:
        link = accounts.link_url(base_url(request, settings), LinkKind.reset,
                                 accounts.issue_link(session, user=user, kind=LinkKind.reset,
                                                     ttl_s=settings.reset_ttl_s))
        subject, body = link_mail("password reset", link, settings.reset_ttl_s / 3600)
        try:
            send_mail(settings, to=user.email, subject=subject, body=body)
        except MailFailed as exc:
            log.warning("password reset mail failed: %s", exc.message)
    return _forgot_page(request, message="If an account exists for that email, a link to "
                                         "reset its password is on its way.")
