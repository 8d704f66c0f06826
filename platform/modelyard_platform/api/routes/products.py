"""The product catalogue and job submission."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Response
from modelyard_registry.catalog import find_model
from modelyard_registry.errors import NotFound
from pydantic import ValidationError

from ...jobs import store
from ...jobs.celery_app import enqueue
from ...products import ProductLike
from ...usage import check_budget
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..errors import validation_response
from ..schemas import JobCreate, JobPublic, ProductPublic

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/products", tags=["products"])


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


@router.get("/{name}")
def get_product(name: str, services: ServicesDep, _: PrincipalDep) -> ProductPublic:
    return describe(find_product(services, name))


@router.post("/{name}/jobs", status_code=202, response_model=JobPublic)
def submit_job(
    name: str,
    body: JobCreate,
    response: Response,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobPublic | Response:
    """Validate everything first (nothing is stored for a bad request), then queue the job."""
    product = find_product(services, name)
    try:
        product.input_model.model_validate(body.input)
    except ValidationError as exc:
        return validation_response(exc, prefix="input")
    options = body.options.model_dump(exclude_none=True)
    if body.options.model and find_model(session, body.options.model) is None:
        raise NotFound(f"no model {body.options.model!r} in the catalogue",
                       field="options.model")
    check_budget(session, principal.team_id)
    job, created = store.create_job(
        session, team_id=principal.team_id, product=name, input_data=body.input,
        options=options, idempotency_key=idempotency_key,
    )
    if created:
        try:
            enqueue(services.celery, job.id)
        except Exception as exc:  # the row is the truth: the reconciler enqueues it later
            log.warning("job %s stored but not enqueued (%s); the reconciler will", job.id, exc)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobPublic.of(job, calls=store.job_calls(session, job.id))
