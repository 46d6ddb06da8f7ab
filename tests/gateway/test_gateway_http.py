"""HTTP message rules through the proxy under uvicorn: framing, targets, Connection, Location."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from adapters_support import serve_asgi
from gateway_backends import Backend, next_head, running

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy


class RawUpstream(socketserver.ThreadingTCPServer):
    """An upstream that answers canned raw bytes by path and keeps what it received."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answers: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = answers
        self.requests: list[bytes] = []
        # Paths answered with one header line that never ends, and those whose
        # flood the gateway cut off.
        self.floods: set[str] = set()
        self.cut: list[str] = []
        # Seconds an early answer's connection stays open, its input unread.
        self.hold = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, RawUpstream)
        sock: socket.socket = self.request
        sock.settimeout(10)
        read = next_head(sock, b"")
        if read is None:
            return
        head, body = read
        early = server.answers.get("early " + head.split(b" ")[1].decode())
        if early is not None:
            # Answered at once, the body never used (as a server refusing it
            # does), then a lingering close as nginx and Apache make it: close()
            # with unread input sends a reset, which may destroy the answer in
            # the peer's buffers before the peer reads it.
            sock.sendall(early)
            time.sleep(server.hold)
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                sock.settimeout(2)
                while sock.recv(65536):
                    pass
            sock.close()
            return
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while not body.endswith(b"0\r\n\r\n"):
                body += sock.recv(65536)
        elif b"content-length:" in lower:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += sock.recv(65536)
        server.requests.append(head + b"\r\n\r\n" + body)
        path = head.split(b" ")[1].decode()
        if path in server.floods:
            try:
                sock.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
                for _ in range(1024):  # 16 MiB, more than any socket buffer holds
                    sock.sendall(b"a" * 16384)
            except OSError:
                server.cut.append(path)
            else:
                sock.recv(1)  # until the gateway gives up (or the socket's timeout)
            sock.close()
            return
        sock.sendall(
            server.answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        )
        sock.close()


@pytest.fixture
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream(
        {
            "/both": b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "/base/redirect": b"HTTP/1.1 302 Found\r\nLocation: {origin}/base/next?a=1\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n",
            "/base/elsewhere": b"HTTP/1.1 302 Found\r\nLocation: http://other.example/base/x\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n",
        }
    )
    origin = server.url.encode()
    server.answers["/base/redirect"] = server.answers["/base/redirect"].replace(b"{origin}", origin)
    with running(server):
        yield server


@pytest.fixture
def gateway(upstream: RawUpstream) -> Iterator[str]:
    router = load_router(
        {
            "endpoints": {"raw": upstream.url, "based": upstream.url + "/base"},
            "routes": [
                {"name": "based", "match": {"application": "based"}, "target": "based"},
                {"name": "raw", "default": True, "target": "raw"},
            ],
            "gateway": {"routes": {"based": {"rewrite_location": True}}},
        }
    )
    with serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as base:
        yield base


def raw_exchange(base: str, request: bytes) -> bytes:
    url = httpx.URL(base)
    assert url.port is not None
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return reply
            reply += chunk
            if b"\r\n\r\n" in reply and b"content-length: " in reply.lower():
                head, _, body = reply.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    return reply


def test_content_length_beside_transfer_encoding_is_dropped_from_the_response(
    gateway: str,
) -> None:
    with httpx.Client(timeout=10) as client:
        response = client.get(gateway + "/both")
    assert (response.status_code, response.content) == (200, b"hello world")
    assert "content-length" not in response.headers


