"""serve's HTTP/1.1 server on real loopback sockets: limits, bad requests, failing apps, targets.

Deadlines and limits are the module's constants, monkeypatched small.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from http1_support import GET, App, Reader, answer, echo, exchange, running

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy, _http1


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


@pytest.mark.parametrize("before", [b"x" * 100_000, b"GET /0 HTTP/1.1\r\nHost: h\r\n\r\n" * 3000])
def test_a_head_is_not_charged_for_what_came_before_it_in_one_read(
    loop_kind: str, before: bytes
) -> None:
    body = before.startswith(b"x")
    first = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" if body else b""
    with running(echo, loop_kind) as run:
        sock = run.connect()
        # A big body (or 64 KiB of pipelined requests) then a head's first line, at once.
        sock.sendall(first + before + b"GET /last HTTP/1.1\r\n")
        reader = Reader(sock)
        for _ in range(1 if body else 3000):
            assert reader.response()[0] == 200
        sock.sendall(b"Host: h\r\n\r\n")
        status, _, answer = reader.response()
        assert (status, json.loads(answer)["path"]) == (200, "/last")


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
def test_requests_the_app_cannot_serve(
    loop_kind: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "LINGER_TIMEOUT", 0.2)
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(await receive())
        raise RuntimeError("no body (on purpose)")

    with running(app, loop_kind) as run:
        reader, (status, headers, _) = exchange(run, BAD_REQUESTS.get(name, WEBSOCKET))
        assert (status, headers["connection"]) == (501 if name == "websocket" else 400, "close")
        assert reader.closed()
        # The client never closes: the server's lingering ends at LINGER_TIMEOUT.
        for _ in range(250):
            if not run.server.connections:
                break
            time.sleep(0.02)
        assert not run.server.connections
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


def test_an_app_failing_after_its_answer_leaves_the_connection_open(loop_kind: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await answer(send, 200, scope["path"].encode())
        raise RuntimeError("after the answer (on purpose)")

    with running(app, loop_kind) as run:
        sock = run.connect()
        reader = Reader(sock)
        for path in (b"/one", b"/two"):
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path)
            status, headers, body = reader.response()
            assert (status, body) == (200, path)
            assert "connection" not in headers


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


def test_answers_wait_for_the_end_of_the_loops_turn_but_never_past_the_batch_size() -> None:
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str) -> Any:
            return ("127.0.0.1", 1)

    async def scenario() -> None:
        server = _http1.HttpServer(echo)
        conn = _http1._Connection(server)
        conn.connection_made(Transport())
        conn.write(b"first answer")
        conn.write(b"second answer")
        assert written == []  # held until the loop's turn ends...
        await asyncio.sleep(0)
        assert written == [b"first answer" + b"second answer"]  # ...then one write, in order
        written.clear()
        chunk = b"x" * 4096
        for _ in range(4 * _http1.WRITE_BATCH // len(chunk)):  # a streamed body, no pause
            conn.write(chunk)
            assert conn._out_size <= _http1.WRITE_BATCH  # never piles up in memory
        await asyncio.sleep(0)
        assert b"".join(written) == chunk * (4 * _http1.WRITE_BATCH // len(chunk))

    asyncio.run(scenario())
