"""Sign in (email and password, or an API key where the setting allows), sign out, account page.

The sign-in error is the same for an unknown email, a wrong password and a disabled account, and
failures are throttled per account and per client address before any password is checked.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform import accounts
from modelyard_platform.accounts.mail import mail_configured
from modelyard_platform.accounts.oidc import sso_enabled
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.auth import Principal, authenticate, create_key, revoke_key
from modelyard_platform.errors import Unauthorized
from modelyard_platform.models import ApiKey, Team, User
from modelyard_registry.errors import ModelyardError
from modelyard_registry.settings import Settings
from sqlmodel import Session, col, select

from .. import session as cookies
from ..deps import (
    FormDep,
    PostedFormDep,
    UserDep,
    WebSessionDep,
    client_address,
    optional_user,
    web_state,
)
from ..errors import PageError
from ..render import render

router = APIRouter(route_class=SessionRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an absolute or scheme-relative URL (open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def key_sign_in_allowed(settings: Settings, session: Session) -> bool:
    """The setting, else: only while nobody has a web account (the first `yard up`)."""
    if settings.web_key_sign_in is not None:
        return settings.web_key_sign_in
    return session.exec(select(User.id)).first() is None


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(cookies.COOKIE, cookies.sign(web_state(request).secret, token),
                        max_age=max_age, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


def login_page(request: Request, settings: Settings, session: Session, next_path: str,
               error: str = "", status: int = 200, email: str = "", notice: str = ""
               ) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {
        "title": "Sign in", "login_csrf": token, "next": next_path, "error": error,
        "email": email, "notice": notice, "key_sign_in": key_sign_in_allowed(settings, session),
        "sso": sso_enabled(settings),
        "forgot": mail_configured(settings),
    }, status=status)
    response.set_cookie(cookies.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


def check_login_csrf(request: Request, token: str) -> None:
    if not cookies.same_token(request.cookies.get(cookies.LOGIN_CSRF_COOKIE), token):
        raise PageError(403, "The form expired; reload the page and try again.")


@router.get("/login")
def login_form(request: Request, services: ServicesDep, session: SessionDep,
               user: Annotated[Principal | None, Depends(optional_user)],
               next: str | None = None, notice: str = "") -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    notices = {"password-set": "Your password is set: sign in with it.",
               "signed-out": "You are signed out."}
    return login_page(request, services.settings, session, safe_next(next),
                      notice=notices.get(notice, ""))


@router.post("/login")
def login(request: Request, services: ServicesDep, session: SessionDep,
          form: PostedFormDep) -> Response:
    settings = services.settings
    next_path = safe_next(text(form.get("next")))
    check_login_csrf(request, text(form.get("csrf")))
    email = text(form.get("email")).strip()
    try:
        if "api_key" in form:
            if not key_sign_in_allowed(settings, session):
                raise Unauthorized("Signing in with an API key is turned off here; sign in "
                                   "with your email and password.")
            principal = authenticate(session, text(form.get("api_key")).strip() or None)
            token, _ = accounts.start_session(session, ttl_s=settings.session_ttl_s,
                                              key_id=principal.key_id)
        else:
            token = _password_sign_in(request, session, settings, email,
                                      text(form.get("password")))
    except ModelyardError as exc:
        return login_page(request, settings, session, next_path, exc.message,
                          status=exc.http_status, email=email)
    end_previous_session(request, session)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, token, settings.session_ttl_s)
    response.delete_cookie(cookies.LOGIN_CSRF_COOKIE, path="/")
    return response


def end_previous_session(request: Request, session: Session) -> None:
    """Signing in again replaces this browser's session: the old one must not linger live."""
    old = cookies.unsign(web_state(request).secret, request.cookies.get(cookies.COOKIE))
    row = accounts.find_session(session, old) if old else None
    if row is not None:
        accounts.end_session(session, row)


