"""uvicorn's HTTP protocol with a response's writes sent as one: the head and body together.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, then its body as a second write: two ``send`` calls, two TCP segments
and, for the client, often two wake-ups per answer.  On the chat path against an instant
backend those writes were a tenth of the API's CPU (py-spy, #15), the dearest single line on
the event loop: on a VM, a write that wakes another process is a costly system call.

``CoalescingHttpTools`` hands uvicorn a transport that, from the start of each request, holds
what is written until the answer is complete (then at once, before uvicorn's bookkeeping) or
the event loop's current pass ends (``call_soon``), whichever comes first, and sends it as one
write; after that, writes go straight through until the next request.  So an answer's head and
body leave together, and a stream's head leaves with the chunks it had ready; nothing waits
longer than the pass it was written in, order is kept, and a close sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport that, once told to ``hold``, sends what is written next as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self.loop = loop
        self._held: list[bytes] = []
        self._holding = False

    def hold(self) -> None:
        """Hold writes from now until ``flush`` (called at the latest when this pass ends)."""
        self._holding = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._holding:
            self.transport.write(data)
            return
        if not self._held:
            self.loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, as one write (nothing, on a transport already closing)."""
        self._holding = False
        if not self._held:
            return
        held, self._held = self._held, []
        if not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held = []
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(len(d) for d in self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()


class CoalescingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, each answer written through a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(self.coalescing)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.coalescing.hold()

    def on_response_complete(self) -> None:
        self.coalescing.flush()  # the answer is whole: send it now
        super().on_response_complete()


__all__ = ["CoalescingHttpTools", "CoalescingTransport"]
