"""One attempt: a connection from the endpoint's pool, the request written, the head read.

Failures come out as :class:`AttemptFailed` with the kind the retry policy
judges (:class:`~selectors_lib.gateway._retry.Failure`). The keep-alive race,
an idle connection the upstream closed just as it was reused, is retried here
once on a fresh connection and is not a failure of the replica: for any
method when the write itself failed (nothing of the request left), else for
idempotent ones. The attempt ends with the response head: it goes to the
client at once, and from then on nothing is retried.
"""

from __future__ import annotations

from ._body import ClientStalled, RequestBody
from ._pool import ConnectFailed, EndpointPool, PoolFull
from ._retry import IDEMPOTENT, Failure
from ._settings import RouteSettings
from ._upstream import ClientGone, Connection, UpstreamClosed, UpstreamProtocolError

__all__ = ["AttemptFailed", "exchange"]

Headers = list[tuple[bytes, bytes]]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Seconds an upstream may take to answer before the proxy listens for the
# client's disconnect (most answers come sooner and never pay for it).
_WATCH_AFTER = 0.05


class AttemptFailed(Exception):
    """An attempt failed; ``kind`` is a :class:`Failure` value.

    Args:
        kind: The failure's kind.
        detail: What happened, for the log.
        count: Whether it counts against the replica (outlier detection).
        full: The endpoint's pool stayed full (answered ``503``).
    """

    def __init__(self, kind: str, detail: str, *, count: bool = True, full: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind
        self.count = count
        self.full = full


async def exchange(
    pool: EndpointPool,
    path: bytes,
    method: str,
    headers: Headers,
    body: RequestBody,
    settings: RouteSettings,
) -> Connection:
    """Run one attempt and return the connection with the response head read.

    Raises:
        AttemptFailed: The attempt failed before any byte reached the client.
        ClientGone: The client disconnected meanwhile.
        ClientStalled: The client stopped sending its streamed body.
    """
    stale_retried = False
    while True:
        # An idle connection without a coroutine: the usual case, per request.
        conn = pool.reuse()
        if conn is None:
            try:
                conn = await pool.acquire(settings.connect_timeout)
            except PoolFull as exc:
                raise AttemptFailed(Failure.NOT_SENT, str(exc), count=False, full=True) from exc
            except ConnectFailed as exc:
                raise AttemptFailed(Failure.NOT_SENT, str(exc)) from exc
        reused = conn.uses > 0
        try:
            head = _request_head(pool, method, path, headers)
            if body.streaming:
                await _send_streamed(conn, head, method, body, settings.idle_timeout)
            else:
                _send_whole(conn, head, method, body)
            await _response_head(conn, body, settings.first_byte_timeout)
        except (ClientGone, ClientStalled):
            pool.release(conn)
            raise
        except TimeoutError as exc:
            pool.release(conn)
            kind = Failure.TIMEOUT if not conn.received else Failure.PROTOCOL
            detail = f"no response within {settings.first_byte_timeout:g}s"
            raise AttemptFailed(kind, detail) from exc
        except UpstreamProtocolError as exc:
            pool.release(conn)
            raise AttemptFailed(Failure.PROTOCOL, str(exc)) from exc
        except (UpstreamClosed, OSError) as exc:
            pool.release(conn)
            detail = str(exc) or type(exc).__name__
            if conn.received:
                # Part of a head, then the end: nothing reached the client yet.
                raise AttemptFailed(Failure.PROTOCOL, detail) from exc
            if (
                reused
                and not stale_retried
                and body.replayable
                and (conn.unsent or method in IDEMPOTENT)
            ):
                # The keep-alive race: the upstream closed an idle
                # connection as we reused it (or died with it). Its other
                # idle ones are as suspect; a fresh connection says whether
                # it is down, and is not a failure of the replica yet.
                stale_retried = True
                pool.drop_idle()
                continue
            kind = Failure.NOT_SENT if conn.unsent else Failure.RESET
            raise AttemptFailed(kind, detail) from exc
        except BaseException:
            pool.release(conn)
            raise
        return conn


def _request_head(pool: EndpointPool, method: str, path: bytes, headers: Headers) -> list[bytes]:
    """The request line, ``Host`` and the headers, without framing or the final CRLF."""
    parts = [method.encode("ascii"), b" ", path, b" HTTP/1.1\r\nhost: ", pool.target.host_header]
    for name, value in headers:
        parts += (b"\r\n", name, b": ", value)
    return parts


def _send_whole(conn: Connection, parts: list[bytes], method: str, body: RequestBody) -> None:
    """Write a request whose body was read whole (or that has none), in one write.

    Args:
        conn: The connection.
        parts: The head so far (:func:`_request_head`); framing is added here.
        method: The request method.
        body: The request body.
    """
    data = body.data
    if data or method in _BODY_METHODS:
        parts += (b"\r\ncontent-length: ", str(len(data)).encode("ascii"))
    parts.append(b"\r\n\r\n")
    conn.start(b"".join(parts), data, head_only=method == "HEAD")


async def _send_streamed(
    conn: Connection, parts: list[bytes], method: str, body: RequestBody, stall: float
) -> None:
    """Write the head, then the body as it comes (the client's length, or chunked)."""
    length = body.declared_length
    chunked = length is None
    if chunked:
        parts.append(b"\r\ntransfer-encoding: chunked")
    else:
        parts += (b"\r\ncontent-length: ", length or b"0")
    parts.append(b"\r\n\r\n")
    conn.start(b"".join(parts), b"", head_only=method == "HEAD", more_body=True)
    try:
        async for chunk in body.chunks(stall):
            if chunked:
                await conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk), stall)
            else:
                await conn.write(chunk, stall)
        if chunked:
            await conn.write(b"0\r\n\r\n", stall)
    except (TimeoutError, OSError):
        if not conn.headers_done:
            raise
        # The upstream answered before it took the whole body (a 413, say)
        # and stopped reading: its answer is relayed, the connection not reused.
        return
    conn.end_request()


async def _response_head(conn: Connection, body: RequestBody, timeout: float) -> None:
    # Most answers come at once; only a request still waiting after a
    # moment pays for a listener, so a client that leaves while its
    # upstream is slow frees the connection at once, not at the timeout.
    early = min(_WATCH_AFTER, timeout)
    try:
        await conn.response_head(early)
        return
    except TimeoutError:
        if timeout <= early:
            raise
    body.watch(conn)
    await conn.response_head(timeout - early)
