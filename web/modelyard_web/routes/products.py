"""The product gallery, and a form per product generated from its input schema."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.routes.products import describe
from modelyard_platform.api.schemas import ProductPublic
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.jobs.submit import submit_job
from modelyard_platform.products import ProductLike
from modelyard_registry import catalog
from modelyard_registry.errors import ModelyardError
from modelyard_registry.routing.options import RoutingOptions

from .. import forms
from ..deps import FormDep, UserDep
from ..errors import PageError
from ..jobview import RESULT_VIEWS
from ..render import render

router = APIRouter(route_class=SessionRoute, include_in_schema=False)

EXAMPLES: dict[str, dict[str, Any]] = {
    "ticket-triage": {
        "subject": "Charged twice for order #A-10293",
        "body": "Hi, I was billed twice ($49.99) for order A-10293 last week. Please refund "
                "the duplicate charge. You can reach me at dana@example.com. Thanks, Dana",
        "customer_tier": "pro",
    },
    "doc-summary": {
        "text": "Modelyard routes every task to the cheapest adequate open-weight model. It "
                "keeps a catalogue of local GGUF models and remote endpoints, measures each "
                "model's quality per kind of task, and prices every call, so that a job runs "
                "on the smallest model that meets its bar and escalates only when a check "
                "fails.",
        "target_words": 40,
    },
    "extract": {
        "text": "Invoice 2024-117 from Acme GmbH, due 2024-07-01, total EUR 1,250.00.",
        "schema": {"type": "object", "properties": {
            "invoice_number": {"type": "string"}, "vendor": {"type": "string"},
            "due_date": {"type": "string"}, "total": {"type": "number"},
            "currency": {"type": "string"}}, "required": ["invoice_number", "total"]},
    },
}
OPTION_FIELDS = ("min_quality", "max_cost_ratio", "model", "best_effort")


def _product(services: ServicesDep, name: str) -> ProductLike:
    product = services.products.get(name)
    if product is None:
        raise PageError(404, f"There is no product named {name!r}.")
    return product


def _gallery_order(p: ProductPublic) -> tuple[int, str]:
    return (0 if p.name in RESULT_VIEWS else 1, p.title)


@router.get("/")
def gallery(request: Request, services: ServicesDep, _: UserDep) -> Response:
    products = sorted((describe(p) for p in services.products.values()), key=_gallery_order)
    return render(request, "gallery.html", {"title": "Products", "products": products})


def _form_page(request: Request, session: SessionDep, public: ProductPublic,
               fields: list[forms.FormField], options: dict[str, str],
               errors: dict[str, str], message: str = "", status: int = 200) -> Response:
    models = [m.name for m in catalog.list_models(session, enabled_only=True)]
    return render(request, "product.html", {
        "title": public.title, "product": public, "fields": fields, "models": models,
        "options": options, "errors": errors, "message": message,
        "has_example": public.name in EXAMPLES,
    }, status=status)


def _example_fields(fields: list[forms.FormField], example: dict[str, Any]
                    ) -> list[forms.FormField]:
    def text(f: forms.FormField, value: Any) -> str:
        return json.dumps(value, indent=2) if f.widget == "json" else str(value)

    return [replace(f, value=text(f, example[f.name])) if f.name in example else f
            for f in fields]


@router.get("/products/{name}")
def product_form(request: Request, name: str, services: ServicesDep, session: SessionDep,
                 _: UserDep, example: bool = False) -> Response:
    public = describe(_product(services, name))
    fields = forms.fields_for(public.input_schema)
    if example and name in EXAMPLES:
        fields = _example_fields(fields, EXAMPLES[name])
    return _form_page(request, session, public, fields, {"best_effort": "on"}, {})


@router.post("/products/{name}")
def submit_form(request: Request, name: str, form: FormDep, services: ServicesDep,
                session: SessionDep, user: UserDep) -> Response:
    product = _product(services, name)
    public = describe(product)
    data, fields = forms.parse(forms.fields_for(public.input_schema), form)
    posted_options = {k: str(form.get(k) or "") for k in OPTION_FIELDS}
    options: dict[str, Any] = {"best_effort": bool(posted_options["best_effort"])}
    if posted_options["model"]:
        options["model"] = posted_options["model"]
    for knob in ("min_quality", "max_cost_ratio"):
        if posted_options[knob].strip():
            options[knob] = forms.to_number(posted_options[knob].strip(), False)
    errors = {f.name: f.error for f in fields if f.error}
    for field_name, msg in forms.validate(product.input_model, data, prefix="input").items():
        errors.setdefault(field_name, msg)
    option_errors = forms.validate(RoutingOptions, options, prefix="options")
    errors.update({f"options.{k}": v for k, v in option_errors.items()})
    if errors:
        return _form_page(request, session, public, forms.with_errors(fields, errors),
                          posted_options, errors, "Please correct the fields marked below.",
                          status=422)
    clean_options = RoutingOptions.model_validate(options)
    try:
        job, _ = submit_job(session, services.enqueue, principal=user, product=name,
                            input_data=data, options=clean_options,
                            max_jobs=services.settings.team_max_jobs)
    except ModelyardError as exc:
        if exc.field and exc.field.startswith("options."):
            errors[exc.field] = exc.message
        return _form_page(request, session, public, fields, posted_options, errors,
                          exc.message, status=exc.http_status)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
