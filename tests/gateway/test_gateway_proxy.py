"""SelectorsProxy under uvicorn, forwarding to real backends on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from adapters_support import routing_config, serve_asgi

from selectors_lib import HeaderMapping, load_router
from selectors_lib.gateway import SelectorsProxy


@pytest.fixture(scope="module")
def proxies(backends: dict[str, str]) -> Iterator[dict[str, str]]:
    router = load_router(routing_config(backends))
    plain = SelectorsProxy(router, timeout=0.5, debug_header="X-Selectors-Route")
    trusting = SelectorsProxy(
        router, mapping=HeaderMapping(trust_user_header=True), debug_header="X-Selectors-Route"
    )
    with (
        serve_asgi(plain, lifespan="on", proxy=True) as one,
        serve_asgi(trusting, lifespan="on", proxy=True) as two,
    ):
        yield {"plain": one, "trusting": two}


@pytest.fixture
def client(proxies: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxies["plain"], timeout=10) as c:
        yield c


def headers_of(echo: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        out.setdefault(name, []).append(value)
    return out


def test_routes_by_header_to_the_right_backend(client: httpx.Client) -> None:
    keel = client.get("/applications/keel?expand=true", headers={"X-Spinnaker-Application": "keel"})
    assert keel.status_code == 200
    body = keel.json()
    assert body["backend"] == "ro-1"
    # ro-1's endpoint URL has a base path, which goes in front of the request's.
    assert (body["path"], body["query"]) == ("/base/applications/keel", "expand=true")
    deck = client.get("/applications", headers={"X-Spinnaker-User-Origin": "deck"}).json()
    assert (deck["backend"], deck["path"]) == ("ro-2", "/applications")


def test_host_is_rewritten_and_forwarded_headers_added(
    client: httpx.Client, backends: dict[str, str], proxies: dict[str, str]
) -> None:
    body = client.get(
        "/", headers={"X-Spinnaker-User-Origin": "deck", "X-Forwarded-For": "203.0.113.9"}
    ).json()
    seen = headers_of(body)
    assert seen["host"] == [httpx.URL(backends["ro-2"]).netloc.decode()]
    assert seen["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [httpx.URL(proxies["plain"]).netloc.decode()]


def test_encoded_path_and_double_slash_reach_the_backend_verbatim(client: httpx.Client) -> None:
    url = httpx.URL(str(client.base_url)).copy_with(raw_path=b"//evil.example/a%2Fb?q=%20")
    body = client.get(url, headers={"X-Spinnaker-User-Origin": "deck"}).json()
    assert body["backend"] == "ro-2"
    assert (body["raw_path"], body["query"]) == ("//evil.example/a%2Fb", "q=%20")


def test_request_body_streams_through(client: httpx.Client) -> None:
    chunks = [bytes([i]) * 65536 for i in range(48)]  # 3 MiB, sent chunked
    digest = hashlib.sha256(b"".join(chunks)).hexdigest()
    body = client.post("/upload", content=iter(chunks)).json()
    assert (body["body_size"], body["body_sha256"]) == (3 * 1024 * 1024, digest)
    assert headers_of(body)["transfer-encoding"] == ["chunked"]
    small = client.post("/upload", content=b"hello").json()
    assert (small["body_size"], headers_of(small)["content-length"]) == (5, ["5"])


def test_response_body_streams_through(client: httpx.Client) -> None:
    with client.stream("GET", "/stream?n=500") as response:
        assert response.status_code == 200
        # No Content-Length: the proxy passed chunks on instead of buffering a body.
        assert "content-length" not in response.headers
        lines = [line for line in response.iter_lines() if line]
    assert lines == [f"chunk {i}" for i in range(500)]


def test_hop_by_hop_headers_are_stripped_both_ways(client: httpx.Client) -> None:
    response = client.get(
        "/hop",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "from-client",
            "Keep-Alive": "timeout=300",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-End-To-End": "kept",
        },
    )
    seen = headers_of(response.json())
    for name in ("connection", "x-private-hop", "keep-alive", "te", "proxy-authorization"):
        assert name not in seen
    assert seen["x-end-to-end"] == ["kept"]
    # The backend's own hop-by-hop headers never reach the client; end-to-end ones do.
    assert "x-private-hop" not in response.headers
    assert "keep-alive" not in response.headers
    assert response.headers["set-cookie"] == "session=abc; Path=/"


def test_cookies_of_one_client_never_reach_another(proxies: dict[str, str]) -> None:
    with httpx.Client(base_url=proxies["plain"], timeout=10) as first:
        assert "set-cookie" in first.get("/hop").headers
    with httpx.Client(base_url=proxies["plain"], timeout=10) as second:
        assert "cookie" not in headers_of(second.get("/after").json())


def test_backend_down_is_502(client: httpx.Client) -> None:
    response = client.get("/", headers={"X-Spinnaker-Application": "broken"})
    assert response.status_code == 502
    assert response.headers["x-selectors-route"] == "rule=broken; endpoint=dead"


def test_slow_backend_is_504(client: httpx.Client) -> None:
    response = client.get("/slow?s=3")
    assert response.status_code == 504
    # The proxy keeps serving afterwards.
    assert client.get("/").status_code == 200


def test_upstream_failing_mid_body_aborts_the_client_connection(client: httpx.Client) -> None:
    # The status line is already sent: the only honest signal left is to cut
    # the connection, so the client never takes a truncated body as complete.
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/truncated")
    assert client.get("/").status_code == 200


def test_rejecting_pool_is_503(client: httpx.Client) -> None:
    response = client.get("/", headers={"X-Spinnaker-Application": "strict"})
    assert response.status_code == 503


def test_spoofed_user_header_is_ignored_unless_trusted(proxies: dict[str, str]) -> None:
    spoof = {"X-Spinnaker-User": "mallory"}
    with httpx.Client(timeout=10) as c:
        plain = c.get(proxies["plain"] + "/", headers=spoof)
        trusting = c.get(proxies["trusting"] + "/", headers=spoof)
    assert plain.headers["x-selectors-route"] == "rule=main; endpoint=ro-1"
    assert trusting.headers["x-selectors-route"].startswith("rule=by-user; ")
    # The backend gets the user the proxy routed on, never an untrusted copy.
    assert "x-spinnaker-user" not in headers_of(plain.json())
    assert headers_of(trusting.json())["x-spinnaker-user"] == ["mallory"]


def test_user_header_carries_the_authenticated_user(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    proxy = SelectorsProxy(router)
    passthrough = SelectorsProxy(router, user_header=None)

    async def authenticated(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Stands in for authentication middleware in front of the proxy.
        if scope["type"] == "http":
            scope["user"] = "al\u00efce"
        await proxy(scope, receive, send)

    with (
        serve_asgi(authenticated, lifespan="on", proxy=True) as base,
        serve_asgi(passthrough, lifespan="on", proxy=True) as raw,
        httpx.Client(timeout=10) as c,
    ):
        spoof = {"X-Spinnaker-User": "mallory", "x-spinnaker-user": "eve"}
        seen = c.get(base + "/", headers=list(spoof.items())).json()
        untouched = c.get(raw + "/", headers=list(spoof.items())).json()
    assert headers_of(seen)["x-spinnaker-user"] == ["al\u00efce".encode().decode("latin-1")]
    assert headers_of(untouched)["x-spinnaker-user"] == ["mallory", "eve"]


def test_huge_and_odd_headers_never_crash(client: httpx.Client) -> None:
    odd = bytes(range(0x80, 0x100)) * 4
    response = client.get(
        "/",
        headers=[
            (b"X-Spinnaker-Application", b"k" * 8000),
            (b"X-Odd", odd),
            *[(f"X-Many-{i}".encode(), b"v") for i in range(100)],
        ],
    )
    assert response.status_code == 200
    assert headers_of(response.json())["x-odd"] == [odd.decode("latin-1")]
    # Far beyond the server's header limit: refused by the server (a 4xx, or
    # the connection closed while the client still writes), never a 5xx.
    try:
        huge = client.get("/", headers={"X-Huge": "h" * 200_000})
    except httpx.TransportError:
        pass
    else:
        assert 400 <= huge.status_code < 500
    assert client.get("/").status_code == 200


def test_malformed_request_line_does_not_take_the_proxy_down(proxies: dict[str, str]) -> None:
    url = httpx.URL(proxies["plain"])
    assert url.port is not None
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(b"GET /\x00\xff?\r\n HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(1024)
    assert not reply.startswith(b"HTTP/1.1 5")
    with httpx.Client(timeout=10) as c:
        assert c.get(proxies["plain"] + "/").status_code == 200


def test_each_request_leaves_its_record_for_the_access_log(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    proxy = SelectorsProxy(router)
    records: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Stands in for the access log of `selectors-lib serve`.
        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                records.append(dict(scope["extensions"]["selectors_lib"]))
            await send(message)

        await proxy(scope, receive, send_and_record)

    with serve_asgi(app, lifespan="on", proxy=True) as base, httpx.Client(timeout=10) as c:
        assert c.get(base + "/x", headers={"X-Spinnaker-Application": "keel"}).status_code == 200
        assert c.get(base + "/", headers={"X-Spinnaker-Application": "broken"}).status_code == 502
    assert records == [
        {
            "rule": "keel",
            "endpoint": "ro-1",
            "key_source": None,
            "attempts": 1,
            "failover": False,
            "upstream_status": 200,
        },
        {
            "rule": "broken",
            "endpoint": "dead",
            "key_source": None,
            "attempts": 1,
            "failover": False,
            "upstream_status": None,
        },
    ]


def test_websocket_is_refused_before_accept(config: dict[str, Any]) -> None:
    proxy = SelectorsProxy(load_router(config))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(proxy({"type": "websocket", "headers": []}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1003}]
    # A server that offers the denial-response extension gets a 501 with the reason.
    sent.clear()
    scope = {"type": "websocket", "headers": [], "extensions": {"websocket.http.response": {}}}
    asyncio.run(proxy(scope, receive, send))
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 501
    assert b"not proxied" in sent[1]["body"]


def test_served_as_in_production_with_uvloop_and_httptools(backends: dict[str, str]) -> None:
    # uvloop's transports are not asyncio's classes: the upstream client must
    # not care (the benchmark's setup, and `selectors-lib serve`'s).
    import threading

    import uvicorn

    proxy = SelectorsProxy(load_router(routing_config(backends)))
    config = uvicorn.Config(
        proxy,
        host="127.0.0.1",
        port=0,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="critical",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            threading.Event().wait(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(3):  # the second and third reuse the pooled connection
                body = c.get("/x", headers={"X-Spinnaker-Application": "keel"}).json()
                assert (body["backend"], body["path"]) == ("ro-1", "/base/x")
            with c.stream("GET", "/stream?n=50") as response:
                assert len([line for line in response.iter_lines() if line]) == 50
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_reload_applies_new_settings_and_closes_pools_of_removed_endpoints(
    backends: dict[str, str],
) -> None:
    config = routing_config(backends)
    router = load_router(config)
    proxy = SelectorsProxy(router)
    keel = {"X-Spinnaker-Application": "keel"}
    with serve_asgi(proxy, lifespan="on", proxy=True) as base, httpx.Client(timeout=10) as c:
        assert c.get(base + "/", headers=keel).json()["backend"] == "ro-1"
        assert c.get(base + "/", headers={"X-Spinnaker-User-Origin": "deck"}).status_code == 200
        assert set(proxy.connections()) == {backends["ro-1"], backends["ro-2"]}
        router.reload(
            {
                "endpoints": {"ro-2": backends["ro-2"]},
                "routes": [{"name": "main", "default": True, "target": "ro-2"}],
                "gateway": {"first_byte_timeout": 0.2},
            }
        )
        assert c.get(base + "/", headers=keel).json()["backend"] == "ro-2"
        assert set(proxy.connections()) == {backends["ro-2"]}
        # The new section's timeouts hold from the next request on.
        assert c.get(base + "/slow?s=2").status_code == 504


def test_a_request_in_flight_across_a_reload_returns_its_connection_to_its_own_pool(
    backends: dict[str, str],
) -> None:
    router = load_router(routing_config(backends))
    proxy = SelectorsProxy(router)
    keel = {"X-Spinnaker-Application": "keel"}
    with serve_asgi(proxy, lifespan="on", proxy=True) as base, httpx.Client(timeout=10) as c:
        outcome: list[int] = []
        slow = threading.Thread(
            target=lambda: outcome.append(c.get(base + "/slow?s=1", headers=keel).status_code)
        )
        slow.start()
        try:
            deadline = time.monotonic() + 10
            while proxy.connections().get(backends["ro-1"]) != 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proxy.connections().get(backends["ro-1"]) == 1
            router.reload(
                {
                    "endpoints": {"ro-2": backends["ro-2"]},
                    "routes": [{"name": "main", "default": True, "target": "ro-2"}],
                }
            )
            # The next request applies the reload: ro-1's pool closes.
            assert c.get(base + "/").status_code == 200
        finally:
            slow.join(10)
        assert outcome == [200]
        # The slow request's connection went back to the closed pool and was
        # closed there; no pool for ro-1 came back with a count below zero.
        assert proxy.connections() == {backends["ro-2"]: 1}
