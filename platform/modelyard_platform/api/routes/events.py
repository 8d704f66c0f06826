"""``GET /v1/jobs/{id}/events``: Server-Sent Events until the job reaches a terminal state.

Events are replayed from the database (``Last-Event-ID`` resumes after a reconnect); Redis
pub/sub only wakes the stream up early, and a one-second poll covers a missed announcement (or a
Redis that went away: the stream falls back to polling, it does not end, and subscribes again
once Redis is back). A database that restarts does not end a stream either: it waits, sending
keepalives, and goes on from the last event it sent.

A stream holds no database connection while it waits: each replay batch opens and closes its own
short session, and the route checks access with one too (not the request's session, which would
stay open as long as the response). Each key may hold ``max_streams_per_key`` streams open at
once across every API process (``stream_slots``: counted in Redis, renewed while the stream
lives); one more is a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from redis.asyncio.client import PubSub

from ...jobs import store
from ...jobs.events import channel
from ...models import TERMINAL
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep
from ..services import Services
from ..session_route import SessionRoute
from ..stream_slots import StreamSlot
from ..unavailable import OUTAGES

router = APIRouter(route_class=SessionRoute, prefix="/v1/jobs", tags=["jobs"])
KEEPALIVE_S = 15.0
RESUBSCRIBE_S = 5.0


def _read(services: Services, job_id: str, after: int) -> tuple[list[dict[str, Any]], bool]:
    with services.session() as session:
        rows = store.events_after(session, job_id, after)
        job = store.get_job(session, team_id=None, job_id=job_id)
        done = job.status in TERMINAL
    events = [{"seq": e.seq, "type": e.type, "job_id": job_id, **e.data} for e in rows]
    return events, done


def format_sse(event: dict[str, Any]) -> str:
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _subscribe(client: aioredis.Redis | None, job_id: str) -> PubSub | None:
    """The job's channel, or None when there is no broker or it does not answer (poll then)."""
    if client is None:
        return None
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel(job_id))
    except Exception:
        with contextlib.suppress(Exception):
            await pubsub.aclose()
        return None
    return pubsub


async def _stream(request: Request, services: Services, job_id: str, after: int,
                  slot: StreamSlot | None = None) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(services.settings.redis_url, socket_connect_timeout=2) \
        if services.settings.redis_url else None
    pubsub = await _subscribe(client, job_id)
    try:
        last_sent = last_subscribe = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            try:
                events, done = await run_in_threadpool(_read, services, job_id, after)
            except OUTAGES:  # the database is restarting: keep the stream, read again soon
                events, done = [], False
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
                try:
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except Exception:  # Redis went away: poll the database until it is back
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                    pubsub, last_subscribe = None, time.monotonic()
            else:
                await asyncio.sleep(0.5)
                if client is not None and time.monotonic() - last_subscribe > RESUBSCRIBE_S:
                    pubsub, last_subscribe = await _subscribe(client, job_id), time.monotonic()
            if slot is not None and slot.renew_due:
                await run_in_threadpool(slot.renew)
            if time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
    finally:
        if slot is not None:  # off the loop, and not awaited: a cancelled stream cannot wait
            asyncio.get_running_loop().run_in_executor(None, slot.release)
        with contextlib.suppress(Exception):  # a Redis that went away cannot be told goodbye
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()


def event_response(request: Request, services: Services, job_id: str,
                   last_event_id: str | None, subject: str | None = None) -> StreamingResponse:
    """The SSE response for a job the caller may read (API key or web session: both use it).

    With ``subject`` (who the caller is), the stream takes one of that subject's slots, given
    back when the stream ends, or when its generator is collected without ever starting.
    """
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    slot = (services.stream_slots.take(subject, services.settings.max_streams_per_key)
            if subject else None)
    stream = _stream(request, services, job_id, after, slot)
    if slot is not None:
        weakref.finalize(stream, slot.release)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{job_id}/events", response_class=StreamingResponse, responses={
    **errors(404),
    200: {"description": "Server-Sent Events until the job ends.",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
def job_events(
    job_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """No request-scoped session here: it would hold a pooled connection as long as the stream."""
    with services.session() as session:
        store.get_job(session, team_id=principal.team_id, job_id=job_id)  # 404 for other teams
    return event_response(request, services, job_id, last_event_id, principal.rate_subject)
