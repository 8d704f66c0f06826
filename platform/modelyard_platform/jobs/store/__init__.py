"""Job rows: create (idempotently), read within a team, claim with a lease, finish exactly once.

Every state change that two processes could race on is one conditional ``UPDATE`` (claim, renew,
finish, cancel), so the database decides who won; nothing relies on the broker delivering a
message exactly once.

One module per job: ``create`` (idempotent submission), ``read`` (team-scoped reads, pages,
events), ``events`` (a job's event log and progress), ``lease`` (claim, renew, finish,
requeue, cancel, the reconciler's sweep); ``tables`` holds the tables their statements are
built on.
"""

from .create import create_job, request_hash
from .events import StepEvent, add_event, add_held_step_events, set_progress
from .lease import cancel_job, claim, claim_and_start, finish, renew, requeue, take_stale
from .read import (
    CURSOR_PATTERN,
    decode_cursor,
    encode_cursor,
    events_after,
    get_job,
    job_calls,
    job_cost,
    lease_state,
    list_jobs,
)

__all__ = [
    "CURSOR_PATTERN",
    "StepEvent",
    "add_event",
    "add_held_step_events",
    "cancel_job",
    "claim",
    "claim_and_start",
    "create_job",
    "decode_cursor",
    "encode_cursor",
    "events_after",
    "finish",
    "get_job",
    "job_calls",
    "job_cost",
    "lease_state",
    "list_jobs",
    "renew",
    "request_hash",
    "requeue",
    "set_progress",
    "take_stale",
]
