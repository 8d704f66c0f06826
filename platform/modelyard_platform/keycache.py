"""API keys checked once, then from memory: a key lookup per request was two queries.

Only valid keys are cached (by their SHA-256), as the ``Principal`` they resolve to.  Revoking
must still take effect at once: any change to ``api_keys`` or ``teams`` made through the ORM in
this process clears the cache immediately and is broadcast on Redis to the other API processes;
a revocation made elsewhere (``yard keys revoke``, another tool) is seen within the watcher's
interval by its fingerprint (count of keys, newest revocation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from modelyard_registry.watch import ChangeWatcher, watch_orm
from sqlmodel import Session

from .auth import Principal, authenticate, hash_key
from .models import ApiKey, Team

CHANNEL = "modelyard:keys"
FINGERPRINT = ("SELECT (SELECT count(*) FROM api_keys), (SELECT max(revoked_at) FROM api_keys), "
               "(SELECT count(*) FROM teams)")
MAX_KEYS = 100_000


class KeyCache:
    def __init__(self, watcher: ChangeWatcher | None = None) -> None:
        self.watcher = watcher
        self._principals: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self._generation = 0
        watch_orm([ApiKey, Team], self)
        if watcher is not None:
            watcher.watch(CHANNEL, FINGERPRINT, self.clear)

    def clear(self) -> None:
        with self._lock:
            self._principals = {}
            self._generation += 1

    def changed(self) -> None:
        """A key or team changed in this process: forget every key here and everywhere."""
        self.clear()
        if self.watcher is not None:
            self.watcher.publish(CHANNEL)

    def cached(self, key: str | None) -> Principal | None:
        """The key's principal if this process has seen it valid since the last change."""
        return self._principals.get(hash_key(key)) if key else None

    def authenticate(
        self, key: str | None, session: Callable[[], AbstractContextManager[Session]] | Session
    ) -> Principal:
        """The key's principal from memory, else from the database (raises ``Unauthorized``)."""
        digest = hash_key(key) if key else ""
        principal = self._principals.get(digest)
        if principal is not None:
            return principal
        generation = self._generation
        if isinstance(session, Session):
            principal = authenticate(session, key)
        else:
            with session() as fresh:
                principal = authenticate(fresh, key)
        with self._lock:
            if generation == self._generation and len(self._principals) < MAX_KEYS:
                self._principals[digest] = principal  # not if a revocation came meanwhile
        return principal


__all__ = ["CHANNEL", "KeyCache"]