def test_content_length_beside_transfer_encoding_never_goes_upstream(
    gateway: str, upstream: RawUpstream
) -> None:
    reply = raw_exchange(
        gateway,
        b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 99\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    status = int(reply.split(b" ")[1])
    # The server in front may refuse such a request itself; what it lets
    # through reaches the upstream with one framing only.
    assert status == 400 or status == 404
    for request in upstream.requests:
        lower = request.lower()
        assert not (b"content-length" in lower and b"transfer-encoding" in lower)
    if status == 404:
        assert upstream.requests[-1].endswith(b"hello")


@pytest.mark.parametrize(
    "request_line",
    [
        b"CONNECT evil.example:443 HTTP/1.1",
        b"GET http://evil.example/x HTTP/1.1",
    ],
)
def test_connect_and_foreign_absolute_targets_are_400(
    gateway: str, upstream: RawUpstream, request_line: bytes
) -> None:
    reply = raw_exchange(gateway, request_line + b"\r\nHost: gw\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    assert upstream.requests == []


def test_absolute_target_naming_the_gateway_itself_is_forwarded_as_a_path(
    gateway: str, upstream: RawUpstream
) -> None:
    reply = raw_exchange(
        gateway, b"GET http://gw/both HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200")
    assert upstream.requests[0].startswith(b"GET /both HTTP/1.1\r\n")


def test_every_connection_token_is_honoured(gateway: str, upstream: RawUpstream) -> None:
    names = [f"x-hop-{i}" for i in range(100)]
    headers = [("Connection", ", ".join(names)), *[(n, "secret") for n in names]]
    with httpx.Client(timeout=10) as client:
        client.get(gateway + "/both", headers=[*headers, ("X-Kept", "yes")])
    sent = upstream.requests[0].lower()
    assert b"x-hop-" not in sent
    assert b"x-kept: yes" in sent


def test_location_pointing_at_the_upstream_is_rewritten_when_asked(gateway: str) -> None:
    based = {"X-Spinnaker-Application": "based"}
    with httpx.Client(timeout=10) as client:
        mine = client.get(gateway + "/redirect", headers=based)
        other = client.get(gateway + "/elsewhere", headers=based)
    host = httpx.URL(gateway).netloc.decode()
    assert mine.headers["location"] == f"http://{host}/next?a=1"
    assert other.headers["location"] == "http://other.example/base/x"


def test_head_answers_end_without_a_body(gateway: str, upstream: RawUpstream) -> None:
    upstream.answers["/head"] = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Backend: raw\r\n\r\n"
    with httpx.Client(timeout=10) as client:
        response = client.head(gateway + "/head")
        assert (response.status_code, response.headers["content-length"]) == (200, "1234")
        assert client.get(gateway + "/both").content == b"hello world"


def test_an_endless_response_head_is_refused_not_buffered(
    gateway: str, upstream: RawUpstream
) -> None:
    many = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 100) for i in range(2000))
    upstream.answers["/huge"] = b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"
    with httpx.Client(timeout=10) as client:
        response = client.get(gateway + "/huge")
        assert response.status_code == 502
        assert client.get(gateway + "/both").content == b"hello world"


def test_one_endless_header_line_is_cut_off_not_buffered(
    gateway: str, upstream: RawUpstream
) -> None:
    # httptools hands a header over only once its line ended: the proxy must
    # count the bytes itself, or one line grows its memory until the timeout.
    upstream.floods.add("/flood")
    with httpx.Client(timeout=30) as client:
        response = client.get(gateway + "/flood")
        assert response.status_code == 502
        assert client.get(gateway + "/both").content == b"hello world"
    assert upstream.cut == ["/flood"]


def test_an_upstream_that_stops_reading_a_streamed_body_frees_its_connection() -> None:
    # A listening socket nobody accepts from: the kernel takes the connection
    # and some bytes, then the upstream's window stays shut for ever.
    deaf = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{deaf.getsockname()[1]}"
    router = load_router(
        {
            "endpoints": {"deaf": url},
            "routes": [{"name": "main", "default": True, "target": "deaf"}],
        }
    )
    proxy = SelectorsProxy(router, timeout=0.5)
    size = 256 * 1024 * 1024
    with deaf, serve_asgi(proxy, lifespan="on", proxy=True) as base:
        gateway = httpx.URL(base)
        assert gateway.port is not None
        with socket.create_connection((gateway.host, gateway.port), timeout=30) as sock:
            sock.sendall(b"PUT /up HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n" % size)

            def upload() -> None:
                chunk = b"u" * 65536
                with contextlib.suppress(OSError):
                    for _ in range(size // len(chunk)):
                        sock.sendall(chunk)

            uploader = threading.Thread(target=upload, daemon=True)
            uploader.start()
            reply = sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 504"), reply[:100]
            sock.shutdown(socket.SHUT_RDWR)
            uploader.join(30)
        # The stuck connection was closed, not kept busy for ever.
        assert proxy.connections() == {url: 0}


def test_a_client_that_stalls_mid_body_is_answered_408_and_frees_its_connection(
    backends: dict[str, str],
) -> None:
    url = backends["ro-2"]
    router = load_router(
        {"endpoints": {"up": url}, "routes": [{"name": "main", "default": True, "target": "up"}]}
    )
    proxy = SelectorsProxy(router, timeout=0.5)
    with serve_asgi(proxy, lifespan="on", proxy=True) as base:
        gateway = httpx.URL(base)
        assert gateway.port is not None
        with socket.create_connection((gateway.host, gateway.port), timeout=30) as sock:
            # More than the proxy keeps for a retry, so it streams upstream;
            # then the client sends nothing more and stays connected.
            sock.sendall(b"PUT /up HTTP/1.1\r\nHost: gw\r\nContent-Length: 1048576\r\n\r\n")
            sock.sendall(b"s" * 200_000)
            reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert proxy.connections() == {url: 0}


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.0 200 OK\r\n\r\nold style", b"HTTP/1.1 200 OK\r\nX-Backend: raw\r\n\r\nold style"],
)
def test_a_body_that_ends_with_the_connection_arrives_whole(
    gateway: str, upstream: RawUpstream, answer: bytes
) -> None:
    # RFC 9112 section 6.3: no length, no chunking, so the body ends at the
    # upstream's close; that is its end, not a failure mid-response.
    upstream.answers["/eof"] = answer
    with httpx.Client(timeout=10) as client:
        response = client.get(gateway + "/eof")
    assert (response.status_code, response.content) == (200, b"old style")


