"""Response framing through the proxy: bodiless answers, reused connections, streamed heads.

The upstream is a raw keep-alive socket server, so it can send what real
servers get wrong (a ``204`` with ``Content-Length``, bytes past the end of an
answer) and show on which connection each request arrived. The proxy runs
under uvicorn with both of its HTTP protocols: h11 and httptools (the one
``selectors-lib serve`` uses, which refuses a body shorter than the
``Content-Length`` it was handed).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from adapters_support import serve_asgi
from gateway_backends import next_head, running

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy

NEXT = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
# Bodiless answers carrying framing fields, as broken or merely odd servers send them.
BODILESS = {
    "/204-length": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\n",
    "/204-chunked": b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n",
    "/304-length": b'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n',
    "/304-chunked": b'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: "x"\r\n\r\n',
}


class KeepAliveUpstream(socketserver.ThreadingTCPServer):
    """Answers canned bytes by ``METHOD path`` or path on persistent connections.

    ``seen`` lists ``(connection number, method, path)`` in arrival order.
    ``held`` paths send their head, then wait for ``release`` before their
    body (``None``: close instead).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answers: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)
        self.answers = answers
        self.seen: list[tuple[int, str, str]] = []
        self.connections = 0
        self.held: dict[str, tuple[bytes, bytes | None]] = {}
        self.release = threading.Event()
        # Whether each held answer's body went out because the client had its head.
        self.released: list[bool] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def number(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections


class _KeepAliveHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, KeepAliveUpstream)
        sock: socket.socket = self.request
        sock.settimeout(10)
        number = server.number()
        data = b""
        while (read := next_head(sock, data)) is not None:
            head, data = read
            method, path = (part.decode() for part in head.split(b" ")[:2])
            server.seen.append((number, method, path))
            if path in server.held:
                first, rest = server.held[path]
                sock.sendall(first)
                # Bounded: without the client's signal the body goes anyway
                # (and released records that the head was held back).
                server.released.append(server.release.wait(10))
                if rest is None:
                    sock.close()
                    return
                sock.sendall(rest)
                continue
            sock.sendall(server.answers.get(f"{method} {path}") or server.answers.get(path, NEXT))


@pytest.fixture
def upstream() -> Iterator[KeepAliveUpstream]:
    with running(KeepAliveUpstream(dict(BODILESS))) as server:
        yield server


def serve_proxy(app: Any, http: str) -> Any:
    """``app`` under uvicorn with the given HTTP protocol, as a proxy is served."""
    return serve_asgi(app, lifespan="on", proxy=True, http=http)


def proxy_for(*urls: str, **gateway: Any) -> SelectorsProxy:
    names = [f"raw-{i}" for i in range(len(urls))]
    return SelectorsProxy(
        load_router(
            {
                "endpoints": dict(zip(names, urls, strict=True)),
                "routes": [{"name": "raw", "default": True, "target": {"endpoints": names}}],
                "gateway": gateway,
            }
        )
    )


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_bodiless_answers_lose_their_framing_and_keep_the_connection_in_sync(
    upstream: KeepAliveUpstream, http: str
) -> None:
    with serve_proxy(proxy_for(upstream.url), http) as base, httpx.Client(base_url=base) as client:
        for path in BODILESS:
            answer = client.get(path)
            assert answer.status_code == int(path[1:4])
            assert answer.content == b""
            assert "content-length" not in answer.headers
            assert "transfer-encoding" not in answer.headers
            # The next request on the same upstream connection gets its own answer.
            assert client.get("/next").content == b"next"
    # One upstream connection served everything: nothing was read as a body.
    assert {number for number, _, _ in upstream.seen} == {1}
    assert [path for _, _, path in upstream.seen] == [p for b in BODILESS for p in (b, "/next")]


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_head_answers_keep_their_framing_fields_and_read_no_body(
    upstream: KeepAliveUpstream, http: str
) -> None:
    upstream.answers["HEAD /length"] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    upstream.answers["HEAD /chunked"] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with serve_proxy(proxy_for(upstream.url), http) as base, httpx.Client(base_url=base) as client:
        length = client.head("/length")
        assert (length.status_code, length.headers["content-length"]) == (200, "100")
        assert client.get("/next").content == b"next"
        assert client.head("/chunked").status_code == 200
        assert client.get("/next").content == b"next"
    assert [path for _, _, path in upstream.seen] == ["/length", "/next", "/chunked", "/next"]


def test_bytes_past_the_end_of_an_answer_never_reach_the_next_request(
    upstream: KeepAliveUpstream,
) -> None:
    # A 204 "with a body" that looks like a whole second response: read as
    # the next answer, it would be handed to whichever request came next.
    upstream.answers["/smuggle"] = BODILESS["/204-length"] + NEXT.replace(b"next", b"evil")
    with serve_proxy(proxy_for(upstream.url), "h11") as base, httpx.Client(base_url=base) as client:
        assert client.get("/smuggle").status_code == 204
        assert [client.get("/next").content for _ in range(3)] == [b"next"] * 3
    # The connection that carried the extra bytes was not reused.
    numbers = [number for number, _, _ in upstream.seen]
    assert numbers[0] != numbers[1]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_response_head_reaches_the_client_before_the_upstream_sends_its_body(
    upstream: KeepAliveUpstream, method: str
) -> None:
    upstream.held["/held"] = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Up: head\r\n\r\n",
        b"body",
    )
    proxy = proxy_for(upstream.url, first_byte_timeout=30)
    with (
        serve_proxy(proxy, "h11") as base,
        httpx.Client(base_url=base, timeout=30) as client,
        client.stream(method, "/held") as answer,
    ):
        assert answer.headers["x-up"] == "head"
        upstream.release.set()
        assert answer.read() == b"body"
    assert upstream.released == [True]


def test_an_upstream_that_dies_after_its_head_was_relayed_is_not_retried(
    upstream: KeepAliveUpstream,
) -> None:
    other = KeepAliveUpstream({})
    for server in (upstream, other):
        server.held["/dies"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", None)
    with running(other):
        proxy = proxy_for(upstream.url, other.url)
        with (
            serve_proxy(proxy, "h11") as base,
            httpx.Client(base_url=base, timeout=30) as client,
            client.stream("GET", "/dies") as answer,
        ):
            assert answer.status_code == 200
            upstream.release.set()
            other.release.set()
            with pytest.raises(httpx.RemoteProtocolError):
                answer.read()
        # The head reached the client: no second replica was asked.
        assert len(upstream.seen) + len(other.seen) == 1
