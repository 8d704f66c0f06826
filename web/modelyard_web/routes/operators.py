"""Operator pages (admin keys): the model catalogue, and what routing saved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform import usage
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.routes.models import ModelAdd
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.models import Team
from modelyard_platform.savings import savings
from modelyard_registry import catalog
from modelyard_registry.catalog import Capability, ModelUpdate
from modelyard_registry.errors import ModelyardError
from modelyard_registry.remote_models import register_remote
from modelyard_registry.scores_view import public_models
from modelyard_registry.taskspec import TaskKind
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from .. import forms
from ..chart import cost_chart
from ..deps import AdminDep, FormDep
from ..errors import PageError
from ..render import money, render

router = APIRouter(route_class=SessionRoute, include_in_schema=False)
SCORE_KINDS = [k.value for k in TaskKind if k != TaskKind.chat]
PERIODS = (7, 30, 90)
NOTICES = ("enabled", "disabled", "added")
ADD_FIELDS = ("name", "endpoint", "served_name", "api_key_env", "price_in", "price_out",
              "context_length", "response_format")


@dataclass(frozen=True)
class ModelRow:
    entry: catalog.ModelEntry
    public: catalog.ModelPublic
    price_label: str
    price_note: str


def _rows(session: Session, services: ServicesDep) -> list[ModelRow]:
    """The catalogue as ``scores_view.public_models`` shows it (the API's and the CLI's figures)."""
    entries = catalog.list_models(session)
    rows = []
    for entry, public in zip(entries, public_models(session, services.settings, entries),
                             strict=True):
        if public.price_out_derived is not None:
            label = f"{money(public.price_out_derived)} / M out"
            speed = public.decode_tokens_per_s or services.settings.unmeasured_tokens_per_s
            measured = "measured" if public.decode_tokens_per_s else "assumed"
            note = f"machine time at {speed:.1f} tok/s ({measured})"
        else:
            label = f"{money(entry.price_in)} / {money(entry.price_out)}"
            note = "per M tokens in / out"
        rows.append(ModelRow(entry, public, label, note))
    return rows


def _notice(request: Request, session: Session) -> str:
    """A confirmation after a change, only for real models and known actions (no free text)."""
    name, action = (request.query_params.get("changed"), request.query_params.get("action"))
    if not name or action not in NOTICES or catalog.find_model(session, name) is None:
        return ""
    return f"Model {name} {action}."


def _models_page(request: Request, session: Session, services: ServicesDep,
                 add: dict[str, str] | None = None, add_errors: dict[str, str] | None = None,
                 message: str = "", status: int = 200) -> Response:
    return render(request, "models.html", {
        "title": "Models", "rows": _rows(session, services), "kinds": SCORE_KINDS,
        "capabilities": [c.value for c in Capability], "add": add or {
            "response_format": "json_schema", "check": "on", "cap_chat": "on",
            "cap_json_schema": "on"},
        "add_errors": add_errors or {}, "message": message,
        "notice": _notice(request, session),
    }, status=status)


@router.get("/models")
def models_page(request: Request, session: SessionDep, services: ServicesDep,
                _: AdminDep) -> Response:
    return _models_page(request, session, services)


@router.post("/models/{name}/enabled")
def set_enabled(name: str, form: FormDep, session: SessionDep, _: AdminDep) -> Response:
    enabled = form.get("enabled") == "true"
    catalog.update_model(session, name, ModelUpdate(enabled=enabled))
    action = "enabled" if enabled else "disabled"
    return RedirectResponse(f"/models?changed={name}&action={action}", status_code=303)


def _add_body(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    posted = {k: str(form.get(k) or "").strip() for k in ADD_FIELDS}
    posted["check"] = "on" if form.get("check") else ""
    caps = [c.value for c in Capability if form.get(f"cap_{c.value}")]
    posted.update({f"cap_{c}": "on" for c in caps})
    body: dict[str, Any] = {k: v for k, v in posted.items() if v and k in ADD_FIELDS}
    for key in ("price_in", "price_out"):
        if key in body:
            body[key] = forms.to_number(body[key], False)
    if "context_length" in body:
        body["context_length"] = forms.to_number(body["context_length"], True)
    body.update(capabilities=caps, check=bool(posted["check"]))
    return body, posted


@router.post("/models")
def add_remote(request: Request, form: FormDep, session: SessionDep, services: ServicesDep,
               _: AdminDep) -> Response:
    """A remote OpenAI-compatible endpoint, validated as ``POST /v1/models`` validates it."""
    body, posted = _add_body(form)
    if not body.get("endpoint"):
        errors = {"endpoint": "endpoint: Field required"}
    else:
        errors = forms.validate(ModelAdd, body)
    if errors:
        return _models_page(request, session, services, posted, errors,
                            "The endpoint was not added: correct the fields marked below.", 422)
    add = ModelAdd.model_validate(body)
    try:
        register_remote(
            session, services.settings, name=add.name, base_url=add.endpoint or "",
            served_name=add.served_name or "", api_key_env=add.api_key_env,
            price_in=add.price_in, price_out=add.price_out, context_length=add.context_length,
            capabilities=add.capabilities, response_format=add.response_format, check=add.check,
        )
    except ModelyardError as exc:
        field = {"base_url": "endpoint"}.get(exc.field or "", exc.field or "")
        return _models_page(request, session, services, posted,
                            {field: exc.message} if field else {},
                            f"The endpoint was not added: {exc.message}", exc.http_status)
    return RedirectResponse(f"/models?changed={add.name}&action=added", status_code=303)


@router.get("/savings")
def savings_page(request: Request, session: SessionDep, services: ServicesDep, _: AdminDep,
                 days: int = 30) -> Response:
    if days not in PERIODS:
        raise PageError(422, f"days must be one of {', '.join(map(str, PERIODS))}.")
    end = catalog.utcnow()
    start = (end - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    found = savings(session, services.settings, team_id=None, start=start, end=end)
    teams = list(session.exec(select(Team).order_by(col(Team.name))))
    by_team = []
    for team in teams:
        assert team.id is not None
        data = usage.usage(session, team_id=team.id, start=start, end=end, group_by="product")
        if data["total"]["calls"]:
            by_team.append((team.name, data))
    return render(request, "savings.html", {
        "title": "Routing and savings", "savings": found, "days": days, "periods": PERIODS,
        "chart": cost_chart(found.days, money), "by_team": by_team,
    })
