"""The product catalogue and job submission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from modelyard_registry.errors import NotFound
from pydantic import ValidationError

from ...jobs import store
from ...jobs.submit import submit_job
from ...products import ProductLike
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..handlers import validation_response
from ..schemas import JobCreate, JobPublic, ProductPublic
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


@router.post("/{name}/jobs", status_code=202, response_model=JobPublic,
             responses=errors(404, 409))
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
    so no submitter holds a pooled connection while it waits for a thread (#15).
    """
    product = find_product(services, name)
    try:
        product.input_model.model_validate(body.input)
    except ValidationError as exc:
        return validation_response(exc, prefix="input")
    job, created = submit_job(
        session, services.enqueue, principal=principal, product=name, input_data=body.input,
        options=body.options, max_jobs=services.settings.team_max_jobs,
        idempotency_key=idempotency_key, committer=services.committer,
        budget_free=services.budget_free,
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    # A job made just now has no calls yet: no query for them (a replay shows what it has).
    return JobPublic.of(job, calls=store.job_calls(session, job.id) if not created else [])
