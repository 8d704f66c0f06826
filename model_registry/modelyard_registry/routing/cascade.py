"""Try the cheapest adequate model; let a validator accept its output or escalate to the next.

The order is the router's: adequate candidates by expected cost.  Each attempt, accepted or not,
is written as one ``Call`` row in its own committed transaction as soon as it ends, so the cost
of a request is the exact sum of its rows even if the process dies halfway through a cascade.

Chat messages sent to a completion-only model (e.g. the bundled Gemma-3-270M base model) are
rendered into a plain prompt (``render_plain``): the system text, then ``User:``/``Assistant:``
turns, ending with ``Assistant:`` and stopping at the next ``User:``.  Base models continue such
transcripts well enough to be worth trying, and the validator still guards the output.

A backend error on one candidate is recorded (outcome ``error``) and the cascade moves on.  When
no candidate is left, ``CascadeExhausted`` is raised; the attempts are already recorded.  (A lone
candidate whose runner crashed raises its ``BackendCrashed`` instead: that is the whole story.)
A failed attempt is billed what it used: a local model the wall time it held the machine; a
remote one nothing when its server never had the request, else (``lost_attempt``) its maximum,
the price of the prompt and ``max_tokens``, since what a server that broke generated is unknown.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from ..catalog import Backend, Capability, ModelEntry, list_models, record_health, utcnow
from ..catalog_cache import CatalogueCache
from ..errors import BackendCrashed, BackendUnreachable, CascadeExhausted
from ..evidence.calls import evidence_text, record_call_input
from ..group_commit import GroupCommitter
from ..pricing import estimate_tokens, local_cost, remote_cost
from ..runtimes import Completion, GenerationRequest, RuntimeFactory, StreamEvent
from ..runtimes.base import Stopwatch
from ..scores import Call
from ..settings import Settings
from ..taskspec import TaskSpec
from ..validators import Doubtful, Validator
from .admission import BudgetGuard, Hold, Settle, max_cost
from .candidates import Candidate, MachineLimits, expected_cost
from .explain import decide_request
from .serving import ActivePredictor
from .verdicts import CandidateVerdict, Decision

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "escalated", "error"]
_CALLS = Call.__table__  # type: ignore[attr-defined]
_INSERT_CALL = _CALLS.insert()
"""Built once: a statement built per row (``.values(row)``) cost more in SQLAlchemy's cache-key
and coercion work than the database's own insert (profiled, #15)."""
SessionFactory = Callable[[], AbstractContextManager[Session]]
Fence = Callable[[Session, str], None]
"""Run in each job call's usage-row transaction; raises to refuse the row (a lost lease)."""


