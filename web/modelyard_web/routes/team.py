"""The team admin's page: members, invitations, reset links, removal.

No mail server is assumed: every link is shown to the admin, and also mailed when SMTP is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from modelyard_platform import accounts
from modelyard_platform.accounts.mail import MailFailed, link_mail, mail_configured, send_mail
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.auth import Principal
from modelyard_platform.models import LinkKind, Role, User
from modelyard_registry.errors import ModelyardError
from modelyard_registry.settings import Settings
from sqlmodel import Session

from ..deps import AdminDep, FormDep
from ..errors import PageError
from ..render import render
from .account import text
from .links import base_url

router = APIRouter(route_class=SessionRoute, include_in_schema=False)


def team_page(request: Request, session: Session, admin: Principal, *, link: str = "",
              link_for: str = "", message: str = "", error: str = "", status: int = 200
              ) -> Response:
    return render(request, "team.html", {
        "title": f"Team {admin.team}", "members": accounts.list_users(session,
                                                                      team_id=admin.team_id),
        "link": link, "link_for": link_for, "message": message, "error": error,
        "roles": [r.value for r in Role],
    }, status=status)


def _mail(settings: Settings, to: str, what: str, link: str, ttl_s: int) -> str:
    """A note for the admin on whether the link was also mailed."""
    if not mail_configured(settings):
        return "No mail server is configured: send this link to them yourself."
    subject, body = link_mail(what, link, ttl_s / 3600)
    try:
        send_mail(settings, to=to, subject=subject, body=body)
    except MailFailed as exc:
        return f"Mail failed ({exc.message}); send this link to them yourself."
    return f"The link was also mailed to {to}."


@router.get("/team")
def team(request: Request, session: SessionDep, admin: AdminDep) -> Response:
    if admin.user_id is None:
        raise PageError(404, "Team pages are for people: sign in with your email.")
    return team_page(request, session, admin)


@router.post("/team/invite")
def invite(request: Request, form: FormDep, session: SessionDep, admin: AdminDep,
           services: ServicesDep) -> Response:
    settings = services.settings
    role = Role.admin if text(form.get("role")) == Role.admin.value else Role.member
    try:
        user, needs_password = accounts.ensure_user(session, email=text(form.get("email")),
                                                    team=admin.team, role=role)
    except ModelyardError as exc:
        return team_page(request, session, admin, error=exc.message, status=exc.http_status)
    if not needs_password:
        return team_page(request, session, admin,
                         message=f"{user.email} already has an account; added to {admin.team}.")
    token = accounts.issue_link(session, user=user, kind=LinkKind.invite,
                                ttl_s=settings.invite_ttl_s)
    link = accounts.link_url(base_url(request, settings), LinkKind.invite, token)
    note = _mail(settings, user.email, "invitation", link, settings.invite_ttl_s)
    return team_page(request, session, admin, link=link, link_for=user.email,
                     message=f"Invitation for {user.email} (works once, expires in "
                             f"{settings.invite_ttl_s / 3600:g} h). {note}")


def _member(session: Session, admin: Principal, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or all(t.team_id != admin.team_id
                           for t in accounts.team_roles(session, user_id)):
        raise PageError(404, "No such member in this team.")
    return user


def _may_reset(session: Session, admin: Principal, user: User) -> None:
    """A reset link takes over an account: only for people wholly inside the admin's teams.

    Otherwise an admin of one team could take over someone who is also an admin elsewhere.
    """
    assert admin.user_id is not None and user.id is not None
    mine = {t.team_id for t in accounts.team_roles(session, admin.user_id)
            if t.role == Role.admin}
    theirs = {t.team_id for t in accounts.team_roles(session, user.id)}
    if not theirs <= mine:
        raise PageError(403, f"{user.email} also belongs to teams you do not administer; ask an "
                             "operator for a reset link (`yard users reset EMAIL`).")


@router.post("/team/members/{user_id}/reset")
def reset_link(request: Request, user_id: int, form: FormDep, session: SessionDep,
               admin: AdminDep, services: ServicesDep) -> Response:
    settings = services.settings
    user = _member(session, admin, user_id)
    kind = LinkKind.reset if user.password_hash else LinkKind.invite
    if kind == LinkKind.reset and user.id != admin.user_id:
        _may_reset(session, admin, user)
    ttl = settings.reset_ttl_s if kind == LinkKind.reset else settings.invite_ttl_s
    link = accounts.link_url(base_url(request, settings), kind,
                             accounts.issue_link(session, user=user, kind=kind, ttl_s=ttl))
    note = _mail(settings, user.email, "password reset" if kind == LinkKind.reset
                 else "invitation", link, ttl)
    return team_page(request, session, admin, link=link, link_for=user.email,
                     message=f"New link for {user.email} (works once). {note}")


@router.post("/team/members/{user_id}/remove")
def remove(request: Request, user_id: int, form: FormDep, session: SessionDep,
           admin: AdminDep) -> Response:
    user = _member(session, admin, user_id)
    if user.id == admin.user_id:
        return team_page(request, session, admin, error="You cannot remove yourself.",
                         status=409)
    accounts.remove_member(session, user_id=user_id, team_id=admin.team_id)
    return team_page(request, session, admin,
                     message=f"{user.email} removed from {admin.team}; their sessions ended.")
