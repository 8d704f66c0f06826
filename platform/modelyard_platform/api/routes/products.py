"""The product catalogue and job submission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from modelyard_registry.errors import NotFound
from pydantic import ValidationError
from sqlmodel import Session
from starlette.requests import Request

from ...auth import Principal
from ...jobs import store
from ...jobs.submit import submit_job
from ...products import ProductLike
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, SessionDep, caller_key
from ..handlers import validation_response
from ..lean_route import json_body, lean_route
from ..orjson_response import OrjsonResponse
from ..schemas import JobCreate, JobPublic, ProductPublic
from ..services import Services
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1/products", tags=["products"])


def describe(product: ProductLike) -> ProductPublic:
    return ProductPublic(
        name=product.slug, title=product.title, description=product.description,
        steps=list(product.steps),
        input_schema=product.input_model.model_json_schema(),
        output_schema=product.output_model.model_json_schema(),
    )


def find_product(services: ServicesDep, name: str) -> ProductLike:
    product = services.products.get(name)
    if product is None:
        raise NotFound(f"no product {name!r}; see GET /v1/products", field="name")
    return product


@router.get("")
def list_products(services: ServicesDep, _: PrincipalDep) -> dict[str, list[ProductPublic]]:
    return {"data": [describe(p) for p in services.products.values()]}


@router.get("/{name}", responses=errors(404))
def get_product(name: str, services: ServicesDep, _: PrincipalDep) -> ProductPublic:
    return describe(find_product(services, name))


def accept(services: Services, session: Session, product: str, body: JobCreate,
           principal: Principal, idempotency_key: str | None) -> tuple[JobPublic, dict[str, str]]:
    """Store and enqueue a validated job: its public form and the answer's headers."""
    job, created = submit_job(
        session, services.enqueue, principal=principal, product=product, input_data=body.input,
        options=body.options, max_jobs=services.settings.team_max_jobs,
        idempotency_key=idempotency_key, committer=services.committer,
        budget_free=services.budget_free,
    )
    headers = {} if created else {"Idempotent-Replayed": "true"}
    headers["Location"] = f"/v1/jobs/{job.id}"
    # A job made just now has no calls yet: no query for them (a replay shows what it has).
    return JobPublic.of(job, calls=store.job_calls(session, job.id) if not created else []), headers


async def lean(request: Request) -> Response | None:
    """The submission FastAPI's path would accept, accepted without FastAPI's per-request work.

    Only an installed product, a well-formed body (``json_body``) and a key already in the key
    cache; None for anything else, which then takes FastAPI's path (``lean_route``), so every
    error is answered as before and in the same order (the body is pure, read first).  FastAPI's
    dependency solving and anyio's thread hop were 29% of the API's samples on a submission
    (py-spy, #15); the store runs on the API's own pool, its session closed there.
    """
    services: Services = request.app.state.services
    product = services.products.get(request.path_params.get("name", ""))
    if product is None:
        return None
    body = json_body(await request.body(), request.headers.get("content-type"), JobCreate)
    if body is None:
        return None
    principal = services.keys.cached(caller_key(request))
    if principal is None:
        return None
    await services.limiter.check(principal.rate_subject)
    request.state.principal = principal
    try:
        product.input_model.model_validate(body.input)
    except ValidationError as exc:
        return validation_response(exc, prefix="input")
    key = request.headers.get("idempotency-key")

    def store_it() -> tuple[JobPublic, dict[str, str]]:
        with services.new_session() as session:
            return accept(services, session, product.slug, body, principal, key)

    public, headers = await services.offload(store_it)
    return OrjsonResponse(public.model_dump(mode="json"), status_code=202, headers=headers)


def submit(
    name: str,
    body: JobCreate,
    response: Response,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobPublic | Response:
    """Validate everything first (nothing is stored for a bad request), then queue the job.

    A sync route: ``SessionRoute`` closes its session on this thread before the thread is free,
    so no submitter holds a pooled connection while it waits for a thread (#15).  ``lean``
    answers most submissions before it.
    """
    product = find_product(services, name)
    try:
        product.input_model.model_validate(body.input)
    except ValidationError as exc:
        return validation_response(exc, prefix="input")
    public, headers = accept(services, session, name, body, principal, idempotency_key)
    response.headers.update(headers)
    return public


router.add_api_route("/{name}/jobs", submit, methods=["POST"], status_code=202,
                     response_model=JobPublic, responses=errors(404, 409),
                     route_class_override=lean_route(lean))
