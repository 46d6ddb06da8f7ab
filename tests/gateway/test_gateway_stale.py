"""Pooled keep-alive connections that died: found out before a request is lost.

A pooled connection whose upstream closed or reset it takes no request with
it: when the write itself fails (nothing of the request left) any method goes
out again on a fresh connection; when it fails after the write, idempotent
methods do. Real sockets throughout; in-process uvicorn for the proxy and
backend processes that are killed for real.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from adapters_support import serve_asgi
from gateway_backends import Backend, next_head
from test_gateway_failover import APPS, config

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy
from selectors_lib.gateway._attempt import AttemptFailed, exchange
from selectors_lib.gateway._body import RequestBody
from selectors_lib.gateway._messages import UpstreamTarget
from selectors_lib.gateway._pool import EndpointPool
from selectors_lib.gateway._settings import RouteSettings


class ResettingUpstream:
    """Answers each request with its connection's number; resets connection 1 on demand."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.reset_now = threading.Event()
        self.reset_done = threading.Event()
        self.requests: list[tuple[int, bytes]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept)]
        self._threads[0].start()

    def _accept(self) -> None:
        number = 0
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            number += 1
            thread = threading.Thread(target=self._serve, args=(conn, number))
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(10)
        with conn:
            data = b""
            while (read := next_head(conn, data)) is not None:
                head, data = read
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                self.requests.append((number, head.split(b" ")[1]))
                body = str(number).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                if number == 1:
                    self.reset_now.wait(10)
                    # Linger 0: close() sends a reset, as a crashed peer's kernel may.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    self.reset_done.set()
                    return

    def close(self) -> None:
        self.reset_now.set()
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.server.close()


@pytest.fixture
def resetting() -> Iterator[ResettingUpstream]:
    upstream = ResettingUpstream()
    try:
        yield upstream
    finally:
        upstream.close()


async def _no_disconnect() -> dict[str, Any]:
    await asyncio.sleep(60)
    return {"type": "http.disconnect"}


def _body(data: bytes) -> RequestBody:
    return RequestBody({"type": "http.request", "body": data, "more_body": False}, _no_disconnect)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_request_into_a_pooled_connection_the_upstream_reset_goes_out_fresh(
    resetting: ResettingUpstream, method: str
) -> None:
    settings = RouteSettings(connect_timeout=2, first_byte_timeout=5, idle_timeout=5)

    async def main() -> bytes:
        pool = EndpointPool(UpstreamTarget(resetting.url), 4, 30)
        conn = await exchange(pool, b"/one", method, [], _body(b"x"), settings)
        assert (conn.status, conn.take_body()) == (200, b"1")
        pool.release(conn)
        assert pool.open == 1
        resetting.reset_now.set()
        assert resetting.reset_done.wait(10)
        # Blocking on purpose: the event loop must not see the reset before
        # the pool hands the dead connection to the next request (as when
        # both land in one turn of a busy loop).
        time.sleep(0.05)
        try:
            again = await exchange(pool, b"/two", method, [], _body(b"y"), settings)
        except AttemptFailed as exc:
            pytest.fail(f"a request was lost with a pooled connection: {exc.kind}: {exc}")
        body = again.take_body()
        pool.release(again)
        pool.close()
        return body

    # The reset connection took nothing: connection 2 answered the request.
    assert asyncio.run(main()) == b"2"
    assert resetting.requests == [(1, b"/one"), (2, b"/two")]


def test_killing_a_backend_with_pooled_connections_open_loses_no_request_of_any_method(
    three: list[Backend],
) -> None:
    # No outlier detection: every request still meets the dead replica first.
    router = load_router(
        config(
            three,
            outlier={"enabled": False},
            retries={"budget": 1, "min_retries_per_second": 100},
        )
    )
    proxy = SelectorsProxy(router)
    victim = three[0]
    with serve_asgi(proxy, lifespan="on", proxy=True) as base:
        with httpx.Client(base_url=base, timeout=10) as client:
            owner = {
                app: client.get("/who", headers={"X-Spinnaker-Application": app}).headers[
                    "x-backend"
                ]
                for app in APPS
            }
        mine = [app for app in APPS if owner[app] == victim.name]
        assert len(mine) >= 2

        # Several keep-alive connections to the victim, all idle in its pool.
        def warm(app: str) -> None:
            with httpx.Client(base_url=base, timeout=10) as c:
                for _ in range(5):
                    c.get("/slow?s=0.05", headers={"X-Spinnaker-Application": app})

        warmers = [threading.Thread(target=warm, args=(mine[i % len(mine)],)) for i in range(4)]
        for thread in warmers:
            thread.start()
        for thread in warmers:
            thread.join(30)
        assert proxy.connections()[victim.url] >= 2
        victim.kill()
        with httpx.Client(base_url=base, timeout=10) as client:
            for app in mine:
                headers = {"X-Spinnaker-Application": app}
                answers = [
                    client.get("/g", headers=headers),
                    client.post("/p", headers=headers, content=b"v"),
                    client.patch("/p", headers=headers, content=b"w"),
                    client.delete("/d", headers=headers),
                ]
                assert [a.status_code for a in answers] == [200] * 4
                assert victim.name not in {a.headers["x-backend"] for a in answers}
