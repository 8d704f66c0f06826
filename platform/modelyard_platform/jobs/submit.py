"""Accepting a job: the one order of checks the API route and the web form both follow.

Input validation happens before this (each caller reports errors its own way). Here: the pinned
model exists, the team is within budget and under its cap of unfinished jobs, the row is stored
(idempotently), and the job is enqueued. A failed enqueue is not an error for the caller: the
stored row is the truth and the reconciler enqueues it later, so a broker blip never loses an
accepted job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from modelyard_registry.catalog import find_model
from modelyard_registry.errors import NotFound
from modelyard_registry.group_commit import GroupCommitter
from modelyard_registry.routing.options import RoutingOptions
from sqlmodel import Session

from ..auth import Principal
from ..budget_cache import BudgetFreeTeams
from ..models import Job
from ..usage import check_budget
from . import store
from .fair import check_team_backlog

log = logging.getLogger(__name__)


def submit_job(
    session: Session,
    enqueue: Callable[[str], None],
    *,
    principal: Principal,
    product: str,
    input_data: dict[str, Any],
    options: RoutingOptions,
    max_jobs: int,
    idempotency_key: str | None = None,
    committer: GroupCommitter | None = None,
    budget_free: BudgetFreeTeams | None = None,
) -> tuple[Job, bool]:
    """Store and enqueue a validated job; returns ``(job, created)`` (False on a replay).

    ``enqueue`` sends a job id to the workers (``Services.enqueue``); ``max_jobs`` caps the
    team's queued + running jobs (``Settings.team_max_jobs``), so one team's backlog stays bounded.
    ``committer`` group-commits the row with concurrent submissions' (``store.create_job``);
    ``budget_free`` (the API's cache of teams without a budget) spares their team row read.
    """
    pinned = options.model
    if pinned and find_model(session, pinned) is None:
        raise NotFound(f"no model {pinned!r} in the catalogue", field="options.model")
    if budget_free is None or principal.team_id not in budget_free:
        check_budget(session, principal.team_id, budget_free)
    check_team_backlog(session, principal.team_id, max_jobs, idempotency_key)
    job, created = store.create_job(
        session, team_id=principal.team_id, product=product, input_data=input_data,
        options=options.stored(), idempotency_key=idempotency_key, committer=committer,
    )
    if created:
        try:
            enqueue(job.id)
        except Exception as exc:  # no broker, or it is down: the reconciler enqueues it later
            log.warning("job %s stored but not enqueued (%s); the reconciler will", job.id, exc)
    return job, created
