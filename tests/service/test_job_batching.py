"""The job path's helpers of #15: the batcher's sends and the per-process lease keeper."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from typing import Any

import pytest
from modelyard_platform.jobs import store
from modelyard_platform.jobs.batcher import Batcher
from modelyard_platform.jobs.lease_keeper import LeaseKeeper


def test_batcher_sends_everything_in_order_and_close_flushes() -> None:
    sent: list[list[int]] = []
    batcher: Batcher[int] = Batcher(sent.append, name="test-batcher", idle_rounds=2)
    for i in range(50):
        batcher.put(i)
        if i == 25:
            time.sleep(0.05)  # long enough for the thread to go idle and block
    batcher.close()
    assert [i for batch in sent for i in batch] == list(range(50))
    assert len(sent) < 50  # items queued together went together


def test_a_failing_send_is_logged_and_the_next_batch_still_goes(
        caplog: pytest.LogCaptureFixture) -> None:
    sent: list[int] = []

    def send(batch: list[int]) -> None:
        if 0 in batch:
            raise ConnectionError("broker away")
        sent.extend(batch)

    batcher: Batcher[int] = Batcher(send, name="test-batcher")
    batcher.put(0)
    time.sleep(0.05)
    batcher.put(1)
    batcher.close()
    assert sent == [1]
    assert "broker away" in caplog.text


def test_the_lease_keeper_renews_held_jobs_only_and_drops_lost_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    renewed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def renew(_session: Any, job_id: str, owner: str, _lease_s: float) -> bool:
        with lock:
            renewed.append((job_id, owner))
        return job_id != "lost"

    monkeypatch.setattr(store, "renew", renew)
    keeper = LeaseKeeper(lambda: nullcontext(None), lease_s=0.3)  # type: ignore[arg-type,return-value]
    with keeper.hold("kept", "w1"), keeper.hold("lost", "w1"):
        time.sleep(0.6)
        with lock:
            assert ("kept", "w1") in renewed
            assert renewed.count(("lost", "w1")) == 1  # dropped once found lost
            # never more than half a lease without a renewal: at least one per 0.15 s
            assert renewed.count(("kept", "w1")) >= 2
    with lock:
        count = len(renewed)
    time.sleep(0.3)
    with lock:
        assert len(renewed) == count  # released jobs are not renewed