def test_a_status_no_server_can_send_on_is_502(gateway: str, upstream: RawUpstream) -> None:
    upstream.answers["/999"] = b"HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx"
    with httpx.Client(timeout=10) as client:
        assert client.get(gateway + "/999").status_code == 502


def test_a_body_cut_short_after_an_early_answer_never_poisons_a_pooled_connection() -> None:
    # The backend answers POST /early before reading its body. The client then
    # leaves mid-body: that connection still owes the backend the rest of the
    # body, so the next request sent on it would be read as those bytes.
    backend = Backend("early").start()
    try:
        router = load_router(
            {
                "endpoints": {"early": backend.url},
                "routes": [{"name": "main", "default": True, "target": "early"}],
            }
        )
        proxy = SelectorsProxy(router, timeout=3)
        with serve_asgi(proxy, lifespan="on", proxy=True) as base:
            gateway = httpx.URL(base)
            assert gateway.port is not None
            with socket.create_connection((gateway.host, gateway.port), timeout=10) as sock:
                sock.sendall(b"POST /early HTTP/1.1\r\nHost: gw\r\nContent-Length: 300000\r\n\r\n")
                sock.sendall(b"p" * 100_000)
                # Pacing, not an assertion: time for the backend's early answer.
                time.sleep(1)
            deadline = time.monotonic() + 10
            while proxy.connections()[backend.url] != 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            with httpx.Client(timeout=10) as client:
                response = client.get(base + "/next")
            assert (response.status_code, response.text) == (200, "early /next")
    finally:
        backend.close()


def test_an_upstream_refusing_a_streamed_body_early_is_relayed_not_502(
    upstream: RawUpstream,
) -> None:
    # The upstream answers 413 on the head and stops reading the body: its
    # answer goes back (as nginx relays it), not a 502 or 504 that would also
    # count against a healthy replica. It holds the connection open longer
    # than the gateway waits for a write, so the upload stalls for certain.
    # (Closing at once with input unread would send a reset, which can destroy
    # the answer in the gateway's buffers before it is read: no server does
    # that on purpose, they close lingering.)
    upstream.answers["early /upload"] = (
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
        b"too large\n"
    )
    upstream.hold = 3.0
    router = load_router(
        {
            "endpoints": {"raw": upstream.url},
            "routes": [{"name": "raw", "default": True, "target": "raw"}],
        }
    )
    size = 64 * 1024 * 1024
    with (
        serve_asgi(SelectorsProxy(router, timeout=0.5), lifespan="on", proxy=True) as gateway,
        socket.create_connection(
            (httpx.URL(gateway).host, httpx.URL(gateway).port or 0), timeout=20
        ) as sock,
    ):
        sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n" % size)

        def upload() -> None:
            chunk = b"u" * 65536
            with contextlib.suppress(OSError):
                for _ in range(size // len(chunk)):
                    sock.sendall(chunk)

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        reply = sock.recv(65536)
        sock.shutdown(socket.SHUT_RDWR)
        uploader.join(30)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