@dataclass(frozen=True)
class Attempt:
    """One model call of a cascade, as recorded in its ``Call`` row."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    outcome: Outcome
    reason: str
    ttft_s: float | None = None
    error: Exception | None = dataclasses.field(default=None, compare=False, repr=False)
    validated: bool = False  # a validator judged it: its outcome is routing evidence


@dataclass(frozen=True)
class CascadeResult:
    completion: Completion
    model: str
    decision: Decision
    attempts: list[Attempt]
    cost_usd: float
    escalated: bool
    request_id: str


def render_plain(messages: Iterable[dict[str, str]]) -> str:
    """Chat messages as a plain transcript a completion-only model can continue."""
    parts: list[str] = []
    for message in messages:
        role, content = message.get("role", "user"), message.get("content", "")
        if role == "system":
            parts.append(f"{content}\n")
        elif role == "assistant":
            parts.append(f"Assistant: {content}\n")
        else:
            parts.append(f"User: {content}\n")
    parts.append("Assistant:")
    return "\n".join(parts)


def adapt_request(request: GenerationRequest, candidate: Candidate) -> GenerationRequest:
    """The request this model can take.

    Chat messages become a plain prompt for a local model that cannot chat; remote servers always
    take messages.
    """
    if (
        request.messages is not None
        and candidate.is_local
        and Capability.chat not in candidate.capabilities
    ):
        stop = [*(request.stop or []), "\nUser:"]
        return dataclasses.replace(
            request, messages=None, prompt=render_plain(request.messages), stop=stop
        )
    return request


def request_text(request: GenerationRequest) -> str:
    """The text routing counts tokens on (roles included, standing in for template tokens)."""
    if request.messages is not None:
        return render_plain(request.messages)
    return request.prompt or ""


def call_cost(candidate: Candidate, completion_or_latency: Completion | float,
              machine_cost_per_hour: float) -> float:
    """Actual USD of one attempt: by the token for remote models, by wall time for local ones."""
    if isinstance(completion_or_latency, Completion):
        done = completion_or_latency
        if candidate.is_local:
            return local_cost(done.latency_s, machine_cost_per_hour)
        return remote_cost(done.prompt_tokens, done.completion_tokens,
                           candidate.price_in, candidate.price_out)
    return local_cost(completion_or_latency, machine_cost_per_hour) if candidate.is_local else 0.0


class Cascade:
    """Runs a request on the cheapest adequate model, escalating on rejection or error."""

    def __init__(
        self, session_factory: SessionFactory, settings: Settings, runtimes: RuntimeFactory,
        predictor: ActivePredictor | None = None,
        *,
        catalogue: CatalogueCache | None = None,
        committer: GroupCommitter | None = None,
        budget: BudgetGuard | None = None,
        fence: Fence | None = None,
    ) -> None:
        """Build a cascade; ``catalogue`` and ``committer`` are the API's hot-path parts.

        A cached catalogue snapshot instead of two queries per request, and group-committed
        (still durable) usage rows.  Without them (workers, CLI) every plan reads the database
        and every row commits on its own.  ``budget`` admits each call of a team against its
        budget (``admission``); without it (the CLI) calls are not admitted.  ``fence`` (the
        workers') refuses the usage row of a job this worker no longer holds.
        """
        self.session_factory = session_factory
        self.settings = settings
        self.runtimes = runtimes
        self.limits = MachineLimits.from_settings(settings)
        self.predictor = predictor if predictor is not None else ActivePredictor(settings)
        self.catalogue = catalogue
        self.committer = committer
        self.budget = budget
        self.fence = fence

    def plan(self, spec: TaskSpec, request: GenerationRequest) -> tuple[
        Decision, dict[str, Candidate], dict[str, ModelEntry]
    ]:
        """Route the request (raises on bad input or when nothing is adequate; writes nothing).

        Candidates are judged, and the cascade ordered, by the active predictor's predictions
        for this request when it has evidence for the kind, else by the per-kind scores.
        """
        spec = effective_spec(spec, request)
        snapshot = self.catalogue.get() if self.catalogue is not None else None
        with self.session_factory() as session:  # connects only if something must be read
            decision, candidates = decide_request(
                session, self.settings, spec, request_text(request), runtimes=self.runtimes,
                predictor=self.predictor, query_text=evidence_text(request.messages,
                                                                   request.prompt),
                limits=self.limits,
                index=snapshot.index if snapshot is not None else None,
            )
            entries = (snapshot.entries if snapshot is not None
                       else {e.name: e for e in list_models(session)})
        decision.require()
        return decision, {c.name: c for c in candidates}, entries

    def run(
        self,
        spec: TaskSpec,
        request: GenerationRequest,
        validator: Validator | None = None,
        *,
        request_id: str,
        job_id: str | None = None,
        team_id: int | None = None,
        node: str | None = None,
    ) -> CascadeResult:
        decision, candidates, entries = self.plan(spec, request)
        text = evidence_text(request.messages, request.prompt)
        attempts: list[Attempt] = []
        ranked = decision.ranked()
        settle = self._reserve([candidates[v.name] for v in ranked], request, request_id,
                               job_id, team_id, node)
        for index, verdict in enumerate(ranked, start=1):
            last = index == len(ranked)
            attempt, completion = self._attempt(
                verdict, candidates[verdict.name], entries[verdict.name], request, validator, last
            )
            attempts.append(attempt)
            accepted = completion if attempt.outcome == "accepted" else None
            final = last or accepted is not None
            self._record(attempt, index, spec, request_id, job_id, team_id, node, accepted,
                         text=text, settle=settle if final else None)
            if attempt.outcome == "accepted" and completion is not None:
                return CascadeResult(
                    completion=completion,
                    model=verdict.name,
                    decision=decision,
                    attempts=attempts,
                    cost_usd=sum(a.cost_usd for a in attempts),
                    escalated=len(attempts) > 1,
                    request_id=request_id,
                )
        if len(attempts) == 1 and isinstance(attempts[0].error, BackendCrashed):
            raise attempts[0].error  # the only candidate's runner died: say that (502), not more
        summary = "; ".join(f"{a.model}: {a.outcome} ({a.reason})" for a in attempts)
        raise CascadeExhausted(
            f"no candidate produced an accepted answer: {summary}", attempts=attempts
        )

    def stream(
        self,
        spec: TaskSpec,
        request: GenerationRequest,
        *,
        request_id: str,
        job_id: str | None = None,
        team_id: int | None = None,
        node: str | None = None,
    ) -> tuple[str, Iterator[StreamEvent]]:
        """Stream from the cheapest adequate model, with no escalation.

        Text already sent cannot be taken back, so there is no validator.  Routing and budget
        errors raise here, before any output; the call is recorded when the stream ends, even if
        the client goes away early or the backend breaks: then it is an ``error`` row billed for
        what was delivered (``cut_short``), not free.  While it delivers, it renews its budget
        reservation (``Hold.keep``): a stream may outlive the reservation's lifetime.
        """
        decision, candidates, entries = self.plan(spec, request)
        verdict = decision.ranked()[0]
        candidate = candidates[verdict.name]
        runtime = self.runtimes.for_entry(entries[verdict.name])
        rate = self.limits.machine_cost_per_hour
        settle = self._reserve([candidate], request, request_id, job_id, team_id, node)

        def events() -> Iterator[StreamEvent]:
            watch = Stopwatch()
            attempt: Attempt | None = None
            pieces: list[str] = []
            why = "the client went away"
            reached = False
            try:
                for event in runtime.stream(adapt_request(request, candidate)):
                    if event.completion is not None:
                        done = event.completion
                        attempt = Attempt(
                            verdict.name, done.prompt_tokens, done.completion_tokens,
                            done.latency_s, call_cost(candidate, done, rate), "accepted",
                            verdict.reason, done.ttft_s,
                        )
                    elif event.text:
                        watch.mark_token()
                        pieces.append(event.text)
                    if settle is not None:
                        settle.keep()  # a stream may outlive its reservation's lifetime
                    yield event
            except Exception as exc:
                why = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
                reached = bool(getattr(exc, "reached", False))
                raise
            finally:
                if attempt is None:
                    attempt = cut_short(verdict.name, candidate, request, pieces, watch, rate,
                                        why, reached=reached)
                self._record(attempt, 1, spec, request_id, job_id, team_id, node,
                             text=evidence_text(request.messages, request.prompt),
                             settle=settle)

        return verdict.name, events()

    def _reserve(self, tried: list[Candidate], request: GenerationRequest, request_id: str,
                 job_id: str | None, team_id: int | None, node: str | None) -> Hold | None:
        """Reserve the call's maximum against its team's budget (raises when over it)."""
        if self.budget is None or team_id is None:
            return None
        prompt_tokens = estimate_tokens(request_text(request))
        most = max_cost(tried, prompt_tokens, request.max_tokens, self.limits)
        return self.budget.reserve(team_id=team_id, request_id=request_id, job_id=job_id,
                                   node=node, model=tried[0].name, max_cost_usd=most)

    def _attempt(
        self,
        verdict: CandidateVerdict,
        candidate: Candidate,
        entry: ModelEntry,
        request: GenerationRequest,
        validator: Validator | None,
        last: bool,
    ) -> tuple[Attempt, Completion | None]:
        rate = self.limits.machine_cost_per_hour
        moving_on = "no candidate left" if last else "escalating"
        start = time.perf_counter()
        try:
            runtime = self.runtimes.for_entry(entry)
            completion = runtime.generate(adapt_request(request, candidate))
        except Exception as exc:  # any backend failure moves the cascade on, recorded
            latency = time.perf_counter() - start
            log.warning("cascade: %s failed: %s", verdict.name, exc)
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            if isinstance(exc, BackendUnreachable) and entry.backend == Backend.openai_compatible:
                self._mark_unhealthy(verdict.name, message)
            why = f"{type(exc).__name__}: {message}; {moving_on}"
            if not candidate.is_local and getattr(exc, "reached", False):
                return lost_attempt(verdict.name, candidate, request, latency, self.limits,
                                    why, exc), None
            return Attempt(verdict.name, 0, 0, latency, call_cost(candidate, latency, rate),
                           "error", why, error=exc), None
        cost = call_cost(candidate, completion, rate)
        judged = validator is not None
        if validator is None:
            ok, why = True, "no validator"
        else:
            try:
                ok, why = validator(completion)
            except Doubtful as doubt:  # the last candidate's doubted answer is the best there is
                ok, judged = last, False  # a doubt is not evidence the model failed
                why = f"doubtful: {doubt.reason}" + ("; no stronger candidate" if last else "")
            except Exception as exc:  # a crashing product check rejects, it does not crash us
                ok, why = False, f"validator raised {type(exc).__name__}: {exc}"
        outcome: Outcome = "accepted" if ok else "escalated"
        reason = f"{verdict.reason}; {why}" if ok else f"rejected: {why}; {moving_on}"
        attempt = Attempt(verdict.name, completion.prompt_tokens, completion.completion_tokens,
                          completion.latency_s, cost, outcome, reason, completion.ttft_s,
                          validated=judged)
        return attempt, completion

    def _mark_unhealthy(self, name: str, error: str) -> None:
        """A server that refused every connection retry is down: stop routing to it now.

        Without this, every request pays for a failed attempt until the next probe; the
        workers' prober (or `yard models check`) marks it healthy again once it answers.
        """
        try:
            with self.session_factory() as session:
                record_health(session, name, False, error)  # the ORM event refreshes caches
        except Exception as exc:  # health is advice; never fail the request over it
            log.warning("cascade: could not mark %s unhealthy: %s", name, exc)

    def _record(
        self, attempt: Attempt, index: int, spec: TaskSpec, request_id: str,
        job_id: str | None, team_id: int | None, node: str | None,
        accepted: Completion | None = None,
        *, text: str = "", settle: Settle | None = None,
    ) -> None:
        """One committed row per attempt; an accepted one keeps its answer (``replay`` reads it).

        Returns only once the row is committed, so an answered request always has its row.
        ``settle`` (the request's last row) releases its budget reservation in the same
        transaction.
        """
        row = {
            "request_id": request_id, "job_id": job_id, "team_id": team_id, "node": node,
            "kind": str(spec.kind), "attempt": index, "model_name": attempt.model,
            "prompt_tokens": attempt.prompt_tokens,
            "completion_tokens": attempt.completion_tokens, "latency_s": attempt.latency_s,
            "ttft_s": attempt.ttft_s, "cost_usd": attempt.cost_usd, "outcome": attempt.outcome,
            "reason": attempt.reason[:1000], "validated": attempt.validated,
            "completion": None if accepted is None else stored_completion(accepted),
            "created_at": utcnow(),
        }

        def write(session: Session) -> None:
            # A plain INSERT on the transaction's connection, not an ORM object: the unit of
            # work's bookkeeping for one row cost more than the rest of the request's database
            # work (profiled, #15).
            session.connection().execute(_INSERT_CALL, row)
            if index == 1:  # the request's text, once, so its verdicts become evidence
                record_call_input(session, request_id=request_id, kind=str(spec.kind),
                                  text=text, team_id=team_id, job_id=job_id, node=node)
            if settle is not None:
                settle(session)
            if self.fence is not None and job_id is not None:
                session.flush()  # write first: on SQLite the fence then reads under the lock
                self.fence(session, job_id)

        if self.committer is not None:
            self.committer.write(write)
            return
        with self.session_factory() as session:
            write(session)
            session.commit()


def lost_attempt(model: str, candidate: Candidate, request: GenerationRequest, latency_s: float,
                 limits: MachineLimits, why: str, error: Exception) -> Attempt:
    """A remote attempt whose server had the request and broke before answering: its maximum.

    A per-token server bills what it generated, and we never learnt how much: the attempt is
    billed what its reservation held for it (the prompt, estimated, and ``max_tokens``), the
    same bound as a job call lost with its worker (``budget.bill_lost_attempts``).  Its token
    counts stay 0: unknown, not measured.
    """
    prompt = estimate_tokens(request_text(request))
    most = expected_cost(candidate, prompt, request.max_tokens, limits)
    return Attempt(model, 0, 0, latency_s, most, "error",
                   f"{why}; the server had the request and broke: billed its maximum "
                   f"({prompt} prompt + {request.max_tokens} max tokens), what it used is unknown",
                   error=error)


def cut_short(model: str, candidate: Candidate, request: GenerationRequest, pieces: list[str],
              watch: Stopwatch, machine_cost_per_hour: float, why: str, *,
              reached: bool = False) -> Attempt:
    """A stream that ended before its completion (client gone, backend broke): what it used.

    Its server had read the whole prompt and generated what was delivered, so a per-token model
    bills the prompt (estimated) and the delivered tokens: a remote server sends about one token
    a piece, a local runner batches pieces (its cost is wall time anyway, so an estimate
    serves).  Nothing delivered: the prompt when the server had the request (``reached``: it
    broke before its first token), else nothing (the request may never have reached it).
    """
    latency, ttft = watch.finish()
    text = "".join(pieces)
    delivered = estimate_tokens(text) if candidate.is_local else len(pieces)
    prompt = estimate_tokens(request_text(request)) if pieces or reached else 0
    used = Completion(text, None, prompt, delivered, latency, ttft, model)
    return Attempt(model, prompt, delivered, latency,
                   call_cost(candidate, used, machine_cost_per_hour), "error",
                   f"stream cut short after {delivered} tokens: {why}", ttft if pieces else None)


def stored_completion(done: Completion) -> dict[str, object]:
    """What ``replay`` needs to rebuild an accepted answer (timings live in the row itself)."""
    return {"text": done.text, "finish_reason": done.finish_reason, "model": done.model,
            "token_logprobs": done.token_logprobs}


def effective_spec(spec: TaskSpec, request: GenerationRequest) -> TaskSpec:
    """The spec the request really needs: its schema and its output budget count for routing."""
    updates: dict[str, object] = {}
    if request.json_schema is not None and not spec.needs_json_schema:
        updates["needs_json_schema"] = True
    if request.max_tokens > spec.max_output_tokens:
        updates["max_output_tokens"] = request.max_tokens
    return spec.model_copy(update=updates) if updates else spec


__all__ = [
    "Attempt",
    "Cascade",
    "CascadeResult",
    "Fence",
    "Outcome",
    "SessionFactory",
    "adapt_request",
    "call_cost",
    "cut_short",
    "effective_spec",
    "lost_attempt",
    "render_plain",
    "request_text",
    "stored_completion",
]
