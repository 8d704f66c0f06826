"""Process-local caches of rarely-changing tables, told about changes three ways.

The hot path (a chat call, a job submission) must not read the catalogue or the API keys from
the database on every request, yet a change must take effect everywhere promptly:

1. in this process, at once: an ORM event on the cached table's class marks the cache stale
   (``watch_orm``), so a change made through any library call in this process is seen by the
   next request, tests included;
2. in other API processes, at once: the process that made the change publishes on a Redis
   channel and every ``ChangeWatcher`` subscribed to it marks its cache stale;
3. from anywhere else (the CLI, a worker, a hand-written SQL update), within ``interval_s``: the
   watcher compares a cheap fingerprint query (row count, newest timestamp) every interval.

A stale cache is rebuilt on its next read, by the reader, so there is never a window where a
request sees a half-built snapshot.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import event, text

from .db import session_scope

log = logging.getLogger(__name__)


@dataclass
class Watched:
    """One cache: its Redis channel, its fingerprint query, and what to do on a change."""

    channel: str
    fingerprint_sql: str
    on_change: Callable[[], None]
    last: tuple[Any, ...] | None = None


@dataclass
class ChangeWatcher:
    """A daemon thread per process: Redis pub/sub messages and a periodic fingerprint check."""

    db_url: str
    redis_url: str | None
    interval_s: float = 1.0
    watched: list[Watched] = field(default_factory=list)
    tasks: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.redis = redis.Redis.from_url(self.redis_url) if self.redis_url else None

    def watch(self, channel: str, fingerprint_sql: str, on_change: Callable[[], None]) -> None:
        self.watched.append(Watched(channel, fingerprint_sql, on_change))

    def every(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the watcher's thread once per interval (e.g. publish counters)."""
        self.tasks.append(task)

    def start(self) -> None:
        if self._thread is None:
            self._check()  # the baseline fingerprints, so the first interval reports no change
            self._thread = threading.Thread(target=self._run, name="modelyard-watch",
                                            daemon=True)
            self._thread.start()

    def publish(self, channel: str) -> None:
        """Tell the other processes (best effort: their fingerprint check is the fallback)."""
        if self.redis is None:
            return
        try:
            self.redis.publish(channel, b"1")
        except redis.RedisError as exc:
            log.warning("watch: could not publish on %s: %s", channel, exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.redis is not None:
            self.redis.close()

    def _check(self) -> None:
        try:
            with session_scope(self.db_url) as session:
                prints = [tuple(session.execute(text(w.fingerprint_sql)).one())
                          for w in self.watched]
        except Exception as exc:  # a missed check is retried next interval
            log.warning("watch: fingerprint check failed: %s", exc)
            return
        for w, now in zip(self.watched, prints, strict=True):
            if w.last is not None and now != w.last:
                w.on_change()
            w.last = now

    def _run(self) -> None:
        pubsub = None
        while not self._stop.is_set():
            if pubsub is None and self.redis is not None:
                try:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(*[w.channel for w in self.watched])
                except redis.RedisError:
                    pubsub = None
            deadline = self.interval_s
            if pubsub is not None:
                try:
                    message = pubsub.get_message(timeout=deadline)
                    while message is not None:
                        for w in self.watched:
                            if message["channel"] == w.channel.encode():
                                w.on_change()
                        message = pubsub.get_message(timeout=0)
                except redis.RedisError:
                    pubsub = None
                    self._stop.wait(deadline)
            else:
                self._stop.wait(deadline)
            self._check()
            for task in self.tasks:
                try:
                    task()
                except Exception as exc:  # a report is advice; the next interval retries
                    log.warning("watch: periodic task failed: %s", exc)
        if pubsub is not None:
            pubsub.close()


_listeners: dict[type, weakref.WeakSet[Any]] = {}


def watch_orm(classes: Sequence[type], cache: Any) -> None:
    """Call ``cache.changed()`` on every ORM insert, update or delete of ``classes`` here.

    The listeners are per class and registered once; caches are held weakly, so an app that is
    gone (tests build many) is not kept alive by them.
    """
    for cls in classes:
        caches = _listeners.get(cls)
        if caches is None:
            caches = _listeners[cls] = weakref.WeakSet()
            for name in ("after_insert", "after_update", "after_delete"):
                event.listen(cls, name, _notify(caches))
        caches.add(cache)


def _notify(caches: weakref.WeakSet[Any]) -> Callable[..., None]:
    def listener(*_: object) -> None:
        for cache in list(caches):
            cache.changed()
    return listener


__all__ = ["ChangeWatcher", "watch_orm"]
