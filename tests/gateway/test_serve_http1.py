"""serve's HTTP/1.1 server (``gateway._http1``) and lifespan runner on real loopback sockets.

Each test runs an :class:`HttpServer` on an event loop in a thread (the
default loop and uvloop) and talks to it with raw sockets or ``http.client``,
so every byte on the wire is checked. Deadlines are monkeypatched small; every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvloop

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy, _http1
from selectors_lib.gateway._asgi_lifespan import Lifespan, LifespanError
from selectors_lib.gateway._http1 import HttpServer

App = Callable[[Any, Any, Any], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


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


def test_keep_alive_serves_several_requests_on_one_connection(loop_kind: str) -> None:
    with running(echo, loop_kind) as run:
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
        ports = set()
        for i in range(3):
            conn.request("POST", f"/n/{i}", body=b"x" * i)
            response = conn.getresponse()
            info = json.loads(response.read())
            assert (info["path"], info["size"]) == (f"/n/{i}", i)
            assert response.getheader("connection") is None
            ports.add(info["port"])
        conn.close()
        assert len(ports) == 1


@pytest.mark.parametrize(
    ("version", "connection", "kept"),
    [
        ("1.1", "", True),
        ("1.1", "Connection: close\r\n", False),
        ("1.0", "", False),
        ("1.0", "Connection: keep-alive\r\n", True),
    ],
)
def test_connection_persistence_follows_rfc_9112(
    loop_kind: str, version: str, connection: str, kept: bool
) -> None:
    request = f"GET /a HTTP/{version}\r\nHost: h\r\n{connection}\r\n".encode()
    with running(echo, loop_kind) as run:
        reader, (status, headers, _) = exchange(run, request)
        assert status == 200
        if not kept:
            assert headers["connection"] == "close"
            assert reader.closed()
            return
        assert headers.get("connection") == (None if version == "1.1" else "keep-alive")
        reader.sock.sendall(request)
        assert reader.response()[0] == 200


def test_pipelined_requests_answer_in_order_each_with_its_body(loop_kind: str) -> None:
    requests = b"".join(
        b"POST /p/%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (i, len(body), body)
        for i, body in enumerate([b"first", b"", b"third body"])
    )
    with running(echo, loop_kind) as run:
        sock = run.connect()
        sock.sendall(requests)
        reader = Reader(sock)
        seen = [json.loads(reader.response()[2]) for _ in range(3)]
    assert [(s["path"], s["body"]) for s in seen] == [
        ("/p/0", "first"),
        ("/p/1", ""),
        ("/p/2", "third body"),
    ]


def test_chunked_request_body_reaches_the_app(loop_kind: str) -> None:
    request = (
        b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n"
    )
    with running(echo, loop_kind) as run:
        reader, (status, _, body) = exchange(run, request + request)
        assert (status, json.loads(body)["body"]) == (200, "hello world")
        assert json.loads(reader.response()[2])["body"] == "hello world"


def test_large_body_pauses_reading_until_the_app_reads(loop_kind: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        conn = receive.__self__.conn
        for _ in range(500):  # the app does not read until the server stops reading
            if conn._read_paused:
                break
            await asyncio.sleep(0.01)
        seen["paused"] = conn._read_paused
        seen["buffered"] = receive.__self__.body_size
        body = await read_body(receive)
        await answer(send, 200, hashlib.sha256(body).hexdigest().encode())

    with running(app, loop_kind) as run:
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=10)
        conn.request("PUT", "/big", body=payload)
        response = conn.getresponse()
        assert response.read() == hashlib.sha256(payload).hexdigest().encode()
        conn.close()
    assert seen["paused"]
    # Read-ahead plus at most one socket read beyond it, never the whole body.
    assert seen["buffered"] <= _http1.BODY_READ_AHEAD + 256 * 1024 < len(payload)


def test_expect_100_continue_only_when_the_app_reads(loop_kind: str) -> None:
    may_read = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/refuse":
            await answer(send, 417, b"no")
            return
        await asyncio.to_thread(may_read.wait, 5)
        await answer(send, 200, await read_body(receive))

    head = b"POST %s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    with running(app, loop_kind) as run:
        sock = run.connect()
        sock.sendall(head % b"/read")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        sock.settimeout(5)
        may_read.set()
        reader = Reader(sock)
        assert reader.response() == (100, {}, b"")
        sock.sendall(b"hello")
        assert reader.response()[::2] == (200, b"hello")

        # Answered without reading: no 100, and the unread body ends the connection.
        reader, (status, headers, _) = exchange(run, head % b"/refuse")
        assert (status, headers["connection"]) == (417, "close")
        assert reader.closed()


def test_an_early_answer_reaches_a_client_still_sending_its_body(loop_kind: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await answer(send, 413, b"too big")

    body = b"x" * (4 << 20)
    request = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body)
    with running(app, loop_kind) as run:
        for _ in range(3):
            # sendall() returns only once the server took the whole body: a
            # close with input unread would reset the connection, answer and all.
            reader, (status, headers, got) = exchange(run, request + body)
            assert (status, headers["connection"], got) == (413, "close", b"too big")
            assert reader.closed()


def stream_app(chunks: list[bytes], headers: list[Any] | None = None, status: int = 200) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def test_response_framing(loop_kind: str) -> None:
    with running(stream_app([b"ab", b"cde"], [(b"content-length", b"5")]), loop_kind) as run:
        reader, (_, headers, body) = exchange(run, GET)
        assert (headers["content-length"], body) == ("5", b"abcde")
        assert "transfer-encoding" not in headers
        reader.sock.sendall(GET)  # kept alive
        assert reader.response()[2] == b"abcde"

    with running(echo, loop_kind) as run:
        _, (_, headers, body) = exchange(run, GET)
        assert headers["content-length"] == str(len(body))

    with running(stream_app([b"ab", b"", b"cde"]), loop_kind) as run:
        reader, (_, headers, body) = exchange(run, GET)
        assert (headers["transfer-encoding"], body) == ("chunked", b"abcde")
        assert "content-length" not in headers
        reader.sock.sendall(GET)
        assert reader.response()[2] == b"abcde"

        reader, (_, headers, body) = exchange(
            run, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        )
        assert (headers["connection"], body) == ("close", b"abcde")
        assert "transfer-encoding" not in headers
        assert "content-length" not in headers


def test_head_response_has_no_body_bytes(loop_kind: str) -> None:
    for app in (echo, stream_app([b"abc"])):
        with running(app, loop_kind) as run:
            sock = run.connect()
            sock.sendall(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + GET)
            reader = Reader(sock)
            status, headers, _ = reader.response(head_only=True)
            assert status == 200
            assert headers.keys() & {"content-length", "transfer-encoding"}
            assert reader.buf == b"" or reader.buf.startswith(b"HTTP/1.1 200")
            assert reader.response()[0] == 200


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_carry_no_body_and_no_framing(loop_kind: str, status: int) -> None:
    with running(stream_app([b"ignored"], status=status), loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET + GET)
        reader = Reader(sock)
        _, headers, _ = reader.response()
        assert not headers.keys() & {"content-length", "transfer-encoding"}
        assert reader.response()[0] == status  # nothing between the two heads


def test_app_set_transfer_encoding_is_framed_by_the_server(loop_kind: str) -> None:
    headers = [(b"Transfer-Encoding", b"chunked"), (b"content-length", b"99")]
    with running(stream_app([b"abc"], headers), loop_kind) as run:
        reader, (_, got, body) = exchange(run, GET)
        assert (got["transfer-encoding"], body) == ("chunked", b"abc")
        # RFC 9112 section 6.2: never Content-Length beside Transfer-Encoding.
        assert "content-length" not in got
        reader.sock.sendall(GET)
        assert reader.response()[2] == b"abc"

        # An HTTP/1.0 client cannot read chunks: the body ends with the connection.
        reader, (_, got, body) = exchange(run, b"GET / HTTP/1.0\r\n\r\n")
        assert "transfer-encoding" not in got
        assert body == b"abc"


@pytest.mark.parametrize(
    ("chunks", "length"),
    [([b"abc"], b"10"), ([b"abc", b"defg"], b"5"), ([], b"-1"), ([], b"1_0")],
)
def test_a_body_that_breaks_its_content_length_ends_the_connection(
    loop_kind: str, chunks: list[bytes], length: bytes
) -> None:
    with running(stream_app(chunks, [(b"content-length", length)]), loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET + GET)
        reader = Reader(sock)
        if not chunks:  # not a number: nothing was written, so a 500
            assert reader.response()[0] == 500
            assert reader.closed()
            return
        with pytest.raises(EOFError):
            reader.response()  # the client sees a truncated answer, never a next one
        assert not reader.raw.endswith(b"defg")


def test_a_final_body_longer_than_its_content_length_answers_500(loop_kind: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await answer(send, 200, b"abcdef", [(b"content-length", b"3")])

    with running(app, loop_kind) as run:
        reader, (status, _, body) = exchange(run, GET + GET)
        assert (status, body) == (500, b"internal server error\n")
        assert reader.closed()


def test_client_gone_mid_response_makes_receive_return_disconnect(loop_kind: str) -> None:
    got: list[Any] = []
    done = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/body":
            got.append(await receive())  # the first part of the body
        else:
            await read_body(receive)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        got.append(await receive())
        done.set()

    with running(app, loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET)
        assert b"part" in sock.recv(1000)
        sock.close()
        assert done.wait(5)
        assert got == [{"type": "http.disconnect"}]

        done.clear()
        sock = run.connect()
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789")
        for _ in range(100):
            if got[1:]:
                break
            time.sleep(0.02)
        sock.close()
        assert done.wait(5)
    assert got[1]["body"] == b"0123456789"
    assert got[1]["more_body"]
    assert got[2] == {"type": "http.disconnect"}


def test_a_head_over_the_limit_gets_431_and_close(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "MAX_REQUEST_HEAD", 4096)
    with running(echo, loop_kind) as run:
        fits = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n" % (b"a" * 3000)
        assert exchange(run, fits)[1][0] == 200
        # A body far over the head limit, in the packet that ends the head, is fine.
        big = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 20000\r\n\r\n" + b"b" * 20000
        assert exchange(run, big)[1][0] == 200
        over = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 1\r\n" * 900
        reader, (status, headers, _) = exchange(run, over)
        assert (status, headers["connection"]) == (431, "close")
        assert reader.closed()


def test_a_trickling_head_gets_408_and_close(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "HEAD_TIMEOUT", 0.5)
    with running(echo, loop_kind) as run:
        sock = run.connect()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        sock.settimeout(0.2)
        answer = b""
        for _ in range(25):  # a byte every 0.2 s, 5 s at most
            try:
                sock.sendall(b"X")
                data = sock.recv(1000)
            except TimeoutError:
                continue
            except ConnectionError:
                break
            answer += data
            if not data:
                break
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert answer.endswith(b"\r\n\r\n" + _http1._HEAD_TIMEOUT.partition(b"\r\n\r\n")[2])


def test_idle_keep_alive_connections_close_after_the_deadline(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "KEEPALIVE_TIMEOUT", 0.5)
    with running(echo, loop_kind) as run:
        reader, (status, _, _) = exchange(run, GET)
        assert status == 200
        assert reader.closed(timeout=5)

        # Empty lines between requests (RFC 9112 section 2.2) do not keep it open.
        sock = run.connect()
        sock.settimeout(0.2)
        for _ in range(25):  # 5 s at most
            try:
                sock.sendall(b"\r\n")
                assert sock.recv(10) == b""  # closed, and answered nothing
                break
            except TimeoutError:
                continue
            except ConnectionError:
                break
        else:
            raise AssertionError("the connection stayed open")


BAD_REQUESTS = {
    "garbage": b"GARBAGE\r\n\r\n",
    "request-line": b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
    "cl-and-te": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    # Found after the head (the app was called): still a 400, the app gets no body.
    "te-not-chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    "bad-chunk": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
}
WEBSOCKET = (
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.mark.parametrize("name", [*BAD_REQUESTS, "websocket"])
def test_requests_the_app_cannot_serve(loop_kind: str, name: str) -> None:
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(await receive())
        await answer(send, 200, b"")

    with running(app, loop_kind) as run:
        reader, (status, headers, _) = exchange(run, BAD_REQUESTS.get(name, WEBSOCKET))
        assert (status, headers["connection"]) == (501 if name == "websocket" else 400, "close")
        assert reader.closed()
    assert calls in ([], [{"type": "http.disconnect"}])


@pytest.mark.parametrize(
    ("after", "answered"),
    [
        (b"GARBAGE\r\n\r\n", ["/first"]),
        (b"GET /second HTTP/1.1\r\nHost: h\r\n\r\nGARBAGE\r\n\r\n", ["/first", "/second"]),
        (b"POST /third HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", ["/first"]),
        (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 300, ["/first"]),  # over MAX_REQUEST_HEAD
        (b"GET / HTTP/1.1\r\n", ["/first"]),  # times out (HEAD_TIMEOUT)
    ],
)
def test_a_bad_request_behind_ones_in_flight_lets_them_finish(
    loop_kind: str, after: bytes, answered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr(_http1, "MAX_REQUEST_HEAD", 1024)
    release, entered = threading.Event(), threading.Event()
    paths: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        entered.set()
        await asyncio.to_thread(release.wait, 5)
        await answer(send, 200, scope["path"].encode())

    with running(app, loop_kind) as run:
        sock = run.connect()
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n" + after)
        assert entered.wait(5)
        (conn,) = run.server.connections
        for _ in range(500):  # until the server gave up on the bad request
            if conn._ignore_input:
                break
            time.sleep(0.01)
        release.set()
        reader = Reader(sock)
        got = [reader.response() for _ in answered]
        assert reader.closed()
    assert [body.decode() for _, _, body in got] == answered == paths
    assert [headers.get("connection") for _, headers, _ in got][-1] == "close"


def test_h2c_upgrade_is_served_as_http11(loop_kind: str) -> None:
    request = (
        b"GET /u HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    with running(echo, loop_kind) as run:
        reader, (status, headers, body) = exchange(run, request)
        assert (status, json.loads(body)["path"]) == (200, "/u")
        assert "upgrade" not in headers
        # What follows the head is not parsed: the connection ends, and says so.
        assert headers["connection"] == "close"
        assert reader.closed()


def failing_app(where: str) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if where == "before":
            raise RuntimeError("before start (on purpose)")
        if where == "bad-header":
            await answer(send, 200, b"x", [(b"x-a", b"1\r\nSet-Cookie: injected=1")])
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if where == "after-start":
            raise RuntimeError("after start (on purpose)")
        if where == "unfinished-start":
            return
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        if where == "mid-body":
            raise RuntimeError("mid-body (on purpose)")

    return app


@pytest.mark.parametrize("where", ["before", "after-start", "unfinished-start", "bad-header"])
def test_app_failures_before_any_byte_answer_500_and_close(loop_kind: str, where: str) -> None:
    with running(failing_app(where), loop_kind) as run:
        reader, (status, headers, body) = exchange(run, GET)
        assert (status, headers["connection"]) == (500, "close")
        assert b"injected" not in body
        assert "set-cookie" not in headers
        assert reader.closed()


@pytest.mark.parametrize("where", ["mid-body", "unfinished-body"])
def test_app_failures_mid_body_close_without_a_clean_end(loop_kind: str, where: str) -> None:
    with running(failing_app(where), loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET)
        reader = Reader(sock)
        with pytest.raises(EOFError):
            reader.response()
        assert reader.raw.endswith(b"\r\n\r\n7\r\npartial\r\n")


def test_absolute_form_target_keeps_its_authority_in_raw_path(loop_kind: str) -> None:
    request = b"GET http://other.example/x/%41?q=1 HTTP/1.1\r\nHost: gw\r\n\r\n"
    with running(echo, loop_kind) as run:
        info = json.loads(exchange(run, request)[1][2])
    assert (info["raw_path"], info["path"], info["query"]) == (
        "http://other.example/x/%41",
        "/x/A",
        "q=1",
    )


def test_the_proxy_refuses_an_absolute_form_target_naming_another_host(
    loop_kind: str, backends: dict[str, str]
) -> None:
    router = load_router(
        {
            "endpoints": {"up": backends["ro-2"]},
            "routes": [{"name": "main", "default": True, "target": "up"}],
        }
    )
    proxy = SelectorsProxy(router, timeout=5)
    with running(proxy, loop_kind, lifespan=True) as run:
        _, (status, _, _) = exchange(
            run, b"GET http://other.example/x HTTP/1.1\r\nHost: gw\r\n\r\n"
        )
        assert status == 400
        same = b"GET http://gw/x HTTP/1.1\r\nHost: gw\r\n\r\n"
        _, (status, _, body) = exchange(run, same)
        assert status == 200
        assert b"ro-2" in body


def test_drain_finishes_requests_in_flight_and_refuses_new_ones(loop_kind: str) -> None:
    release, entered = threading.Event(), threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await asyncio.to_thread(release.wait, 5)
        await answer(send, 200, b"done")

    with running(app, loop_kind) as run:
        idle = run.connect()
        idle.sendall(GET)
        idle_reader = Reader(idle)
        assert idle_reader.response()[2] == b"done"
        busy = run.connect()
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        assert entered.wait(5)
        run.call(run.server.close)
        draining = asyncio.run_coroutine_threadsafe(run.server.drain(10), run.loop)
        assert idle_reader.closed(timeout=2)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", run.port), timeout=2)
        assert not draining.done()
        release.set()
        reader = Reader(busy)
        status, headers, body = reader.response()
        assert (status, headers["connection"], body) == (200, "close", b"done")
        assert reader.closed()
        assert draining.result(5) is True


def test_force_cancels_what_still_runs(loop_kind: str) -> None:
    cancelled, entered = threading.Event(), threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with running(app, loop_kind) as run:
        sock = run.connect()
        sock.sendall(GET)
        assert entered.wait(5)
        run.call(run.server.close)
        draining = asyncio.run_coroutine_threadsafe(run.server.drain(30), run.loop)
        run.call(run.server.force)
        assert draining.result(5) is False
        assert cancelled.is_set()
        assert Reader(sock).closed()


def lifespan_app(events: list[str], startup: str = "complete", shutdown: str = "ok") -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await echo(scope, receive, send)
            return
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                if startup == "raise":
                    raise RuntimeError("startup raised (on purpose)")
                if startup == "failed":
                    await send({"type": "lifespan.startup.failed", "message": "no db"})
                    return
                scope["state"]["pool"] = "ready"
                await send({"type": "lifespan.startup.complete"})
            else:
                if shutdown == "raise":
                    raise RuntimeError("shutdown raised (on purpose)")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def test_lifespan_startup_state_reaches_requests_and_shutdown_runs_once(loop_kind: str) -> None:
    events: list[str] = []
    with running(lifespan_app(events), loop_kind, lifespan=True) as run:
        assert json.loads(exchange(run, GET)[1][2])["state"] == ["pool"]
        assert run.lifespan is not None
        run.run(run.lifespan.shutdown())
        assert events == ["lifespan.startup", "lifespan.shutdown"]
    # The server stops it a second time: nothing is sent again.
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize("startup", ["failed", "raise"])
def test_lifespan_startup_failure_raises(startup: str) -> None:
    async def main() -> None:
        lifespan = Lifespan(lifespan_app([], startup=startup))
        with pytest.raises(LifespanError, match="no db" if startup == "failed" else "raised"):
            await lifespan.startup()
        await lifespan.shutdown()  # nothing to shut down, and no error

    asyncio.run(main())


def test_an_app_without_lifespan_starts_and_stops() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])  # returns: it does not speak the protocol

    async def main() -> None:
        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())
    assert calls == ["lifespan"]


def test_a_failing_lifespan_shutdown_does_not_raise() -> None:
    events: list[str] = []

    async def main() -> None:
        lifespan = Lifespan(lifespan_app(events, shutdown="raise"))
        await lifespan.startup()
        await lifespan.shutdown()  # logged: serve still closes its listeners after

    asyncio.run(main())
    assert events == ["lifespan.startup", "lifespan.shutdown"]
