"""Dependencies, as ``Annotated`` aliases: the request's services, session, caller and scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from modelyard_registry.settings import Settings
from sqlmodel import Session

from ..auth import Forbidden, Principal, authenticate
from .services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    yield from services.sessions()


SessionDep = Annotated[Session, Depends(get_session)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def get_principal(request: Request, services: ServicesDep, session: SessionDep) -> Principal:
    key = getattr(request.state, "api_key", None) or bearer(request)
    principal = authenticate(session, key)
    services.limiter.hit(principal.rate_subject)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this action needs an admin key", field="authorization")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
