"""A job event stream read the way a browser's EventSource reads it, in a thread.

It reconnects after any failure (a dropped connection, a 5xx while the database is away) with
``Last-Event-ID`` set to the last event it received, until the job's terminal status arrives;
``drop()`` cuts the current connection on purpose. What it kept is what a client would have
shown, so a test can compare it with the stored events: nothing lost, nothing twice.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "cancelled"}


class EventReader(threading.Thread):
    def __init__(self, base_url: str, key: str, job_id: str, timeout_s: float = 300) -> None:
        super().__init__(daemon=True, name=f"sse-{job_id[:8]}")
        self.url = f"{base_url}/v1/jobs/{job_id}/events"
        self.key, self.timeout_s = key, timeout_s
        self.events: list[dict[str, Any]] = []
        self.connections = 0  # streams that answered 200
        self.refused: list[int] = []  # statuses of reconnects that did not
        self.done = threading.Event()
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()

    @property
    def seqs(self) -> list[int]:
        return [int(e["seq"]) for e in self.events]

    def drop(self) -> None:
        """Cut the current connection, as a network blip would; the reader reconnects.

        A socket shutdown, not a close: it also wakes the reader blocked in ``recv``.
        """
        with self._lock:
            if self._response is not None:
                stream = self._response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def wait_for(self, predicate: Any, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(predicate(e) for e in list(self.events)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no such event within {timeout_s}s: {self.events}")
            time.sleep(0.05)

    def wait_for_refusal(self, timeout_s: float = 60) -> None:
        """Until a reconnect was refused (the server answered, but not 200)."""
        deadline = time.monotonic() + timeout_s
        while not self.refused:
            if time.monotonic() > deadline:
                raise AssertionError(f"no reconnect was refused within {timeout_s}s")
            time.sleep(0.05)

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            while time.monotonic() < deadline and not self._terminal():
                try:
                    self._read_once()
                except Exception:  # dropped, refused, reset: what EventSource retries
                    time.sleep(0.3)
        finally:
            self.done.set()

    def _terminal(self) -> bool:
        return any(e["type"] == "status" and e.get("status") in TERMINAL for e in self.events)

    def _read_once(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        if self.events:
            headers["Last-Event-ID"] = str(self.events[-1]["seq"])
        timeout = httpx.Timeout(60, connect=5)
        with httpx.stream("GET", self.url, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                self.refused.append(response.status_code)
                time.sleep(0.3)
                return
            self.connections += 1
            with self._lock:
                self._response = response
            try:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                        if self._terminal():
                            return
            finally:
                with self._lock:
                    self._response = None
