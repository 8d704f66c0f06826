"""``GET /v1/usage``: a team's tokens and cost, and what routing saved (``/v1/usage/savings``).

Savings come from ``modelyard_platform.savings``, the same call the savings page renders.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ... import usage as usage_data
from ...errors import Forbidden
from ...savings import SavingsReport, savings
from ..contract import errors
from ..deps import PrincipalDep, SessionDep, SettingsDep
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1", tags=["usage"])


@router.get("/usage")
def get_usage(
    session: SessionDep,
    principal: PrincipalDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    group_by: usage_data.GroupBy = "product",
) -> dict[str, Any]:
    begin, stop = usage_data.parse_period(start, end)
    return usage_data.usage(session, team_id=principal.team_id, start=begin, end=stop,
                            group_by=group_by)


@router.get("/usage/savings", responses=errors(403))
def get_savings(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    all_teams: Annotated[bool, Query(description="Every team's calls (admins only).")] = False,
) -> SavingsReport:
    """The same tokens priced on the model that ran and on the priciest adequate model."""
    if all_teams and not principal.admin:
        raise Forbidden("all_teams needs an admin key", field="all_teams")
    begin, stop = usage_data.parse_period(start, end)
    return savings(session, settings, team_id=None if all_teams else principal.team_id,
                   start=begin, end=stop)
