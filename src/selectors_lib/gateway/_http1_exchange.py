"""One request on serve's HTTP/1.1 server: its ASGI ``receive`` and ``send``.

:class:`Exchange` hands the app the request body as it arrives and writes
its answer: the head and a final body in one write, bodies framed by
``Content-Length`` when known, else chunked (HTTP/1.0: until close), and a
body held to the length the app declared. The connection it belongs to
(:mod:`._http1`) parses requests and decides what happens after the answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from selectors_lib._errors import SelectorsError

if TYPE_CHECKING:
    from ._http1 import _Connection

__all__ = ["Exchange", "ResponseError", "plain"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_log = logging.getLogger("selectors_lib.serve")
_DISCONNECT: Message = {"type": "http.disconnect"}
_NO_BODY_STATUS = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINE = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus
}
# Header names are tokens (RFC 9110 section 5.6.2); values hold no CR, LF or NUL.
_NOT_TOKEN = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# What a response header name means to the framing: nothing (0), or one of these.
_LENGTH, _CHUNKED, _CONNECTION = 1, 2, 3
_FRAMING = {b"content-length": _LENGTH, b"transfer-encoding": _CHUNKED, b"connection": _CONNECTION}
# Header names seen valid, with their kind: few distinct ones, checked once each.
_NAMES: dict[bytes, int] = {}


def _name_kind(name: bytes) -> int:
    if not name or _NOT_TOKEN.search(name) is not None:
        raise ResponseError(f"invalid response header name {name!r}")
    kind = _FRAMING.get(name.lower(), 0)
    if len(_NAMES) < 4096:
        _NAMES[name] = kind
    return kind


def plain(status: int, text: bytes) -> bytes:
    return (
        _STATUS_LINE[status] + b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(text), text)
    )


_BAD_REQUEST = plain(400, b"bad request: malformed HTTP\n")
_HEAD_TOO_LARGE = plain(431, b"request head too large\n")
_HEAD_TIMEOUT = plain(408, b"request timeout: the request head did not arrive in time\n")
_NO_WEBSOCKET = plain(501, b"websocket upgrades are not proxied by this gateway\n")
_SERVER_ERROR = plain(500, b"internal server error\n")


class ResponseError(SelectorsError, RuntimeError):
    """The app sent ASGI messages out of order, or an invalid header."""


def _head(
    status: int, headers: Any, body_length: int | None, http11: bool, keep_alive: bool
) -> tuple[bytes, bool, bool, int]:
    """Serialize a response head.

    Args:
        status: The status code.
        headers: The app's header pairs.
        body_length: The whole body's length when the first body message is
            also the last, else ``None``.
        http11: The request was HTTP/1.1 (else 1.0: no chunking).
        keep_alive: The connection may stay open after this response.

    Returns:
        The head, whether to chunk the body, keep-alive, and the app's
        ``Content-Length`` (-1 if it set none).

    Raises:
        ResponseError: An invalid status, header name or header value, or a
            ``Content-Length`` that is not a number.
    """
    line = _STATUS_LINE.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ResponseError(f"invalid status {status!r}")
        line = b"HTTP/1.1 %d \r\n" % status
    parts = [line]
    framed = chunked = False
    length = -1
    lines = 1  # the status line
    for name, value in headers:
        kind = _NAMES.get(name)
        if kind is None:
            kind = _name_kind(name)
        if kind:
            if kind == _LENGTH:
                if not value.isdigit():
                    raise ResponseError(f"invalid content-length {value!r}")
                framed = True
                length = int(value)
            elif kind == _CHUNKED:
                # The app asks for chunking; this server frames the body itself.
                chunked = framed = True
                continue
            else:
                # Hop-by-hop: this server says what it does with the connection.
                if b"close" in value.lower():
                    keep_alive = False
                continue
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    if status in _NO_BODY_STATUS or status < 200:
        chunked = False
    elif chunked:
        if length >= 0:
            # Both framings: chunking wins and the length goes (RFC 9112 section 6.3).
            kept = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            return _head(status, kept, body_length, http11, keep_alive)
        if not http11:
            chunked = keep_alive = False  # HTTP/1.0 reads no chunks: close-delimited
    elif not framed:
        if body_length is not None:
            parts.append(b"content-length: %d\r\n" % body_length)
        elif http11:
            chunked = True
        else:
            keep_alive = False  # HTTP/1.0: the body ends when the connection does
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n\r\n")
    elif not http11:
        parts.append(b"connection: keep-alive\r\n\r\n")
    else:
        parts.append(b"\r\n")
    head = b"".join(parts)
    # Each line written ends in CRLF, and no other CR or LF may appear: one
    # count over the whole head instead of two searches per value. The
    # parts after the headers' are whole lines, the last one also the blank.
    lines += len(parts) - 1 - 4 * (lines - 1) + (1 if len(parts[-1]) > 2 else 0)
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        bad = next(n for n, v in headers if b"\r" in v or b"\n" in v)
        raise ResponseError(f"invalid value of response header {bad!r}")
    return head, chunked, keep_alive, length


class Exchange:
    """One request and its response: the ASGI ``receive`` and ``send`` of one call."""

    __slots__ = (
        "body",
        "body_done",
        "body_size",
        "chunked",
        "complete",
        "conn",
        "delivered",
        "expect_continue",
        "head_only",
        "headers",
        "http11",
        "keep_alive",
        "remaining",
        "scope",
        "started",
        "status",
        "waiter",
    )

    def __init__(self, conn: _Connection, scope: Scope, keep_alive: bool, expect: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.body: list[bytes] = []
        self.body_size = 0
        self.body_done = False
        self.delivered = False
        self.waiter: asyncio.Future[None] | None = None
        self.keep_alive = keep_alive
        self.expect_continue = expect
        self.http11 = scope["http_version"] == "1.1"
        self.head_only = scope["method"] == "HEAD"
        self.started = self.complete = self.chunked = False
        self.status = 0
        self.headers: Any = ()
        # Body bytes the app's Content-Length still owes (-1: no length to hold it to).
        self.remaining = -1

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        conn = self.conn
        if self.expect_continue:
            self.expect_continue = False
            # Never to an HTTP/1.0 client (RFC 9110 section 10.1.1): it sends its body anyway.
            if not self.body_done and not self.started and not conn.gone and self.http11:
                conn.write(_CONTINUE)
        while not self.body and not self.body_done and not conn.gone:
            await self._wait()
        if conn.gone:
            return _DISCONNECT
        if not self.delivered:
            body = self.body
            data = body[0] if len(body) == 1 else b"".join(body)
            body.clear()
            self.body_size = 0
            more = not self.body_done
            self.delivered = not more
            conn.resume_body()
            return {"type": "http.request", "body": data, "more_body": more}
        # The whole body was delivered: what comes next is the disconnect.
        while not conn.gone and not self.complete:
            await self._wait()
        return _DISCONNECT

    async def _wait(self) -> None:
        waiter = self.waiter = self.conn.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    async def send(self, message: Message) -> None:
        conn = self.conn
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise ResponseError("http.response.start sent twice")
            self.started = True
            self.status = int(message["status"])
            self.headers = message.get("headers") or ()
            # Written with the first body message: one write for a small answer.
            return
        if kind != "http.response.body":
            raise ResponseError(f"unexpected ASGI message {kind!r}")
        if not self.started or self.complete:
            raise ResponseError("http.response.body outside a response")
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if conn.gone:
            self.complete = not more
            return
        if self.headers is not None:
            # A whole answer before the whole request body: the rest of it
            # would be read as the next request, so the connection closes.
            keep_alive = self.keep_alive and (more or self.body_done)
            head, self.chunked, self.keep_alive, length = _head(
                self.status, self.headers, None if more else len(body), self.http11, keep_alive
            )
            if self.head_only or self.status in _NO_BODY_STATUS or self.status < 200:
                out = head
            elif self.chunked:
                out = head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"")
                if not more:
                    out += b"0\r\n\r\n"
            else:
                if length >= 0:
                    self.remaining = length
                    self._count(len(body))
                out = head + body if body else head
            self.headers = None  # written (after _count: a failed check still answers 500)
        elif self.head_only or self.status in _NO_BODY_STATUS:
            out = b""
        elif self.chunked:
            out = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more:
                out += b"0\r\n\r\n"
        else:
            if self.remaining >= 0:
                self._count(len(body))
            out = body
        if out:
            conn.write(out)
        if not more:
            if self.remaining > 0:
                # The client waits for bytes that never come: only a close ends it.
                _log.warning("response body %d bytes short of its content-length", self.remaining)
                self.keep_alive = False
            self.complete = True
            self.wake()
            conn.finished(self)
        elif conn.write_paused:
            await conn.drained()

    def _count(self, size: int) -> None:
        self.remaining -= size
        if self.remaining < 0:
            # Written, the excess would be read as the next response.
            raise ResponseError("response body longer than its content-length")
