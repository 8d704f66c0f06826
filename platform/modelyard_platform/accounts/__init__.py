"""People and their web sign-in: passwords, one-time links, sessions, throttling, mail, SSO.

The CLI (`yard users ...`) and the web pages are skins over these functions.
"""

from __future__ import annotations

from ..errors import (
    BadConfiguration,
    LinkInvalid,
    SignInFailed,
    SsoFailed,
    TooManyAttempts,
    WeakPassword,
)
from .links import issue_link, link_url, open_link, use_link
from .sessions import end_session, find_session, principal_for_session, start_session, switch_team
from .throttle import SignInThrottle
from .users import (
    UserSummary,
    change_password,
    disable_user,
    ensure_user,
    find_user,
    list_users,
    remove_member,
    team_roles,
    verify_credentials,
)

__all__ = [
    "BadConfiguration",
    "LinkInvalid",
    "SignInFailed",
    "SignInThrottle",
    "SsoFailed",
    "TooManyAttempts",
    "UserSummary",
    "WeakPassword",
    "change_password",
    "disable_user",
    "end_session",
    "ensure_user",
    "find_session",
    "find_user",
    "issue_link",
    "link_url",
    "list_users",
    "open_link",
    "principal_for_session",
    "remove_member",
    "start_session",
    "switch_team",
    "team_roles",
    "use_link",
    "verify_credentials",
]
