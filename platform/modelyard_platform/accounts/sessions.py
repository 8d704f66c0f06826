"""Server-side web sessions: the browser holds a signed random id; the row says who it is.

Signing out, a password change, removal or disabling revoke rows, so a copied
cookie stops working at once, not when it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from modelyard_registry.catalog import utcnow
from sqlmodel import Session, select

from ..auth import Principal, principal_for_key
from ..models import Membership, Role, Team, User, WebSession, as_utc


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, *, ttl_s: int, user: User | None = None,
                  team_id: int | None = None, key_id: int | None = None
                  ) -> tuple[str, WebSession]:
    """A new session for a person (acting for ``team_id``) or an API key; returns its token."""
    token = secrets.token_urlsafe(32)
    row = WebSession(token_hash=_hash(token), user_id=user.id if user else None, key_id=key_id,
                     team_id=team_id, csrf=secrets.token_urlsafe(24),
                     expires_at=utcnow() + timedelta(seconds=ttl_s))
    session.add(row)
    session.commit()
    session.refresh(row)
    return token, row


def find_session(session: Session, token: str) -> WebSession | None:
    """The live session for a token, or None when unknown, revoked or expired."""
    row = session.exec(select(WebSession).where(WebSession.token_hash == _hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    expires = as_utc(row.expires_at)
    if expires is None or expires <= utcnow():
        return None
    return row


def end_session(session: Session, row: WebSession) -> None:
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()


def principal_for_session(session: Session, row: WebSession) -> Principal | None:
    """Who the session acts as now: re-read on every request, so changes apply at once."""
    if row.key_id is not None:
        return principal_for_key(session, row.key_id)
    user = session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or user.disabled_at is not None or user.id is None:
        return None
    query = select(Membership, Team).where(Membership.team_id == Team.id,
                                           Membership.user_id == user.id)
    if row.team_id is not None:
        query = query.where(Membership.team_id == row.team_id)
    found = session.exec(query.order_by(Membership.id)).first()  # type: ignore[arg-type]
    if found is None:
        return None
    membership, team = found
    return Principal(key_id=None, team_id=membership.team_id, team=team.name,
                     admin=membership.role == Role.admin, user_id=user.id, email=user.email)


def switch_team(session: Session, row: WebSession, team_id: int) -> bool:
    """Act for another of the person's teams; False when they are not a member."""
    member = session.exec(select(Membership).where(
        Membership.user_id == row.user_id, Membership.team_id == team_id)).first()
    if member is None:
        return False
    row.team_id = team_id
    session.add(row)
    session.commit()
    return True
