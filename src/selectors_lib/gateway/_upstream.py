"""One HTTP/1.1 connection to an upstream: asyncio protocol plus httptools' parser.

Chosen by measurement over httpx (see docs/gateway.md): the request head is
written as bytes in one call, the response is parsed by llhttp (C) through
``httptools``, and a request costs no task, lock or pool scan of its own.
Flow control both ways: reading pauses while too much body is buffered,
writing waits while the transport's buffer is full.

The connection remembers whether any response byte arrived, which is what the
retry policy needs: a failure before the first byte is safe to retry for an
idempotent request, and one before anything was written for every request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

try:
    import httptools
except ImportError:  # pragma: no cover - checked where the proxy is built
    _HAVE_HTTPTOOLS = False
else:
    _HAVE_HTTPTOOLS = True

from ._messages import HOP_BY_HOP
from ._turn import TurnEnd

__all__ = [
    "ClientGone",
    "Connection",
    "Deadlines",
    "UpstreamClosed",
    "UpstreamProtocolError",
    "require",
]

# Body bytes buffered before reading from the upstream pauses (the client is
# slow); reading resumes once the proxy has taken them.
_HIGH_WATER = 256 * 1024
# Response heads larger than this are refused (nginx's default buffers are
# smaller still: 4-8 KiB).
_MAX_HEAD = 64 * 1024
_MAX_HEADERS = 256


def require() -> None:
    """Raise ImportError naming the extra when httptools is missing."""
    if not _HAVE_HTTPTOOLS:
        raise ImportError(
            "selectors_lib.gateway needs httptools: pip install 'selectors-lib[gateway]'"
        )


class UpstreamClosed(ConnectionError):
    """The upstream closed or reset the connection before the response ended."""


class UpstreamProtocolError(ConnectionError):
    """The upstream sent something that is not valid HTTP/1.1."""


class ClientGone(Exception):
    """The client disconnected; the upstream exchange is abandoned."""


_FRAMING_FIELDS = frozenset({b"transfer-encoding", b"content-length"})
_SPECIAL = HOP_BY_HOP | _FRAMING_FIELDS


def _framing(fields: list[tuple[bytes, bytes]], status: int) -> tuple[bool, bool]:
    """Whether the body ends with the connection, and whether both framings came.

    Args:
        fields: The response's ``Transfer-Encoding`` and ``Content-Length``
            fields (names lowercased), in order.
        status: The response status.
    """
    if len(fields) == 1 and fields[0][0] == b"content-length":
        return False, False  # the usual answer: framed by its length
    codings = [v for n, v in fields if n == b"transfer-encoding"]
    length = len(codings) < len(fields)
    if status in (204, 304):
        until_close = False
    elif codings:
        # RFC 9112 section 6.3: chunked must come last, else the close ends it.
        until_close = b",".join(codings).rsplit(b",", 1)[-1].strip().lower() != b"chunked"
    else:
        until_close = not length
    return until_close, bool(codings) and length


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Deadlines:
    """The timeouts of many waits on one loop, checked by one periodic tick.

    A timer per wait (``loop.call_later`` and its cancel) costs about 2 us
    with uvloop, on every request; here a wait costs a dict entry, and one
    timer runs every :data:`TICK` seconds while any wait is pending. A wait
    times out up to one tick late.

    Args:
        loop: The event loop the waits run on.
    """

    #: Seconds between checks: the precision of every upstream timeout.
    TICK = 0.01

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waits: dict[asyncio.Future[None], float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, waiter: asyncio.Future[None], timeout: float) -> None:
        """Fail ``waiter`` with :class:`TimeoutError` if not done in ``timeout`` seconds."""
        self._waits[waiter] = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_later(self.TICK, self._check)

    def discard(self, waiter: asyncio.Future[None]) -> None:
        """The wait ended: forget it."""
        self._waits.pop(waiter, None)

    def _check(self) -> None:
        now = self._loop.time()
        waits = self._waits
        for waiter in [w for w, deadline in waits.items() if deadline <= now]:
            del waits[waiter]
            _expire(waiter)
        self._timer = self._loop.call_later(self.TICK, self._check) if waits else None


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection, one exchange at a time."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadlines: Deadlines | None = None,
        turn_end: TurnEnd | None = None,
    ) -> None:
        self._loop = loop
        self._deadlines = deadlines if deadlines is not None else Deadlines(loop)
        self._turn_end = turn_end
        # A request waiting for the end of the loop's turn (see start()).
        self._queued: bytes | None = None
        self.transport: asyncio.Transport | None = None
        self._parser: Any = httptools.HttpResponseParser(self)
        if hasattr(self._parser, "set_dangerous_leniencies"):
            # Transfer-Encoding beside Content-Length: RFC 9112 section 6.3 lets
            # an intermediary go on with the chunked framing (the length is
            # dropped on the way out, and the connection not reused).
            self._parser.set_dangerous_leniencies(lenient_chunked_length=True)
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0
        self.request_sent = True
        self.unsent = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        #: The answer's end-to-end fields, names lowercased.
        self.headers: list[tuple[bytes, bytes]] = []
        #: Its hop-by-hop fields (Connection, Transfer-Encoding, ...).
        self.hop: list[tuple[bytes, bytes]] = []
        self._framing_fields: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.received = False
        self.error: BaseException | None = None
        self._informational = False
        self._head_only = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._head_received = 0
        self._until_close = False

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols unasked"))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, UpstreamProtocolError):
                cause = UpstreamProtocolError(f"invalid response from the upstream: {exc}")
            self._fail(cause)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid response from the upstream: {exc}"))
        else:
            if not self.headers_done and self.error is None:
                # httptools only calls on_header once a field is whole, and
                # grows the field by concatenation meanwhile: one endless
                # header line (or endless 1xx heads) must be cut off here.
                self._head_received += len(data)
                if self._head_received > _MAX_HEAD:
                    self._fail(UpstreamProtocolError("the upstream's response head is too large"))

    def eof_received(self) -> bool | None:
        # The upstream sends nothing more: at once not reusable (the pool must
        # not write the next request into a connection the upstream closed);
        # returning None lets the transport close, and connection_lost ends
        # the exchange.
        self.closed = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None and exc is None and self._until_close:
            # A body without length or chunking ends when the upstream closes
            # (an HTTP/1.0 backend's, say): complete, not cut short.
            self.complete = True
        if not self.complete and self.error is None:
            self.error = UpstreamClosed(
                "the upstream closed the connection" + (f": {exc}" if exc else "")
            )
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # Bytes past the end of the answer its framing announced (a 204
            # with a body, say): parsing them as the next answer would hand
            # this connection's next request someone else's response. The
            # raise stops the parser; the connection is not reused.
            raise UpstreamProtocolError("the upstream sent bytes past the end of its response")

    def on_header(self, name: bytes, value: bytes) -> None:
        # The head's bytes are counted as they arrive (data_received); here
        # only the fields, each a tuple kept until the answer ends.
        if len(self.headers) >= _MAX_HEADERS:
            # llhttp sets no limit of its own: a broken upstream must not grow
            # the proxy's memory without end.
            self._fail(UpstreamProtocolError("the upstream's response head is too large"))
            return
        # Names lowercased once, here: everything after compares them as they are.
        name = name.lower()
        if name in _SPECIAL:
            if name in _FRAMING_FIELDS:
                self._framing_fields.append((name, value))
            if name in HOP_BY_HOP:
                # Never forwarded: kept apart, so the usual answer's fields
                # go to the client without a filtering pass.
                self.hop.append((name, value))
                return
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            # 1xx: informational, another head follows (the gateway never asks
            # for 100-continue or an upgrade).
            self.headers = []
            self.hop = []
            self._framing_fields = []
            self._informational = True
            return
        if status > 599:
            # Not a status any server in front can send on (uvicorn fails on it).
            self._fail(UpstreamProtocolError(f"the upstream answered status {status}"))
            return
        self.status = status
        self.headers_done = True
        until_close, both = _framing(self._framing_fields, status)
        self._until_close = until_close and not self._head_only
        self.keep_alive = bool(self._parser.should_keep_alive()) and not both
        if self._head_only:
            # A response to HEAD has no body whatever its Content-Length says;
            # the parser cannot know, so the connection is not reused.
            self.complete = True
            self.keep_alive = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._read_paused and self.transport:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True
        self._wake()

    # -- use -------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def client_gone(self) -> None:
        """Abandon the exchange: the client left (called from a done callback)."""
        self._fail(ClientGone())

    async def _wait(self, timeout: float) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        deadlines = self._deadlines
        deadlines.add(waiter, timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            deadlines.discard(waiter)

    def start(self, head: bytes, body: bytes, *, head_only: bool, more_body: bool = False) -> None:
        """Begin an exchange: write the request head and a body already complete.

        Args:
            head: The request head.
            body: The body, or its first bytes.
            head_only: The request is a ``HEAD`` (its response has no body).
            more_body: More body follows through :meth:`write`; the connection
                is not reusable until :meth:`end_request`.
        """
        self._reset()
        self.request_sent = not more_body
        self._head_only = head_only
        self.uses += 1
        data = head + body if body else head
        turn_end = self._turn_end
        if more_body or turn_end is None:
            self.send_now(data)  # the body's writes follow at once: the head goes first
            return
        # Written with the other requests of this turn of the event loop (one
        # wakeup of the upstream for several); until then nothing was sent.
        self.unsent = True
        self._queued = data
        turn_end.add(self)

    def flush(self) -> None:
        """Write the request held for the end of the loop's turn."""
        data, self._queued = self._queued, None
        if data is not None:
            self.send_now(data)

    def send_now(self, data: bytes) -> None:
        """Write the request (or its head) now, noting whether it left at all."""
        transport = self.transport
        assert transport is not None
        if self.closed or self.error is not None:
            # Lost before its turn came: nothing of this request left.
            self.unsent = True
            return
        try:
            transport.write(data)
        except RuntimeError:  # uvloop: the transport is closed already
            self.unsent = True
            self._fail(UpstreamClosed("the upstream had closed the connection"))
            return
        # A transport closing right after the write dropped it, or failed it
        # at once (the upstream had reset the connection): nothing of this
        # request left, so any method may go elsewhere.
        self.unsent = transport.is_closing()

    async def write(self, data: bytes, timeout: float) -> None:
        """Write more of the request body, waiting while the transport is full.

        Raises:
            TimeoutError: The upstream took nothing for ``timeout`` seconds
                (it stopped reading: without a limit, the connection would be
                held for ever).
            UpstreamClosed: The connection ended.
        """
        if self.closed or self.error is not None:
            raise self.error or UpstreamClosed("the upstream closed the connection")
        assert self.transport is not None
        self.transport.write(data)
        if self._write_paused:
            drain = self._drain = self._loop.create_future()
            self._deadlines.add(drain, timeout)
            try:
                await drain
            finally:
                self._drain = None
                self._deadlines.discard(drain)

    def end_request(self) -> None:
        """The request's body is written whole."""
        self.request_sent = True

    async def response_head(self, timeout: float) -> None:
        """Wait for the status line and headers (``timeout``: to the first byte).

        Raises:
            TimeoutError: Nothing complete arrived in time.
            UpstreamClosed: The connection ended first.
            UpstreamProtocolError: The answer was not HTTP.
            ClientGone: The client disconnected meanwhile.
        """
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self._wait(timeout)

    def take_body(self) -> bytes:
        """Every body byte buffered so far."""
        body = self._body
        if not body:
            return b""
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def next_body(self, idle_timeout: float) -> bytes | None:
        """The next body bytes, or None at the end of the body.

        Raises:
            TimeoutError: The body stalled for ``idle_timeout`` seconds.
            UpstreamClosed, UpstreamProtocolError, ClientGone: As for
                :meth:`response_head`.
        """
        while True:
            if self._body:
                return self.take_body()
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            if self._read_paused and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()
            await self._wait(idle_timeout)

    @property
    def reusable(self) -> bool:
        """Whether the exchange ended cleanly and the connection may serve another.

        An upstream may answer before it read the whole request body: if the
        body was then cut short (the client left or stalled), the upstream
        still waits for the rest, and the next request would be read as it.
        """
        return (
            self.complete
            and self.request_sent
            and self.keep_alive
            and not self.closed
            and self.error is None
        )

    def close(self) -> None:
        """Close the connection now (any exchange in progress is abandoned)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
