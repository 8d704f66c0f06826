"""The model catalogue over HTTP: everyone reads it, admins change it (mirrors `yard models`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from modelyard_registry import catalog
from modelyard_registry.catalog import ModelUpdate
from modelyard_registry.egress import check_gguf_path
from modelyard_registry.errors import InvalidInput
from modelyard_registry.local_models import register_gguf
from modelyard_registry.remote_models import register_remote
from modelyard_registry.scores_view import public_models
from modelyard_registry.settings import Settings
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from ..contract import errors
from ..deps import AdminDep, PrincipalDep, ServicesDep, SessionDep
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1/models", tags=["models"])


class ModelAdd(BaseModel):
    """A model to add, as in `yard models add`.

    Either a local GGUF file (``gguf_path``) or a remote endpoint (``endpoint`` +
    ``served_name``).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    gguf_path: str | None = None
    endpoint: str | None = None
    endpoints: list[str] | None = Field(
        default=None, min_length=1,
        description="Replicas serving the same model (requests go to the least busy one that "
        "answers); with endpoint, that one comes first.")
    served_name: str | None = None
    api_key_env: str | None = None
    price_in: float = Field(default=0.0, ge=0)
    price_out: float = Field(default=0.0, ge=0)
    context_length: int | None = Field(default=None, ge=1)
    capabilities: list[str] | None = None
    response_format: str = "json_schema"
    check: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ModelAdd:
        if self.endpoints:
            self.endpoints = list(dict.fromkeys([*filter(None, [self.endpoint]),
                                                 *self.endpoints]))
            self.endpoint = self.endpoints[0]
        if (self.gguf_path is None) == (self.endpoint is None):
            raise ValueError("give exactly one of gguf_path or endpoint")
        if self.endpoint is not None and not self.served_name:
            raise ValueError("served_name is required with endpoint")
        return self


# Where a model lives is the operators' business: file paths, internal URLs and the names of
# secret variables are shown to admins only.
ADMIN_ONLY_FIELDS = frozenset({"gguf_path", "base_url", "endpoints", "api_key_env"})


def _items(session: Session, settings: Settings,
           entries: list[catalog.ModelEntry] | None = None, *, admin: bool = True
           ) -> list[dict[str, Any]]:
    hidden = None if admin else set(ADMIN_ONLY_FIELDS)
    return [{"id": p.name, "object": "model", "owned_by": "modelyard",
             **p.model_dump(mode="json", exclude=hidden)}
            for p in public_models(session, settings, entries)]


def _item(session: Session, settings: Settings, entry: catalog.ModelEntry) -> dict[str, Any]:
    return _items(session, settings, [entry])[0]


@router.get("")
def list_models(session: SessionDep, services: ServicesDep, principal: PrincipalDep
                ) -> dict[str, Any]:
    """OpenAI-style list (``client.models.list()`` works) with the catalogue entry.

    Non-admin callers get it without ``ADMIN_ONLY_FIELDS``.

    Each carries measured speed, the derived local price and ``evaluation`` (was quality
    measured: unmeasured, quick or full).
    """
    return {"object": "list",
            "data": _items(session, services.settings, admin=principal.admin)}


@router.get("/{name}", responses=errors(404))
def get_model(name: str, session: SessionDep, services: ServicesDep, principal: PrincipalDep
              ) -> dict[str, Any]:
    entry = catalog.get_model(session, name)
    return _items(session, services.settings, [entry], admin=principal.admin)[0]


@router.post("", status_code=201, responses=errors(403, 409, 502, 503, 504, 507))
def add_model(
    body: ModelAdd, services: ServicesDep, session: SessionDep, _: AdminDep
) -> dict[str, Any]:
    # Sync: one worker thread probes, stores and reads the entry back, then gives its connection
    # back (SessionRoute); it was async with a hop per step and read the entry on the loop, #15.
    settings = services.settings
    if body.gguf_path is not None:
        path = check_gguf_path(body.gguf_path, settings)
        entry = register_gguf(session, settings, name=body.name, path=path,
                              capabilities=body.capabilities)
    else:
        assert body.endpoint is not None and body.served_name is not None
        entry = register_remote(
            session, settings, name=body.name, base_url=body.endpoint or "",
            endpoints=body.endpoints,
            served_name=body.served_name or "", api_key_env=body.api_key_env,
            price_in=body.price_in, price_out=body.price_out,
            context_length=body.context_length, capabilities=body.capabilities,
            response_format=body.response_format, check=body.check,
        )
    return _item(session, settings, entry)


@router.patch("/{name}", responses=errors(403, 404))
def update_model(name: str, body: ModelUpdate, session: SessionDep, services: ServicesDep,
                 _: AdminDep) -> dict[str, Any]:
    if not body.model_dump(exclude_unset=True):
        raise InvalidInput("nothing to change", field="body")
    entry = catalog.update_model(session, name, body)
    return _item(session, services.settings, entry)


@router.delete("/{name}", status_code=204, responses=errors(403, 404))
def delete_model(name: str, session: SessionDep, _: AdminDep) -> Response:
    catalog.remove_model(session, name)
    return Response(status_code=204)
