"""The request body: read whole when small (so a retry can resend it), else streamed once.

Also where the proxy listens for the client's disconnect once the body is
read: ASGI's ``receive()`` then waits for ``http.disconnect``, and the
connection being used is abandoned the moment it comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._upstream import ClientGone, Connection

__all__ = ["REPLAY_LIMIT", "ClientStalled", "RequestBody"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Headers = list[tuple[bytes, bytes]]

#: Request bodies up to this size are read whole before the first attempt, so
#: that a retry can send them again; longer ones stream through once.
REPLAY_LIMIT = 64 * 1024


class ClientStalled(Exception):
    """The client sent no more of a streamed request body within the idle timeout."""


class RequestBody:
    """The request body: whole when it came in one message, else streamed once."""

    __slots__ = (
        "_first",
        "_receive",
        "_watched",
        "_watcher",
        "consumed",
        "data",
        "declared_length",
        "streaming",
    )

    def __init__(self, first: Message, receive: Receive) -> None:
        self._first = first
        self._receive = receive
        self.data: bytes = first.get("body", b"")
        self.streaming: bool = bool(first.get("more_body", False))
        self.consumed = False
        self.declared_length: bytes | None = None
        self._watcher: asyncio.Future[Message] | None = None
        self._watched: Connection | None = None

    def watch(self, conn: Connection) -> None:
        """Abandon ``conn``'s exchange as soon as the client disconnects.

        Only once the whole body was read (receive() then waits for the
        disconnect); one listener per request, moved to each connection.
        """
        self._watched = conn
        if self._watcher is None:
            watcher = asyncio.ensure_future(self._receive())
            watcher.add_done_callback(self._client_left)
            self._watcher = watcher
        elif self._watcher.done():
            self._client_left(self._watcher)

    def _client_left(self, task: asyncio.Future[Message]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        conn = self._watched
        if conn is not None and task.result().get("type") == "http.disconnect":
            conn.client_gone()

    def unwatch(self) -> None:
        """Stop listening (the response is complete)."""
        self._watched = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.remove_done_callback(self._client_left)
            watcher.cancel()

    async def buffer(self, limit: int) -> None:
        """Read the body whole if it ends within ``limit`` bytes (else keep what came)."""
        parts = [self.data]
        size = len(self.data)
        message = self._first
        while message.get("more_body", False) and size <= limit:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
        if message.get("more_body", False):
            # Too long to keep: stream it, starting with what was read.
            self._first = {"type": "http.request", "body": data, "more_body": True}
        else:
            self.data, self.streaming = data, False

    @property
    def replayable(self) -> bool:
        """Whether the body can still be sent to another replica."""
        return not self.consumed

    def declare(self, headers: Headers) -> None:
        """Remember the client's ``Content-Length`` (kept when it sent no chunked body)."""
        if any(n == b"transfer-encoding" for n, _ in headers):
            return
        for name, value in headers:
            if name == b"content-length" and value.strip().isdigit():
                self.declared_length = value.strip()

    async def chunks(self, stall: float) -> Any:
        """The body as it arrives (once).

        Args:
            stall: Seconds the client may send nothing: an upstream connection
                is held meanwhile, and the server in front sets no limit.

        Raises:
            ClientGone: The client disconnected.
            ClientStalled: The client sent nothing for ``stall`` seconds.
        """
        self.consumed = True
        message = self._first
        while True:
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
            try:
                message = await asyncio.wait_for(self._receive(), stall)
            except TimeoutError:
                raise ClientStalled(f"no request body for {stall:g}s") from None
            if message["type"] == "http.disconnect":
                raise ClientGone
