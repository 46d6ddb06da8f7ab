"""The HTTP/1.1 server ``selectors-lib serve`` runs its ASGI apps on: asyncio and httptools.

A gateway's server has one job per request: parse a head, call the proxy,
write an answer. uvicorn does that for any ASGI app and any deployment, and
on this path cost more CPU than the proxy's own work (docs/serve.md,
"Serve's HTTP server"). This server does only what serve needs:

* keep-alive and pipelining (one request at a time per connection, in order);
* a whole-head deadline (:data:`HEAD_TIMEOUT`) and size limit
  (:data:`MAX_REQUEST_HEAD`): a client trickling a head or sending an endless
  one loses its connection (408/431) instead of holding it;
* an idle deadline between requests (:data:`KEEPALIVE_TIMEOUT`);
* flow control both ways: reading pauses while a request body waits for the
  app, ``send`` waits while the client is slow to read;
* the response head and a final body go out in one write; bodies are framed
  by ``Content-Length`` when known, else chunked (HTTP/1.0: close-delimited);
* ``http.disconnect`` as soon as the client goes;
* absolute-form targets keep their authority in ``raw_path`` (the proxy
  refuses one naming another host); WebSocket upgrades get ``501``;
* graceful shutdown (:meth:`HttpServer.close`, then :meth:`HttpServer.drain`):
  stop accepting, close idle connections, let requests in flight finish
  within a deadline.

Each request's ``receive`` and ``send`` (and the response's framing) are in
:mod:`._http1_exchange`; the ASGI lifespan protocol is in :mod:`._asgi_lifespan`.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httptools

from ._http1_exchange import (
    _BAD_REQUEST,
    _HEAD_TIMEOUT,
    _HEAD_TOO_LARGE,
    _NO_WEBSOCKET,
    _SERVER_ERROR,
    Exchange,
)
from ._turn import TurnEnd

__all__ = ["HEAD_TIMEOUT", "KEEPALIVE_TIMEOUT", "LINGER_TIMEOUT", "MAX_REQUEST_HEAD", "HttpServer"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Bytes a request head (request line and header fields) may take.
MAX_REQUEST_HEAD = 64 * 1024
#: Seconds from a request's first byte to the end of its head.
HEAD_TIMEOUT = 10.0
#: Seconds a connection may stay idle between requests.
KEEPALIVE_TIMEOUT = 5.0
#: Seconds between checks of the connections' deadlines (their precision).
_SWEEP_EVERY = 0.25
#: Seconds a connection closing with input unread keeps reading (and dropping) it.
LINGER_TIMEOUT = 2.0
#: Bytes of answers a connection holds back to write together (see ``write``).
WRITE_BATCH = 64 * 1024
#: Request body bytes read ahead of the app before reading pauses.
BODY_READ_AHEAD = 64 * 1024

_log = logging.getLogger("selectors_lib.serve")
_ASGI = {"version": "3.0", "spec_version": "2.3"}


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the app once per request, in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.gone = False
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._read_paused = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect = False
        self._in_head = False
        self._head_bytes = 0
        self._completed = 0  # requests parsed whole
        self._parsing: Exchange | None = None
        self.active: Exchange | None = None
        self._worker: asyncio.Task[None] | None = None
        self._next: asyncio.Future[None] | None = None
        self._queue: deque[Exchange] = deque()
        # When the connection is closed unless something happens first (0: never),
        # checked by the server's sweep: no timer per request.
        self.deadline = 0.0
        self._closing = False
        self._lingering = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._ignore_input = False
        self._server_addr: tuple[str, int] | None = None
        self._client_addr: tuple[str, int] | None = None

    # -- transport events --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        if isinstance(sockname, tuple):
            self._server_addr = (str(sockname[0]), int(sockname[1]))
        if isinstance(peername, tuple):
            self._client_addr = (str(peername[0]), int(peername[1]))
        self.server.connections.add(self)
        self.deadline = self.loop.time() + KEEPALIVE_TIMEOUT

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.server.connections.discard(self)
        waiter, self._next = self._next, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # the worker ends
        for exchange in (self.active, self._parsing, *self._queue):
            if exchange is not None:
                exchange.wake()
        self._wake_drain()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def drained(self) -> None:
        """Wait until the client read enough of what was written (or left)."""
        if self.write_paused and not self.gone:
            if self._drain is None:
                self._drain = self.loop.create_future()
            await self._drain

    def data_received(self, data: bytes) -> None:
        # The idle timer runs on until a request begins (on_message_begin): an
        # empty line between requests (RFC 9112 section 2.2) starts none.
        if self._closing or self._ignore_input:
            return
        completed = self._completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        except httptools.HttpParserError:
            self._refuse(_BAD_REQUEST)
            return
        # Counted after parsing, so the packet that completes a head (and
        # brings body bytes along) never counts against it; nor does the one
        # where a head begins after another request ended (its body or
        # pipelined requests are not this head's): the limit is soft by one read.
        if self._in_head and self._completed == completed:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD:
                _log.warning("request head over %d bytes: refused", MAX_REQUEST_HEAD)
                self._refuse(_HEAD_TOO_LARGE)

    # -- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._expect = False
        self._in_head = True
        self._head_bytes = 0
        self.deadline = self.loop.time() + HEAD_TIMEOUT

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.deadline = 0.0
        parser = self.parser
        if parser.should_upgrade() and self._websocket():
            return  # refused in _upgrade
        version = parser.get_http_version()
        target = self._url
        raw, _, query = target.partition(b"?")
        if raw.startswith(b"/"):
            path = raw.decode("ascii", "surrogateescape")
        else:
            # Absolute form: the proxy checks the authority against Host.
            path = urllib.parse.urlsplit(raw.decode("ascii", "surrogateescape")).path or "/"
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope: Scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": version,
            "server": self._server_addr,
            "client": self._client_addr,
            "scheme": "http",
            "method": parser.get_method().decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw,
            "query_string": query,
            "headers": self._headers,
            "state": dict(state) if (state := self.server.state) else {},
            "extensions": {},
        }
        keep_alive = parser.should_keep_alive() and not self.server.closing
        exchange = Exchange(self, scope, keep_alive, self._expect)
        self._parsing = exchange
        if self.active is None:
            self._start(exchange)
        else:
            # Pipelined: runs when the one before it has answered.
            self._queue.append(exchange)
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self._parsing
        if exchange is None:
            return
        exchange.body.append(body)
        exchange.body_size += len(body)
        if exchange.body_size > BODY_READ_AHEAD:
            self._pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        self._completed += 1
        exchange, self._parsing = self._parsing, None
        if exchange is not None:
            exchange.body_done = True
            exchange.wake()

    # -- running the app ---------------------------------------------------------------

    def _start(self, exchange: Exchange) -> None:
        """Make ``exchange`` the one answered next, by the connection's worker task.

        One task per connection runs its requests in turn: a task per request
        (its creation, registration and completion callbacks) cost more than
        many a request's own work.
        """
        self.active = exchange
        waiter = self._next
        if waiter is not None:
            self._next = None
            if not waiter.done():
                waiter.set_result(None)
        elif self._worker is None:
            task = self._worker = self.loop.create_task(self._serve())
            tasks = self.server.tasks
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _serve(self) -> None:
        """Run the app for each request of this connection, in order, until it closes."""
        done: Exchange | None = None
        while True:
            exchange = self.active
            if exchange is None or exchange is done:
                if self.gone or self._closing:
                    return
                waiter = self._next = self.loop.create_future()
                await waiter
                continue
            done = exchange
            self.server.running += 1
            try:
                await self._run(exchange)
            finally:
                self.server.running -= 1

    async def _run(self, exchange: Exchange) -> None:
        try:
            await self.app(exchange.scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            if not exchange.complete:
                self._close(linger=self._parsing is not None)
            raise
        except BaseException as exc:
            _log.error("the request failed: %r", exc, exc_info=exc)
            if not exchange.complete:
                # Nothing written yet (the head waits for the first body): a 500 fits.
                if exchange.headers is not None and not self.gone:
                    self.write(_SERVER_ERROR)
                self._close(linger=self._parsing is not None)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not exchange.complete:
                # The app returned without finishing its answer.
                if exchange.headers is not None and not self.gone:
                    self.write(_SERVER_ERROR)
                self._close(linger=self._parsing is not None)

    def finished(self, exchange: Exchange) -> None:
        """The app sent its last body message: next request, idle, or close."""
        if exchange is not self.active:
            return
        self.active = None
        if not exchange.keep_alive or self._parsing is exchange or self.server.closing:
            # A body the app never read would be taken for the next request.
            self._close(linger=self._parsing is not None or bool(self._queue))
            return
        if self._queue:
            self._start(self._queue.popleft())
            if not self._queue:
                self._resume_reading()
            return
        self._resume_reading()
        if not self._in_head:
            self.deadline = self.loop.time() + KEEPALIVE_TIMEOUT

    # -- flow control, timers, closing ------------------------------------------------

    def resume_body(self) -> None:
        """The app took the buffered body: read on (unless requests are queued)."""
        if not self._queue:
            self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._read_paused and not self.gone:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and not self.gone:
            self._read_paused = False
            self.transport.resume_reading()

    def expire(self) -> None:
        """The deadline passed: close an idle connection, or refuse a head that is late."""
        self.deadline = 0.0
        if self._lingering:
            self.transport.close()
        elif self._in_head:
            _log.info("request head not complete within %gs: connection closed", HEAD_TIMEOUT)
            self._refuse(_HEAD_TIMEOUT)
        elif self.active is None:
            self._close()

    def _websocket(self) -> bool:
        upgrade = next((v for n, v in self._headers if n == b"upgrade"), b"")
        return b"websocket" in upgrade.lower()

    def _upgrade(self) -> None:
        """The parser stopped at an upgrade request: refuse WebSocket, else serve it as HTTP."""
        if self._websocket():
            self._refuse(_NO_WEBSOCKET)
            return
        # Any other protocol (h2c, ...) is declined by answering in HTTP/1.1;
        # what follows the head is not parsed, so the connection ends after.
        self._ignore_input = True
        exchange = self._parsing
        if exchange is not None:
            self._parsing = None
            exchange.body_done = True
            exchange.wake()
        else:
            # Complete (llhttp stops after the message): the last one parsed.
            exchange = self._queue[-1] if self._queue else self.active
        if exchange is not None:
            exchange.keep_alive = False

    def _refuse(self, answer: bytes) -> None:
        """Answer a request the app never sees, and close."""
        active, parsing = self.active, self._parsing
        if active is None or active.complete:
            self.write(answer)
        elif parsing is not active:
            # The requests before this one are whole: their answers go out
            # first, then the connection closes (the parser cannot go on).
            if parsing is not None:
                self._queue.remove(parsing)
            self._parsing = None
            self._ignore_input = True
            self._in_head = False
            self.deadline = 0.0
            (self._queue[-1] if self._queue else active).keep_alive = False
            return
        elif active.headers is not None:
            # The request in flight is the bad one (its body), still unanswered.
            self.write(answer)
        self._close(linger=True)
        if active is not None and not active.complete:
            # Its app gets no more body and may write nothing after this answer.
            self.gone = True
            active.wake()

    def idle(self) -> bool:
        """True between requests (nothing in flight, no head half-read)."""
        return self.active is None and not self._in_head

    # -- writing -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write ``data`` after what this connection wrote before, at the end of the loop's turn.

        Answers finished in one turn of the event loop go out together, after
        it: the client (on loopback, a process the kernel must wake for each
        write) reads several at once instead of being woken for each. That
        took 10% of the CPU per request off serve in the benchmark. More than
        :data:`WRITE_BATCH` bytes are written at once (a streamed body must
        not pile up in memory), and closing writes what waits first.
        """
        if self.gone:
            return
        out = self._out
        size = self._out_size + len(data)
        if size > WRITE_BATCH:
            self.flush()
            self.transport.write(data)
            return
        out.append(data)
        self._out_size = size
        if len(out) == 1:
            self.server.turn_end(self.loop).add(self)

    def flush(self) -> None:
        """Write what waits now."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        if not self.gone and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self, linger: bool = False) -> None:
        """Close after what was written; ``linger`` if the client may still be sending."""
        was_closing, self._closing = self._closing, True
        transport = self.transport
        if was_closing or transport.is_closing():
            return  # closed, or lingering until its deadline closes it
        self.flush()
        self.deadline = 0.0
        if linger and transport.can_write_eof():
            # A close with input unread sends a reset, which can destroy the
            # answer before the client reads it (RFC 9112 section 9.6): send
            # FIN, drop input (data_received) until the client closes too.
            transport.write_eof()
            self._resume_reading()
            self._lingering = True
            self.deadline = self.loop.time() + LINGER_TIMEOUT
        else:
            transport.close()

    def abort(self) -> None:
        """Close now, dropping what was not written (a forced shutdown)."""
        self._closing = True
        self._out.clear()
        self.transport.abort()


class HttpServer:
    """Serve one ASGI app over HTTP/1.1 on listening sockets.

    Args:
        app: The ASGI app (``http`` scopes only; see :mod:`._asgi_lifespan`).
        state: Copied into each request's ``scope["state"]`` (the lifespan state).
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.state: dict[str, Any] = state if state is not None else {}
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        #: Requests whose app is running now.
        self.running = 0
        self.closing = False
        self._forced = False
        self._servers: list[asyncio.AbstractServer] = []
        self._sockets: list[Any] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._turn_end: TurnEnd | None = None

    def turn_end(self, loop: asyncio.AbstractEventLoop) -> TurnEnd:
        """Where connections hold their answers until the loop's turn ends."""
        turn_end = self._turn_end
        if turn_end is None:
            turn_end = self._turn_end = TurnEnd(loop)
        return turn_end

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self.connections if 0.0 < c.deadline <= now]:
            conn.expire()
        self._sweeper = loop.call_later(_SWEEP_EVERY, self._sweep)

    async def start(self, sock: Any) -> None:
        """Accept connections on the listening socket ``sock``."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), sock=sock)
        if self._sweeper is None:
            self._sweeper = loop.call_later(_SWEEP_EVERY, self._sweep)
        self._servers.append(server)
        self._sockets.append(sock)

    def force(self) -> None:
        """End a :meth:`drain` in progress now: cancel what still runs."""
        self._forced = True

    def close(self) -> None:
        """Stop accepting; close idle connections now, busy ones after their answer."""
        self.closing = True
        for server in self._servers:
            server.close()
        for sock in self._sockets:
            # uvloop listens on a duplicate: the socket given must close too.
            sock.close()
        for conn in list(self.connections):
            if conn.idle():
                conn._close()
            elif conn.active is not None:
                conn.active.keep_alive = False  # its answer says the connection closes

    async def drain(self, timeout: float) -> bool:
        """After :meth:`close`: give requests in flight ``timeout`` seconds to finish.

        Whatever still runs at the deadline (or after :meth:`force`) is cancelled.

        Returns:
            True if every request finished in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.connections or self.running) and loop.time() < deadline and not self._forced:
            for conn in list(self.connections):
                if conn.idle():
                    conn._close()
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        clean = not self.running
        for task in list(self.tasks):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=1.0)
        return clean
