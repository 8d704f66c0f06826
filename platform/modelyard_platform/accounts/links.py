"""One-time links: an invitation to set a first password, or a password reset.

The token is 256 random bits shown once (in the link); only its SHA-256 is stored.  Issuing a new
link of a kind voids the person's older unused ones, so only the latest link works.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from modelyard_registry.catalog import utcnow
from sqlmodel import Session, select

from ..errors import LinkInvalid
from ..models import AccountLink, LinkKind, User, as_utc
from .passwords import check_strength
from .users import set_password

PATHS = {LinkKind.invite: "/invite/", LinkKind.reset: "/reset/"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(session: Session, *, user: User, kind: LinkKind, ttl_s: int) -> str:
    """A fresh token for ``user``; older unused links of this kind stop working."""
    assert user.id is not None
    now = utcnow()
    older = select(AccountLink).where(AccountLink.user_id == user.id, AccountLink.kind == kind,
                                      AccountLink.used_at == None)  # noqa: E711
    for row in session.exec(older):
        row.used_at = now
        session.add(row)
    token = secrets.token_urlsafe(32)
    session.add(AccountLink(token_hash=_hash(token), user_id=user.id, kind=kind,
                            expires_at=now + timedelta(seconds=ttl_s)))
    session.commit()
    return token


def link_url(base_url: str, kind: LinkKind, token: str) -> str:
    return base_url.rstrip("/") + PATHS[kind] + token


def open_link(session: Session, token: str, kind: LinkKind) -> tuple[AccountLink, User]:
    """The link and its person, or ``LinkInvalid`` saying why it cannot be used."""
    row = session.exec(select(AccountLink).where(AccountLink.token_hash == _hash(token),
                                                 AccountLink.kind == kind)).first()
    noun = "invitation" if kind == LinkKind.invite else "password-reset link"
    if row is None:
        raise LinkInvalid(f"This {noun} is not valid. Ask your team admin for a new one.")
    if row.used_at is not None:
        raise LinkInvalid(f"This {noun} was already used or replaced by a newer one. "
                          "Ask your team admin for a new one.")
    expires = as_utc(row.expires_at)
    if expires is None or expires <= utcnow():
        raise LinkInvalid(f"This {noun} has expired. Ask your team admin for a new one.")
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        raise LinkInvalid(f"This {noun} is for an account that is disabled.")
    return row, user


def use_link(session: Session, token: str, kind: LinkKind, password: str, *,
             min_length: int) -> User:
    """Set the password a link allows, once; the person's old sessions end."""
    row, user = open_link(session, token, kind)
    check_strength(password, email=user.email, min_length=min_length)  # before any change
    row.used_at = utcnow()
    session.add(row)
    set_password(session, user, password, min_length=min_length)  # commits both, or neither
    return user
