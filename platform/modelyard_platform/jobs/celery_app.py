"""The Celery application, configured from Settings.

Messages carry only a job id.  ``acks_late`` + ``reject_on_worker_lost`` put a message back when
its worker dies; a prefetch of one (``worker_prefetch``, the default) keeps a busy worker from
hoarding turns; results are not stored in Redis because the job row holds them.
"""

from __future__ import annotations

from celery import Celery
from modelyard_registry.settings import Settings

from ..errors import BrokerNotConfigured

RUN_JOB = "modelyard.run_job"
RUN_TURN = "modelyard.run_turn"  # no job id: run the fairest queued jobs while any wait (``wake``)
QUEUE = "modelyard"


def broker_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise BrokerNotConfigured(
            "REDIS_URL is not set: point it at Redis, or run `yard up`, which starts an "
            "embedded Redis for the API and the worker"
        )
    return settings.redis_url


def make_celery(settings: Settings) -> Celery:
    app = Celery("modelyard", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=settings.worker_prefetch,
        worker_hijack_root_logger=False,
        task_soft_time_limit=settings.job_soft_time_limit_s,
        task_time_limit=settings.job_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def enqueue(app: Celery, job_id: str, countdown: float | None = None, retries: int = 0) -> None:
    """A message for one job (a retry, a job the reconciler found without a worker)."""
    app.send_task(RUN_JOB, args=[job_id], queue=QUEUE, countdown=countdown, retries=retries)


def send_turn(app: Celery) -> None:
    """A message that has a worker run queued jobs, fairest first, while any wait."""
    app.send_task(RUN_TURN, queue=QUEUE)
