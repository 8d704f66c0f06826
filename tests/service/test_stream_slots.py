"""The per-key count of open event streams, shared through Redis by every API process.

Two ``StreamSlots`` objects stand for two API processes (the live two-process test is in
``test_event_streams.py``); the Redis is this test's own, so it can be emptied and stopped.
"""

from __future__ import annotations

import time

import pytest
import redis
from modelyard_platform.api.stream_slots import StreamSlots
from modelyard_platform.errors import TooManyStreams

from tests.private_services import PrivateRedis

from ..conftest import free_port


def test_two_processes_share_one_count_and_a_closed_stream_gives_its_slot_back(
    private_redis: PrivateRedis,
) -> None:
    one, two = StreamSlots(private_redis.url), StreamSlots(private_redis.url)
    held = [one.take("key-a", 3), two.take("key-a", 3), one.take("key-a", 3)]
    assert all(slot.shared for slot in held)
    for slots in (one, two):
        with pytest.raises(TooManyStreams, match="3 event streams open"):
            slots.take("key-a", 3)
    two.take("key-b", 3).release()  # another key has its own count
    held[1].release()
    held[1].release()  # given back exactly once
    held.append(two.take("key-a", 3))
    with pytest.raises(TooManyStreams):
        one.take("key-a", 3)


def test_a_dead_process_slots_lapse_and_a_live_stream_keeps_its_own(
    private_redis: PrivateRedis,
) -> None:
    dead, live = StreamSlots(private_redis.url, lease_s=1), StreamSlots(private_redis.url, 1)
    dead.take("key", 2)  # its process is killed: never renewed, never released
    kept = live.take("key", 2)
    with pytest.raises(TooManyStreams):
        live.take("key", 2)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the live stream renews; the dead one's lease runs out
        time.sleep(0.4)
        kept.renew()
    live.take("key", 2)
    with pytest.raises(TooManyStreams):
        live.take("key", 2)  # the live one was never dropped


def test_renewal_brings_a_slot_back_after_redis_lost_its_data(
    private_redis: PrivateRedis,
) -> None:
    slots = StreamSlots(private_redis.url)
    kept = slots.take("key", 1)
    redis.Redis.from_url(private_redis.url).flushall()
    kept.renew()
    with pytest.raises(TooManyStreams):
        slots.take("key", 1)


def test_without_redis_each_process_counts_its_own() -> None:
    slots = StreamSlots(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    first = slots.take("key", 2)
    assert not first.shared
    slots.take("key", 2)
    with pytest.raises(TooManyStreams):
        slots.take("key", 2)
    first.release()
    slots.take("key", 2)
