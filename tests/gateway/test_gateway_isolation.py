"""Isolation: abandoned clients and slow requests to one backend never hold up another."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from adapters_support import serve_asgi
from gateway_backends import Backend

from selectors_lib import load_router
from selectors_lib.gateway import SelectorsProxy


@pytest.fixture
def two() -> Iterator[tuple[Backend, Backend]]:
    slow, fast = Backend("slow"), Backend("fast")
    try:
        slow.start()
        fast.start()
        yield slow, fast
    finally:
        slow.close()
        fast.close()


def open_request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: gw\r\nX-Spinnaker-Application: slow\r\n\r\n".encode()
    )
    return sock


def wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    for _ in range(400):
        if condition():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"never happened: {what}")


def test_abandoned_clients_and_slow_requests_never_delay_another_backend(
    two: tuple[Backend, Backend],
) -> None:
    slow, fast = two
    router = load_router(
        {
            "endpoints": {"slow": slow.url, "fast": fast.url},
            "routes": [
                {"name": "slow", "match": {"application": "slow"}, "target": "slow"},
                {"name": "fast", "default": True, "target": "fast"},
            ],
            # As the issue found it: 100 connections, here per endpoint.
            "gateway": {
                "max_connections": 100,
                "connect_timeout": 20,
                "first_byte_timeout": 120,
                "idle_timeout": 20,
            },
        }
    )
    proxy = SelectorsProxy(router)
    with serve_asgi(proxy, lifespan="on", proxy=True) as base:
        port = httpx.URL(base).port
        assert port is not None
        # 105 clients open a streaming response and hang up after its head.
        for _ in range(105):
            sock = open_request(port, "/drip")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()
        # Each abandoned exchange was cancelled and its connection closed.
        wait_for(lambda: proxy.connections().get(slow.url, 0) == 0, "abandoned streams closed")
        # 150 slow requests to the same backend (more than its pool holds).
        pending = [open_request(port, "/slow?s=60") for _ in range(150)]
        try:
            wait_for(lambda: proxy.connections().get(slow.url) == 100, "slow pool full")
            with httpx.Client(base_url=base, timeout=10) as client:
                response = client.get("/other")
            # Answered by the other backend while every slow request still waits.
            assert (response.status_code, response.text) == (200, "fast /other")
            for sock in pending:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in pending:
                sock.close()
        # Clients that leave while their upstream is slow free its connection
        # at once, long before the first-byte timeout.
        wait_for(lambda: proxy.connections().get(slow.url, 0) == 0, "abandoned slow requests")
