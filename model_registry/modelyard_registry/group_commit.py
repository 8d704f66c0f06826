"""Durable writes from many request threads, many rows per transaction (group commit).

Each usage row must be committed before its request is answered (a 200 without its ``Call``
would be free work, and a process killed under load must lose none), but one transaction per
request costs a disk flush per request.  ``GroupCommitter.write`` queues a write and blocks
until the transaction holding it has committed; one writer thread commits everything queued
so far in one transaction, so under load one flush serves many requests.

The writer has its own engine (one connection): it never waits for the request pool, and a
request waiting for it never holds a pooled connection that the writer needs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from .db import get_engine, make_engine

log = logging.getLogger(__name__)

Write = Callable[[Session], None]


@dataclass
class _Item:
    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, db_url: str, max_batch: int = 256) -> None:
        get_engine(db_url)  # migrated
        self.engine: Engine = make_engine(db_url)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="modelyard-commit", daemon=True)
        self._thread.start()
        self.batches = 0
        self.rows = 0

    def write(self, write: Write) -> None:
        """Run ``write`` in a committed transaction; returns once it is durable (or raises)."""
        if not self._thread.is_alive():
            raise RuntimeError("the usage writer is closed")
        item = _Item(write)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.engine.dispose()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                for item in batch:
                    item.write(session)
                session.commit()
            self.batches += 1
            self.rows += len(batch)
        except Exception as exc:
            log.warning("group commit of %d writes failed (%s); committing one by one",
                        len(batch), exc)
            for item in batch:
                try:
                    with Session(self.engine, expire_on_commit=False) as session:
                        item.write(session)
                        session.commit()
                except Exception as one:
                    item.error = one
        finally:
            for item in batch:
                item.done.set()


__all__ = ["GroupCommitter", "Write"]
