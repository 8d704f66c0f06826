"""Dependencies, as ``Annotated`` aliases: the request's services, session, caller and scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from modelyard_registry.settings import Settings
from sqlmodel import Session

from ..auth import Principal
from ..errors import Forbidden
from .services import Services


async def get_services(request: Request) -> Services:  # async: no thread hop for a lookup
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(services: ServicesDep) -> AsyncIterator[Session]:
    """The request's one session; it connects on first use.

    A request that needs no query costs no connection and no thread hop.  A sync route closes it
    on its own thread when it returns (``SessionRoute``, #15), so this teardown has nothing left
    to do for it.  An async route's session may still hold a connection here: closing it is I/O,
    done off the event loop, and not on anyio's worker threads (they may all be waiting for a
    connection); ``services.release`` has threads that wait for nothing, so a close always
    proceeds and hands its connection back.
    """
    session = services.new_session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await services.release(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


# Declares the key in the OpenAPI document (``security`` on every keyed operation); the key
# itself is read by ``bearer``, which also serves routes that check it by hand (``/metrics``).
BEARER = HTTPBearer(scheme_name="bearer", auto_error=False,
                    description="An API key (`yard keys create`): `Authorization: Bearer my_...`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def caller_key(request: Request) -> str | None:
    """The key a request presents: ``state.api_key`` when set upstream, else the bearer token."""
    key: str | None = getattr(request.state, "api_key", None) or bearer(request)
    return key


async def get_principal(request: Request, services: ServicesDep, _: BearerDep = None
                        ) -> Principal:
    """The caller, from the key cache; a miss reads a session of its own, closed at once.

    No request session here: a request never sits on a pooled connection for its key while it
    waits for a model, and never holds two (the pool exhaustion of #15); and a route that needs
    no query (chat) pays for no session at all.
    """
    key = caller_key(request)
    principal = services.keys.cached(key)
    if principal is None:
        principal = await run_in_threadpool(services.keys.authenticate, key, services.session)
    await services.limiter.check(principal.rate_subject)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this action needs an admin key", field="authorization")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
