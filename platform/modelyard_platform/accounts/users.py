"""People: create or invite into a team, list, disable, check and change passwords.

Every change that should end someone's browser sessions (disable, removal, a new password) ends
them here, in the same transaction, so no caller can forget to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard_registry.catalog import utcnow
from modelyard_registry.errors import InvalidInput, NotFound
from sqlmodel import Session, col, select

from ..auth import get_or_create_team
from ..errors import SignInFailed
from ..models import ApiKey, Membership, Role, Team, User, WebSession
from .passwords import check_strength, hash_password, needs_rehash, verify_password

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class TeamRole:
    team_id: int
    team: str
    role: Role


@dataclass(frozen=True)
class UserSummary:
    """One person, as `yard users list` and the team page show them."""

    id: int
    email: str
    teams: tuple[TeamRole, ...]
    active: bool
    has_password: bool


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return value


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email!r}", field="email")
    return user


def ensure_user(session: Session, *, email: str, team: str, role: Role) -> tuple[User, bool]:
    """The user for ``email`` (created if new), a member of ``team`` with ``role``.

    Returns the user and whether they still need a password (a new or never-activated account).
    An existing member's role is raised to admin when asked, never lowered silently.
    """
    address = normalise_email(email)
    row_team = get_or_create_team(session, team)
    user = find_user(session, address)
    if user is None:
        user = User(email=address)
        session.add(user)
        session.flush()
    assert user.id is not None and row_team.id is not None
    membership = session.exec(select(Membership).where(
        Membership.user_id == user.id, Membership.team_id == row_team.id)).first()
    if membership is None:
        session.add(Membership(user_id=user.id, team_id=row_team.id, role=role))
    elif role == Role.admin and membership.role != Role.admin:
        membership.role = Role.admin
        session.add(membership)
    session.commit()
    session.refresh(user)
    return user, user.password_hash is None


def team_roles(session: Session, user_id: int) -> list[TeamRole]:
    query = (select(Membership, Team).where(Membership.team_id == Team.id,
                                            Membership.user_id == user_id)
             .order_by(col(Team.name)))
    return [TeamRole(team_id=t.id, team=t.name, role=m.role)
            for m, t in session.exec(query) if t.id is not None]


def list_users(session: Session, *, team_id: int | None = None) -> list[UserSummary]:
    """Everyone (or the members of one team), by email."""
    users = list(session.exec(select(User).order_by(col(User.email))))
    found = []
    for user in users:
        assert user.id is not None
        roles = tuple(team_roles(session, user.id))
        if team_id is not None and all(r.team_id != team_id for r in roles):
            continue
        found.append(UserSummary(id=user.id, email=user.email, teams=roles,
                                 active=user.disabled_at is None,
                                 has_password=user.password_hash is not None))
    return found


def end_sessions(session: Session, user_id: int, *, keep: int | None = None) -> int:
    """Revoke every live browser session of a person (but ``keep``); returns how many."""
    query = select(WebSession).where(WebSession.user_id == user_id,
                                     WebSession.revoked_at == None)  # noqa: E711
    ended = 0
    for row in session.exec(query):
        if row.id != keep:
            row.revoked_at = utcnow()
            session.add(row)
            ended += 1
    return ended


def disable_user(session: Session, email: str) -> User:
    """Disable a person: their sessions end and the API keys they made are revoked."""
    user = get_user(session, email)
    assert user.id is not None
    now = utcnow()
    if user.disabled_at is None:
        user.disabled_at = now
        session.add(user)
    end_sessions(session, user.id)
    keys = select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at == None)  # noqa: E711
    for key in session.exec(keys):
        key.revoked_at = now
        session.add(key)
    session.commit()
    return user


def remove_member(session: Session, *, user_id: int, team_id: int) -> None:
    """Take a person out of a team; their sessions end (they may have been acting for it)."""
    row = session.exec(select(Membership).where(
        Membership.user_id == user_id, Membership.team_id == team_id)).first()
    if row is None:
        raise NotFound("no such member in this team", field="user")
    session.delete(row)
    end_sessions(session, user_id)
    session.commit()


def verify_credentials(session: Session, email: str, password: str) -> User:
    """The active user with this email and password, else ``SignInFailed`` (same for all)."""
    user = find_user(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled_at is not None:
        raise SignInFailed()
    assert user.password_hash is not None
    if needs_rehash(user.password_hash):  # the library's parameters moved on: upgrade now
        user.password_hash = hash_password(password)
        session.add(user)
        session.commit()
    return user


def set_password(session: Session, user: User, password: str, *, min_length: int,
                 keep_session: int | None = None) -> None:
    """Store a new password and end the person's other sessions."""
    check_strength(password, email=user.email, min_length=min_length)
    assert user.id is not None
    user.password_hash = hash_password(password)
    session.add(user)
    end_sessions(session, user.id, keep=keep_session)
    session.commit()


def change_password(session: Session, user: User, *, current: str, new: str,
                    min_length: int, keep_session: int | None = None) -> None:
    if not verify_password(user.password_hash, current):
        raise InvalidInput("The current password is wrong.", field="current_password")
    set_password(session, user, new, min_length=min_length, keep_session=keep_session)
