"""serve's HTTP/1.1 server on real loopback sockets: persistence, pipelining, bodies, framing.

Each test runs :class:`~selectors_lib.gateway._http1.HttpServer` on the
default loop and on uvloop and checks the bytes on the wire with raw sockets
or ``http.client``.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import threading
import time
from typing import Any

import pytest
from http1_support import GET, Reader, answer, echo, exchange, read_body, running, stream_app

from selectors_lib.gateway import _http1


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

        # HTTP/1.0 knows no 100 (RFC 9110 section 10.1.1): the app reads, nothing comes.
        sock = run.connect()
        sock.sendall(head.replace(b"HTTP/1.1", b"HTTP/1.0") % b"/read")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        sock.settimeout(5)
        sock.sendall(b"howdy")
        assert Reader(sock).response()[::2] == (200, b"howdy")


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
