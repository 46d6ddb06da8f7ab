"""Helpers for the tests of serve's HTTP/1.1 server: a server on a loop in a thread, raw clients.

:func:`running` serves an ASGI app with :class:`HttpServer` on the default
loop or uvloop in a thread, as serve runs it (its lifespan around it when
asked); :class:`Reader` parses responses off a raw socket, keeping every byte
so a test can check the framing itself. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - the serve extra has it on CPython, not Windows
    uvloop = None  # type: ignore[assignment]

from selectors_lib.gateway._asgi_lifespan import Lifespan
from selectors_lib.gateway._http1 import HttpServer

App = Callable[[Any, Any, Any], Any]
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


class Running:
    """A server on a loop in a thread: its port, and a way to run coroutines on it."""

    def __init__(
        self,
        server: HttpServer,
        loop: asyncio.AbstractEventLoop,
        port: int,
        lifespan: Lifespan | None,
    ) -> None:
        self.server, self.loop, self.port, self.lifespan = server, loop, port, lifespan
        self.sockets: list[socket.socket] = []

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any]) -> None:
        async def call() -> None:
            fn()

        self.run(call())

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sockets.append(sock)
        return sock


@contextmanager
def running(app: App, loop_kind: str, lifespan: bool = False) -> Iterator[Running]:
    """Serve ``app`` (its lifespan around it, as serve runs it, if ``lifespan``)."""
    if loop_kind == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed (serve installs it on CPython, not on Windows)")
    loop = uvloop.new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    life = Lifespan(app) if lifespan else None
    if life is not None:
        asyncio.run_coroutine_threadsafe(life.startup(), loop).result(10)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    server = HttpServer(app, life.state if life is not None else None)
    asyncio.run_coroutine_threadsafe(server.start(sock), loop).result(10)
    run = Running(server, loop, port, life)
    try:
        yield run
    finally:
        for client in run.sockets:
            client.close()

        async def stop() -> None:
            server.close()
            await server.drain(1.0)
            if life is not None:
                await life.shutdown()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Reader:
    """Reads HTTP/1.1 responses off a socket, keeping the raw bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.raw = b""

    def _more(self) -> bytes:
        data = self.sock.recv(65536)
        self.buf += data
        self.raw += data
        return data

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buf:
            if not self._more():
                raise EOFError(f"closed before {mark!r}: {self.buf!r}")
        head, _, self.buf = self.buf.partition(mark)
        return head

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._more():
                raise EOFError(f"closed after {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One response: status, headers (lower-case names), decoded body."""
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"repeated header {name}"
            headers[name.lower()] = value.strip()
        if head_only or status in (204, 304) or status < 200:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._until(b"\r\n"), 16):
                body += self._take(size)
                assert self._take(2) == b"\r\n"
            assert self._take(2) == b"\r\n"
            return status, headers, body
        if "content-length" in headers:
            return status, headers, self._take(int(headers["content-length"]))
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (nothing more arrives) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self._more() == b"" and self.buf == b""
        except ConnectionResetError:
            return True


def exchange(run: Running, data: bytes) -> tuple[Reader, tuple[int, dict[str, str], bytes]]:
    sock = run.connect()
    sock.sendall(data)
    reader = Reader(sock)
    return reader, reader.response()


async def read_body(receive: Any) -> bytes:
    body: bytes = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        if not message["more_body"]:
            return body


async def answer(send: Any, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answers what it got: method, target, version, client port, body digest and size."""
    body = await read_body(receive)
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "version": scope["http_version"],
        "port": scope["client"][1],
        "size": len(body),
        "sha": hashlib.sha256(body).hexdigest(),
        "body": body[:64].decode("latin-1"),
        "state": sorted(scope["state"]),
    }
    await answer(send, 200, json.dumps(info).encode())


def stream_app(chunks: list[bytes], headers: list[Any] | None = None, status: int = 200) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app
