"""``GET /v1/usage``: the caller's team's tokens and cost."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ... import usage as usage_data
from ..deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/v1", tags=["usage"])


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