def _password_sign_in(request: Request, session: Session, settings: Settings, email: str,
                      password: str) -> str:
    throttle = web_state(request).throttle
    address = client_address(request)
    throttle.check(email=email, address=address)
    try:
        user = accounts.verify_credentials(session, email, password)
    except accounts.SignInFailed:
        throttle.failed(email=email, address=address)
        raise
    throttle.succeeded(email=email)
    assert user.id is not None
    roles = accounts.team_roles(session, user.id)
    if not roles:
        raise Unauthorized("Your account belongs to no team yet; ask a team admin to add you.")
    token, _ = accounts.start_session(session, ttl_s=settings.session_ttl_s, user=user,
                                      team_id=roles[0].team_id)
    return token


@router.post("/logout")
def logout(_: FormDep, row: WebSessionDep, session: SessionDep) -> Response:
    accounts.end_session(session, row)
    response = RedirectResponse("/login?notice=signed-out", status_code=303)
    response.delete_cookie(cookies.COOKIE, path="/")
    return response


def _user_keys(session: Session, user_id: int) -> list[tuple[ApiKey, str]]:
    query = (select(ApiKey, Team).where(ApiKey.team_id == Team.id, ApiKey.user_id == user_id)
             .order_by(col(ApiKey.id).desc()))
    return [(k, t.name) for k, t in session.exec(query)]


def account_page(request: Request, session: Session, user: Principal, *, new_key: str = "",
                 message: str = "", error: str = "", field: str = "",
                 status: int = 200) -> Response:
    if user.user_id is None:
        raise PageError(404, "Signed in with an API key: there is no account page. Sign in "
                             "with your email and password.")
    return render(request, "account.html", {
        "title": "Account", "teams": accounts.team_roles(session, user.user_id),
        "keys": _user_keys(session, user.user_id), "new_key": new_key, "message": message,
        "error": error, "error_field": field,
    }, status=status)


@router.get("/account")
def account(request: Request, session: SessionDep, user: UserDep) -> Response:
    return account_page(request, session, user)


@router.post("/account/password")
def change_password(request: Request, form: FormDep, session: SessionDep, user: UserDep,
                    row: WebSessionDep, services: ServicesDep) -> Response:
    person = session.get(User, user.user_id) if user.user_id is not None else None
    if person is None:
        raise PageError(404, "Signed in with an API key: there is no password to change.")
    new, again = text(form.get("new_password")), text(form.get("new_password_again"))
    try:
        if new != again:
            raise accounts.WeakPassword("The two new passwords differ.")
        accounts.change_password(session, person, current=text(form.get("current_password")),
                                 new=new, min_length=services.settings.password_min_length,
                                 keep_session=row.id)
    except ModelyardError as exc:
        return account_page(request, session, user, error=exc.message, field=exc.field or "",
                            status=exc.http_status)
    return account_page(request, session, user,
                        message="Password changed; your other sessions were signed out.")


@router.post("/account/keys")
def make_key(request: Request, form: FormDep, session: SessionDep, user: UserDep) -> Response:
    """A key for the team the person acts for, with their role there; shown once."""
    if user.user_id is None:
        raise PageError(404, "Signed in with an API key: there is no account page.")
    key, _ = create_key(session, team=user.team, admin=user.admin, user_id=user.user_id)
    return account_page(request, session, user, new_key=key)


@router.post("/account/keys/{key_id}/revoke")
def drop_key(request: Request, key_id: int, form: FormDep, session: SessionDep,
             user: UserDep) -> Response:
    row = session.get(ApiKey, key_id)
    if row is None or row.user_id is None or row.user_id != user.user_id:
        raise PageError(404, "No such key among yours.")
    revoke_key(session, str(key_id))
    return account_page(request, session, user, message=f"Key {row.prefix}… revoked.")


@router.post("/account/team")
def choose_team(form: FormDep, session: SessionDep, row: WebSessionDep) -> Response:
    team_id = text(form.get("team_id"))
    if not team_id.isdigit() or not accounts.switch_team(session, row, int(team_id)):
        raise PageError(403, "You are not a member of that team.")
    return RedirectResponse("/", status_code=303)
