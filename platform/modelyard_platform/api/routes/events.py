"""``GET /v1/jobs/{id}/events``: Server-Sent Events until the job reaches a terminal state.

Events are replayed from the database (``Last-Event-ID`` resumes after a reconnect); Redis
pub/sub only wakes the stream up early, and a one-second poll covers a missed announcement.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ...jobs import store
from ...jobs.events import channel
from ...models import TERMINAL
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..services import Services

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
KEEPALIVE_S = 15.0


def _read(services: Services, job_id: str, after: int) -> tuple[list[dict[str, Any]], bool]:
    with services.session() as session:
        rows = store.events_after(session, job_id, after)
        job = store.get_job(session, team_id=None, job_id=job_id)
        done = job.status in TERMINAL
    events = [{"seq": e.seq, "type": e.type, "job_id": job_id, **e.data} for e in rows]
    return events, done


def format_sse(event: dict[str, Any]) -> str:
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _stream(request: Request, services: Services, job_id: str, after: int
                  ) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(services.settings.redis_url) \
        if services.settings.redis_url else None
    pubsub = client.pubsub() if client is not None else None
    try:
        if pubsub is not None:
            try:
                await pubsub.subscribe(channel(job_id))
            except Exception:
                pubsub = None  # no broker: poll the database
        last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            events, done = await run_in_threadpool(_read, services, job_id, after)
            for event in events:
                after = event["seq"]
                yield format_sse(event)
                last_sent = time.monotonic()
            if done and not events:
                return
            if done:
                continue  # read once more: nothing may follow the terminal event
            if await request.is_disconnected():
                return
            if pubsub is not None:
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            else:
                await asyncio.sleep(0.5)
            if time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        if pubsub is not None:
            await pubsub.aclose()
        if client is not None:
            await client.aclose()


def event_response(request: Request, services: Services, job_id: str,
                   last_event_id: str | None) -> StreamingResponse:
    """The SSE response for a job the caller may read (API key or web session: both use it)."""
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return StreamingResponse(
        _stream(request, services, job_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{job_id}/events")
def job_events(
    job_id: str,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    store.get_job(session, team_id=principal.team_id, job_id=job_id)  # 404 for other teams
    return event_response(request, services, job_id, last_event_id)
