"""Connection pools, one per endpoint, each with its own limit.

A slow or dead endpoint can only exhaust its own pool: requests to other
endpoints never wait behind it. Idle connections are reused newest first
(the warmest) and dropped after ``keepalive_timeout`` or once the upstream
closed them. A request that finds its endpoint's pool full waits at most its
connect timeout for a connection, then fails as "nothing sent" (so it may be
retried on the next replica).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from ._messages import UpstreamTarget
from ._turn import TurnEnd
from ._upstream import Connection, Deadlines

__all__ = ["ConnectFailed", "EndpointPool", "PoolFull"]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class ConnectFailed(ConnectionError):
    """No connection could be opened (refused, unreachable, timed out): nothing was sent."""


class PoolFull(ConnectionError):
    """The endpoint's pool stayed at its limit for the whole connect timeout."""


class EndpointPool:
    """Keep-alive connections to one endpoint, at most ``limit`` at once.

    Args:
        target: The endpoint's parsed URL.
        limit: Connections open at once, busy and idle together.
        keepalive: Seconds an idle connection is kept.
    """

    def __init__(self, target: UpstreamTarget, limit: int, keepalive: float) -> None:
        self.target = target
        self.limit = limit
        self.keepalive = keepalive
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if target.tls else None
        # The pool's event loop, bound by its first acquire: on Python 3.11,
        # asyncio.get_running_loop() costs a getpid() system call per request.
        self._loop: asyncio.AbstractEventLoop | None = None
        # The timeouts of this pool's connections, one tick for all of them.
        self._deadlines: Deadlines | None = None
        # Its requests of one turn of the loop, written together after it.
        self._turn_end: TurnEnd | None = None

    @property
    def open(self) -> int:
        """Connections open now (busy and idle)."""
        return self._open

    async def acquire(self, timeout: float) -> Connection:
        """A connection: an idle one if any, else a new one when under the limit.

        Args:
            timeout: Seconds to wait for a free slot and to connect.

        Raises:
            PoolFull: The pool stayed full for ``timeout`` seconds.
            ConnectFailed: Connecting failed or timed out.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._deadlines = Deadlines(loop)
            self._turn_end = TurnEnd(loop)
        deadlines, turn_end = self._deadlines, self._turn_end
        now = loop.time()
        deadline = now + timeout
        while True:
            idle = self._reuse(now)
            if idle is not None:
                return idle
            if self._closed:
                raise ConnectFailed("the gateway is shutting down")
            if self._open < self.limit:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PoolFull(f"all {self.limit} connections busy")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            # Not asyncio.wait_for: on Python 3.11 it may swallow a
            # cancellation that races the wake-up, and the slot is lost.
            timer = loop.call_later(remaining, _expire, waiter)
            try:
                await waiter
            except (TimeoutError, asyncio.CancelledError) as exc:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Woken and given up at once: pass the free slot on.
                    self._notify()
                if isinstance(exc, TimeoutError):
                    raise PoolFull(f"all {self.limit} connections busy") from None
                raise
            finally:
                timer.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            now = loop.time()
        self._open += 1
        try:
            remaining = max(deadline - loop.time(), 0.001)
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: Connection(loop, deadlines, turn_end),
                    self.target.host,
                    self.target.port,
                    ssl=self._ssl,
                    server_hostname=self.target.host if self._ssl else None,
                ),
                remaining,
            )
        except TimeoutError:
            self._lost()
            raise ConnectFailed(f"connect timed out after {timeout:g}s") from None
        except OSError as exc:
            self._lost()
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._lost()
            raise
        return conn

    def reuse(self) -> Connection | None:
        """An idle connection still usable, at once (``None``: :meth:`acquire` one)."""
        if not self._idle or self._closed or self._loop is None:
            return None
        return self._reuse(self._loop.time())

    def _reuse(self, now: float) -> Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive:
                return conn
            conn.close()
            self._open -= 1
        return None

    def release(self, conn: Connection) -> None:
        """Give a connection back: kept if its exchange ended cleanly, else closed."""
        if conn.reusable and not self._closed:
            conn.idle_since = (self._loop or asyncio.get_running_loop()).time()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._notify()

    def _lost(self) -> None:
        self._open -= 1
        self._notify()

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def drop_idle(self) -> None:
        """Close every idle connection (the upstream was seen closing them)."""
        while self._idle:
            self._idle.pop().close()
            self._open -= 1
        self._notify()

    def close(self) -> None:
        """Close idle connections; busy ones close when released."""
        self._closed = True
        self.drop_idle()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
