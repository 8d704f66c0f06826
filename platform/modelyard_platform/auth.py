"""Teams and API keys: create, look up by hash, revoke.

Keys look like ``my_<43 url-safe characters>`` (256 random bits).  Only their SHA-256 is stored,
so a leaked database leaks no usable key, and a key is printed exactly once, when created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from modelyard_registry.catalog import utcnow
from modelyard_registry.errors import InvalidInput, NotFound
from sqlmodel import Session, col, select

from .errors import Unauthorized
from .models import ApiKey, Team

KEY_PREFIX = "my_"
_TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key, or a person signed in on the web, acting for one team.

    ``admin`` is the key's scope, or the person's role in that team (``Role.admin``).
    """

    key_id: int | None
    team_id: int
    team: str
    admin: bool
    user_id: int | None = None
    email: str | None = None

    @property
    def rate_subject(self) -> str:
        """What the request rate limit counts against: the key, else the person."""
        return str(self.key_id) if self.key_id is not None else f"user-{self.user_id}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def validate_team_name(name: str) -> str:
    if not _TEAM_NAME.match(name):
        raise InvalidInput(
            f"invalid team name {name!r}: use lowercase letters, digits, '-' or '_' "
            "(up to 63, starting with a letter or digit)",
            field="team",
        )
    return name


def get_or_create_team(session: Session, name: str) -> Team:
    validate_team_name(name)
    team = session.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def create_key(session: Session, *, team: str, admin: bool = False,
               user_id: int | None = None) -> tuple[str, ApiKey]:
    """A new key for ``team`` (created if new); returns the plaintext, shown only now."""
    row_team = get_or_create_team(session, team)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    assert row_team.id is not None
    row = ApiKey(team_id=row_team.id, prefix=key[:10], key_hash=hash_key(key), admin=admin,
                 user_id=user_id)
    session.add(row)
    session.commit()
    session.refresh(row)
    return key, row


def authenticate(session: Session, key: str | None) -> Principal:
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    if not key.startswith(KEY_PREFIX):
        raise Unauthorized("invalid API key")
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    principal = _principal(session, row)
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    return principal


def principal_for_key(session: Session, key_id: int) -> Principal | None:
    """The principal of a key known by id (a web session), or None once revoked or gone.

    Sessions store the key's id, never the key, so revoking a key also ends its web sessions.
    """
    return _principal(session, session.get(ApiKey, key_id))


def _principal(session: Session, row: ApiKey | None) -> Principal | None:
    if row is None or row.revoked_at is not None or row.id is None:
        return None
    team = session.get(Team, row.team_id)
    if team is None:
        return None
    return Principal(key_id=row.id, team_id=row.team_id, team=team.name, admin=row.admin,
                     user_id=row.user_id)


def revoke_key(session: Session, prefix_or_id: str) -> ApiKey:
    """Revoke by key id or by the printed prefix (``my_xxxxxxx``)."""
    query = select(ApiKey)
    if prefix_or_id.isdigit():
        query = query.where(ApiKey.id == int(prefix_or_id))
    else:
        query = query.where(ApiKey.prefix == prefix_or_id[:10])
    rows = list(session.exec(query))
    if not rows:
        raise NotFound(f"no API key {prefix_or_id!r}", field="key")
    if len(rows) > 1:
        raise InvalidInput(f"{prefix_or_id!r} matches several keys; use the key id", field="key")
    row = rows[0]
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
    return row


def list_keys(session: Session) -> list[tuple[ApiKey, Team]]:
    query = select(ApiKey, Team).where(ApiKey.team_id == Team.id).order_by(col(ApiKey.id))
    return [(k, t) for k, t in session.exec(query)]


def has_admin_key(session: Session) -> bool:
    query = select(ApiKey).where(ApiKey.admin == True, ApiKey.revoked_at == None)  # noqa: E711,E712
    return session.exec(query).first() is not None


def set_budget(session: Session, team: str, budget_usd: float | None) -> Team:
    if budget_usd is not None and budget_usd < 0:
        raise InvalidInput("budget must be >= 0", field="budget_usd")
    row = session.exec(select(Team).where(Team.name == team)).first()
    if row is None:
        raise NotFound(f"no team {team!r}", field="team")
    row.budget_usd = budget_usd
    session.add(row)
    session.commit()
    return row
